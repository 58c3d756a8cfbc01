"""Pieces both store implementations share: time formats, redaction, subscriptions."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Final

from pa_tui.domain.audit import utc
from pa_tui.domain.handoff import Handoff, Notification
from pa_tui.domain.notes import Note

log = logging.getLogger("pa_tui.store")

# A NOTIFY payload must stay under 8000 bytes on PostgreSQL; keep SQLite to the same rule.
MAX_PAYLOAD_BYTES: Final = 7900
# Errors stored on outbox rows are cut to this length.
MAX_ERROR_CHARS: Final = 500
_CHANNEL_RE: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def now_utc() -> datetime:
    return datetime.now(UTC)


def ts(value: datetime) -> str:
    """A fixed-width UTC text timestamp: sorts as text in the same order as in time."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ts(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def from_ts_or_none(value: str | None) -> datetime | None:
    return None if value is None else from_ts(value)


def day_text(day: date | str) -> str:
    if isinstance(day, datetime):
        return day.date().isoformat()
    if isinstance(day, date):
        return day.isoformat()
    return date.fromisoformat(day).isoformat()


def key(value: str | None) -> str:
    """Draft keys treat "no patient" / "no call" as the empty string (NULLs are never equal)."""
    return value or ""


def unkey(value: str) -> str | None:
    return value or None


def check_channel(channel: str) -> str:
    if not _CHANNEL_RE.match(channel):
        raise ValueError("a channel name is lower-case letters, digits and _ (at most 63)")
    return channel


def check_payload(payload: str) -> str:
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a notification payload must be under {MAX_PAYLOAD_BYTES} bytes: send an id, not data")
    return payload


def note_outbox_key(kind: str, note: Note) -> str:
    """One write-back per saved version of a note."""
    return f"{kind}:{note.id}:{ts(note.updated_at)}"


def handoff_payload(h: Handoff) -> str:
    """What a hand-off notification carries: ids only, no PHI."""
    return json.dumps({"ref": h.ref, "call_id": h.call_id, "to_agent": h.to_agent})


# Reminder statuses that mean "not sent": the reminder may be tried again.
UNSENT_STATUSES: Final = ("failed", "undelivered", "canceled")


# --------------------------------------------------------------------------- redaction
class Redactor(logging.Filter):
    """Replaces registered secrets (DSN passwords) in log records and texts with ``***``."""

    def __init__(self) -> None:
        super().__init__("pa-tui-redactor")
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        self._secrets.update(s for s in secrets if s and len(s) >= 3)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        # Anything that still looks like a password in a conninfo string or URL.
        text = re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text)
        return re.sub(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets or "password" in str(record.msg).lower() or "://" in str(record.msg):
            try:
                message = record.getMessage()
            except Exception:  # a broken format string: leave the record alone
                return True
            redacted = self.redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


REDACTOR = Redactor()
for _name in ("psycopg", "psycopg.pool"):
    if REDACTOR not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(REDACTOR)


# --------------------------------------------------------------------------- subscriptions
class Subscription:
    """Notifications on some channels, from the moment the subscription started.

    Use ``async with store.subscribe("pa_tui_handoff") as sub: async for n in sub: ...``.
    Entering (or the first ``__anext__``) registers it, so nothing published after
    ``__aenter__`` returns is missed. If the consumer falls more than ``maxsize``
    behind, the backlog is dropped and one ``resync`` notification takes its place.
    """

    def __init__(self, hub: Hub, channels: Iterable[str], *, maxsize: int = 1000) -> None:
        self.channels = frozenset(check_channel(c) for c in channels)
        if not self.channels:
            raise ValueError("subscribe to at least one channel")
        self._hub = hub
        self._queue: asyncio.Queue[Notification | None] = asyncio.Queue(maxsize=maxsize)
        self._started = False
        self._closed = False
        self.after_id = 0  # SQLite: the last notification id seen

    async def start(self) -> Subscription:
        if not self._started:
            self._started = True
            await self._hub.add(self)
        return self

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._started:
            await self._hub.remove(self)
        self._put(None)

    async def __aenter__(self) -> Subscription:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Notification:
        if not self._started:
            await self.start()
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        return item

    def deliver(self, note: Notification) -> None:
        if note.channel in self.channels and not self._closed:
            self._put(note)

    def _put(self, item: Notification | None) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            channel = item.channel if item is not None else next(iter(self.channels))
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(Notification(channel=channel, resync=True))
            if item is None:
                self._queue.put_nowait(None)


class Hub:
    """Keeps the live subscriptions of one store; the backend feeds it."""

    def __init__(self) -> None:
        self.subs: set[Subscription] = set()

    @property
    def channels(self) -> set[str]:
        return set().union(*(s.channels for s in self.subs)) if self.subs else set()

    async def add(self, sub: Subscription) -> None:
        self.subs.add(sub)

    async def remove(self, sub: Subscription) -> None:
        self.subs.discard(sub)

    def dispatch(self, note: Notification) -> None:
        for sub in list(self.subs):
            sub.deliver(note)

    async def close(self) -> None:
        for sub in list(self.subs):
            await sub.aclose()
        self.subs.clear()
