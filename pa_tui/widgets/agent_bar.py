"""The header line: who the agent is, their duty status, and the event link's state."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from pa_tui.backends.base import ConnectionState, LinkStatus
from pa_tui.domain.agents import Agent, AgentStatus, DutyStatus

_STATUS_STYLE = {
    DutyStatus.AVAILABLE: ("●", "bold green"),
    DutyStatus.BUSY: ("◐", "bold yellow"),
    DutyStatus.OCCUPIED: ("☎", "bold cyan"),
    DutyStatus.WRAPUP: ("◑", "bold magenta"),
    DutyStatus.UNAVAILABLE: ("○", "dim"),
    DutyStatus.UNKNOWN: ("?", "dim"),
}

_LINK_TEXT = {
    LinkStatus.CONNECTING: ("…", "Dialpad: connecting"),
    LinkStatus.CONNECTED: ("⇄", "Dialpad: live"),
    LinkStatus.RECONNECTING: ("↻", "Dialpad: reconnecting"),
    LinkStatus.AUTH_FAILED: ("✗", "Dialpad: auth failed"),
    LinkStatus.STOPPED: ("■", "Dialpad: stopped"),
}


class AgentBar(Static):
    """Agent name, duty status and connection state, on one line."""

    DEFAULT_CSS = """
    AgentBar { height: 1; width: 1fr; }
    """

    agent: reactive[Agent | None] = reactive(None)
    status: reactive[AgentStatus | None] = reactive(None)
    connection: reactive[ConnectionState | None] = reactive(None)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" pa-tui ", style="bold reverse")
        text.append("  ")
        if self.agent is None:
            text.append("Agent: loading…", style="dim")
        else:
            text.append("Agent: ", style="dim")
            text.append(self.agent.name, style="bold")
        text.append("   ")
        status = self.status.status if self.status else DutyStatus.UNKNOWN
        symbol, style = _STATUS_STYLE[status]
        text.append(f"{symbol} {status.label}", style=style)
        if self.status and self.status.reason:
            text.append(f" ({self.status.reason})", style="dim")
        text.append("   ")
        if self.connection is None:
            text.append("… Dialpad: starting", style="dim")
        else:
            symbol, label = _LINK_TEXT[self.connection.status]
            style = "bold red" if self.connection.status is LinkStatus.AUTH_FAILED else (
                "yellow" if self.connection.status is LinkStatus.RECONNECTING else ""
            )
            if self.connection.status is LinkStatus.RECONNECTING and self.connection.retry_in is not None:
                label += f" in {self.connection.retry_in:.0f}s"
            text.append(f"{symbol} {label}", style=style)
        return text
