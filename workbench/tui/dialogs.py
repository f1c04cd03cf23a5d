"""Modal screens: filters, prompts (seek), export, help."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Select,
    SelectionList,
    Static,
)

from workbench.inputs import InputError, parse_time

from .fmt import SAFE_INPUT, shown
from .query import Filters

__all__ = ["ExportDialog", "FilterDialog", "HelpScreen", "PromptDialog"]

_DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 80; max-width: 95%; height: auto; max-height: 95%;
    border: thick $primary; background: $surface; padding: 1 2;
    overflow-y: auto;  /* a short terminal scrolls the dialog rather than cut it */
}}
{name} .title {{ text-style: bold; margin-bottom: 1; }}
{name} .error {{ color: $error; height: auto; }}
{name} .buttons {{ height: auto; margin-top: 1; align-horizontal: right; }}
{name} .buttons Button {{ margin-left: 2; }}
{name} Label {{ margin-top: 1; }}
{name} .hint {{ color: $text-muted; margin-top: 1; }}
"""


class FilterDialog(ModalScreen[Filters | None]):
    """Edit every timeline filter at once. Enter applies, Escape cancels."""

    DEFAULT_CSS = (
        _DIALOG_CSS.format(name="FilterDialog")
        + """
    FilterDialog SelectionList { height: auto; max-height: 12; }
    FilterDialog #f-fields {
        grid-size: 2; grid-columns: 16 1fr; grid-rows: 1; grid-gutter: 1 1;
        height: auto; margin-top: 1;
    }
    FilterDialog .label { color: $text-muted; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "apply", "Apply"),
    ]

    def __init__(
        self,
        filters: Filters,
        event_types: dict[str, int],
        aggregate_types: Iterable[str | None],
    ) -> None:
        super().__init__()
        self.filters = filters
        self.event_types = event_types
        self.aggregate_types = [name for name in aggregate_types if name]

    def compose(self) -> ComposeResult:
        f = self.filters
        with Vertical():
            yield Static("Filter the timeline", classes="title")
            yield Static(
                "Event types (space ticks; none ticked = all)"
                if self.event_types
                else "Event types: none recorded yet",
                classes="label",
            )
            yield SelectionList[str](
                *(
                    (f"{shown(name)}  ({count:,})", name, name in f.types)
                    for name, count in sorted(self.event_types.items())
                ),
                id="f-types",
            )
            with Grid(id="f-fields"):
                yield Static("Aggregate type", classes="label")
                yield Select[str](
                    [(shown(name), name) for name in self.aggregate_types],
                    value=f.aggregate_type
                    if f.aggregate_type in self.aggregate_types
                    else Select.NULL,
                    prompt="any",
                    compact=True,
                    id="f-aggregate-type",
                )
                for label, value, placeholder, widget_id in (
                    ("Aggregate id", f.aggregate_id, "", "f-aggregate-id"),
                    ("Since (UTC)", f.since_text, "-2h, -3d, 2024-05-01T12:00Z", "f-since"),
                    ("Until (UTC)", f.until_text, "-30m, now", "f-until"),
                    ("Text", f.text, "in ids, types, data or metadata", "f-text"),
                    ("Actor", f.actor, "", "f-actor"),
                    ("Correlation id", f.correlation_id, "", "f-correlation"),
                ):
                    yield Static(label, classes="label")
                    yield Input(
                        value or "",
                        placeholder=placeholder,
                        compact=True,
                        highlighter=SAFE_INPUT,
                        id=widget_id,
                    )
            yield Static("", classes="error", id="f-error")
            yield Static(
                "space ticks a type · Enter in a field or ctrl+s applies · Esc cancels",
                classes="hint",
            )
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Apply", variant="primary", id="apply", compact=True)

    def _aggregate_type(self) -> str | None:
        value = self.query_one("#f-aggregate-type", Select).value
        return value if isinstance(value, str) else None

    def _value(self, widget_id: str) -> str | None:
        return self.query_one(f"#{widget_id}", Input).value.strip() or None

    def build(self, now: datetime | None = None) -> Filters:
        """The filters as typed; raises InputError for an unreadable time."""
        since_text, until_text = self._value("f-since"), self._value("f-until")
        since = parse_time(since_text, "since", now=now) if since_text else None
        until = parse_time(until_text, "until", now=now) if until_text else None
        if since is not None and until is not None and since > until:
            raise InputError("'since' is after 'until'")
        types = frozenset(self.query_one("#f-types", SelectionList).selected)
        return replace(
            Filters(),
            aggregate_type=self._aggregate_type(),
            aggregate_id=self._value("f-aggregate-id"),
            types=types,
            since=since,
            until=until,
            since_text=since_text,
            until_text=until_text,
            text=self._value("f-text"),
            actor=self._value("f-actor"),
            correlation_id=self._value("f-correlation"),
        )

    def action_apply(self) -> None:
        try:
            filters = self.build()
        except InputError as error:
            self.query_one("#f-error", Static).update(str(error))
            return
        self.dismiss(filters)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#apply")
    def _apply_pressed(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()


class PromptDialog(ModalScreen[str | None]):
    """One line of input. ``check`` returns an error message or None."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="PromptDialog")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        hint: str,
        *,
        placeholder: str = "",
        value: str = "",
        check: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.hint = hint
        self.placeholder = placeholder
        self.value = value
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="title")
            yield Static(self.hint)
            yield Input(
                self.value, placeholder=self.placeholder, highlighter=SAFE_INPUT, id="prompt-input"
            )
            yield Static("", classes="error", id="prompt-error")

    @on(Input.Submitted)
    def _submitted(self, message: Input.Submitted) -> None:
        value = message.value.strip()
        error = self.check(value) if self.check else None
        if error:
            self.query_one("#prompt-error", Static).update(error)
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportDialog(ModalScreen[tuple[str, str] | None]):
    """Choose a format and a file for exporting what the timeline shows."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ExportDialog")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default_stem: str, formats: dict[str, str], summary: str) -> None:
        super().__init__()
        self.default_stem = default_stem
        self.formats = formats  # format key -> label
        self.summary = summary

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Export", classes="title")
            yield Static(shown(self.summary, multiline=True), markup=False)
            with RadioSet(id="export-format"):
                for index, (key, label) in enumerate(self.formats.items()):
                    yield RadioButton(shown(label), value=index == 0, name=key, id=f"fmt-{key}")
            yield Label("File (Enter exports)")
            first = next(iter(self.formats))
            yield Input(self._path_for(first), highlighter=SAFE_INPUT, id="export-path")
            yield Static("", classes="error", id="export-error")
            # Export comes first: Tab from the file name lands on it, so Tab then
            # Enter exports rather than cancelling.
            with Horizontal(classes="buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    def _path_for(self, fmt: str) -> str:
        suffix = {"jsonl": ".jsonl", "csv": ".csv", "report": ".html"}.get(fmt, f".{fmt}")
        return f"{self.default_stem}{suffix}"

    @property
    def chosen_format(self) -> str:
        pressed = self.query_one(RadioSet).pressed_button
        return pressed.name if pressed is not None and pressed.name else next(iter(self.formats))

    @on(RadioSet.Changed)
    def _format_changed(self) -> None:
        path_input = self.query_one("#export-path", Input)
        current = Path(path_input.value)
        if current.stem.startswith(Path(self.default_stem).stem):
            path_input.value = self._path_for(self.chosen_format)

    def _export(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        if not path:
            self.query_one("#export-error", Static).update("give a file name")
            return
        self.dismiss((self.chosen_format, path))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._export()

    @on(Button.Pressed, "#export")
    def _export_pressed(self) -> None:
        self._export()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key binding, by where it applies (F1)."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 95%; height: 90%;
        border: thick $primary; background: $surface; padding: 0 2;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[BindingType]]], intro: str) -> None:
        super().__init__()
        self.sections = sections
        self.intro = intro

    def rows(self) -> list[tuple[str, str, str]]:
        """(section, keys, description) for every binding, as shown."""
        rows: list[tuple[str, str, str]] = []
        for section, bindings in self.sections:
            for binding in bindings:
                if not isinstance(binding, Binding):
                    continue
                keys = " / ".join(
                    self.app.get_key_display(replace(binding, key=key.strip()))
                    for key in binding.key.split(",")
                )
                rows.append(
                    (section, keys, binding.tooltip or binding.description or binding.action)
                )
        return rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, show_header=True, header_style="bold")
        table.add_column("Where", style="dim", no_wrap=True)
        table.add_column("Key", style="bold", no_wrap=True)
        table.add_column("Does")
        last = None
        for section, keys, description in self.rows():
            table.add_row(section if section != last else "", keys, description)
            last = section
        with VerticalScroll():
            yield Static(Text(self.intro), id="help-intro")
            yield Static(table, id="help-table")

    def action_close(self) -> None:
        self.dismiss(None)
