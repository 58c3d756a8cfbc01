"""What the inbound listener hands the App: small frozen domain facts.

Dialpad webhooks become :class:`~pa_tui.domain.calls.CallEvent` /
:class:`~pa_tui.domain.agents.AgentStatusEvent` (the same models the event
stream yields); Twilio webhooks become the Twilio parse models
(:class:`DeliveryStatus`, :class:`InboundSms`, :class:`CallStatusUpdate`);
caller-info pops and confirmation-call key presses are defined here.

Every ``repr`` is free of phone numbers and message bodies, so a fact that
ends up in a log line leaks no PHI.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from pa_tui.backends.twilio.parse import CallStatusUpdate, DeliveryStatus, InboundSms
from pa_tui.domain.agents import AgentStatusEvent
from pa_tui.domain.calls import CallEvent
from pa_tui.domain.phones import NoCallerId, PhoneNumber

__all__ = [
    "AgentStatusEvent",
    "CallEvent",
    "CallStatusUpdate",
    "ConfirmationDigits",
    "DeliveryStatus",
    "InboundFact",
    "InboundSms",
    "PopRequested",
    "PopSource",
    "fact_kind",
]

PopSource = Literal["8x8", "cli"]


def _now() -> datetime:
    return datetime.now(UTC)


class PopRequested(BaseModel):
    """Someone asked the console to pop the caller ``ani``: an 8x8 Work caller-info pop or ``pa-tui pop``.

    ``ani`` is :class:`NoCallerId` when the pop said the number was withheld
    (e.g. ``ani=anonymous``); the App then shows the search form.
    """

    model_config = ConfigDict(frozen=True)

    ani: PhoneNumber | NoCallerId
    dnis: PhoneNumber | None = None
    source: PopSource
    received_at: datetime = Field(default_factory=_now)

    def __repr__(self) -> str:  # never the digits
        withheld = isinstance(self.ani, NoCallerId)
        return f"PopRequested(source={self.source!r}, withheld={withheld}, dnis={'yes' if self.dnis else 'no'})"

    __str__ = __repr__


class ConfirmationDigits(BaseModel):
    """The key a patient pressed on the appointment confirmation call (``/app_confirm``)."""

    model_config = ConfigDict(frozen=True)

    call_sid: str
    digits: str
    account_sid: str | None = None
    received_at: datetime = Field(default_factory=_now)

    @property
    def choice(self) -> Literal["confirm", "reschedule", "other"]:
        return {"1": "confirm", "2": "reschedule"}.get(self.digits, "other")  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"ConfirmationDigits(call_sid={self.call_sid!r}, digits={self.digits!r})"

    __str__ = __repr__


#: Everything :meth:`InboundListener.events` yields.
InboundFact: TypeAlias = (
    CallEvent | AgentStatusEvent | PopRequested | DeliveryStatus | InboundSms | CallStatusUpdate | ConfirmationDigits
)

_KINDS: dict[type, str] = {
    CallEvent: "dialpad-call",
    AgentStatusEvent: "dialpad-agent-status",
    PopRequested: "pop",
    DeliveryStatus: "twilio-message-status",
    InboundSms: "twilio-inbound-sms",
    CallStatusUpdate: "twilio-call-status",
    ConfirmationDigits: "twilio-confirmation",
}


def fact_kind(fact: object) -> str:
    """A short PHI-free name for a fact's type, for log lines."""
    return _KINDS.get(type(fact), type(fact).__name__)
