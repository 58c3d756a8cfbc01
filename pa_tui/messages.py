"""App-level messages: facts the App learned from a backend, posted to itself.

Widget-specific messages are nested in their widget classes instead.
"""

from __future__ import annotations

from textual.message import Message

from pa_tui.backends.base import BackendError, ConnectionState, StreamNotice
from pa_tui.domain.agents import Agent, AgentStatus, AgentStatusEvent
from pa_tui.domain.calls import CallEvent
from pa_tui.domain.patients import CallerMatch
from pa_tui.domain.phones import CallerNumber, PhoneNumber


class AgentLoaded(Message):
    def __init__(self, agent: Agent, status: AgentStatus | None) -> None:
        super().__init__()
        self.agent = agent
        self.status = status


class CallEventReceived(Message):
    """One call event from the telephony stream. Never coalesced."""

    def __init__(self, event: CallEvent) -> None:
        super().__init__()
        self.event = event


class AgentStatusChanged(Message):
    def __init__(self, event: AgentStatusEvent) -> None:
        super().__init__()
        self.event = event


class ConnectionChanged(Message):
    """The event stream's state. A burst collapses into the newest."""

    def __init__(self, state: ConnectionState) -> None:
        super().__init__()
        self.state = state

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ConnectionChanged)


class CallerIdentified(Message):
    def __init__(self, call_id: str, match: CallerMatch) -> None:
        super().__init__()
        self.call_id = call_id
        self.match = match


class CallerLookupFailed(Message):
    def __init__(self, call_id: str, error: BackendError) -> None:
        super().__init__()
        self.call_id = call_id
        self.error = error


class StreamNoticed(Message):
    """The event stream skipped something or wants the agent to know a fact (no PHI)."""

    def __init__(self, notice: StreamNotice) -> None:
        super().__init__()
        self.notice = notice


class PopReceived(Message):
    """Pop this caller now (8x8 Work caller-info URL or `pa-tui pop`)."""

    def __init__(self, ani: CallerNumber, dnis: PhoneNumber | None, source: str) -> None:
        super().__init__()
        self.ani = ani
        self.dnis = dnis
        self.source = source


class InboundFactReceived(Message):
    """A webhook fact the console does not act on yet (Twilio delivery, replies…)."""

    def __init__(self, fact: object) -> None:
        super().__init__()
        self.fact = fact
