"""Set the agent's duty status: on duty, or off duty with one of the site's reasons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

from pydantic import BaseModel, ConfigDict
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from pa_tui.domain.agents import AgentStatus, DutyStatus

DEFAULT_REASONS: Final = ("Lunch", "Break", "Meeting", "Training", "End of shift")
ON_DUTY: Final = "on"
OFF_DUTY: Final = "off"
_MAX_DIGIT: Final = 9


class StatusChoice(BaseModel):
    """What the agent picked. ``reason`` is None when on duty or off duty without a reason."""

    model_config = ConfigDict(frozen=True)

    on_duty: bool
    reason: str | None = None


def _status_words(current: AgentStatus | None) -> str:
    if current is None:
        return "? Unknown"
    symbol = "●" if current.status.on_duty else "○" if current.status is DutyStatus.UNAVAILABLE else "?"
    reason = f" ({current.reason})" if current.reason else ""
    return f"{symbol} {current.status.label}{reason}"


class StatusScreen(ModalScreen[StatusChoice | None]):
    """Pick on duty, or off duty and why."""

    CSS_PATH = "../styles/status.tcss"
    BINDING_GROUP_TITLE = "Your status"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Set", priority=True, id="status-set", tooltip="Set the highlighted status"),
        Binding("o", "on_duty", "On duty", id="status-on-duty", tooltip="Go on duty: calls can ring for you"),
        *[
            Binding(
                str(n),
                f"reason({n})",
                "Off duty: reason #",
                show=n == 1,
                key_display="1–9" if n == 1 else None,
                id=f"status-reason-{n}",
                tooltip=f"Go off duty with reason #{n}",
            )
            for n in range(1, _MAX_DIGIT + 1)
        ],
        Binding("escape", "cancel", "Cancel", id="status-cancel", tooltip="Keep the current status"),
        Binding("q", "cancel", "Cancel", show=False, id="status-cancel-q", tooltip="Keep the current status"),
    ]

    def __init__(
        self,
        current: AgentStatus | None,
        reasons: Sequence[str] = DEFAULT_REASONS,
        *,
        masked: bool = False,  # nothing here is PHI; accepted so every screen takes it
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.current = current
        self.reasons = tuple(r for r in dict.fromkeys(r.strip() for r in reasons) if r)
        self.masked = masked

    def compose(self) -> ComposeResult:
        with Vertical(id="status-dialog"):
            yield Static("Set your status", id="status-title")
            yield Static(f"Now: {_status_words(self.current)}", id="status-now")
            yield OptionList(*self._options(), id="status-list")
        yield Footer()

    def _is_now(self, on_duty: bool, reason: str | None) -> bool:
        cur = self.current
        if cur is None or cur.status is DutyStatus.UNKNOWN:
            return False
        if on_duty:
            return cur.status.on_duty
        return cur.status is DutyStatus.UNAVAILABLE and (cur.reason or None) == reason

    def _options(self) -> list[Option]:
        now = "   (now)"
        options = [
            Option(
                Text.assemble(("● On duty", "bold"), " — take calls", now if self._is_now(True, None) else ""),
                id=ON_DUTY,
            ),
            Option(Text("Off duty, because…", style="bold underline"), id="hdr-off", disabled=True),
        ]
        for i, reason in enumerate(self.reasons, 1):
            key = f"{i}  " if i <= _MAX_DIGIT else "   "
            options.append(
                Option(Text(f"{key}○ {reason}{now if self._is_now(False, reason) else ''}"), id=f"{OFF_DUTY}:{i}")
            )
        options.append(Option(Text(f"   ○ Off duty, no reason{now if self._is_now(False, None) else ''}"), id=OFF_DUTY))
        return options

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        on_duty_now = self.current is not None and self.current.status.on_duty
        start = f"{OFF_DUTY}:1" if on_duty_now and self.reasons else OFF_DUTY if on_duty_now else ON_DUTY
        ol.highlighted = ol.get_option_index(start)
        ol.focus()

    # ------------------------------------------------------------------ choosing
    def _choice_for(self, option_id: str | None) -> StatusChoice | None:
        if option_id == ON_DUTY:
            return StatusChoice(on_duty=True)
        if option_id == OFF_DUTY:
            return StatusChoice(on_duty=False)
        if option_id and option_id.startswith(f"{OFF_DUTY}:"):
            return StatusChoice(on_duty=False, reason=self.reasons[int(option_id.split(":", 1)[1]) - 1])
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reason":
            (n,) = parameters
            return isinstance(n, int) and 1 <= n <= len(self.reasons)
        return True

    def action_choose(self) -> None:
        option = self.query_one(OptionList).highlighted_option
        choice = self._choice_for(option.id if option is not None else None)
        if choice is not None:
            self.dismiss(choice)

    @on(OptionList.OptionSelected)
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        choice = self._choice_for(event.option.id)
        if choice is not None:
            self.dismiss(choice)

    def action_on_duty(self) -> None:
        self.dismiss(StatusChoice(on_duty=True))

    def action_reason(self, n: int) -> None:
        if 1 <= n <= len(self.reasons):
            self.dismiss(StatusChoice(on_duty=False, reason=self.reasons[n - 1]))

    def action_cancel(self) -> None:
        self.dismiss(None)
