"""Transfer hand-offs and the messages consoles send each other. Pure.

When an agent transfers a call, their console stores a :class:`Handoff` (the
patient, how far verification got, the notes, the call) and puts its short
``ref`` into the call's custom data; the receiving console looks it up by ref or
by call id. Consoles learn of new hand-offs and wallboard changes through
:class:`Notification` s on a named channel.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_validator

from pa_tui.domain.audit import Verification, utc
from pa_tui.domain.calls import Call

HANDOFF_CHANNEL = "pa_tui_handoff"
WALLBOARD_CHANNEL = "pa_tui_wallboard"

# Crockford's base32: no I, L, O, U, so a ref read aloud or retyped survives.
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REF_LENGTH = 8  # 40 bits: collisions are retried by the store


def new_handoff_ref() -> str:
    """A short random reference such as ``"7KQ2M9XA"`` (fits Dialpad's custom_data)."""
    return "".join(secrets.choice(_REF_ALPHABET) for _ in range(REF_LENGTH))


def looks_like_ref(value: str) -> bool:
    v = value.strip().upper()
    return len(v) == REF_LENGTH and all(c in _REF_ALPHABET for c in v)


class Handoff(BaseModel):
    """The patient context that follows a transferred call. ``ref`` is set by the store."""

    model_config = ConfigDict(frozen=True)

    ref: str = ""
    call_id: str
    from_agent: str
    to_agent: str | None = None  # None: to a queue / call center, whoever answers
    patient_id: str | None = None
    verification: Verification = Verification.UNVERIFIED
    note_ids: tuple[str, ...] = ()
    call: Call | None = None
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return utc(value)


class Notification(BaseModel):
    """One message on a channel. ``resync`` means some may have been missed: re-read state."""

    model_config = ConfigDict(frozen=True)

    channel: str
    payload: str = ""
    resync: bool = False
