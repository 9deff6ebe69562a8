"""Small modal screens: confirm quit, marker note, constraints editor.

Each modal returns its answer through ``dismiss`` (attributes down, results up);
none of them touches the session directly except through the callback the app
passes, so they stay testable on their own.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from core.config import ConfigError


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no question; Enter or y confirms, Escape or n cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class NoteScreen(ModalScreen[str | None]):
    """One-line note for a marker; Enter saves, Escape cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Marker note (Enter to save, Esc to cancel)")
            yield Input(placeholder="e.g. 2nd gear pull, hot soak", id="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


def constraint_fields(current: Any) -> dict[str, Any]:
    """Field name -> current value of a constraints object (dataclass or mapping)."""
    if dataclasses.is_dataclass(current) and not isinstance(current, type):
        return {f.name: getattr(current, f.name) for f in dataclasses.fields(current)}
    if isinstance(current, Mapping):
        return dict(current)
    raise TypeError(f"cannot edit constraints of type {type(current).__name__}")


def parse_field(text: str) -> Any:
    """An input box's text as the value a config file would hold: int, float, str or None."""
    text = text.strip()
    if not text or text.lower() == "none":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if hasattr(value, "value") and not isinstance(value, int | float | str):
        return str(value.value)
    return str(value)


class ConstraintsScreen(ModalScreen[Any]):
    """Edit the vehicle's constraints; Save validates and stores, a bad value shows why.

    ``validate`` turns the edited mapping into a constraints object or raises
    ``ConfigError`` naming the key (``Constraints.from_mapping``); ``save`` stores it.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(
        self,
        vehicle: str,
        current: Any,
        validate: Callable[[dict[str, Any]], Any],
        save: Callable[[Any], None],
    ) -> None:
        super().__init__()
        self.vehicle = vehicle
        self.fields = constraint_fields(current)
        self._validate = validate
        self._save = save

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Constraints for {self.vehicle or 'this vehicle'}", id="title")
            with Grid(id="fields"):
                for name, value in self.fields.items():
                    yield Label(name)
                    yield Input(field_text(value), id=f"field-{name}")
            # the error sits with the buttons, docked in view: under the fields it was below
            # the fold at 80x24 and a bad value's Save looked like it did nothing
            with Vertical(id="foot"):
                yield Static("", id="error")
                with Horizontal(id="buttons"):
                    yield Button("Save (ctrl+s)", variant="primary", id="save")
                    yield Button("Cancel (esc)", id="cancel")

    def values(self) -> dict[str, Any]:
        """The edited values, parsed like a TOML config would hold them."""
        return {
            name: parse_field(self.query_one(f"#field-{name}", Input).value) for name in self.fields
        }

    @property
    def error(self) -> str:
        """The validation message shown, empty when none."""
        return str(self.query_one("#error", Static).render())

    def on_input_submitted(self) -> None:
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        error = self.query_one("#error", Static)
        for box in self.query(Input):
            box.remove_class("-invalid")
        try:
            constraints = self._validate(self.values())
            self._save(constraints)
        except (ConfigError, ValueError, OSError) as exc:
            error.update(str(exc))
            error.add_class("-shown")
            bad = self.bad_field(str(exc))
            if bad is not None:  # the field to fix, focused (and so scrolled into view)
                box = self.query_one(f"#field-{bad}", Input)
                box.add_class("-invalid")
                box.focus()
            return
        self.dismiss(constraints)

    def bad_field(self, message: str) -> str | None:
        """The field a validation message names ("constraints.min_rpm: ..."), or None."""
        found = re.match(r"constraints\.(\w+)", message)
        if found is not None and found[1] in self.fields:
            return found[1]
        return next((name for name in self.fields if name in message), None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class KeysScreen(ModalScreen[None]):
    """The dashboard's keys in a centred box; Esc, q or ? closes it.

    Replaces Textual's help panel, which splits the screen and squeezes the
    gauges (labels broke into "Lam bda") and which Esc did not close.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close"),
    ]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _ in self.rows), default=4) + 2
        lines = [f"{key.rjust(width)}  {what}" for key, what in self.rows]
        # scrolls when the terminal is shorter than the list (a replay's keys and the
        # heatmap legend ran past the foot of an 80x24 screen)
        with VerticalScroll(id="dialog", classes="-keys"):
            yield Label("Keys (Esc closes)", id="keys-title")
            yield Static("\n".join(lines), id="keys")

    def action_close(self) -> None:
        self.dismiss(None)
