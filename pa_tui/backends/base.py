"""What the App may ask of the outside world: one Protocol per capability.

Backends convert vendor JSON into :mod:`pa_tui.domain` models here at the edge
and raise :class:`BackendError` subclasses whose ``title`` and ``fix`` are
written for the agent. Messages never contain a secret or PHI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

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


class StreamNotice(BaseModel):
    """Something about the event stream the agent should see (a skipped frame…). No PHI."""

    model_config = ConfigDict(frozen=True)

    text: str
    serious: bool = False  # True: also raise the problem banner


TelephonyEvent = CallEvent | AgentStatusEvent | ConnectionState | StreamNotice


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

    async def set_wrapup_labels(self, call_id: str, labels: Sequence[str]) -> None:
        """Set the call's wrap-up codes (Dialpad call labels)."""
        ...

    async def request_callback(self, call_center_id: str, number: PhoneNumber) -> int | None:
        """Queue a call back to ``number`` in the call center; returns its place in the queue if known."""
        ...

    def mini_dialer_url(self) -> str | None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class EHR(Protocol):
    """An EHR (over FHIR R4) as the console uses it."""

    async def find_by_phone(self, number: PhoneNumber) -> CallerMatch:
        """Patients whose stored telecom really matches ``number``, best first."""
        ...

    async def search(self, query: str) -> list[PatientSummary]: ...

    async def search_identify(
        self,
        given: str,
        family: str,
        birthdate: date | None,
        gender: str | None = None,
        phone: PhoneNumber | str | None = None,
    ) -> CallerMatch:
        """The identification form (where the EHR cannot search by phone): the vendor's minimum
        search set built from the form. Raises ``BadRequest`` naming what this EHR needs."""
        ...

    async def patient(self, patient_id: str) -> PatientSummary: ...

    async def load_section(self, patient_id: str, section: Section) -> object:
        """The section's domain view (a tuple of views, a ``Billing``, or ``SectionUnavailable``)."""
        ...

    async def write_note(self, note: Note) -> str:
        """Write a note back to the EHR; returns the EHR's id for it."""
        ...

    async def confirm_appointment(self, appointment_id: str) -> bool:
        """Mark the patient's participation accepted (a reminder's "yes"); False where the EHR
        does not allow pa-tui to change appointments or this one cannot be confirmed."""
        ...

    def chart_url(self, patient: PatientSummary) -> str | None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Messaging(Protocol):
    """SMS (Twilio) for reminders."""

    async def send_sms(self, to: PhoneNumber, body: str, *, status_callback: str | None = None) -> str: ...

    async def aclose(self) -> None: ...


from typing import TYPE_CHECKING  # noqa: E402 - kept next to the Store it serves

if TYPE_CHECKING:  # the Store's vocabulary; annotations only, so no import cost at run time
    from collections.abc import Iterable
    from datetime import date, timedelta
    from typing import Any

    from pa_tui.backends.store._common import Subscription
    from pa_tui.domain.audit import AuditAction, AuditRow, Verification
    from pa_tui.domain.escalation import EscalationBundle
    from pa_tui.domain.handoff import Handoff
    from pa_tui.domain.history import CallSession, KnownCaller
    from pa_tui.domain.outbox import OutboxItem


