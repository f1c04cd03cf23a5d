"""`sss subscriptions`: listing, JSON, reset, delete, parked events and bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from store import EventStore, HandlerError, NewEvent, RecordedEvent
from tests.workbench.test_cli_read import assert_one_line_error, run
from workbench.cli import main


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Ten events; `billing` (Paid only) caught up, `mailer` stuck on position 4,
    `audit` parked position 2, and a group of two."""
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        for i in range(10):
            es.append(
                [NewEvent("Paid" if i % 2 else "Placed", {"i": i})],
                aggregate_id=f"order-{i % 3}",
                aggregate_type="Order",
            )
        es.subscribe("billing", lambda e: None, types=["Paid"], follow=False)

        def mail(event: RecordedEvent) -> None:
            if event.position == 4:
                raise ConnectionError("smtp refused")

        with pytest.raises(HandlerError):
            es.subscribe("mailer", mail, follow=False, batch_size=3)

        def audit(event: RecordedEvent) -> None:
            if event.position == 2:
                raise ValueError("bad payload")

        es.subscribe("audit", audit, follow=False, on_error="park")
        for member in range(2):
            es.subscribe("group", lambda e: None, group_member=member, group_size=2, follow=False)
    return path


def test_lists_positions_lags_filters_and_failures(
    capsys: pytest.CaptureFixture[str], store_path: Path
) -> None:
    code, out, err = run(capsys, "subscriptions", store_path)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME", "MEMBER", "POSITION", "LAG", "WAITING", "MOVED", "FILTERS", "PARKED",
    ]  # fmt: skip
    rows = {tuple(line.split()[:2]): line.split() for line in lines[1:6]}
    assert rows[("billing", "-")][2:4] == ["10", "0"]
    assert rows[("mailer", "-")][2:4] == ["3", "7"]
    assert "types=Paid" in rows[("billing", "-")]
    assert rows[("audit", "-")][-1] == "1"
    assert ("group", "0/2") in rows and ("group", "1/2") in rows
    assert lines[-1] == "mailer stopped at position 4: ConnectionError: smtp refused"


def test_json_lines(capsys: pytest.CaptureFixture[str], store_path: Path) -> None:
    code, out, _ = run(capsys, "subscriptions", store_path, "--json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    mailer = next(r for r in records if r["name"] == "mailer")
    assert mailer["position"] == 3 and mailer["lag"] == 7 and mailer["next_position"] == 4
    assert mailer["failed_position"] == 4 and mailer["lag_seconds"] >= 0
    assert next(r for r in records if r["name"] == "billing")["types"] == ["Paid"]


def test_reset_delete_and_parked(capsys: pytest.CaptureFixture[str], store_path: Path) -> None:
    code, _, err = run(capsys, "subscriptions", store_path, "--reset", "billing", "--to", "0")
    assert code == 0 and "billing resumes after position 0" in err
    with EventStore(str(store_path), readonly=True) as es:
        billing = next(i for i in es.subscriptions() if i.name == "billing")
        assert (billing.position, billing.lag) == (0, 5)
    code, out, _ = run(capsys, "subscriptions", store_path, "--parked", "--json")
    (parked,) = [json.loads(line) for line in out.splitlines()]
    assert (parked["name"], parked["position"], parked["reason"]) == (
        "audit",
        2,
        "ValueError: bad payload",
    )
    code, out, _ = run(capsys, "subscriptions", store_path, "--parked")
    assert code == 0 and out.startswith("audit  2  Paid  ")
    code, _, err = run(capsys, "subscriptions", store_path, "--delete", "audit")
    assert code == 0
    code, out, _ = run(capsys, "subscriptions", store_path, "--parked")
    assert out == "no parked events\n"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--reset", "billing"], ["--reset NAME and --to N go together"]),
        (["--to", "3"], ["--reset NAME and --to N go together"]),
        (["--reset", "nobody", "--to", "0"], ["no subscription 'nobody'"]),
        (["--reset", "billing", "--to", "99"], ["past the head"]),
        (["--reset", "billing", "--to", "-1"], ["--to must be a position >= 0"]),
        (["--delete", "nobody"], ["no subscription 'nobody'"]),
        (["--to", "x"], ["invalid int value"]),
    ],
)
def test_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str], store_path: Path, args: list[str], fragments: list[str]
) -> None:
    before = store_path.read_bytes()
    code, _, err = run(capsys, "subscriptions", store_path, *args)
    assert_one_line_error(code, err, *fragments)
    assert store_path.read_bytes() == before


def test_missing_store_is_not_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for args in ([], ["--reset", "a", "--to", "0"]):
        code, _, err = run(capsys, "subscriptions", missing, *args)
        assert_one_line_error(code, err, "missing.db")
    assert not os.path.exists(missing)


def test_an_empty_store_has_none(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    EventStore(str(path)).close()
    assert run(capsys, "subscriptions", path) == (0, "no subscriptions\n", "")


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscriptions", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--reset NAME" in out and "--to N" in out and "lag" in out
