"""Verification of the log: the hash chain, gapless positions, every
aggregate's version sequence, time order, and the aggregates table."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable

from .backend import ChainRow
from .codec import GENESIS_HASH, data_digest, event_body, format_time, link, loads_stored
from .counting import Totals, batch_counts, merge
from .merkle import Frontier, leaf_hash
from .models import ERASED, AggregateInfo, VerifyReport

__all__ = ["CHUNK_LEVEL", "ChainVerifier"]

CHUNK_LEVEL = 8
"""The level of the smallest stored subtrees (:mod:`store.tree`)."""


class _Broken(Exception):
    def __init__(self, position: int, reason: str) -> None:
        self.position = position
        self.reason = reason


def _unreadable(row: ChainRow, error: Exception) -> str:
    for name, value in zip(_COLUMNS, row, strict=False):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"the stored {name} is not valid UTF-8 text (the file was altered)"
    return f"unreadable row: {error}"


_COLUMNS = (
    "position", "event_id", "aggregate_id", "aggregate_type", "version", "type",
    "schema_version", "data", "metadata", "occurred_at", "recorded_at", "data_hash", "hash",
    "erased_by",
)  # fmt: skip
RECEIPT = "sss.Erased"
"""The type of an erasure's receipt (see store.erasing)."""


_TEXT_OR_NONE = (str, type(None))
_INT_OR_NONE = (int, type(None))
_KINDS: tuple[type | tuple[type, ...], ...] = (
    int, str, _TEXT_OR_NONE, _TEXT_OR_NONE, _INT_OR_NONE, str,
    int, str, str, str, str, str, str, _INT_OR_NONE,
)  # fmt: skip
"""What each column of a ChainRow must hold; a damaged page may give a blob
or a number where the log wrote text."""


