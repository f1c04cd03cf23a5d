"""The command line on a PostgreSQL store: URLs work wherever paths do, and
no message, report or title shows the password.

Needs ``SSS_TEST_POSTGRES_URL`` (deselected without it; these tests fail when
it is set and the server does not answer)."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

import workbench.cli.app as app
from store import EventStore, NewEvent
from tests.store.pg import ENV, fresh_postgres_url
from tests.workbench.test_cli_app import FakeTui, assert_one_line_error, run

pytestmark = pytest.mark.postgres

SECRET = "s3cret-pw"


@pytest.fixture
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh schema's URL carrying a password (the test server trusts
    local connections, so any password is accepted and none is checked)."""
    if not os.environ.get(ENV):
        pytest.fail(f"{ENV} is not set; tests marked postgres need it", pytrace=False)
    for plain in fresh_postgres_url(request.node.name):
        parts = urllib.parse.urlsplit(plain)
        user = parts.username or "postgres"
        netloc = f"{user}:{SECRET}@{parts.hostname}:{parts.port or 5432}"
        yield parts._replace(netloc=netloc).geturl()


@pytest.fixture
def tui(monkeypatch: pytest.MonkeyPatch) -> FakeTui:
    fake = FakeTui()
    monkeypatch.setattr(app, "_tui_run", lambda: fake)
    return fake


def test_open_takes_a_url(capsys: pytest.CaptureFixture[str], tui: FakeTui, url: str) -> None:
    with EventStore(url) as es:
        es.append([NewEvent("A", {})], aggregate_id="a")
    assert run(capsys, "open", url)[0] == 0
    assert run(capsys, "open", "--write", url)[0] == 0
    assert tui.calls == [(url, {"readonly": True}), (url, {"readonly": False})]


def test_demo_on_a_url_builds_then_reopens_and_never_deletes(
    capsys: pytest.CaptureFixture[str], tui: FakeTui, url: str
) -> None:
    code, out, _ = run(capsys, "demo", url, "--events", "300", "--no-open")
    assert code == 0 and "300" in out
    code, out, _ = run(capsys, "demo", url, "--events", "300")
    assert code == 0 and "exists (300 events): opening it" in out and SECRET not in out
    assert tui.calls == [(url, {"readonly": True})]
    code, _, err = run(capsys, "demo", url, "--force", "--no-open")
    assert_one_line_error(code, err, "does not delete a server store")
    assert SECRET not in err
    with EventStore(url, readonly=True) as es:
        assert es.head() == 300 and es.verify().ok


def test_no_output_shows_the_password(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(json.dumps({"type": "A", "aggregate_id": "a", "data": {"k": 1}}) + "\n")
    seen: list[str] = []
    for args in (
        ["import", url, str(source)],
        ["replay", url, "nope"],
        ["replay", url, "a"],
        ["stats", url],
        ["stats", "--json", url],
        ["verify", url],
        ["events", url],
        ["report", url, "--aggregate", "a", "-o", str(tmp_path / "a.md")],
        ["report", url, "-o", str(tmp_path / "all.html")],
    ):
        code, out, err = run(capsys, *args)
        seen.append(out + err)
        assert code in (0, 1), (args, err)
    text = "\n".join(seen) + (tmp_path / "a.md").read_text() + (tmp_path / "all.html").read_text()
    assert SECRET not in text
    schema = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["options"][0].split("=")[1]
    stats = json.loads(run(capsys, "stats", "--json", url)[1])
    assert schema in stats["path"]  # two stores in one database can be told apart
    assert "imported 1 event into postgresql://" in seen[0]
    assert "no aggregate 'nope' in postgresql://" in seen[1]