@runtime_checkable
class Store(Protocol):
    """Durable local state (issue #7). Implementations: ``pa_tui.backends.store``.

    Every method commits before it returns, so whatever it reports saved survives
    a crash. Times are stored and returned in UTC; a naive datetime is taken as UTC.
    Every write is idempotent (client-made ids, upserts), so retrying one is safe.
    Failures raise ``pa_tui.backends.store.StoreError`` subclasses (``BackendError``s).
    Nothing here logs PHI: only ids and counts.
    """

    backend: str  # "sqlite" | "postgres"

    async def open(self) -> Store:
        """Connect and apply pending schema migrations (safe from many processes at once)."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Store: ...

    async def __aexit__(self, *exc: object) -> None: ...

    # notes and drafts
    async def save_note(self, note: Note, *, outbox_kind: str | None = None) -> Note:
        """Save (upsert by id) a note and delete its draft in one transaction.

        With ``outbox_kind`` the write-back (e.g. to the EHR) is enqueued in the same
        transaction. Returns the note as saved (status ``saved``).
        """
        ...

    async def save_draft(self, note: Note) -> None:
        """Upsert the one draft per (agent, patient, call). Cheap: call it on every autosave."""
        ...

    async def latest_draft(self, agent_id: str, patient_id: str | None, call_id: str | None) -> Note | None: ...

    async def drafts_for(self, agent_id: str) -> list[Note]: ...

    async def delete_draft(self, agent_id: str, patient_id: str | None, call_id: str | None) -> None: ...

    async def notes_for(self, patient_id: str, *, limit: int | None = None) -> list[Note]:
        """The patient's saved notes, newest first."""
        ...

    async def notes_for_call(self, call_id: str) -> list[Note]: ...

    async def get_notes(self, note_ids: Iterable[str]) -> list[Note]: ...

    # call sessions
    async def save_call(self, call: Call, *, patient_id: str | None = None, outcome: str | None = None) -> None:
        """Upsert the folded call; an older snapshot never replaces a newer one."""
        ...

    async def get_call(self, call_id: str) -> CallSession | None: ...

    async def recent_calls(self, *, limit: int = 50, patient_id: str | None = None) -> list[CallSession]: ...

    # PHI access audit log: append-only, no update or delete
    async def audit(
        self,
        *,
        agent_id: str,
        action: str | AuditAction,
        patient_id: str | None,
        reason: str,
        sections: Iterable[str] = (),
        at: datetime | None = None,
        verification: Verification | str | None = None,
    ) -> AuditRow: ...

    async def audit_rows(
        self,
        *,
        patient_id: str | None = None,
        agent_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditRow]: ...

    # known callers
    async def remember_caller(
        self, e164: str | PhoneNumber, patient_id: str, agent_id: str, at: datetime | None = None, *, reason: str = ...
    ) -> None:
        """Tie a number to a patient after a verified call; writes a ``known-caller`` audit row too."""
        ...

    async def known_callers(self, e164: str | PhoneNumber) -> list[KnownCaller]: ...

    # escalation bundles
    async def save_escalation(self, bundle: EscalationBundle) -> None: ...

    async def get_escalation(self, bundle_id: str) -> EscalationBundle | None: ...

    async def escalations(
        self, *, agent_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[EscalationBundle]: ...

    # transfer hand-offs
    async def put_handoff(self, handoff: Handoff) -> str:
        """Store it; returns its short ref (for custom_data) and notifies ``pa_tui_handoff``."""
        ...

    async def get_handoff(self, ref_or_call_id: str) -> Handoff | None: ...

    async def handoffs_for(self, agent_id: str, *, since: datetime | None = None) -> list[Handoff]: ...

    # reminders and opt-outs
    async def record_reminder(
        self, appointment_id: str, day: date | str, status: str, sid: str | None = None, at: datetime | None = None
    ) -> None: ...

    async def reminder_sent(self, appointment_id: str, day: date | str) -> bool: ...

    async def set_opt_out(self, e164: str | PhoneNumber, opted_out: bool, at: datetime | None = None) -> None: ...

    async def is_opted_out(self, e164: str | PhoneNumber) -> bool: ...

    # outbox of writes owed to the EHR / Twilio
    async def enqueue(
        self, kind: str, payload: dict[str, Any], idempotency_key: str, *, not_before: datetime | None = None
    ) -> OutboxItem:
        """Add an item; an existing ``idempotency_key`` adds nothing and returns the existing item."""
        ...

    async def due(
        self,
        now: datetime | None = None,
        limit: int = 10,
        *,
        lease: timedelta = ...,
        kinds: Iterable[str] | None = None,
    ) -> list[OutboxItem]:
        """Claim due items under a lease: no two processes get the same item."""
        ...

    async def mark_done(self, item_id: int, remote_id: str | None = None) -> None: ...

    async def mark_failed(self, item_id: int, error: str, next_try: datetime | None) -> None:
        """Come back at ``next_try``; ``None`` gives up (status ``dead``). ``error`` must be PHI-free."""
        ...

    async def outbox_item(self, id_or_key: int | str) -> OutboxItem | None: ...

    async def outbox_counts(self) -> dict[str, int]: ...

    # between consoles: hand-offs, wallboard updates
    async def publish(self, channel: str, payload: str = "") -> None: ...

    def subscribe(self, *channels: str) -> Subscription:
        """``async with store.subscribe(ch) as sub: async for n in sub: ...`` (PostgreSQL:
        LISTEN/NOTIFY; SQLite: polls a table, so consoles sharing the file hear it too)."""
        ...

    def notifications(self) -> Subscription:
        """Hand-offs and wallboard updates (``pa_tui_handoff`` and ``pa_tui_wallboard``)."""
        ...


__all__ = [
    "BackendSet",
    "EHR",
    "AuthError",
    "BackendError",
    "BadRequest",
    "ConnectionState",
    "StreamNotice",
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
        inbound: Any = None,
    ) -> None:
        self.telephony = telephony
        self.ehr = ehr
        self.messaging = messaging
        self.store = store
        self.inbound = inbound  # the loopback listener (webhooks, 8x8 pop, pa-tui pop), started by the App
        self.webhook_events: Any = None  # webhook mode: the queue the telephony reads listener events from

    async def aclose(self) -> None:
        if self.inbound is not None:
            try:
                await self.inbound.stop()
            except Exception:
                import logging

                logging.getLogger(__name__).warning("error stopping the inbound listener", exc_info=True)
        for backend in (self.telephony, self.ehr, self.messaging, self.store):
            if backend is not None:
                try:
                    await backend.aclose()
                except Exception:  # closing must never stop the others from closing
                    import logging

                    logging.getLogger(__name__).warning("error closing %s", type(backend).__name__, exc_info=True)