class ChainVerifier:
    """Checks stored rows fed in position order; stops at the first bad one.

    Example:
        >>> verifier = ChainVerifier()
        >>> verifier.feed([])
        True
        >>> verifier.finish([]).ok
        True
    """

    def __init__(
        self,
        after: int = 0,
        head_hash: str = GENESIS_HASH,
        before: Callable[[str], tuple[int, str | None]] | None = None,
        merkle: bool = False,
        lasts: bytearray | None = None,
    ) -> None:
        """A walk from position 1; or, given ``after`` and the ``head_hash``
        trusted there, a walk of the positions after it only. ``before(id)``
        then gives an aggregate's version and type as of ``after`` (0 when it
        had no events yet), for the first of its events the walk meets.
        ``merkle`` (a walk from position 1 only) also builds the Merkle tree
        of the rows walked.
        Given ``lasts`` (the bit set of every aggregate's last position, from
        :func:`store.aggregate_pass.aggregate_pass`), the walk keeps nothing
        per aggregate: it adds up the sums that pass is compared with
        (:attr:`typed`, :attr:`created`, :attr:`updated`) and the counts
        (:attr:`counts`), and :meth:`finish` is not used."""
        self.after = after
        self.before = before
        self.prev_hash = head_hash
        self.next_position = after + 1
        self.checked = 0
        self.last_recorded_at = ""
        self.versions: dict[str, int] = {}
        self.last_positions: dict[str, int] = {}
        self.types: dict[str, str | None] = {}
        self.first: dict[str, tuple[int, str]] = {}  # first position and recorded_at
        self.last_recorded: dict[str, str] = {}
        self.failure: VerifyReport | None = None
        # The Merkle tree of the rows walked (a walk from position 1 only),
        # with the chunk hashes that locate where two histories part, and
        # its root and chain hash at position ``mark`` (a checkpoint's size).
        self.tree = Frontier(CHUNK_LEVEL) if merkle and after == 0 else None
        self.mark = -1
        self.mark_root: bytes | None = None
        self.mark_hash: str | None = None
        self.erased = 0
        # Receipt position -> the positions erased by it, met before it.
        self.receipts: dict[int, set[int]] = {}
        self.lasts = lasts
        self.aggregate_events = self.typed = self.created = self.updated = 0
        self.counts: Totals | None = None if lasts is None else {}

    def report(self, ok: bool, position: int | None, reason: str | None) -> VerifyReport:
        """The report of the walk so far: ``ok``, or the failure at ``position``."""
        root = None
        if self.tree is not None:
            root = base64.b64encode(self.tree.root()).decode()
        return VerifyReport(
            ok, self.checked, position, reason, self.next_position - 1, self.prev_hash, root,
            erased=self.erased,
        )  # fmt: skip

    def fail(self, position: int, reason: str) -> None:
        """Record a failure found outside the rows (one that cannot be read)."""
        if self.failure is None:
            self.failure = self.report(False, position, reason)

    def feed(self, rows: Iterable[ChainRow]) -> bool:
        """Check a page of rows; False once something is wrong (see :attr:`failure`)."""
        if self.failure is not None:
            return False
        if self.counts is not None and not isinstance(rows, list):
            rows = list(rows)
        for row in rows:
            try:
                self._check(row)
            except _Broken as e:
                self.failure = self.report(False, e.position, e.reason)
                return False
            except Exception as e:  # a tampered row may hold anything at all
                self.failure = self.report(False, self.next_position, _unreadable(row, e))
                return False
        if self.counts is not None:
            merge(self.counts, batch_counts(rows))
        return True

    def _check(self, row: ChainRow) -> None:
        (
            position,
            event_id,
            aggregate_id,
            aggregate_type,
            version,
            type_,
            schema_version,
            data_text,
            metadata_text,
            occurred_at,
            recorded_at,
            data_hash,
            stored_hash,
            erased_by,
        ) = row
        expected = self.next_position
        if not (
            type(data_text) is str
            and type(metadata_text) is str
            and type(data_hash) is str
            and type(stored_hash) is str
            and type(occurred_at) is str
            and type(recorded_at) is str
            and type(event_id) is str
            and type(type_) is str
            and type(schema_version) is int
            and (aggregate_id is None or type(aggregate_id) is str)
            and (aggregate_type is None or type(aggregate_type) is str)
            and (version is None or type(version) is int)
            and (erased_by is None or type(erased_by) is int)
        ):
            for name, value, kind in zip(_COLUMNS, row, _KINDS, strict=True):
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise _Broken(
                        expected,
                        f"the stored {name} is a {type(value).__name__}, not what the log wrote",
                    )
        if position != expected:
            raise _Broken(expected, f"position {expected} is missing (next stored is {position})")
        try:
            # The reader's own strict parser: what verify accepts, read() can decode.
            data, metadata = loads_stored(data_text), loads_stored(metadata_text)
        except (TypeError, ValueError):
            raise _Broken(position, "stored data or metadata is not valid JSON") from None
        if erased_by is not None:
            self._check_erased(position, data, erased_by)
        elif data_digest(data) != data_hash:
            raise _Broken(position, "the payload does not match its digest (data was altered)")
        if type_ == RECEIPT:
            self._check_receipt(position, data)
        elif position in self.receipts:
            raise _Broken(
                min(self.receipts[position]),
                f"the payload is erased by position {position}, which is not an sss.Erased receipt",
            )
        body = event_body(
            position=position,
            event_id=event_id,
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            version=version,
            type=type_,
            schema_version=schema_version,
            data_hash=data_hash,
            metadata=metadata,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
        )
        computed = link(self.prev_hash, body)
        if computed != stored_hash:
            raise _Broken(position, "hash mismatch: the event or one before it was altered")
        if recorded_at < self.last_recorded_at:
            raise _Broken(position, "recorded_at goes back in time")
        lasts = self.lasts
        if aggregate_id is not None and lasts is not None:
            # The sums aggregate_pass is compared with; nothing kept per aggregate.
            self.aggregate_events += 1
            self.typed += hash((aggregate_id, version, position, aggregate_type))
            if version == 1:
                self.created += hash((aggregate_id, position, recorded_at))
            if lasts[position >> 3] >> (position & 7) & 1:
                self.updated += hash((aggregate_id, position, recorded_at))
        elif aggregate_id is not None:
            if self.before is not None and aggregate_id not in self.versions:
                earlier, earlier_type = self.before(aggregate_id)
                if earlier:  # created before the trusted point: go on from there
                    self.versions[aggregate_id] = earlier
                    self.types[aggregate_id] = earlier_type
                    self.first[aggregate_id] = (0, "")
            expected_version = self.versions.get(aggregate_id, 0) + 1
            if version != expected_version:
                raise _Broken(
                    position,
                    f"{aggregate_id} jumps to version {version}, expected {expected_version}",
                )
            if self.types.get(aggregate_id, aggregate_type) != aggregate_type:
                raise _Broken(position, f"{aggregate_id} changes type to {aggregate_type}")
            if version == 1:
                self.first[aggregate_id] = (position, recorded_at)
            self.versions[aggregate_id] = version
            self.types[aggregate_id] = aggregate_type
            self.last_positions[aggregate_id] = position
            self.last_recorded[aggregate_id] = recorded_at
        self.last_recorded_at = recorded_at
        self.prev_hash = stored_hash
        self.next_position += 1
        self.checked += 1
        tree = self.tree
        if tree is not None:
            tree.add(leaf_hash(body))
            if position == self.mark:
                self.mark_root, self.mark_hash = tree.root(), stored_hash

    def _check_erased(self, position: int, data: object, erased_by: int) -> None:
        """An erased payload keeps only its field names, each holding the
        marker, and names a later receipt (which may lie beyond a copy that
        ends before it)."""
        if not isinstance(data, dict) or any(value != ERASED for value in data.values()):
            raise _Broken(position, "an erased payload holds more than the erased marker")
        if erased_by <= position:
            raise _Broken(
                position, f"the payload is erased by position {erased_by}, not a later one"
            )
        self.receipts.setdefault(erased_by, set()).add(position)
        self.erased += 1

    def _check_receipt(self, position: int, data: object) -> None:
        """A receipt that erased payloads lists exactly the positions walked
        so far that name it. One that no erased payload names is an event
        like any other (an append may use the type)."""
        named = self.receipts.pop(position, None)
        if named is None:
            return
        listed = data.get("positions") if isinstance(data, dict) else None
        if not isinstance(listed, list) or not all(
            type(p) is int and 0 < p < position for p in listed
        ):
            raise _Broken(position, "an sss.Erased receipt does not list earlier positions")
        walked = {p for p in listed if p > self.after}
        if named != walked:
            missing = sorted(walked - named) or sorted(named - walked)
            raise _Broken(
                missing[0],
                f"the receipt at position {position} and the erased payloads disagree "
                f"about position {missing[0]}",
            )

    def finish(self, aggregates: Iterable[AggregateInfo]) -> VerifyReport:
        """Compare the aggregates table with the log walked so far; the final report.

        Rows for aggregates that moved on after the walk's last position (a
        writer appending meanwhile) are checked only as far as the walk saw.
        """
        if self.failure is not None:
            return self.failure
        head = self.next_position - 1
        seen = 0
        for info in aggregates:
            if info.first_position > head:
                continue  # created after the walk
            if info.last_position <= self.after:
                continue  # unchanged since the trusted point: not walked
            seen += 1
            problem = self._aggregate_problem(info, head)
            if problem is not None:
                position = self.last_positions.get(info.aggregate_id, info.last_position)
                return self.report(False, position, problem)
        if seen != len(self.versions):
            return self.report(
                False, None, "the aggregates table misses aggregates found in the log"
            )
        return self.report(True, None, None)

    def _aggregate_problem(self, info: AggregateInfo, head: int) -> str | None:
        name = info.aggregate_id
        if name not in self.versions:
            return f"the aggregates table lists {name}, which has no events"
        first_position, first_recorded = self.first[name]
        says = f"the aggregates table says {name}"
        if info.aggregate_type != self.types[name]:
            return f"{says} is a {info.aggregate_type}, the log says {self.types[name]}"
        if first_position == 0:  # created before the trusted point
            if info.first_position > self.after:
                return (
                    f"{says} was created at position {info.first_position}, "
                    f"the log says before {self.after + 1}"
                )
        elif (
            info.first_position != first_position or format_time(info.created_at) != first_recorded
        ):
            return (
                f"{says} was created at position {info.first_position}, "
                f"the log says {first_position}"
            )
        moved_on = info.last_position > head
        if info.version < self.versions[name] or (
            not moved_on and info.version != self.versions[name]
        ):
            return f"{says} is at version {info.version}, the log says {self.versions[name]}"
        if not moved_on and (
            info.last_position != self.last_positions[name]
            or format_time(info.updated_at) != self.last_recorded[name]
        ):
            return (
                f"{says} was last changed at position {info.last_position}, "
                f"the log says {self.last_positions[name]}"
            )
        return None
