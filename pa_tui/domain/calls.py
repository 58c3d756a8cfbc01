"""Calls, their states, the events that move them, and the pure fold of events into calls.

Dialpad delivers one inbound call as several legs (``call_id``,
``master_call_id``, ``entry_point_call_id``). The backend turns each frame into
a :class:`CallEvent`; :class:`CallBook` folds events into one :class:`Call` per
customer call, keyed on the entry-point id, with a history. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pa_tui.domain.enums import LenientEnum
from pa_tui.domain.phones import CallerNumber, PhoneNumber


class CallState(StrEnum):
    """Dialpad's call-event states, plus ``unknown`` for anything newer."""

    PREANSWER = "preanswer"
    CALLING = "calling"
    RINGING = "ringing"
    QUEUED = "queued"
    CONNECTED = "connected"
    HOLD = "hold"
    MERGED = "merged"
    PARKED = "parked"
    TAKEOVER = "takeover"
    BARGE = "barge"
    MONITOR = "monitor"
    EAVESDROP = "eavesdrop"
    TRANSFERRING = "transferring"  # pa-tui's own: a transfer requested, target not yet ringing
    VOICEMAIL = "voicemail"
    VOICEMAIL_UPLOADED = "voicemail_uploaded"
    MISSED = "missed"
    BLOCKED = "blocked"
    HANGUP = "hangup"
    POSTCALL = "postcall"
    # Informational states: they annotate a call but do not move its lifecycle.
    RECORDING = "recording"
    TRANSCRIPTION = "transcription"
    CALL_TRANSCRIPTION = "call_transcription"
    CSAT = "csat"
    PCSAT = "pcsat"
    DISPOSITIONS = "dispositions"
    ADMIN = "admin"
    ADMIN_RECORDING = "admin_recording"
    AI_PLAYBOOK = "ai_playbook"
    RECAP_SUMMARY = "recap_summary"
    RECAP_OUTCOME = "recap_outcome"
    RECAP_PURPOSES = "recap_purposes"
    RECAP_ACTION_ITEMS = "recap_action_items"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: object) -> CallState:
        """Map a vendor state string to a state; unknown strings become ``UNKNOWN``."""
        if not isinstance(raw, str):
            return cls.UNKNOWN
        try:
            return cls(raw.strip().lower())
        except ValueError:
            return cls.UNKNOWN

    @property
    def phase(self) -> CallPhase:
        return _PHASES.get(self, CallPhase.INFO)

    @property
    def moves_lifecycle(self) -> bool:
        return self.phase is not CallPhase.INFO

    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value.replace("_", " ").capitalize())


class CallPhase(StrEnum):
    """The coarse lifecycle a console cares about."""

    SETUP = "setup"  # preanswer, calling
    RINGING = "ringing"  # ringing, queued: an agent could answer
    ACTIVE = "active"  # connected, on hold, merged, parked…
    ENDED = "ended"  # hangup, missed, voicemail, postcall…
    INFO = "info"  # recording, transcription…: no change


_PHASES: dict[CallState, CallPhase] = {
    CallState.PREANSWER: CallPhase.SETUP,
    CallState.CALLING: CallPhase.SETUP,
    CallState.RINGING: CallPhase.RINGING,
    CallState.QUEUED: CallPhase.RINGING,
    CallState.CONNECTED: CallPhase.ACTIVE,
    CallState.HOLD: CallPhase.ACTIVE,
    CallState.MERGED: CallPhase.ACTIVE,
    CallState.PARKED: CallPhase.ACTIVE,
    CallState.TAKEOVER: CallPhase.ACTIVE,
    CallState.BARGE: CallPhase.ACTIVE,
    CallState.MONITOR: CallPhase.ACTIVE,
    CallState.EAVESDROP: CallPhase.ACTIVE,
    CallState.TRANSFERRING: CallPhase.ACTIVE,
    CallState.VOICEMAIL: CallPhase.ENDED,
    CallState.VOICEMAIL_UPLOADED: CallPhase.ENDED,
    CallState.MISSED: CallPhase.ENDED,
    CallState.BLOCKED: CallPhase.ENDED,
    CallState.HANGUP: CallPhase.ENDED,
    CallState.POSTCALL: CallPhase.ENDED,
}

_LABELS: dict[CallState, str] = {
    CallState.PREANSWER: "Setting up",
    CallState.CALLING: "Dialling",
    CallState.RINGING: "Ringing",
    CallState.QUEUED: "Queued",
    CallState.CONNECTED: "Connected",
    CallState.HOLD: "On hold",
    CallState.MERGED: "Merged",
    CallState.PARKED: "Parked",
    CallState.TRANSFERRING: "Transferring",
    CallState.VOICEMAIL: "Voicemail",
    CallState.MISSED: "Missed",
    CallState.HANGUP: "Ended",
    CallState.POSTCALL: "Ended",
}


