"""What the workbench needs to know about a store's location: a file path or
a ``postgresql://`` URL."""

from __future__ import annotations

import os
import re
import urllib.parse

__all__ = ["is_url", "label", "short_name", "stored_events"]


def is_url(location: str) -> bool:
    """True for a server URL (PostgreSQL), False for an SQLite path."""
    return location.startswith(("postgresql://", "postgres://"))


def label(location: str) -> str:
    """The location as messages show it: a path as it is, a URL as the store
    itself shows it (:attr:`store.EventStore.label`: no password, the schema
    kept)."""
    if not is_url(location):
        return location
    from store.postgres import redact

    return redact(location)


def short_name(location: str) -> str:
    """A short name for titles and file names: the file's stem for a path;
    the database, and the schema when the URL picks one, for a URL (never
    the password)."""
    if not is_url(location):
        return os.path.splitext(os.path.basename(location))[0] or "events"
    from store.postgres import schema_of

    parts = urllib.parse.urlsplit(location)
    database = parts.path.lstrip("/") or parts.hostname or "postgres"
    schema = schema_of(location)
    name = f"{database}.{schema}" if schema else database
    return re.sub(r"[^\w.-]+", "_", urllib.parse.unquote(name)) or "events"


def stored_events(location: str) -> int:
    """How many events the store at ``location`` holds; 0 when there is no
    store there yet (no file, an empty file, a schema without tables). Opens
    it read-only: creates nothing. A file that is not a store raises
    :class:`store.StoreError`."""
    from store import EventStore, NotFoundError

    if not is_url(location) and (
        not os.path.exists(location) or (os.path.isfile(location) and not os.path.getsize(location))
    ):
        return 0
    try:
        with EventStore(location, readonly=True) as es:
            return es.head()
    except NotFoundError:
        return 0
