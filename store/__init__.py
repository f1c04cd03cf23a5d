"""The System State Store: an append-only, totally ordered SQLite event log
from which any aggregate's state can be rebuilt as of any moment.

    >>> from store import EventStore, NewEvent, NO_STREAM
    >>> with EventStore(":memory:") as es:
    ...     _ = es.append([NewEvent("OrderPlaced", {"total": 30})],
    ...                   aggregate_id="order-1", aggregate_type="Order",
    ...                   expected_version=NO_STREAM)
    ...     es.state_at("order-1").state
    {'total': 30}
"""

from .codec import MAX_NESTING
from .copying import CopyReport, HistoryMismatchError, copy_store
from .errors import (
    ConcurrencyError,
    CorruptStoreError,
    DuplicateEventError,
    HandlerError,
    LockedError,
    NotFoundError,
    ReadOnlyError,
    ReducerError,
    StoreError,
    SubscriptionError,
    ValidationError,
)
from .eventstore import EventStore
from .models import (
    ANY,
    ERASED,
    EVENT_FIELDS,
    NO_STREAM,
    AggregateInfo,
    AggregateState,
    Change,
    ExpectedVersion,
    NewEvent,
    ReadStatement,
    RecordedEvent,
    Step,
    StoreCounts,
    VerifyReport,
)
from .notes import Checkpoint, SigningKey, VerifierKey, generate_key
from .proofs import ProofReport, verify_proof
from .reducers import (
    RESERVED_PREFIX,
    REVERTED,
    VOIDED,
    Reducers,
    Upcasters,
    diff,
    load_object,
    merge_patch,
)
from .subscriptions import ParkedEvent, SubscriptionInfo, group_member

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "ERASED",
    "EVENT_FIELDS",
    "MAX_NESTING",
    "NO_STREAM",
    "RESERVED_PREFIX",
    "REVERTED",
    "VOIDED",
    "AggregateInfo",
    "AggregateState",
    "Change",
    "Checkpoint",
    "ConcurrencyError",
    "CopyReport",
    "CorruptStoreError",
    "DuplicateEventError",
    "EventStore",
    "ExpectedVersion",
    "HandlerError",
    "HistoryMismatchError",
    "LockedError",
    "NewEvent",
    "NotFoundError",
    "ParkedEvent",
    "ProofReport",
    "ReadOnlyError",
    "ReadStatement",
    "RecordedEvent",
    "ReducerError",
    "Reducers",
    "SigningKey",
    "Step",
    "StoreCounts",
    "StoreError",
    "SubscriptionError",
    "SubscriptionInfo",
    "Upcasters",
    "ValidationError",
    "VerifierKey",
    "VerifyReport",
    "copy_store",
    "diff",
    "generate_key",
    "group_member",
    "load_object",
    "merge_patch",
    "verify_proof",
]
