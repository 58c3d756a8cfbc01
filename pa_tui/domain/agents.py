"""Agents (Dialpad users who take calls) and their duty status. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.phones import PhoneNumber


class DutyStatus(StrEnum):
    """An operator's status as Dialpad's agent-status events report it."""

    AVAILABLE = "available"
    BUSY = "busy"
    OCCUPIED = "occupied"  # on a call
    WRAPUP = "wrapup"
    UNAVAILABLE = "unavailable"  # off duty
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: object) -> DutyStatus:
        """Dialpad's ``on_duty_status``; ``occupied-end``/``wrapup-end`` mean back to available."""
        if not isinstance(raw, str):
            return cls.UNKNOWN
        key = raw.strip().lower().replace("_", "-")
        if key in ("occupied-end", "wrapup-end", "wrap-up-end", "on-duty", "on"):
            return cls.AVAILABLE
        if key in ("wrap-up", "wrapup"):
            return cls.WRAPUP
        if key in ("off-duty", "off", "offline"):
            return cls.UNAVAILABLE
        try:
            return cls(key)
        except ValueError:
            return cls.UNKNOWN

    @property
    def on_duty(self) -> bool:
        return self not in (DutyStatus.UNAVAILABLE, DutyStatus.UNKNOWN)

    @property
    def label(self) -> str:
        return {
            DutyStatus.AVAILABLE: "Available",
            DutyStatus.BUSY: "Busy",
            DutyStatus.OCCUPIED: "On a call",
            DutyStatus.WRAPUP: "Wrap-up",
            DutyStatus.UNAVAILABLE: "Off duty",
            DutyStatus.UNKNOWN: "Unknown",
        }[self]


class Agent(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    email: str | None = None
    phone: PhoneNumber | None = None
    call_center_ids: tuple[str, ...] = ()


class AgentStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent_id: str
    status: DutyStatus = DutyStatus.UNKNOWN
    reason: str | None = None
    since: datetime | None = None
    call_center_ids: tuple[str, ...] = ()


class AgentStatusEvent(BaseModel):
    """One agent-status event as the telephony platform reported it, normalised."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    status: DutyStatus
    raw_status: str | None = None
    reason: str | None = None
    availability: str | None = None
    call_center_ids: tuple[str, ...] = ()
    event_timestamp: datetime

    def to_status(self) -> AgentStatus:
        return AgentStatus(
            agent_id=self.agent_id,
            status=self.status,
            reason=self.reason,
            since=self.event_timestamp,
            call_center_ids=self.call_center_ids,
        )


class CallCenter(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
