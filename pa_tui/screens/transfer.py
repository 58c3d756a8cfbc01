"""Transfer the current call: to a call center, a colleague, or a typed number.

The App pushes the screen, loads the targets in a worker and sets ``targets``
/ ``loading`` / ``error``. Typing filters by name; a typed phone number adds
"Transfer to the typed number". Off-duty colleagues are listed but marked,
and need Enter a second time. If the call ends while the screen is open the
App sets ``call_ended`` (or posts :class:`TransferScreen.CallEnded`): the
screen says so and refuses to transfer, keeping what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import ClassVar, Final

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from pa_tui.backends.base import TransferTarget
from pa_tui.domain.agents import DutyStatus
from pa_tui.domain.phones import DEFAULT_REGION, format_human
from pa_tui.domain.verification import number_for
from pa_tui.screens.dial import read_dial_input

NUMBER_OPTION: Final = "number"
_PHONE_LIKE_RE: Final = re.compile(r"^[\s\d+().\-]+$")
_NAME_WIDTH: Final = 30

_DUTY_SYMBOL: Final = {
    DutyStatus.AVAILABLE: "●",
    DutyStatus.BUSY: "◐",
    DutyStatus.OCCUPIED: "☎",
    DutyStatus.WRAPUP: "◑",
    DutyStatus.UNAVAILABLE: "○",
    DutyStatus.UNKNOWN: "?",
}
_DUTY_ORDER: Final = {
    DutyStatus.AVAILABLE: 0,
    DutyStatus.WRAPUP: 1,
    DutyStatus.BUSY: 2,
    DutyStatus.OCCUPIED: 3,
    DutyStatus.UNKNOWN: 4,
    DutyStatus.UNAVAILABLE: 5,
}


def duty_of(target: TransferTarget) -> DutyStatus:
    return DutyStatus.parse(target.status) if target.status else DutyStatus.UNKNOWN


def needs_confirm(target: TransferTarget) -> bool:
    """Off-duty colleagues can still be chosen, after a second keypress."""
    return target.kind == "user" and duty_of(target) is DutyStatus.UNAVAILABLE


def name_matches(name: str, query: str) -> bool:
    """Every typed word appears in the name, ignoring case."""
    folded = name.casefold()
    return all(word in folded for word in query.casefold().split())


def _is_phone_like(query: str) -> bool:
    return bool(_PHONE_LIKE_RE.match(query)) and sum(c.isdigit() for c in query) >= 3


class TransferScreen(ModalScreen[TransferTarget | None]):
    """Pick where the call goes."""

    CSS_PATH = "../styles/transfer.tcss"
    BINDING_GROUP_TITLE = "Transfer"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "transfer",
            "Transfer",
            priority=True,
            id="transfer-transfer",
            tooltip="Transfer the call to the highlighted target",
        ),
        Binding("down", "cursor_down", "Next", show=False, id="transfer-next", tooltip="Highlight the next target"),
        Binding("up", "cursor_up", "Previous", show=False, id="transfer-previous", tooltip="Highlight the previous"),
        Binding("pagedown", "page_down", "Page down", show=False, id="transfer-page-down", tooltip="Page down"),
        Binding("pageup", "page_up", "Page up", show=False, id="transfer-page-up", tooltip="Page up"),
        Binding("escape", "cancel", "Cancel", id="transfer-cancel", tooltip="Close without transferring"),
        # Typed into the filter when it has focus; otherwise closes rather than reaching the App's "quit".
        Binding("q", "cancel", "Cancel", show=False, id="transfer-cancel-q", tooltip="Close without transferring"),
    ]

    targets: reactive[tuple[TransferTarget, ...]] = reactive((), init=False)
    # Shadows Widget.loading on purpose: here it means "targets are loading", not "cover me".
    loading: reactive[bool] = reactive(False, init=False)
    error: reactive[str] = reactive("", init=False)
    call_ended: reactive[bool] = reactive(False, bindings=True, init=False)

    class CallEnded(Message):
        """The call being transferred ended while the screen was open (the App posts this to the screen)."""

    def __init__(
        self,
        current_call_label: str,
        *,
        targets: Iterable[TransferTarget] = (),
        loading: bool = False,
        masked: bool = False,
        region: str = DEFAULT_REGION,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.current_call_label = current_call_label
        self.masked = masked
        self.phone_region = region
        self._options: dict[str, TransferTarget] = {}
        self._confirm: str | None = None
        self._can_transfer = False
        self.set_reactive(TransferScreen.targets, tuple(targets))
        self.set_reactive(TransferScreen.loading, loading)

    # ------------------------------------------------------------------ Widget.loading, neutralised
    def _watch_loading(self, loading: bool) -> None:
        """Replaces Widget's "cover with a spinner": the filter and typed number keep working."""
        if self.is_mounted:
            self._rebuild()

    def _check_disabled(self) -> bool:
        return self.disabled

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        # Masked: the label may hold a name or a number, so it is left out.
        title = "Transfer the current call" if self.masked else f"Transfer the call — {self.current_call_label}"
        with Vertical(id="transfer-dialog"):
            yield Static(title, id="transfer-title")
            yield Static("⚠ The call ended — nothing to transfer", id="transfer-ended")
            yield Input(placeholder="Type a name to filter, or a phone number", id="transfer-filter")
            yield Static("", id="transfer-state")
            yield OptionList(id="transfer-list")
            yield Static("", id="transfer-confirm")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).can_focus = False
        self.query_one("#transfer-filter", Input).focus()
        self.query_one("#transfer-dialog").set_class(self.call_ended, "-call-ended")
        self._rebuild()

    # ------------------------------------------------------------------ state
    def watch_targets(self) -> None:
        if self.is_mounted:
            self._rebuild()

    def watch_error(self) -> None:
        if self.is_mounted:
            self._rebuild()

    def watch_call_ended(self, ended: bool) -> None:
        self._confirm = None
        if self.is_mounted:
            self.query_one("#transfer-dialog").set_class(ended, "-call-ended")
            self._show_confirm()
            self._sync_bindings()

    def on_transfer_screen_call_ended(self, message: CallEnded) -> None:
        message.stop()
        self.call_ended = True

    @on(Input.Changed, "#transfer-filter")
    def _filtered(self, event: Input.Changed) -> None:
        self._confirm = None
        if self.masked:
            # The privacy mask hides a number as it is typed; names stay readable.
            event.input.password = any(ch.isdigit() for ch in event.value)
        self._rebuild()

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self._confirm is not None and event.option.id != self._confirm:
            self._confirm = None
            self._show_confirm()
        self._sync_bindings()

    @on(OptionList.OptionSelected)
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_transfer()

    # ------------------------------------------------------------------ the list
    def _typed_number_options(self, query: str) -> list[Option]:
        if not _is_phone_like(query):
            return []
        number, why = read_dial_input(query, self.phone_region)
        if number is None:
            return [Option(Text(f"✗ Typed number: {why.removeprefix('✗ ')}"), id="number-invalid", disabled=True)]
        shown = number_for(number, masked=self.masked, region=self.phone_region)
        self._options[NUMBER_OPTION] = TransferTarget(
            kind="number", id=number.e164, name=format_human(number, self.phone_region)
        )
        return [
            Option(Text.assemble(("☎ ", "bold"), "Transfer to the typed number  ", (shown, "bold")), id=NUMBER_OPTION)
        ]

    def _rebuild(self) -> None:
        query = self.query_one("#transfer-filter", Input).value.strip()
        ol = self.query_one(OptionList)
        previous = ol.highlighted_option.id if ol.highlighted_option is not None else None
        self._options = {}
        options: list[Option] = self._typed_number_options(query)
        # A typed number lists only itself: Enter must never send the call to someone else.
        listed = () if _is_phone_like(query) else tuple(t for t in self.targets if name_matches(t.name, query))
        centers = [t for t in listed if t.kind == "callcenter"]
        users = sorted(
            (t for t in listed if t.kind == "user"), key=lambda t: (_DUTY_ORDER[duty_of(t)], t.name.casefold())
        )
        others = [t for t in listed if t.kind not in ("callcenter", "user")]
        width = min(_NAME_WIDTH, max((len(t.name) for t in (*centers, *users, *others)), default=10))
        if centers:
            options.append(Option(Text("Call centers", style="bold underline"), id="hdr-callcenter", disabled=True))
            for t in centers:
                options.append(self._option(f"cc:{t.id}", t, self._center_line(t, width)))
        if users:
            options.append(Option(Text("People", style="bold underline"), id="hdr-user", disabled=True))
            for t in users:
                options.append(self._option(f"user:{t.id}", t, self._user_line(t, width)))
        if others:
            options.append(Option(Text("Other", style="bold underline"), id="hdr-other", disabled=True))
            for t in others:
                options.append(self._option(f"{t.kind}:{t.id}", t, Text(f"  {t.name}")))
        ol.clear_options()
        ol.add_options(options)
        ids = [o.id for o in options if not o.disabled and o.id is not None]
        if ids:
            ol.highlighted = ol.get_option_index(previous if previous in ids else ids[0])
        self._show_state(query, centers, users)
        self._show_confirm()
        self._sync_bindings()

    def _option(self, option_id: str, target: TransferTarget, prompt: Text) -> Option:
        self._options[option_id] = target
        return Option(prompt, id=option_id)

    @staticmethod
    def _center_line(t: TransferTarget, width: int) -> Text:
        text = Text("  ⌂ ")
        text.append(t.name[:width].ljust(width))
        if t.waiting is not None:
            text.append(f"  {t.waiting} waiting", style="bold" if t.waiting else "")
        return text

    @staticmethod
    def _user_line(t: TransferTarget, width: int) -> Text:
        duty = duty_of(t)
        text = Text(f"  {_DUTY_SYMBOL[duty]} ")
        text.append(t.name[:width].ljust(width))
        if t.status:
            label = "off duty — Enter twice to transfer" if duty is DutyStatus.UNAVAILABLE else duty.label
            text.append(f"  {label}", style="dim" if duty is DutyStatus.UNAVAILABLE else "")
        return text

    def _show_state(self, query: str, centers: list[TransferTarget], users: list[TransferTarget]) -> None:
        state = self.query_one("#transfer-state", Static)
        state.set_class(bool(self.error), "-error")
        if self.error:
            state.update(f"✗ Could not load the transfer list: {self.error} — a typed number still works")
        elif self.loading:
            state.update("Loading transfer targets…")
        elif not self.targets:
            state.update("No transfer targets — type a phone number")
        elif _is_phone_like(query):
            state.update("A phone number: Enter transfers to it" if NUMBER_OPTION in self._options else "")
        elif query and not centers and not users:
            state.update(f"Nobody matches “{query}” — type a phone number to transfer outside")
        else:
            state.update(
                f"{len(centers)} call center{'s' * (len(centers) != 1)} · {len(users)} "
                f"{'person' if len(users) == 1 else 'people'}"
            )

    def _show_confirm(self) -> None:
        line = self.query_one("#transfer-confirm", Static)
        target = self._options.get(self._confirm) if self._confirm else None
        line.set_class(target is not None, "-shown")
        if target is not None:
            line.update(f"{target.name} is off duty — Enter again to transfer anyway")
        else:
            line.update("")

    # ------------------------------------------------------------------ actions
    def _sync_bindings(self) -> None:
        """Redraw the footer only when Enter's state flips (a redraw per keystroke is slow)."""
        can = self.check_action("transfer", ()) is True
        if can != self._can_transfer:
            self._can_transfer = can
            self.refresh_bindings()

    def _highlighted_target(self) -> tuple[str, TransferTarget] | None:
        option = self.query_one(OptionList).highlighted_option
        if option is None or option.disabled or option.id not in self._options:
            return None
        return option.id, self._options[option.id]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "transfer":
            if self.call_ended or not self.is_mounted:
                return None
            return self._highlighted_target() is not None or None
        return True

    def action_transfer(self) -> None:
        if self.call_ended:
            self.app.bell()
            return
        chosen = self._highlighted_target()
        if chosen is None:
            return
        option_id, target = chosen
        if needs_confirm(target) and self._confirm != option_id:
            self._confirm = option_id
            self._show_confirm()
            return
        self.dismiss(target)

    def action_cursor_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_page_down(self) -> None:
        self.query_one(OptionList).action_page_down()

    def action_page_up(self) -> None:
        self.query_one(OptionList).action_page_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
