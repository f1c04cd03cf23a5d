"""What a person touches: the ``sss`` command line, the TUI, notebook helpers
and audit reports, all standing on the :mod:`store` library."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["frames"]


def __getattr__(name: str) -> Any:
    # Importing the workbench must not pull in pandas until frames is used.
    if name == "frames":
        return importlib.import_module(".frames", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
