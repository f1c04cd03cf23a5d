"""The PostgreSQL server's one-statement append (:meth:`Backend.append_direct`):
what happens after the server has committed the events.

Needs ``SSS_TEST_POSTGRES_URL`` (deselected without it)."""

from __future__ import annotations

import psycopg
import pytest

from store import EventStore, NewEvent

pytestmark = pytest.mark.postgres


def test_a_snapshot_the_server_cannot_write_is_a_warning_naming_the_last_version(
    url: str,
) -> None:
    """The events are committed by the server's function before the snapshots
    are written; a snapshot write that fails (here: another session holds the
    snapshots table) warns, names the last version due, and the append stands."""
    with EventStore(url, snapshot_every=1, timeout=0.3) as es:
        assert es.backend.appends_direct
        with psycopg.connect(url) as other:
            other.execute("LOCK TABLE snapshots IN EXCLUSIVE MODE")
            with pytest.warns(RuntimeWarning, match="no snapshot of a at version 3: ") as caught:
                appended = es.append(
                    [NewEvent("Ticked", {"i": i}) for i in range(3)], aggregate_id="a"
                )
            other.rollback()
        assert [e.version for e in appended] == [1, 2, 3]
        assert [w.filename for w in caught] == [__file__]  # at the caller's line
        assert list(es.read()) == appended
        assert list(es.backend.snapshots(es._fingerprint)) == []
        assert es.state_at("a").state == {"i": 2}
        assert es.verify().ok
