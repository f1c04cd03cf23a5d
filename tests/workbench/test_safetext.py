"""The one rule for showing untrusted text, against a plain reference."""

from __future__ import annotations

import re
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from tests.workbench.hostile import unsafe_chars
from workbench.safetext import (
    FORMULA_PREFIXES,
    is_safe,
    one_line,
    pictured,
    shown,
    spreadsheet_cell,
)

_ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|t|n|r)")
_SHORT = {"t": "\t", "n": "\n", "r": "\r"}


def unescape(text: str) -> str:
    """The reference decoder of the escapes :func:`shown` writes."""
    return _ESCAPE.sub(lambda m: _SHORT.get(m[1]) or chr(int(m[1][1:], 16)), text)


texts = st.text(
    st.characters(blacklist_characters="\\", blacklist_categories=()),
    max_size=60,
)


@given(texts)
def test_shown_leaves_nothing_unsafe_and_loses_nothing(text: str) -> None:
    out = shown(text)
    assert not unsafe_chars(out, newline_ok=False)
    assert unescape(out) == text
    assert is_safe(out)
    assert (out == text) == is_safe(text) == (not unsafe_chars(text, newline_ok=False))


@given(texts)
def test_multiline_keeps_only_newlines(text: str) -> None:
    out = shown(text, multiline=True)
    assert not unsafe_chars(out, newline_ok=True)
    assert out.count("\n") == text.count("\n")
    assert unescape(out) == text


@given(texts)
def test_one_line_is_one_safe_line(text: str) -> None:
    out = one_line(text)
    assert "\n" not in out and not unsafe_chars(out, newline_ok=False)


@given(texts)
def test_pictured_keeps_the_length_and_every_safe_character(text: str) -> None:
    out = pictured(text)
    assert len(out) == len(text) and not unsafe_chars(out, newline_ok=False)
    for before, after in zip(text, out, strict=True):
        assert (after == before) if is_safe(before) else (is_safe(after) and after != before)
    assert pictured("a\x1b[2J\x00\x7f\u202e") == "a␛[2J␀␡\ufffd"


def test_the_escapes_read_like_python() -> None:
    assert shown("T\x1b]0;PWNED\x07x") == "T\\x1b]0;PWNED\\x07x"
    assert shown("\t\n\r\x00\x7f\x9b\u202e\u2066\u2028\ud800") == (
        "\\t\\n\\r\\x00\\x7f\\x9b\\u202e\\u2066\\u2028\\ud800"
    )
    assert shown("café ünïcode ✓ 日本") == "café ünïcode ✓ 日本"


@given(st.one_of(st.text(max_size=20), st.integers(), st.none(), st.floats(allow_nan=False)))
def test_spreadsheet_cell_follows_owasp(value: object) -> None:
    out = spreadsheet_cell(value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        assert out == "'" + value
    else:
        assert out == value
    assert not (isinstance(out, str) and out.startswith(FORMULA_PREFIXES))


def test_the_rule_imports_no_ui_or_dataframe_library() -> None:
    code = (
        "import sys, workbench.safetext; "
        "print(sorted(m for m in ('textual', 'pandas', 'rich', 'pyarrow') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
