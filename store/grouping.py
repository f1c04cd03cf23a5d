"""Group commit: concurrent appends of one process share one transaction.

Threads appending to one :class:`~store.eventstore.EventStore` queue their
checked, encoded batches here. The first to arrive leads: it takes the
store's lock, takes every batch queued by then, and writes them in one
transaction, each batch in a savepoint of its own, then commits once (one
fsync). Each caller is answered only after that commit: with its recorded
events, or with the error of its own batch (a :class:`ConcurrencyError`,
:class:`DuplicateEventError`, :class:`ValidationError`), which rolled back
only its savepoint. Should the commit itself fail, every caller of the
group gets that error and nothing of the group is stored.

The batches of a group are applied in the order they were queued, exactly
as if they had been appended one after another: positions, versions, the
hash chain, idempotency and snapshots are decided by the same code
(:func:`store.appending.write_one` for a group of one,
:func:`store.appending.write_group` for a larger one), under the same
lock. Nobody waits for company: a leader commits what is queued when it
gets the lock, so one thread alone sees no extra latency; batches
that arrive meanwhile are taken by the next leader, the first of them, which
the finishing leader wakes.

Appends made while the calling thread is inside ``transaction()``, or by
the leader's own thread (a reducer running for a snapshot), never queue:
they join the transaction that is open.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from .errors import StoreError

__all__ = ["Grouper", "own_copy"]

A = TypeVar("A")
R = TypeVar("R")


class _Job(Generic[A, R]):
    __slots__ = ("answer", "arg", "lead", "wake")

    def __init__(self, arg: A) -> None:
        self.arg = arg
        self.lead = False
        self.answer: R | BaseException | None = None
        self.wake: threading.Event | None = None  # only a follower waits


class Grouper(Generic[A, R]):
    """The queue of one store's appends and who leads the next group.

    Args:
        lock: the store's lock, which a leader holds while it writes.

    The grouper only queues and hands over the lead; what a group writes is
    the caller's: :meth:`append` takes ``one`` (write one batch alone) and
    ``many`` (write several in one transaction, each batch's answer its
    events or its own error). ``groups`` and ``grouped`` count the
    transactions of more than one batch and the batches they held.
    ``solo`` False sends a lone batch through ``many`` as well (the contract
    suite runs that way too, so every test covers the group path).
    """

    solo = True

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._mutex = threading.Lock()
        self._queue: list[_Job[A, R]] = []
        self._leading = False
        self._leader: int | None = None
        self.groups = 0
        self.grouped = 0

    def leads(self) -> bool:
        """True on the thread writing a group now (a reducer it runs for a
        snapshot must not queue behind itself)."""
        return self._leader == threading.get_ident()

    def append(
        self,
        arg: A,
        one: Callable[[A], R],
        many: Callable[[Sequence[A]], list[R | BaseException]],
    ) -> R:
        job: _Job[A, R] = _Job(arg)
        with self._mutex:
            self._queue.append(job)
            lead = not self._leading
            if lead:
                self._leading = True
            else:
                job.wake = wake = threading.Event()
        if not lead:
            try:
                wake.wait()
            except BaseException:  # interrupted while waiting: leave, and pass the lead on
                self._leave(job)
                raise
            lead = job.lead
        if lead:
            self._lead(one, many)
        answer = job.answer
        if isinstance(answer, BaseException):
            raise answer
        assert answer is not None
        return answer

    def _leave(self, job: _Job[A, R]) -> None:
        """Take an interrupted caller's batch out of the queue (not written, so
        not stored) and, should it have been handed the lead, hand it on."""
        with self._mutex:
            if job in self._queue:
                self._queue.remove(job)
            if job.lead:
                self._hand_on()

    def _hand_on(self) -> None:
        """Give the lead to the first caller queued, or end it when none is;
        the caller holds ``_mutex``."""
        if self._queue:
            following = self._queue[0]
            following.lead = True
            assert following.wake is not None
            following.wake.set()
        else:
            self._leading = False

    def _lead(
        self, one: Callable[[A], R], many: Callable[[Sequence[A]], list[R | BaseException]]
    ) -> None:
        jobs: list[_Job[A, R]] = []
        try:
            with self._lock:
                with self._mutex:
                    jobs, self._queue = self._queue, []
                self._leader = threading.get_ident()
                try:
                    answers: list[R | BaseException]
                    if len(jobs) == 1 and self.solo:
                        try:
                            answers = [one(jobs[0].arg)]
                        except BaseException as e:
                            answers = [e]
                    else:
                        answers = many([job.arg for job in jobs])
                        self.groups += 1
                        self.grouped += len(jobs)
                finally:
                    self._leader = None
            for job, answer in zip(jobs, answers, strict=True):
                job.answer = answer
        finally:
            for job in jobs:
                if job.answer is None:  # the leader was interrupted before it wrote
                    job.answer = StoreError("the append was interrupted; nothing stored")
            with self._mutex:
                self._hand_on()
            for job in jobs:
                if job.wake is not None:
                    job.wake.set()


def own_copy(error: BaseException) -> BaseException:
    """The error of a failed group for one of its callers: a copy each, so
    that threads raising it do not share one traceback; an interrupt of the
    leader becomes a StoreError for the others."""
    if not isinstance(error, Exception):
        return StoreError(
            f"the group's write was interrupted ({type(error).__name__}); nothing stored"
        )
    try:
        return copy.copy(error)
    except Exception:  # an exception type that cannot be copied
        return error
