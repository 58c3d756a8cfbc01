"""What the console remembers between runs about calls and callers. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, field_validator

from pa_tui.domain.audit import utc
from pa_tui.domain.calls import Call


class KnownCaller(NamedTuple):
    """A number that a verified call tied to a patient, and when that last happened."""

    patient_id: str
    verified_at: datetime


class CallSession(BaseModel):
    """A folded call as stored: the call with its legs, who it was about and how it ended."""

    model_config = ConfigDict(frozen=True)

    call: Call
    patient_id: str | None = None
    outcome: str | None = None  # e.g. "resolved", "transferred", "callback" (the app's vocabulary)
    saved_at: datetime

    @field_validator("saved_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return utc(value)
