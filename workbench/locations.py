"""What the workbench needs to know about a store's location: a file path or
a ``postgresql://`` URL."""

from __future__ import annotations

import os
import re
import urllib.parse

__all__ = ["is_url", "short_name"]


def is_url(location: str) -> bool:
    """True for a server URL (PostgreSQL), False for an SQLite path."""
    return location.startswith(("postgresql://", "postgres://"))


def short_name(location: str) -> str:
    """A short name for titles and file names: the file's stem for a path;
    the database, and the schema when the URL picks one, for a URL (never
    the password)."""
    if not is_url(location):
        return os.path.splitext(os.path.basename(location))[0] or "events"
    parts = urllib.parse.urlsplit(location)
    database = parts.path.lstrip("/") or parts.hostname or "postgres"
    options = " ".join(urllib.parse.parse_qs(parts.query).get("options", []))
    found = re.search(r"search_path\s*=\s*([^\s,]+)", options)
    name = f"{database}.{found.group(1).strip(chr(34))}" if found else database
    return re.sub(r"[^\w.-]+", "_", urllib.parse.unquote(name)) or "events"
