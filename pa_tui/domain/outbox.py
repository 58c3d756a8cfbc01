"""Writes still owed to the EHR or Twilio, and when to try them again. Pure.

An :class:`OutboxItem` is enqueued in the same breath as the local save, so the
local copy is durable before any network call. A worker claims due items, sends
each with its ``idempotency_key`` and marks it done or failed; failures come
back after :func:`backoff_delay`.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from pa_tui.domain.audit import utc


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for next_try (or leased to a worker right now)
    DONE = "done"  # the remote side confirmed
    DEAD = "dead"  # given up: a permanent error, or too many attempts


class OutboxItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    kind: str  # e.g. "ehr.note", "sms.reminder"
    payload: dict[str, Any]
    idempotency_key: str
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0  # claims so far, the current one included
    last_error: str | None = None  # PHI-free: an error title, never a payload
    next_try: datetime
    lease_until: datetime | None = None
    claim: str | None = None  # the claim token of the worker holding the lease
    remote_id: str | None = None
    created_at: datetime
    updated_at: datetime

    @field_validator("next_try", "created_at", "updated_at", "lease_until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else utc(value)


def backoff_delay(
    attempts: int,
    *,
    base: float = 2.0,
    cap: float = 900.0,
    rng: random.Random | None = None,
) -> timedelta:
    """How long to wait after the ``attempts``-th failed try: exponential, capped, jittered.

    "Equal jitter": half of ``min(cap, base * 2**(attempts-1))`` is fixed, the other
    half random, so retries from many consoles spread out yet never come back at once.
    """
    n = max(1, attempts)
    ceiling = min(cap, base * (2 ** min(n - 1, 32)))
    r = (rng or random).random()
    return timedelta(seconds=ceiling / 2 + r * ceiling / 2)


def next_try_after(attempts: int, now: datetime, **kwargs: Any) -> datetime:
    return utc(now) + backoff_delay(attempts, **kwargs)
