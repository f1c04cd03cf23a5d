"""Event types starting with ``sss.`` are the store's own receipts: a user's
append or import of one is refused with one clear error and stores nothing;
the store's corrections still append them (``appending.append_receipt``)."""

from __future__ import annotations

from typing import Any

import pytest

from store import ANY, EventStore, NewEvent, ValidationError
from store.appending import append_receipt


@pytest.mark.parametrize("kind", ["sss.Voided", "sss.Reverted", "sss.Erased", "sss.Anything"])
def test_a_user_append_of_a_reserved_type_is_refused(store: EventStore, kind: str) -> None:
    store.append([NewEvent("Set", {"x": 1})], aggregate_id="a")
    with pytest.raises(ValidationError, match="is reserved") as caught:
        store.append(
            [NewEvent("Set", {"y": 2}), NewEvent(kind, {"voided_position": 1})], aggregate_id="a"
        )
    assert "event 1" in str(caught.value) and "sss." in str(caught.value)
    with pytest.raises(ValidationError, match="is reserved"), store.transaction():
        store.append([NewEvent(kind, {})])
    assert store.head() == 1
    assert store.state_at("a").state == {"x": 1}
    # Types that only look alike are the user's own.
    for allowed in ("SSS.Voided", "sss", "sssVoided", "x.sss.Voided"):
        store.append([NewEvent(allowed, {})], aggregate_id="a")
    assert store.head() == 5


def test_the_store_appends_its_receipts(store: EventStore) -> None:
    store.append([NewEvent("Set", {"x": 1})], aggregate_id="a")
    store.append([NewEvent("Set", {"x": 2})], aggregate_id="a")
    assert store.void(2, reason="wrong").type == "sss.Voided"
    assert store.revert("a", version=1, reason="back").type == "sss.Reverted"
    (receipt,) = append_receipt(store, [NewEvent("sss.Erased", {"positions": []})], "a", None, ANY)
    assert receipt.type == "sss.Erased" and receipt.position == 5
    assert store.verify().ok


def test_an_import_of_a_reserved_type_is_one_error_naming_the_line(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench.cli import main

    path = str(tmp_path / "s.db")
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        '{"type": "Set", "data": {"x": 1}, "aggregate_id": "a"}\n'
        '{"type": "sss.Voided", "data": {"voided_position": 1}, "aggregate_id": "a"}\n'
    )
    with EventStore(path):
        pass
    assert main(["import", path, str(lines)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 2" in err[0] and "reserved" in err[0], err
    assert main(["append", path, "--type", "sss.Reverted", "--data", "{}"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reserved" in err[0], err
    with EventStore(path, readonly=True) as es:
        assert es.head() == 0
