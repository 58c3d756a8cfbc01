"""Draining the outbox: send what is due, mark it done or come back later. Pure asyncio.

The App runs :meth:`OutboxWorker.run` in a long-lived worker (one per sender,
e.g. ``kinds=("ehr.note",)`` with the FHIR client and ``("sms.reminder",)`` with
Twilio) and calls :meth:`OutboxWorker.kick` right after it enqueues something.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from pa_tui.backends.base import BackendError, BadRequest, NotSupported, PermissionDenied, RateLimited
from pa_tui.backends.store._common import now_utc
from pa_tui.backends.store.errors import StoreError
from pa_tui.domain.outbox import OutboxItem, backoff_delay

log = logging.getLogger("pa_tui.store.outbox")

Sender = Callable[[OutboxItem], Awaitable[str | None]]
"""Sends one item (passing ``item.idempotency_key`` on to the remote side where it can)
and returns the remote id, or raises. Raising a :class:`BackendError` keeps its
``title`` on the item; any other exception keeps only its type name (no PHI)."""


class _OutboxStore(Protocol):
    async def due(
        self, now: datetime | None = ..., limit: int = ..., *, lease: timedelta = ..., kinds: Iterable[str] | None = ...
    ) -> list[OutboxItem]: ...

    async def mark_done(self, item_id: int, remote_id: str | None = None) -> None: ...

    async def mark_failed(self, item_id: int, error: str, next_try: datetime | None) -> None: ...


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.dead


def error_text(exc: BaseException) -> str:
    """What is kept of an error on the item: a backend error's title, else its type only."""
    if isinstance(exc, BackendError):
        return exc.title
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


class OutboxWorker:
    """Sends due items through ``send``; failures come back with exponential backoff + jitter.

    - A :class:`RateLimited` failure comes back after its ``retry_after``.
    - ``permanent`` failures (by default :class:`BadRequest`, :class:`PermissionDenied`,
      :class:`NotSupported`) and items past ``max_attempts`` are marked dead.
    - A send is cut off at 80 % of the lease, so no other process can claim the
      item while it is still being sent.
    - When the store itself fails, :meth:`run` waits (backing off) and tries again.
    """

    def __init__(
        self,
        store: _OutboxStore,
        send: Sender,
        *,
        kinds: Iterable[str] | None = None,
        batch: int = 10,
        poll_interval: float = 2.0,
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = 12,
        base_delay: float = 2.0,
        max_delay: float = 900.0,
        permanent: tuple[type[BaseException], ...] = (BadRequest, PermissionDenied, NotSupported),
        clock: Callable[[], datetime] = now_utc,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.send = send
        self.kinds = tuple(kinds) if kinds is not None else None
        self.batch = batch
        self.poll_interval = poll_interval
        self.lease = lease
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.permanent = permanent
        self.clock = clock
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._stopping = False

    def kick(self) -> None:
        """Look for due items now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _backoff(self, attempts: int) -> timedelta:
        return backoff_delay(attempts, base=self.base_delay, cap=self.max_delay, rng=self.rng)

    async def drain(self) -> DrainReport:
        """Send everything due now, batch after batch. Store errors propagate."""
        report = DrainReport()
        while not self._stopping:
            items = await self.store.due(self.clock(), self.batch, lease=self.lease, kinds=self.kinds)
            for item in items:
                await self._one(item, report)
            if len(items) < self.batch:
                break
        return report

    async def _one(self, item: OutboxItem, report: DrainReport) -> None:
        try:
            remote_id = await asyncio.wait_for(self.send(item), timeout=self.lease.total_seconds() * 0.8)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            now = self.clock()
            if isinstance(exc, self.permanent) or item.attempts >= self.max_attempts:
                await self.store.mark_failed(item.id, error_text(exc), None)
                report.dead += 1
                log.warning(
                    "outbox item id=%s kind=%s given up after %d attempts: %s",
                    item.id,
                    item.kind,
                    item.attempts,
                    error_text(exc),
                )
                return
            if isinstance(exc, RateLimited):
                next_try = now + max(timedelta(seconds=exc.retry_after), timedelta(seconds=1))
            else:
                next_try = now + self._backoff(item.attempts)
            await self.store.mark_failed(item.id, error_text(exc), next_try)
            report.retried += 1
            log.info(
                "outbox item id=%s kind=%s failed (attempt %d): %s", item.id, item.kind, item.attempts, error_text(exc)
            )
            return
        await self.store.mark_done(item.id, remote_id)
        report.sent += 1

    async def run(self) -> None:
        """Drain forever: after each pass wait for :meth:`kick` or ``poll_interval``."""
        store_failures = 0
        while not self._stopping:
            wait = self.poll_interval
            self._wake.clear()  # a kick during the drain below means "drain again at once"
            try:
                await self.drain()
                store_failures = 0
            except StoreError as exc:
                store_failures += 1
                wait = self._backoff(store_failures).total_seconds()
                log.warning("outbox: the store failed (%s); trying again in %.0f s", exc.title, wait)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
