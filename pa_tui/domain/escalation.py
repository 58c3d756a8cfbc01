"""The escalation bundle support desks ask for during live triage. Pure."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ProblemArea(StrEnum):
    TELEPHONY = "telephony"
    EHR = "ehr"
    PA_TUI = "pa-tui"
    UNKNOWN = "unknown"


class EscalationBundle(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime  # timezone-aware; shown in UTC and local
    agent_id: str
    ehr_user_id: str | None = None
    caller_number: str | None = None  # E.164; the only PHI-adjacent field
    description: str
    call_ids: tuple[str, ...] = ()
    recent_events: tuple[str, ...] = ()  # already PHI-free lines
    reporting_device_ani: str | None = None
    area: ProblemArea = ProblemArea.UNKNOWN
    screenshot_svg: str | None = None
