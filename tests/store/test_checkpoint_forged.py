"""``sss verify --checkpoint`` against every rewrite a file owner can make.

The forgers of :mod:`tests.store.test_forged` drop the triggers, change rows
and recompute the whole hash chain with their own implementation of the
README recipe, so plain ``verify`` passes. A checkpoint taken before (and
kept outside the store) must catch each: an edit, a cut tail, a reorder, a
fork; and a store that only grew must still pass. On SQLite and, when
configured, PostgreSQL.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from tests.store.test_forged import Forger, PostgresForger, SQLiteForger
from workbench.cli import main

EVENTS = 600  # more than two stored chunks of 256 leaves
FIXED = datetime(2024, 1, 1, tzinfo=UTC)  # one recorded_at: a reorder keeps time order


def fill(es: EventStore, count: int = EVENTS, start: int = 0) -> None:
    for i in range(start, start + count, 50):
        with es.transaction():
            for j in range(i, min(i + 50, start + count)):
                es.append(
                    [NewEvent("Changed", {"i": j}, {"actor": "alice"})],
                    aggregate_id=f"a{j % 4}",
                    aggregate_type="Thing",
                )


BACKENDS = ["sqlite"]
if os.environ.get("SSS_TEST_POSTGRES_URL"):
    BACKENDS.append("postgres")


@pytest.fixture(params=BACKENDS)
def forger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Forger]:
    if request.param == "sqlite":
        path = str(tmp_path / "events.db")
        with EventStore(path, clock=lambda: FIXED) as es:
            fill(es)
        yield SQLiteForger(path)
        return
    request.applymarker(pytest.mark.postgres)
    from tests.store.pg import fresh_postgres_url

    for url in fresh_postgres_url(request.node.name):
        with EventStore(url, clock=lambda: FIXED) as es:
            fill(es)
        yield PostgresForger(url)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[str, str]:
    key = str(tmp_path / "audit")
    assert main(["keygen", "-o", key]) == 0
    return key, key + ".pub"


def take_checkpoint(forger: Forger, tmp_path: Path, key: str) -> str:
    target = str(tmp_path / "checkpoint.txt")
    assert main(["checkpoint", forger.location, "--key", key, "-o", target]) == 0
    return target


def verify_against(
    forger: Forger, checkpoint: str, public: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", forger.location, "--checkpoint", checkpoint, "--key", public])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def plain_verify_passes(forger: Forger) -> bool:
    with EventStore(forger.location, readonly=True) as es:
        return es.verify().ok


def test_a_store_that_only_grew_passes(
    forger: Forger, tmp_path: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = take_checkpoint(forger, tmp_path, keys[0])
    with EventStore(forger.location, clock=lambda: FIXED) as es:
        fill(es, 333, EVENTS)
    code, said = verify_against(forger, checkpoint, keys[1], capsys)
    assert code == 0, said
    assert f"extends the checkpoint of {EVENTS} events" in said
    assert f"merkle tree: size {EVENTS + 333}" in said
    assert "verified with audit" in said


def test_an_edit_rechained_is_caught_and_located(
    forger: Forger, tmp_path: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = take_checkpoint(forger, tmp_path, keys[0])
    forger.execute("UPDATE events SET data = '{\"i\": 999999}' WHERE position = 300")
    forger.rechain()
    assert plain_verify_passes(forger)  # what the chain alone cannot see
    code, said = verify_against(forger, checkpoint, keys[1], capsys)
    assert code == 1
    assert "does not extend the checkpoint" in said
    assert f"history before position {EVENTS + 1} was rewritten" in said
    assert "positions 257 to 512" in said  # the stored chunk hashes kept the old history
    assert "Traceback" not in said


def test_an_edit_with_the_stored_tree_wiped_is_still_caught(
    forger: Forger, tmp_path: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = take_checkpoint(forger, tmp_path, keys[0])
    forger.execute("UPDATE events SET type = 'Forged' WHERE position = 12", "DELETE FROM sss_tree")
    forger.rechain()
    assert plain_verify_passes(forger)
    code, said = verify_against(forger, checkpoint, keys[1], capsys)
    assert code == 1
    assert "was rewritten, reordered or forked" in said
    assert "its root differs" in said


def test_a_cut_tail_is_caught(
    forger: Forger, tmp_path: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = take_checkpoint(forger, tmp_path, keys[0])
    forger.execute(f"DELETE FROM events WHERE position > {EVENTS - 10}")
    forger.rechain()
    assert plain_verify_passes(forger)
    code, said = verify_against(forger, checkpoint, keys[1], capsys)
    assert code == 1
    assert f"the store holds {EVENTS - 10}" in said
    assert f"positions {EVENTS - 9} to {EVENTS}" in said


def test_a_reorder_is_caught(
    forger: Forger, tmp_path: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two events of different aggregates trade places; each aggregate's
    versions still go up, and every recorded_at is the same, so only the
    tree can tell."""
    checkpoint = take_checkpoint(forger, tmp_path, keys[0])
    forger.execute(
        "UPDATE events SET position = -10 WHERE position = 10",
        "UPDATE events SET position = 10 WHERE position = 11",
        "UPDATE events SET position = 11 WHERE position = -10",
    )
    forger.rechain()
    assert plain_verify_passes(forger)
    code, said = verify_against(forger, checkpoint, keys[1], capsys)
    assert code == 1
    assert "rewritten, reordered or forked" in said
    assert "positions 1 to 256" in said


