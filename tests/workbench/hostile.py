"""A store whose every text field is hostile, and the checks the outputs must pass.

Each event's type, aggregate id, aggregate type, payload keys and values,
metadata (actor, correlation and causation ids, free fields) holds terminal
escapes (OSC retitling, CSI clearing, SGR colour, 8-bit C1 sequences), the bidi
overrides, a NUL, CR, backspace, tab, DEL, newlines, a spreadsheet formula
prefix, and one event has a very long line.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from store import EventStore, NewEvent, RecordedEvent

OSC_TITLE = "\x1b]0;PWNED\x07"
CLEAR = "\x1b[2J"
RED = "\x1b[31mred\x1b[0m"
C1 = "\x9b2J\x9d0;C1\x9c"  # 8-bit CSI, OSC and ST
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
OTHER = "\x00\r\x08\t\x7f\x0b\x0c\n"
JUNK = OSC_TITLE + CLEAR + RED + C1 + BIDI + OTHER
FORMULAS = ('=HYPERLINK("http://x","y")', "-2+3", "+1+1", "@SUM(A1)", "\tx", "\rx")
LONG = "L" * 40_000 + JUNK
AGGREGATE = "a" + CLEAR + "b" + BIDI
AGGREGATE_TYPE = "=Order" + OSC_TITLE

BIDI_CHARS = set(BIDI) | {"\u200e", "\u200f", "\u061c"}


def hostile(prefix: str) -> str:
    return prefix + JUNK


def build_hostile_store(path: Path) -> list[RecordedEvent]:
    """Six events of one hostile aggregate (one per formula prefix) and one
    without an aggregate; returns them as stored."""
    events = []
    for n, prefix in enumerate(FORMULAS):
        data: dict[str, Any] = {
            hostile(prefix): hostile(prefix),
            "note": RED,
            "nested": {"k" + JUNK: [hostile(prefix), n]},
            "n": n,
        }
        if n == 0:
            data["long"] = LONG
        metadata = {
            "actor": hostile(prefix),
            "correlation_id": hostile("@"),
            "causation_id": hostile("-"),
            "free" + JUNK: hostile("+"),
        }
        events.append(NewEvent(hostile(prefix) + f"#{n}", data, metadata=metadata))
    with EventStore(str(path)) as es:
        recorded = es.append(events, aggregate_id=AGGREGATE, aggregate_type=AGGREGATE_TYPE)
        recorded += es.append(
            [NewEvent("T" + OSC_TITLE + "x", {"note": RED}, metadata={"actor": "-2+3"})]
        )
    return recorded


def unsafe_chars(text: str, *, newline_ok: bool = True) -> set[str]:
    """The characters of ``text`` a person's screen must never receive raw, by a
    rule written independently of the one under test: every Cc character (C0,
    DEL, C1) but newline, the bidi controls and marks, the line and paragraph
    separators."""
    found = set()
    for char in text:
        if char == "\n" and newline_ok:
            continue
        if (
            unicodedata.category(char) in ("Cc", "Cs")
            or char in BIDI_CHARS
            or char in "\u2028\u2029"
        ):
            found.add(char)
    return found


def assert_safe(text: str, *, newline_ok: bool = True) -> None:
    bad = unsafe_chars(text, newline_ok=newline_ok)
    assert not bad, f"raw {sorted(map(hex, map(ord, bad)))} in output"


def assert_safe_bytes(data: bytes) -> None:
    """No byte below 0x20 but newline, no DEL, and no C1 or bidi character once decoded."""
    low = {b for b in data if (b < 0x20 and b != 0x0A) or b == 0x7F}
    assert not low, f"raw bytes {sorted(map(hex, low))} in output"
    assert_safe(data.decode("utf-8"))
