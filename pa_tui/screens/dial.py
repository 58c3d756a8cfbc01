"""Dial a number: validated as it is typed, dialled only when valid."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from pa_tui.domain.phones import DEFAULT_REGION, NoCallerId, PhoneNumber, PhoneNumberError, format_human, parse_phone
from pa_tui.domain.verification import number_for


def read_dial_input(text: str, region: str = DEFAULT_REGION) -> tuple[PhoneNumber | None, str]:
    """(the number to dial, or None; one line saying why). Pure. The line never repeats the input."""
    if not text.strip():
        return None, "Type the number to dial"
    try:
        number = parse_phone(text, region)
    except PhoneNumberError as exc:
        return None, f"✗ {exc}"
    if isinstance(number, NoCallerId):
        return None, "✗ That reads as “no caller ID”, not a number to dial"
    if not number.valid:
        if region == "US" and number.region is None and len(number.national_digits) == 7:
            return None, "✗ Missing the area code — type all 10 digits"
        return None, "✗ Not a number in use — check the area or country code"
    return number, "✓ Ready to dial"


class DialScreen(ModalScreen[PhoneNumber | None]):
    """Number entry. Enter dials when the number is valid; Esc cancels."""

    CSS_PATH = "../styles/dial.tcss"
    BINDING_GROUP_TITLE = "Dial"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "dial", "Dial", priority=True, id="dial-dial", tooltip="Call this number from your phone"),
        Binding("escape", "cancel", "Cancel", id="dial-cancel", tooltip="Close without dialling"),
        # Typed into the number when it has focus; otherwise closes rather than reaching the App's "quit".
        Binding("q", "cancel", "Cancel", show=False, id="dial-cancel-q", tooltip="Close without dialling"),
    ]

    number: reactive[PhoneNumber | None] = reactive(None, bindings=True)

    def __init__(
        self,
        initial: str = "",
        region: str = DEFAULT_REGION,
        *,
        masked: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.initial = initial
        self.phone_region = region
        self.masked = masked

    def compose(self) -> ComposeResult:
        with Vertical(id="dial-dialog"):
            yield Static("Dial a number", id="dial-title")
            yield Input(
                value=self.initial,
                placeholder="(408) 555-1212 or +44 20 7946 0018",
                id="dial-number",
                password=self.masked,
            )
            yield Static("", id="dial-feedback")
            yield Static("", id="dial-formatted")
        yield Footer()

    def on_mount(self) -> None:
        self._evaluate(self.initial)
        self.query_one(Input).focus()

    @on(Input.Changed, "#dial-number")
    def _typed(self, event: Input.Changed) -> None:
        self._evaluate(event.value)

    def _evaluate(self, text: str) -> None:
        number, line = read_dial_input(text, self.phone_region)
        self.number = number
        feedback = self.query_one("#dial-feedback", Static)
        feedback.update(line)
        feedback.set_class(number is not None, "-valid")
        feedback.set_class(number is None and bool(text.strip()), "-invalid")
        formatted = self.query_one("#dial-formatted", Static)
        if number is None:
            formatted.update("")
        elif self.masked:
            formatted.update(number_for(number, masked=True))
        else:
            human = format_human(number, self.phone_region)
            where = f"   ({number.region})" if number.region and number.region != self.phone_region else ""
            formatted.update(f"{human}{where}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "dial":
            return self.number is not None or None
        return True

    def action_dial(self) -> None:
        if self.number is not None:
            self.dismiss(self.number)

    def action_cancel(self) -> None:
        self.dismiss(None)
