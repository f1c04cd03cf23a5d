"""Edges a caller can see: the aggregate pass's sums are 64-bit (the chain
walk's unbounded sums are compared modulo 2**64), a long key in a data path
is shortened to 40 characters, and the schema a search_path option names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from store import EventStore, NewEvent, ValidationError
from store.aggregate_pass import check_aggregates
from store.codec import format_time
from store.models import AggregateInfo
from store.postgres.conninfo import search_path_schema


def _negative_name() -> str:
    # A name whose version-1 hash is negative, so the sum wraps below zero.
    for i in range(1000):
        name = f"agg{i}"
        if hash((name, 1, 1, "T")) < 0:
            return name
    raise AssertionError("no name with a negative hash")  # pragma: no cover


def test_the_pass_sums_are_kept_modulo_two_to_the_64() -> None:
    name = _negative_name()
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    info = AggregateInfo(name, "T", 1, 1, 1, when, when)
    found = check_aggregates([(name, 1, 1)], [info], 1)
    assert found.problem is None and found.events == 1
    assert found.typed == hash((name, 1, 1, "T")) % 2**64
    assert found.created == hash((name, 1, format_time(when))) % 2**64
    assert found.updated == hash((name, 1, format_time(when))) % 2**64
    assert max(found.typed, found.created, found.updated) < 2**64


@pytest.mark.parametrize(
    ("length", "shown"),
    [(40, "k" * 40), (41, "k" * 37 + "..."), (39, "k" * 39)],
)
def test_a_key_of_more_than_40_characters_is_shortened_in_the_message(
    store: EventStore, length: int, shown: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        store.append([NewEvent("E", {"k" * length: {1, 2}})])
    assert f"data/{shown} holds a set" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "schema"),
    [
        ("-c search_path=tenant_a", "tenant_a"),
        ("-csearch_path=tenant_b,public", "tenant_b"),
        ('-c search_path="quoted"', "quoted"),
        ('-c search_path=""', None),
        ("-c statement_timeout=5", None),
    ],
)
def test_the_first_schema_of_a_search_path_option(options: str, schema: str | None) -> None:
    assert search_path_schema(options) == schema
