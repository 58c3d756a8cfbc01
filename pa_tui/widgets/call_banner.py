"""The current call at a glance: direction, caller, line, state, live duration."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from pa_tui.domain.calls import Call, CallDirection, CallPhase, PartyType
from pa_tui.domain.phones import format_human, mask_phone


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class CallBanner(Static):
    DEFAULT_CSS = """
    CallBanner { height: 2; width: 1fr; padding: 0 1; }
    """

    call: reactive[Call | None] = reactive(None)
    now: reactive[datetime | None] = reactive(None)
    others: reactive[int] = reactive(0)
    me: reactive[str | None] = reactive(None)
    masked: reactive[bool] = reactive(False)

    def watch_call(self, call: Call | None) -> None:
        phase = call.phase if call else None
        self.set_class(phase is CallPhase.RINGING, "-ringing")
        self.set_class(phase is CallPhase.ACTIVE, "-on-call")
        self.set_class(phase is CallPhase.ENDED, "-ended")

    def render(self) -> Text:
        call = self.call
        text = Text(no_wrap=True, overflow="ellipsis")
        if call is None:
            text.append("No call", style="dim")
            text.append("  ·  waiting for the next call", style="dim")
            return text
        arrow = {CallDirection.INBOUND: "☎ Incoming", CallDirection.OUTBOUND: "☎ Outgoing"}.get(
            call.direction, "☎ Call"
        )
        text.append(f"{arrow}  ", style="bold")
        text.append(mask_phone(call.ani) if self.masked else format_human(call.ani), style="bold")
        if call.queue is not None and call.queue.type is PartyType.CALL_CENTER and call.queue.name:
            text.append(f"  → {call.queue.name} line")
        elif call.dnis is not None:
            text.append(f"  → {mask_phone(call.dnis) if self.masked else format_human(call.dnis)}")
        text.append("   ")
        text.append(f"[{call.state.label}]", style="bold reverse" if call.phase is CallPhase.RINGING else "bold")
        if self.now is not None:
            text.append(f"   {format_duration(call.duration(self.now))}")
        if call.agent is not None and call.agent.name and call.agent.id != self.me:
            text.append(f"   with {call.agent.name}", style="dim")
        if call.phase is CallPhase.RINGING and call.direction is CallDirection.INBOUND:
            text.append("   answer in Dialpad (m: mini dialer, which carries the audio)", style="italic")
        if self.others:
            text.append(f"   (+{self.others} more call{'s' if self.others > 1 else ''})", style="dim")
        return text