class CallDirection(LenientEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    UNKNOWN = "unknown"


class PartyType(LenientEnum):
    USER = "user"
    CALL_CENTER = "callcenter"
    DEPARTMENT = "department"
    OFFICE = "office"
    ROOM = "room"
    CONTACT = "contact"
    NUMBER = "number"
    OTHER = "other"


class Party(BaseModel):
    """Who a call leg is with on the company side (a user, a call center…)."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    type: PartyType = PartyType.OTHER
    name: str | None = None


class CallEvent(BaseModel):
    """One call event as the telephony platform reported it, already normalised."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    master_call_id: str | None = None
    entry_point_call_id: str | None = None
    state: CallState
    raw_state: str | None = None  # kept when ``state`` is UNKNOWN
    direction: CallDirection = CallDirection.UNKNOWN
    external_number: CallerNumber | None = None  # the customer: ANI inbound, dialled outbound
    internal_number: PhoneNumber | None = None  # the company number: DNIS inbound
    target: Party | None = None  # the agent / call center this leg is with
    entry_point_target: Party | None = None  # the line or queue that was called
    group_id: str | None = None
    is_transferred: bool = False
    custom_data: str | None = None
    labels: tuple[str, ...] = ()
    event_timestamp: datetime
    date_started: datetime | None = None
    date_rang: datetime | None = None
    date_connected: datetime | None = None
    date_ended: datetime | None = None

    @property
    def key(self) -> str:
        """The id of the customer call this leg belongs to."""
        return self.entry_point_call_id or self.master_call_id or self.call_id

    @property
    def dedupe_key(self) -> tuple[str, str, str | None, float]:
        return (self.call_id, self.state.value, self.raw_state, self.event_timestamp.timestamp())


class TransferHop(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    from_party: Party | None = None
    to_party: Party | None = None


class CallHistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    call_id: str
    state: CallState
    target: Party | None = None


class LegState(BaseModel):
    model_config = ConfigDict(frozen=True)

    call_id: str
    state: CallState
    target: Party | None = None
    at: datetime


class Call(BaseModel):
    """One customer call, folded from all of its legs."""

    model_config = ConfigDict(frozen=True)

    id: str  # entry-point call id
    legs: tuple[str, ...] = ()
    direction: CallDirection = CallDirection.UNKNOWN
    state: CallState = CallState.UNKNOWN  # until an event that moves the lifecycle arrives
    ani: CallerNumber | None = None  # the caller (inbound) / the customer (outbound)
    dnis: PhoneNumber | None = None  # the company number called
    agent: Party | None = None  # who has it now
    queue: Party | None = None  # the line / call center it came in on
    started_at: datetime | None = None
    rang_at: datetime | None = None
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    transfers: tuple[TransferHop, ...] = ()
    custom_data: str | None = None
    labels: tuple[str, ...] = ()
    history: tuple[CallHistoryEntry, ...] = ()
    leg_states: tuple[tuple[str, LegState], ...] = ()

    @property
    def phase(self) -> CallPhase:
        return self.state.phase

    @property
    def is_active(self) -> bool:
        return self.phase in (CallPhase.SETUP, CallPhase.RINGING, CallPhase.ACTIVE)

    @property
    def is_ended(self) -> bool:
        return self.phase is CallPhase.ENDED

    def duration(self, now: datetime) -> float:
        """Seconds since the call started (or until it ended)."""
        start = self.connected_at or self.started_at or self.rang_at
        if start is None:
            return 0.0
        end = self.ended_at or now
        return max(0.0, (end - start).total_seconds())


class CallBook(BaseModel):
    """Every call the console knows, folded from events. ``apply`` is O(1) per event."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    calls: dict[str, Call] = Field(default_factory=dict)
    leg_index: dict[str, str] = Field(default_factory=dict)  # leg call_id -> call key
    seen: dict[tuple[str, str, str | None, float], None] = Field(default_factory=dict)
    max_seen: int = 20_000
    max_ended: int = 500
    ended_order: list[str] = Field(default_factory=list)
    active_ids: set[str] = Field(default_factory=set)
    trimmed: list[str] = Field(default_factory=list)  # ids dropped by the last apply (for callers' caches)

    def _track(self, call: Call) -> None:
        if call.is_active:
            self.active_ids.add(call.id)
        else:
            self.active_ids.discard(call.id)

    def apply(self, event: CallEvent) -> Call | None:
        """Fold one event in. Returns the updated call, or ``None`` for a duplicate."""
        dk = event.dedupe_key
        if dk in self.seen:
            return None
        self.seen[dk] = None
        if len(self.seen) > self.max_seen:
            for old in list(self.seen)[: self.max_seen // 4]:
                del self.seen[old]

        key = self.leg_index.get(event.call_id) or event.key
        for leg in (event.call_id, event.master_call_id, event.entry_point_call_id):
            if leg:
                self.leg_index.setdefault(leg, key)
        prior = self.calls.get(key)
        call = fold(prior, event, key)
        self.calls[key] = call
        self._track(call)
        self.trimmed = []
        if call.is_ended and (prior is None or not prior.is_ended):
            self.ended_order.append(key)
            self._trim_ended()
        return call

    def replace(self, call: Call) -> None:
        """Put a call as reconciled from the platform (e.g. after a reconnect)."""
        self.calls[call.id] = call
        self._track(call)
        for leg in call.legs:
            self.leg_index.setdefault(leg, call.id)

    def active_count(self) -> int:
        """How many calls are up: O(1), kept as calls change phase."""
        return len(self.active_ids)

    def active(self) -> list[Call]:
        return [self.calls[i] for i in self.active_ids if i in self.calls]

    def _trim_ended(self) -> None:
        while len(self.ended_order) > self.max_ended:
            key = self.ended_order.pop(0)
            call = self.calls.get(key)
            if call is not None and call.is_ended:
                del self.calls[key]
                self.trimmed.append(key)
                for leg in call.legs:
                    if self.leg_index.get(leg) == key:
                        del self.leg_index[leg]


def fold(prior: Call | None, event: CallEvent, key: str | None = None) -> Call:
    """The call after ``event``. Pure.

    Each leg keeps its own state; the call's state is derived from them: the
    newest connected leg wins, else the newest ringing one. The call ends when
    every leg has ended — so one agent missing a ring-all offer, or the first
    agent's leg closing after a transfer, does not end a call that lives on.
    (A leg whose end was never delivered is settled by reconciliation.)
    Late or reordered events never move a leg backwards or reopen an ended call.
    """
    key = key or event.key
    if prior is None:
        prior = Call(id=key, direction=event.direction)
    legs = dict(prior.leg_states)
    old_leg = legs.get(event.call_id)
    updates: dict[str, Any] = {
        "updated_at": max(filter(None, (prior.updated_at, event.event_timestamp))),
    }
    if event.call_id not in prior.legs:
        updates["legs"] = (*prior.legs, event.call_id)
    if prior.direction is CallDirection.UNKNOWN and event.direction is not CallDirection.UNKNOWN:
        updates["direction"] = event.direction
    if prior.ani is None and event.external_number is not None:
        updates["ani"] = event.external_number
    if prior.dnis is None and event.internal_number is not None:
        updates["dnis"] = event.internal_number
    if prior.queue is None and event.entry_point_target is not None:
        updates["queue"] = event.entry_point_target
    if event.custom_data:
        updates["custom_data"] = event.custom_data
    if event.labels:
        updates["labels"] = event.labels
    for field, value in (
        ("started_at", event.date_started),
        ("rang_at", event.date_rang),
        ("connected_at", event.date_connected),
    ):
        if value is not None and getattr(prior, field) is None:
            updates[field] = value

    stale = prior.is_ended or (old_leg is not None and _leg_is_stale(old_leg, event))
    if event.state.moves_lifecycle and not stale:
        legs[event.call_id] = LegState(
            call_id=event.call_id, state=event.state, target=event.target, at=event.event_timestamp
        )
        updates["leg_states"] = tuple(legs.items())
        updates["history"] = (
            *prior.history[-49:],
            CallHistoryEntry(at=event.event_timestamp, call_id=event.call_id, state=event.state, target=event.target),
        )
        state, agent = _derive(legs.values())
        if (
            agent is not None
            and prior.agent is not None
            and agent.id != prior.agent.id
            and agent.type is PartyType.USER
            and prior.agent.type is PartyType.USER
            and (event.is_transferred or prior.connected_at is not None)
        ):
            updates["transfers"] = (
                *prior.transfers,
                TransferHop(at=event.event_timestamp, from_party=prior.agent, to_party=agent),
            )
        updates["state"] = state
        if state.phase is CallPhase.ACTIVE and prior.connected_at is None and "connected_at" not in updates:
            updates["connected_at"] = event.date_connected or event.event_timestamp
        if agent is not None:
            updates["agent"] = agent
        if state.phase is CallPhase.ENDED:
            updates["ended_at"] = event.date_ended or event.event_timestamp
    return prior.model_copy(update=updates)


def _leg_is_stale(old: LegState, event: CallEvent) -> bool:
    if old.state.phase is CallPhase.ENDED:
        return True
    # Reordered delivery: an older non-final event must not move a newer state back.
    return event.event_timestamp < old.at and event.state.phase is not CallPhase.ENDED


def _derive(legs: Any) -> tuple[CallState, Party | None]:
    by_phase: dict[CallPhase, list[LegState]] = {}
    for leg in legs:
        by_phase.setdefault(leg.state.phase, []).append(leg)
    newest = lambda items: max(items, key=lambda leg: leg.at)  # noqa: E731
    for phase in (CallPhase.ACTIVE, CallPhase.RINGING, CallPhase.SETUP):
        if by_phase.get(phase):
            leg = newest(by_phase[phase])
            return leg.state, leg.target
    leg = newest(by_phase[CallPhase.ENDED])
    return leg.state, None