def test_a_fork_is_caught(
    forger: Forger, tmp_path: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The log is cut back to 400 events and grows on differently, past the
    checkpoint's size: the head is larger, but it is not the same history."""
    checkpoint = take_checkpoint(forger, tmp_path, keys[0])
    forger.execute("DELETE FROM events WHERE position > 400")
    forger.rechain()
    with EventStore(forger.location, clock=lambda: FIXED) as es:
        es.append([NewEvent("Other", {"fork": True})], aggregate_id="b1")
        fill(es, 250, 10_000)
    assert plain_verify_passes(forger)
    code, said = verify_against(forger, checkpoint, keys[1], capsys)
    assert code == 1
    assert "rewritten, reordered or forked" in said
    assert "positions 257 to 512" in said


def test_an_altered_checkpoint_or_another_key_fails(
    forger: Forger, tmp_path: Path, keys: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = take_checkpoint(forger, tmp_path, keys[0])
    other = str(tmp_path / "other")
    assert main(["keygen", "-o", other, "--name", "audit"]) == 0
    code, said = verify_against(forger, checkpoint, other + ".pub", capsys)
    assert code == 1 and "does not verify with this key" in said
    # A forger who rewrites the store and makes a checkpoint to match has no key.
    forger.execute("UPDATE events SET type = 'Forged' WHERE position = 5")
    forger.rechain()
    forged = str(tmp_path / "forged.txt")
    assert main(["checkpoint", forger.location, "-o", forged]) == 0
    code, said = verify_against(forger, forged, keys[1], capsys)
    assert code == 1 and "the checkpoint is unsigned" in said
    lines = Path(checkpoint).read_text().split("\n")
    lines[2] = base64.b64encode(bytes(range(32))).decode()  # another root, the old signature
    Path(forged).write_text("\n".join(lines))
    code, said = verify_against(forger, forged, keys[1], capsys)
    assert code == 1 and "does not verify with this key" in said


def test_an_unsigned_checkpoint_still_catches_a_rewrite(
    forger: Forger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = str(tmp_path / "plain.txt")
    assert main(["checkpoint", forger.location, "-o", target]) == 0
    text = Path(target).read_text()
    assert text.endswith("\n\n") and "\u2014" not in text  # no signature line
    forger.execute('UPDATE events SET metadata = \'{"actor": "mallory"}\' WHERE position = 2')
    forger.rechain()
    capsys.readouterr()
    assert main(["verify", forger.location, "--checkpoint", target]) == 1
    assert "rewritten" in capsys.readouterr().err
