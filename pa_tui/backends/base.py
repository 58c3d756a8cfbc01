"""What the App may ask of the outside world: one Protocol per capability.

Backends convert vendor JSON into :mod:`pa_tui.domain` models here at the edge
and raise :class:`BackendError` subclasses whose ``title`` and ``fix`` are
written for the agent. Messages never contain a secret or PHI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.agents import Agent, AgentStatus, AgentStatusEvent, CallCenter, DutyStatus
from pa_tui.domain.calls import Call, CallEvent
from pa_tui.domain.notes import Note
from pa_tui.domain.patients import CallerMatch, PatientSummary
from pa_tui.domain.phones import PhoneNumber
from pa_tui.domain.records import Section


# --------------------------------------------------------------------------- errors
class BackendError(Exception):
    """A failure the agent can act on. ``title`` says what, ``fix`` says what to do.

    ``str(err)`` is "title — fix". Never put a secret, a URL with a token or PHI in either.
    """

    area: str = "backend"

    def __init__(self, title: str, fix: str = "", *, status: int | None = None) -> None:
        super().__init__(title)
        self.title = title
        self.fix = fix
        self.status = status

    def __str__(self) -> str:
        return f"{self.title} — {self.fix}" if self.fix else self.title


class AuthError(BackendError):
    """Credentials missing, invalid or expired (401). Retrying will not help."""


class PermissionDenied(BackendError):
    """The credentials lack a scope or permission (403)."""


class NotFound(BackendError):
    """The thing asked for does not exist (404), or the base URL is wrong."""


class BadRequest(BackendError):
    """The vendor rejected the request's content (400/422)."""


class RateLimited(BackendError):
    """Too many requests; ``retry_after`` seconds until the budget allows another."""

    def __init__(self, title: str, fix: str = "", *, retry_after: float, status: int | None = 429) -> None:
        super().__init__(title, fix, status=status)
        self.retry_after = retry_after


class Unavailable(BackendError):
    """The service is down, timing out or answering 5xx."""


class NotSupported(BackendError):
    """The vendor (or its profile) does not offer this capability."""


# --------------------------------------------------------------------------- connection state
class LinkStatus(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth-failed"
    STOPPED = "stopped"


class ConnectionState(BaseModel):
    """Where the telephony event stream stands; the header and banner render this."""

    model_config = ConfigDict(frozen=True)

    status: LinkStatus
    detail: str = ""  # one line: cause and fix, no secrets
    retry_in: float | None = None
    url_expires_at: datetime | None = None
    connected_since: datetime | None = None


TelephonyEvent = CallEvent | AgentStatusEvent | ConnectionState


class TransferTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str  # "user" | "callcenter" | "number"
    id: str
    name: str
    status: str | None = None
    waiting: int | None = None


# --------------------------------------------------------------------------- protocols
@runtime_checkable
class Telephony(Protocol):
    """A telephony platform (Dialpad) as the console uses it."""

    async def me(self) -> Agent:
        """The agent this console acts for."""
        ...

    async def agent_status(self, agent_id: str) -> AgentStatus: ...

    def events(self) -> AsyncIterator[TelephonyEvent]:
        """Normalised events, forever: reconnects internally and reports :class:`ConnectionState`."""
        ...

    async def dial(self, agent_id: str, number: PhoneNumber, *, custom_data: str | None = None) -> str:
        """Start an outbound call from the agent's devices; returns the call id."""
        ...

    async def transfer(self, call_id: str, target: TransferTarget, *, custom_data: str | None = None) -> None: ...

    async def hangup(self, call_id: str) -> None: ...

    async def set_status(self, agent_id: str, *, on_duty: bool, reason: str | None = None) -> None: ...

    async def screen_pop(self, agent_id: str, uri: str) -> None: ...

    async def transfer_targets(self) -> list[TransferTarget]: ...

    async def call_centers(self) -> list[CallCenter]: ...

    async def get_call(self, call_id: str) -> Call | None: ...

    def mini_dialer_url(self) -> str | None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class EHR(Protocol):
    """An EHR (over FHIR R4) as the console uses it."""

    async def find_by_phone(self, number: PhoneNumber) -> CallerMatch:
        """Patients whose stored telecom really matches ``number``, best first."""
        ...

    async def search(self, query: str) -> list[PatientSummary]: ...

    async def patient(self, patient_id: str) -> PatientSummary: ...

    async def load_section(self, patient_id: str, section: Section) -> object:
        """The section's domain view (a tuple of views, a ``Billing``, or ``SectionUnavailable``)."""
        ...

    async def write_note(self, note: Note) -> str:
        """Write a note back to the EHR; returns the EHR's id for it."""
        ...

    def chart_url(self, patient: PatientSummary) -> str | None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Messaging(Protocol):
    """SMS (Twilio) for reminders."""

    async def send_sms(self, to: PhoneNumber, body: str, *, status_callback: str | None = None) -> str: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    """Durable local state: notes, drafts, audit log, hand-offs, outbox (completed in #7)."""

    async def save_note(self, note: Note) -> None: ...

    async def save_draft(self, note: Note) -> None: ...

    async def notes_for(self, patient_id: str) -> list[Note]: ...

    async def audit(
        self,
        *,
        agent_id: str,
        action: str,
        patient_id: str | None,
        reason: str,
        sections: tuple[str, ...] = (),
        at: datetime | None = None,
    ) -> None: ...

    async def aclose(self) -> None: ...


__all__ = [
    "BackendSet",
    "EHR",
    "AuthError",
    "BackendError",
    "BadRequest",
    "ConnectionState",
    "DutyStatus",
    "LinkStatus",
    "Messaging",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "RateLimited",
    "Store",
    "Telephony",
    "TelephonyEvent",
    "TransferTarget",
    "Unavailable",
]


# --------------------------------------------------------------------------- the set the App owns
class BackendSet:
    """The backends one console uses. The App owns them and closes them on exit."""

    def __init__(
        self,
        telephony: Telephony,
        ehr: EHR,
        *,
        messaging: Messaging | None = None,
        store: Store | None = None,
    ) -> None:
        self.telephony = telephony
        self.ehr = ehr
        self.messaging = messaging
        self.store = store

    async def aclose(self) -> None:
        for backend in (self.telephony, self.ehr, self.messaging, self.store):
            if backend is not None:
                try:
                    await backend.aclose()
                except Exception:  # closing must never stop the others from closing
                    import logging

                    logging.getLogger(__name__).warning("error closing %s", type(backend).__name__, exc_info=True)
