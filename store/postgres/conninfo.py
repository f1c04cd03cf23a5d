"""PostgreSQL connection strings: the session settings the store relies on,
which schema a URL picks, and a URL as messages show it (no password)."""

from __future__ import annotations

import math
import re
import urllib.parse
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..errors import ValidationError

__all__ = ["connection_info", "redact", "schema_of", "search_path_schema"]


def redact(url: str) -> str:
    """The URL without its password, for messages; it keeps the schema a
    ``search_path`` option picks, so two stores in one database differ."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return "the PostgreSQL store"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    user = f"{params['user']}@" if params.get("user") else ""
    shown = f"postgresql://{user}{host}:{port}/{params.get('dbname') or ''}"
    schema = search_path_schema(str(params.get("options") or ""))
    if schema:
        shown += "?options=" + urllib.parse.quote(f"-csearch_path={schema}", safe="-")
    return shown


def search_path_schema(options: str) -> str | None:
    """The first schema of a ``-c search_path=...`` in libpq ``options``."""
    found = re.search(r"search_path\s*=\s*([^\s]+)", options)
    if not found:
        return None
    first = found.group(1).split(",")[0].strip().strip('"')
    return first or None


def connection_info(location: str, readonly: bool, timeout: float) -> str:
    """The libpq connection string: the URL plus the session settings the store relies on."""
    try:
        params: dict[str, Any] = conninfo_to_dict(location)
    except psycopg.ProgrammingError as e:
        raise ValidationError(f"not a valid PostgreSQL URL: {redact(location)} ({e})") from e
    options = [params.get("options") or ""]
    # Times come back in UTC, so they format to the text the chain hashed.
    options.append("-c TimeZone=UTC")
    # Waiting for another writer's head lock surfaces as LockedError.
    options.append(f"-c lock_timeout={max(1, math.ceil(timeout * 1000))}")
    if readonly:
        # Audit mode: PostgreSQL itself refuses every write.
        options.append("-c default_transaction_read_only=on")
    params["options"] = " ".join(o for o in options if o)
    params.setdefault("application_name", "sss")
    params.setdefault("connect_timeout", str(max(2, math.ceil(timeout))))
    return make_conninfo("", **params)


def schema_of(url: str) -> str | None:
    """The schema a ``postgresql://`` URL picks with a ``search_path`` option,
    None when it picks none (the server's default, ``public``)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return None
    return search_path_schema(str(params.get("options") or ""))
