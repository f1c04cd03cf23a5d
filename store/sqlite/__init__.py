"""The SQLite backend: :mod:`.backend` opens connections and sets PRAGMAs,
:mod:`.schema` owns the schema, :mod:`.errors` translates ``sqlite3`` errors
and :mod:`.rows` turns rows into records.

The file is meant to be read by other tools too (sqlite3, sqlite-utils,
Datasette): events live in the table ``events`` with the schema's field names,
times as ISO-8601 UTC text with microseconds (fixed width, so text order is
time order).
"""

from .backend import SQLiteBackend

__all__ = ["SQLiteBackend"]
