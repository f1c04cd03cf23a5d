"""How text from a store is shown to a person, and how it goes into a spreadsheet.

Any service that may append can put any text in an event: its type, aggregate
id, payload, metadata, actor. Two rules keep that text from acting on the
reader instead of being read; every human-readable output (CLI tables and
messages, the TUI, the Markdown, HTML and xlsx reports) goes through them.

**Shown, not obeyed.** :func:`shown` writes these characters as visible escapes
(:func:`pictured`, for a text field being edited, as one visible character each):

* every control character (Unicode category Cc: C0 ``U+0000``–``U+001F``,
  DEL ``U+007F`` and C1 ``U+0080``–``U+009F``), so ESC cannot start a terminal
  sequence (``\\x1b]0;title\\x07`` retitling a window, ``\\x1b[2J`` clearing
  it) and CR or backspace cannot overwrite what was already printed;
* the bidirectional embeddings, overrides and isolates ``U+202A``–``U+202E``
  and ``U+2066``–``U+2069`` and the marks ``U+200E``, ``U+200F``, ``U+061C``
  ("Trojan Source": text that reads differently from what it holds);
* the line and paragraph separators ``U+2028`` and ``U+2029``, which some
  renderers break lines at, and lone surrogates, which cannot be encoded.

A tab is escaped too (``\\t``): it moves the cursor by an amount the reader
cannot see and breaks table columns. A newline is escaped (``\\n``) except with
``multiline=True``, for a text that is legitimately shown on several lines.
Escapes look like Python's: ``\\t``, ``\\n``, ``\\r``, ``\\x1b``, ``\\u202e``. A
backslash already in the text is left alone, so a display is not a lossless
encoding: the exact text is in the machine outputs (JSON Lines, ``--json``,
Parquet, the store), which are data and never pass through this module.

**Data, not formulas.** :func:`spreadsheet_cell` neutralises a text cell that a
spreadsheet would evaluate, as OWASP recommends against CSV injection: a cell
beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
leading ``'``, which spreadsheets take as "this is text" (and hide).

    >>> shown("T\\x1b]0;PWNED\\x07x")
    'T\\\\x1b]0;PWNED\\\\x07x'
    >>> spreadsheet_cell('=HYPERLINK("http://x","y")')
    '\\'=HYPERLINK("http://x","y")'

This module imports nothing beyond the standard library, so the CLI, the TUI
and the reports all share it.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "FORMULA_PREFIXES",
    "is_safe",
    "one_line",
    "pictured",
    "shown",
    "spreadsheet_cell",
]

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)
_UNSAFE_BUT_NEWLINE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\u2028\u2029\ud800-\udfff]"
)
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet cell may begin with to be evaluated (OWASP CSV injection)."""


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: Any, *, multiline: bool = False) -> str:
    """``text`` (anything, made a ``str``) with every unsafe character escaped.

    With ``multiline`` a newline stays a newline; every other control character,
    CR included, is still escaped.
    """
    value = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE_BUT_NEWLINE if multiline else _UNSAFE
    return pattern.sub(_escape, value)


def one_line(text: Any) -> str:
    """A message on one line: unsafe characters escaped, runs of spaces and
    newlines written by the message itself collapsed to one space.

    For error messages, which are composed by the program (and may be wrapped)
    but quote names from the store.
    """
    return " ".join(shown(text, multiline=True).split())


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control pictures: ␛ for ESC, ␀ for NUL
    return "\u2421" if code == 0x7F else "\ufffd"


def pictured(text: str) -> str:
    """``text`` with each unsafe character replaced by one visible character (a
    control picture such as ␛ for C0 and DEL, � for the others), so it keeps
    its length: for a field being edited, whose cursor must stay on the
    character it is on. The field's value itself stays exact."""
    return _UNSAFE.sub(_picture, text)


def is_safe(text: str) -> bool:
    """True if :func:`shown` would leave ``text`` unchanged."""
    return _UNSAFE.search(text) is None


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a spreadsheet should receive it: text that would be taken for
    a formula gets a leading ``'``; anything that is not text is returned as is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
