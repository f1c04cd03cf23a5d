"""The proof commands end to end: keygen, checkpoint, prove, verify-proof,
verify --checkpoint; copies (migrate, backup, replicate) keep the roots and
old checkpoints verify against them; every bad input is one line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import Checkpoint, EventStore, NewEvent
from workbench.cli import main

POSTGRES = os.environ.get("SSS_TEST_POSTGRES_URL")


def fill(es: EventStore, count: int, start: int = 0) -> None:
    with es.transaction():
        for i in range(start, start + count):
            es.append([NewEvent("Set", {"i": i})], aggregate_id=f"k{i % 3}", aggregate_type="K")


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        fill(es, 700)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def root_of(location: str) -> tuple[int, str | None]:
    with EventStore(location, readonly=True) as es:
        report = es.verify(merkle=True)
        assert report.ok, report.reason
        return report.head_position, report.root


KINDS = ["sqlite", "postgres"] if POSTGRES else ["sqlite"]


@pytest.mark.parametrize("command", ["migrate", "backup", "replicate"])
@pytest.mark.parametrize("kind", KINDS)
def test_copies_keep_the_root_and_old_checkpoints_verify(
    command: str, kind: str, store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "postgres":
        from tests.store.pg import fresh_postgres_url

        targets: Iterator[str] = fresh_postgres_url(f"proof_{command}")
    else:
        targets = iter([str(tmp_path / "copy.db")])
    for target in targets:
        checkpoint = str(tmp_path / "cp.txt")
        assert run(capsys, "checkpoint", store_path, "-o", checkpoint)[0] == 0
        code, _, err = run(capsys, command, "--quiet", store_path, target)
        assert code == 0, err
        assert root_of(target) == root_of(store_path)
        with EventStore(target, readonly=True) as es:
            assert es.checkpoint().root == Checkpoint.parse(Path(checkpoint).read_text()).root
        code, out, err = run(capsys, "verify", target, "--checkpoint", checkpoint)
        assert code == 0, err
        assert "extends the checkpoint of 700 events" in out
        with EventStore(target, readonly=True) as a, EventStore(store_path, readonly=True) as b:
            same_id = a.info()["store_id"] == b.info()["store_id"]
        # A copy row by row gets a store id of its own; a file backup keeps it.
        assert ("a copy of it" in out) != same_id
        assert same_id == (command == "backup" and kind == "sqlite")
        # The copy grows on its own and still extends the old checkpoint.
        with EventStore(target) as es:
            fill(es, 30, 700)
        assert run(capsys, "verify", target, "--checkpoint", checkpoint)[0] == 0


def test_prove_and_verify_proof(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = str(tmp_path / "k")
    assert run(capsys, "keygen", "-o", key, "--name", "auditor")[0] == 0
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    checkpoint = str(tmp_path / "cp.txt")
    assert run(capsys, "checkpoint", store_path, "--key", key, "-o", checkpoint)[0] == 0
    with EventStore(store_path) as es:
        fill(es, 5, 700)
    proof = str(tmp_path / "p.json")
    code, out, err = run(
        capsys, "prove", store_path, "300", "--checkpoint", checkpoint, "-o", proof
    )
    assert code == 0, err
    bundle = json.loads(Path(proof).read_text())
    assert bundle["tree_size"] == 700 and bundle["position"] == 300
    code, out, _ = run(capsys, "verify-proof", proof, "--key", key + ".pub")
    assert code == 0 and "verified with auditor" in out
    code, out, _ = run(capsys, "verify-proof", proof, "--json")
    assert code == 0 and json.loads(out)["signature"] == "not checked (no key given)"
    # Without --checkpoint: a fresh unsigned one at today's head.
    code, _, _ = run(capsys, "prove", store_path, "705", "-o", proof)
    assert code == 0
    code, out, _ = run(capsys, "verify-proof", proof)
    assert code == 0 and "705 is in the 705 events" in out and "unsigned" in out
    code, _, err = run(capsys, "verify-proof", proof, "--key", key + ".pub")
    assert code == 1 and "unsigned" in err
    # A position after the checkpoint's size cannot be proved against it.
    code, _, err = run(capsys, "prove", store_path, "701", "--checkpoint", checkpoint, "-o", proof)
    assert code == 1 and "after the checkpoint's 700 events" in err


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["verify", "{store}", "--checkpoint", "{tmp}/missing"], "does not exist"),
        (["verify", "{store}", "--checkpoint", "{store}"], "not a checkpoint"),
        (["verify", "{store}", "--checkpoint", "{tmp}"], "is a directory"),
        (["verify", "{store}", "--checkpoint", "{tmp}/junk"], "not a checkpoint"),
        (["verify", "{store}", "--checkpoint", "{tmp}/cp", "--key", "{tmp}/k"], "not a public key"),
        (["verify", "{store}", "--checkpoint", "{tmp}/cp", "--key", "{tmp}/junk"], "not a public"),
        (["verify", "{store}", "--key", "{tmp}/k.pub"], "give --checkpoint"),
        (["checkpoint", "{store}", "--key", "{tmp}/k.pub", "-o", "{tmp}/c"], "not a private key"),
        (["checkpoint", "{store}", "-o", "{store}"], "store being read"),
        (["checkpoint", "{store}", "-o", "/dev/null"], "is a device"),
        (["checkpoint", "{tmp}/nostore.db", "-o", "{tmp}/c"], "does not exist"),
        (["prove", "{store}", "0", "-o", "{tmp}/p"], "no event at position 0"),
        (["prove", "{store}", "701", "-o", "{tmp}/p"], "no event at position 701"),
        (["prove", "{store}", "99999999999999999999999", "-o", "{tmp}/p"], "beyond any position"),
        (["prove", "{store}", "-5", "-o", "{tmp}/p"], "not a whole number"),
        (["prove", "{store}", "5", "-o", "{tmp}/other.db"], "is an event store"),
        (["prove", "{store}", "5", "--checkpoint", "{tmp}/junk", "-o", "{tmp}/p"], "checkpoint"),
        (["verify-proof", "{tmp}/junk"], "not a proof bundle"),
        (["verify-proof", "{tmp}/missing"], "does not exist"),
        (["verify-proof", "/dev/zero"], "not a regular file"),
        (["keygen", "-o", "{tmp}/k"], "never overwritten"),
        (["keygen", "-o", "{store}"], "is an event store"),
        (["keygen", "-o", "{tmp}/new", "--name", "a b"], "--name"),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str],
    fragment: str,
    store_path: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "junk").write_text("hello\nworld\n")
    with EventStore(str(tmp_path / "other.db")) as es:
        fill(es, 1)
    main(["keygen", "-o", str(tmp_path / "k")])
    main(["checkpoint", store_path, "-o", str(tmp_path / "cp")])
    before = Path(store_path).read_bytes()
    filled = [a.format(store=store_path, tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *filled)
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("sss: error:"), err
    assert fragment in err, err
    assert "Traceback" not in err
    assert Path(store_path).read_bytes() == before


def test_the_report_states_the_checkpoint(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = str(tmp_path / "k")
    checkpoint = str(tmp_path / "cp.txt")
    assert run(capsys, "keygen", "-o", key)[0] == 0
    assert run(capsys, "checkpoint", store_path, "--key", key, "-o", checkpoint)[0] == 0
    cp = Checkpoint.parse(Path(checkpoint).read_text())
    md = str(tmp_path / "r.md")
    argv = ["report", store_path, "--checkpoint", checkpoint, "--key", key + ".pub", "-o", md]
    assert run(capsys, *argv)[0] == 0
    text = Path(md).read_text()
    assert f"verified against the checkpoint of 700 events with root {cp.root}" in text
    assert "| **Extends the checkpoint** | yes |" in text
    assert "verified with k" in text
    jsonl = str(tmp_path / "r.jsonl")
    assert run(capsys, "report", store_path, "--checkpoint", checkpoint, "-o", jsonl)[0] == 0
    first = json.loads(Path(jsonl).read_text().splitlines()[0])
    assert first["integrity"]["checkpoint"]["root"] == cp.root
    assert first["integrity"]["root"] == cp.root
    # Rewritten behind the triggers' back: the report says so and exits 1.
    from tests.store.test_forged import SQLiteForger

    forger = SQLiteForger(store_path)
    forger.execute("UPDATE events SET type = 'Forged' WHERE position = 3")
    forger.rechain()
    code, _, _ = run(capsys, *argv)
    assert code == 1
    text = Path(md).read_text()
    assert "Verification FAILED" in text and "| **Extends the checkpoint** | NO |" in text
    assert "rewritten, reordered or forked" in text
    code, _, err = run(capsys, "report", store_path, "--checkpoint", checkpoint, "--no-verify",
                       "-o", md)  # fmt: skip
    assert code != 0 and "does not go with --no-verify" in err
