"""Agent notes, saved against a patient and a call. Pure."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class NoteStatus(StrEnum):
    DRAFT = "draft"
    SAVED = "saved"


class Note(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    patient_id: str | None = None
    call_id: str | None = None
    agent_id: str
    text: str
    status: NoteStatus = NoteStatus.SAVED
    created_at: datetime
    updated_at: datetime
