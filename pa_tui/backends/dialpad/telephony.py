"""``DialpadTelephony``: the :class:`~pa_tui.backends.base.Telephony` protocol over Dialpad API v2.

The live path is :meth:`DialpadTelephony.events`. It

1. reuses the websocket pa-tui created before (``websocket_id``) or creates
   one with a fresh random secret, so every frame arrives as an HS256 JWT;
2. makes sure a call subscription exists for this agent's user (scope
   ``"user"``; ``"company"`` for a wallboard) and an agent-status subscription;
3. connects to the websocket's signed URL, and shortly before that URL
   expires fetches a fresh one (GET on the websocket), opens the new
   connection, and only then retires the old one, so no event falls between;
4. on a drop, reconnects with exponential backoff and jitter, re-checking the
   websocket and the subscriptions first;
5. yields :class:`~pa_tui.backends.base.ConnectionState` changes and parsed
   domain events. Identical frames (seen on two connections while they
   overlap, or re-sent after a reconnect) are yielded once. A frame that
   cannot be parsed is logged, without PHI, and skipped. A rejected API key
   ends the stream with ``AUTH_FAILED`` and the fix;
6. after every (re)connection, reconciles the calls the console believes
   active (:meth:`DialpadTelephony.reconcile`): one ``GET /call/{id}`` each,
   most recent first, within Dialpad's 10-a-minute budget (the rest later).
   A call that ended while the stream was down is reported ended by a
   synthetic ``hangup`` event; a call that started meanwhile shows up with its
   next event.

Webhook mode (``event_mode="webhook"``) sets up (or reuses) a webhook at
``webhook_url`` with the secret the inbound listener verifies, subscribes it
the same way, and reads events from the ``asyncio.Queue`` the App feeds from
the listener (domain events, or raw frames it decodes itself).

The rest of the :class:`~pa_tui.backends.base.Telephony` protocol is REST:
dial, transfer (``custom_data`` carries pa-tui's hand-off reference), hang up,
duty status, screen pop, wrap-up labels, callback requests, the transfer list
(cached briefly: users with their duty status, call centers with their queue)
and looking up a call. Every request is within the client's rate budgets;
call state is never polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import quote, urlsplit

import jwt
import websockets
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from pa_tui.backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    ConnectionState,
    LinkStatus,
    NotFound,
    PermissionDenied,
    RateLimited,
    StreamNotice,
    TelephonyEvent,
    TransferTarget,
    Unavailable,
)
from pa_tui.backends.dialpad.client import AUTH_FIX, TRANSFER_STATES, BudgetExhausted, DialpadClient, TransferState
from pa_tui.backends.dialpad.events import EventParseError, ParseFailure, parse_frame
from pa_tui.backends.dialpad.models import CallSubscription, DialpadCall, DialpadWebhook, DialpadWebsocket
from pa_tui.domain.agents import Agent, AgentStatus, AgentStatusEvent, CallCenter, DutyStatus
from pa_tui.domain.calls import Call, CallBook, CallEvent, CallPhase, CallState, PartyType, fold
from pa_tui.domain.phones import PhoneNumber, PhoneNumberError, parse_phone, try_parse_phone

log = logging.getLogger(__name__)

# The call states a console needs: its lifecycle, not transcripts, recaps or CSAT.
DEFAULT_CALL_STATES: Final[tuple[str, ...]] = (
    "preanswer",
    "calling",
    "ringing",
    "queued",
    "connected",
    "hold",
    "merged",
    "parked",
    "takeover",
    "voicemail",
    "missed",
    "blocked",
    "hangup",
    "postcall",
)
DOCUMENTED_URL_LIFETIME: Final = 3600.0  # Dialpad: "The url will be expired after 1 hour"
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


def new_secret() -> str:
    """A random websocket secret (HS256 key): 256 bits, URL-safe text."""
    return secrets.token_urlsafe(32)


class _RedactTokens(logging.Filter):
    """The websockets library logs request lines; the URL's token is a credential."""

    _TOKEN = re.compile(r"/events/[^\s'\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logged as is
            return True
        if "/events/" in message:
            record.msg, record.args = self._TOKEN.sub("/events/<redacted>", message), None
        return True


_wire_log = logging.getLogger("pa_tui.backends.dialpad.wire")
_wire_log.addFilter(_RedactTokens())


# --------------------------------------------------------------------------- queue items
@dataclass(frozen=True)
class _Frame:
    link: int
    data: str | bytes


@dataclass(frozen=True)
class _Closed:
    link: int
    code: int | None


@dataclass(frozen=True)
class _Synthetic:
    """An event pa-tui made up from what Dialpad's REST API says (reconciliation)."""

    event: CallEvent


@dataclass(frozen=True)
class _Inbound:
    """Something the App handed over from the webhook listener."""

    item: Any


_STOP: Final = object()
_REFRESH: Final = object()


@dataclass
class _Link:
    id: int
    conn: ClientConnection
    reader: asyncio.Task[None]
    expires_at: float  # monotonic


class _WebsocketGone(Exception):
    """The websocket we were using no longer exists (deleted in Dialpad): set up a new one."""


class _StreamAuthFailed(Exception):
    def __init__(self, error: BackendError) -> None:
        super().__init__(error.title)
        self.error = error


# Frames that suggest tampering or a misconfigured secret, not just a newer Dialpad.
_SERIOUS_FAILURES = frozenset(
    {ParseFailure.BAD_SIGNATURE, ParseFailure.UNSIGNED, ParseFailure.UNEXPECTED_JWT, ParseFailure.EXPIRED}
)


class DialpadTelephony:
    """Dialpad as the console's telephony. Owns ``client`` and closes it in :meth:`aclose`.

    Event delivery: ``event_mode="websocket"`` (default) or ``"webhook"`` with
    ``webhook_url`` (where Dialpad should POST; the inbound listener's
    ``/dialpad/events``), ``webhook_secret`` (the secret that listener verifies
    with; generated when not given, see :attr:`webhook_secret`) and
    ``webhook_events`` (the queue the App feeds with what the listener parsed).

    ``active_calls``: returns the ids of the calls the console believes active,
    most recent first; they are reconciled after every reconnect.
    ``saved_state``: what :meth:`saved_state` returned last run; its
    websocket / webhook is reused, and if the user or the API key changed,
    :meth:`cleanup_stale` runs once during setup.
    """

    def __init__(
        self,
        client: DialpadClient,
        *,
        user_id: str,
        subscription_scope: Literal["user", "company"] = "user",
        secret_factory: Callable[[], str] = new_secret,
        mini_dialer_client_id: str | None = None,
        open_with: Literal["browser", "app"] = "browser",
        sandbox: bool = False,
        websocket_id: str | None = None,
        call_states: Sequence[str] | None = DEFAULT_CALL_STATES,
        agent_status_events: bool = True,
        keep_websocket: bool = True,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        refresh_margin: float = 120.0,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        dedupe_size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        event_mode: Literal["websocket", "webhook"] = "websocket",
        webhook_url: str | None = None,
        webhook_id: str | None = None,
        webhook_secret: str | SecretStr | None = None,
        webhook_events: asyncio.Queue[Any] | None = None,
        active_calls: Callable[[], Sequence[str]] | None = None,
        saved_state: Mapping[str, Any] | None = None,
        outbound_caller_id: str | None = None,
        transfer_state: TransferState | None = None,
        targets_ttl: float = 15.0,
        reconcile_on_connect: bool = True,
    ) -> None:
        if subscription_scope not in ("user", "company"):
            raise ValueError("subscription_scope must be 'user' or 'company'")
        if not str(user_id).strip():
            raise ValueError("user_id is required")
        if event_mode not in ("websocket", "webhook"):
            raise ValueError("event_mode must be 'websocket' or 'webhook'")
        if event_mode == "webhook":
            if not webhook_url or urlsplit(webhook_url).scheme not in ("http", "https"):
                raise ValueError("webhook mode needs webhook_url, an http(s) URL Dialpad can reach")
            if webhook_events is None:
                raise ValueError("webhook mode needs webhook_events, the queue the inbound listener feeds")
        if transfer_state is not None and transfer_state not in TRANSFER_STATES:
            raise ValueError(f"transfer_state must be one of {', '.join(TRANSFER_STATES)}")
        saved = dict(saved_state or {})
        self._client = client
        self.user_id = str(user_id).strip()
        self.subscription_scope = subscription_scope
        self.event_mode = event_mode
        self._secret_factory = secret_factory
        self._mini_dialer_client_id = mini_dialer_client_id
        self._open_with = open_with
        self._sandbox = sandbox
        self._websocket_id = websocket_id or _saved_id(saved.get("websocket_id"))
        self._webhook_id = webhook_id or _saved_id(saved.get("webhook_id"))
        self._webhook_url = webhook_url
        self._webhook_secret = (
            webhook_secret
            if isinstance(webhook_secret, SecretStr)
            else SecretStr(webhook_secret or secret_factory())
            if event_mode == "webhook"
            else None
        )
        self._webhook_events = webhook_events
        self._call_states = tuple(call_states) if call_states else None
        self._agent_status_events = agent_status_events
        self._keep_websocket = keep_websocket
        self._backoff_initial = max(0.01, backoff_initial)
        self._backoff_max = max(self._backoff_initial, backoff_max)
        self._refresh_margin = max(0.0, refresh_margin)
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._dedupe_size = max(16, dedupe_size)
        self._clock = clock
        self._active_calls = active_calls
        self._outbound_caller_id = outbound_caller_id
        self._transfer_state = transfer_state
        self._targets_ttl = max(0.0, targets_ttl)
        self._reconcile_on_connect = reconcile_on_connect

        # A different user or key than last run: pa-tui's old subscriptions are stale.
        self._stale_check = bool(saved) and (
            _saved_id(saved.get("user_id")) not in (None, self.user_id)
            or saved.get("key_id") not in (None, client.key_id)
            or saved.get("subscription_scope") not in (None, subscription_scope)
        )
        self._stale_websockets = [w for w in (_saved_id(saved.get("websocket_id")),) if w] if self._stale_check else []

        self._me: Agent | None = None
        self._secret: SecretStr | None = None
        self._url: SecretStr | None = None
        self._url_lifetime = DOCUMENTED_URL_LIFETIME
        self._url_expires_mono = 0.0
        self._url_taken_mono: float | None = None
        self._url_expires_at: datetime | None = None
        self._created_websocket = False
        self._created_webhook = False
        self._created_call_subs: list[str] = []
        self._created_agent_subs: list[str] = []
        self._notes: dict[str, str] = {}
        self._links: dict[int, _Link] = {}
        self._link_ids = 0
        self._retiring: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[Any] | None = None
        self._pending: list[CallEvent] = []  # synthetic events made while no stream was running
        self._refresh_handle: asyncio.TimerHandle | None = None
        self._stop = asyncio.Event()
        self._closed = False
        self._streaming = False
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._book = CallBook(max_ended=200)  # what this console has seen, for leg look-ups and reconciling
        self._reconcile_backlog: list[str] = []
        self._reconcile_handle: asyncio.TimerHandle | None = None
        self._reconcile_lock = asyncio.Lock()
        self._targets: tuple[float, list[TransferTarget]] | None = None
        self._targets_lock = asyncio.Lock()
        self._last_state: ConnectionState | None = None
        self._last_event_at: datetime | None = None
        self._events_seen = 0
        self._duplicates = 0
        self.reconnects = 0  # connections opened after the first (refreshes and recoveries)

    def __repr__(self) -> str:
        return f"DialpadTelephony(user_id={self.user_id!r}, scope={self.subscription_scope!r}, mode={self.event_mode!r})"

    @property
    def websocket_id(self) -> str | None:
        """The websocket in use; store it so the next start reuses it rather than creating another."""
        return self._websocket_id

    @property
    def webhook_id(self) -> str | None:
        """The webhook in use (webhook mode)."""
        return self._webhook_id

    @property
    def webhook_secret(self) -> SecretStr | None:
        """The secret Dialpad signs webhook events with; give the same one to the inbound listener."""
        return self._webhook_secret

    def saved_state(self) -> dict[str, str | None]:
        """What to keep for the next start (no secrets: the key appears only as a one-way fingerprint)."""
        return {
            "websocket_id": self._websocket_id,
            "webhook_id": self._webhook_id,
            "user_id": self.user_id,
            "key_id": self._client.key_id,
            "subscription_scope": self.subscription_scope,
        }

    # ================================================================== request/response
    async def me(self) -> Agent:
        user = await self._client.get_user(self.user_id)
        phone = next(
            (p for p in (try_parse_phone(n) for n in user.phone_numbers) if isinstance(p, PhoneNumber)), None
        )
        self._me = Agent(
            id=user.id,
            name=user.name,
            email=user.emails[0] if user.emails else None,
            phone=phone,
            call_center_ids=user.call_center_ids,
        )
        return self._me

    async def agent_status(self, agent_id: str) -> AgentStatus:
        info = await self._client.get_duty_status(agent_id)
        centers: tuple[str, ...] = ()
        if self._me is not None and self._me.id == info.user_id and info.status is not DutyStatus.UNAVAILABLE:
            centers = self._me.call_center_ids
        return AgentStatus(
            agent_id=info.user_id,
            status=info.status,
            reason=info.reason,
            since=info.status_started,
            call_center_ids=centers,
        )

    async def set_status(self, agent_id: str, *, on_duty: bool, reason: str | None = None) -> None:
        await self._client.set_duty_status(agent_id, on_duty, reason)

    async def set_status_message(self, agent_id: str, message: str, *, expiration: int | None = None) -> None:
        """The agent's Dialpad status message (``expiration`` in seconds)."""
        await self._client.set_user_status(agent_id, message, expiration=expiration)

    async def call_centers(self) -> list[CallCenter]:
        return await self._client.list_call_centers()

    def mini_dialer_url(self) -> str | None:
        """The mini dialer in the browser (``dialpad.com/apps/<client id>``), or the desktop app's
        launch URL when the site prefers the app (``open_with="app"``)."""
        if self._open_with == "app":
            return "dialpad://"
        if not self._mini_dialer_client_id:
            return None
        host = "https://sandbox.dialpad.com" if self._sandbox else "https://dialpad.com"
        return f"{host}/apps/{quote(self._mini_dialer_client_id.strip(), safe='')}"

    async def dial(
        self,
        agent_id: str,
        number: PhoneNumber,
        *,
        custom_data: str | None = None,
        outbound_caller_id: str | None = None,
        call_center_id: str | None = None,
    ) -> str:
        """Ring the agent's Dialpad devices and dial ``number``. Returns the call id.

        At most 5 a minute (Dialpad's limit): a sixth raises ``RateLimited`` before anything is sent.
        ``call_center_id``: place the call as that call center (its number is shown).
        """
        if not isinstance(number, PhoneNumber):
            raise BadRequest("There is no number to call", "Type the number to call, with its area code.")
        return await self._client.initiate_call(
            agent_id,
            number.e164,
            outbound_caller_id=outbound_caller_id or self._outbound_caller_id,
            group_id=call_center_id,
            group_type="callcenter" if call_center_id else None,
            custom_data=custom_data,
        )

    async def transfer(self, call_id: str, target: TransferTarget, *, custom_data: str | None = None) -> None:
        """Hand the call to a user, a call center or a number; ``custom_data`` (pa-tui's hand-off
        reference) travels with the call's events to the receiving console."""
        leg = self._own_leg(call_id)
        kwargs: dict[str, Any] = {"transfer_state": self._transfer_state, "custom_data": custom_data}
        if target.kind == "user":
            kwargs["user_id"] = target.id
        elif target.kind == "callcenter":
            kwargs["call_center_id"] = target.id
        elif target.kind == "number":
            try:
                parsed = parse_phone(target.id)
            except PhoneNumberError:
                parsed = None
            if not isinstance(parsed, PhoneNumber):
                raise BadRequest("The number to transfer to is not a phone number", "Check the number and try again.")
            kwargs["number"] = parsed.e164
        else:
            raise BadRequest(f"pa-tui cannot transfer a call to a {target.kind!r}")
        await self._client.transfer(leg, **kwargs)

    async def hangup(self, call_id: str) -> None:
        await self._client.hangup(self._own_leg(call_id))

    async def screen_pop(self, agent_id: str, uri: str) -> None:
        """Open ``uri`` (the chart) in the agent's Dialpad app. 5 a minute (Dialpad's limit)."""
        await self._client.screen_pop(agent_id, uri)

    async def set_wrapup_labels(self, call_id: str, labels: Sequence[str]) -> None:
        """Set the call's wrap-up codes (Dialpad call labels)."""
        await self._client.set_call_labels(self._own_leg(call_id), labels)

    async def request_callback(self, call_center_id: str, number: PhoneNumber) -> int | None:
        """Queue a call back to ``number`` in the call center; returns its place in the queue."""
        if not isinstance(number, PhoneNumber):
            raise BadRequest("There is no number to call back", "Type the number, with its area code.")
        return await self._client.request_callback(call_center_id, number.e164)

    async def transfer_targets(self) -> list[TransferTarget]:
        """Colleagues with their duty status (available first) and call centers with their queue.

        Cached for ``targets_ttl`` seconds so opening the transfer screen twice costs nothing.
        """
        async with self._targets_lock:
            now = self._clock()
            if self._targets is not None and now - self._targets[0] < self._targets_ttl:
                return list(self._targets[1])
            users = await self._client.list_users(state="active")
            centers = await self._client.list_call_centers()
            people: list[TransferTarget] = []
            for user in users:
                if user.id == self.user_id:
                    continue
                status = user.on_duty_status
                if status is None and user.is_on_duty is not None:
                    status = "available" if user.is_on_duty else "unavailable"
                people.append(
                    TransferTarget(
                        kind="user",
                        id=user.id,
                        name=user.name,
                        status=DutyStatus.parse(status).value if status else None,
                    )
                )
            rank = {DutyStatus.AVAILABLE.value: 0, None: 2}
            people.sort(key=lambda t: (rank.get(t.status, 1), t.name.lower()))
            queues: list[TransferTarget] = []
            for center in centers:
                status = None
                try:
                    status = await self._client.call_center_status(center.id)
                except (BudgetExhausted, NotFound, Unavailable) as exc:
                    log.info("call center %s status unavailable: %s", center.id, type(exc).__name__)
                queues.append(
                    TransferTarget(
                        kind="callcenter",
                        id=center.id,
                        name=center.name,
                        status=status.availability if status else None,
                        waiting=status.pending if status else None,
                    )
                )
            targets = people + queues
            self._targets = (self._clock(), targets)
            return list(targets)

    async def get_call(self, call_id: str) -> Call | None:
        """The call as Dialpad reports it now (``None`` if Dialpad has no such call). 10 a minute."""
        try:
            info = await self._client.get_call(call_id)
        except NotFound:
            return None
        return fold(None, info.event)

    # ================================================================== reconciliation
    async def reconcile(self, active_call_ids: Sequence[str] | None = None) -> list[Call]:
        """Check with Dialpad the calls the console believes active (most recent first).

        ``active_call_ids`` defaults to what the ``active_calls`` callable returns; the
        calls this telephony saw and believes active are always added. Each costs one
        ``GET /call/{id}`` from Dialpad's 10-a-minute budget; what does not fit is
        checked as soon as the budget allows. A call that has ended is reported by a
        synthetic ``hangup`` event on :meth:`events` (one per leg still open); a call
        still up whose state moved on is reported with Dialpad's current state.
        Returns the calls checked, as this telephony now sees them.
        """
        ids = self._ids_to_reconcile(active_call_ids)
        if not ids:
            return []
        async with self._reconcile_lock:
            return await self._reconcile(ids)

    def _ids_to_reconcile(self, given: Sequence[str] | None) -> list[str]:
        if given is None and self._active_calls is not None:
            try:
                given = list(self._active_calls())
            except Exception:  # noqa: BLE001 - the App's callable must not break the stream
                log.warning("active_calls() failed; reconciling only the calls this stream saw", exc_info=True)
                given = []
        local = sorted(
            self._book.active(), key=lambda c: c.updated_at or datetime.min.replace(tzinfo=UTC), reverse=True
        )
        keys: dict[str, str] = {}
        for raw in [*(given or ()), *(c.id for c in local), *self._reconcile_backlog]:
            cid = str(raw).strip()
            if not cid:
                continue
            key = self._book.leg_index.get(cid, cid)
            keys.setdefault(key, cid)
        self._reconcile_backlog = []
        return list(keys.values())

    async def _reconcile_backlog_now(self) -> list[Call]:
        """Only the calls a full pass could not check (never a re-check of the others: no polling)."""
        ids, self._reconcile_backlog = list(self._reconcile_backlog), []
        if not ids:
            return []
        async with self._reconcile_lock:
            return await self._reconcile(ids)

    async def _reconcile(self, ids: list[str]) -> list[Call]:
        checked: list[Call] = []
        for index, cid in enumerate(ids):
            try:
                info: DialpadCall | None = await self._client.get_call(cid)
            except BudgetExhausted as exc:
                self._defer_reconcile(ids[index:], exc.retry_after)
                break
            except NotFound:
                info = None  # Dialpad no longer knows it: it is not going on
            except (AuthError, PermissionDenied) as exc:
                log.warning("reconciling calls stopped: %s", exc.title)
                break
            except BackendError as exc:
                log.info("reconciling calls paused: %s", exc.title)
                self._defer_reconcile(ids[index:], self._backoff(2))
                break
            call = self._settle(cid, info)
            if call is not None:
                checked.append(call)
        return checked

    def _defer_reconcile(self, ids: list[str], delay: float) -> None:
        self._reconcile_backlog = list(dict.fromkeys([*self._reconcile_backlog, *ids]))
        if self._closed or self._reconcile_handle is not None:
            return
        log.info("%d call(s) left to reconcile in %.0f s (Dialpad's look-up budget)", len(self._reconcile_backlog), delay)

        def fire() -> None:
            self._reconcile_handle = None
            self._spawn(self._reconcile_backlog_now())

        self._reconcile_handle = asyncio.get_running_loop().call_later(max(0.05, delay), fire)

    def _settle(self, cid: str, info: DialpadCall | None) -> Call | None:
        """Compare Dialpad's view of ``cid`` with ours; publish what changed. Returns the call."""
        key = self._book.leg_index.get(cid) or (info.event.key if info is not None else cid)
        known = self._book.calls.get(key)
        now = datetime.now(UTC)
        if info is None or info.event.state.phase is CallPhase.ENDED:
            when = (info.event.date_ended if info is not None else None) or now
            open_legs = [leg for _, leg in (known.leg_states if known else ()) if leg.state.phase is not CallPhase.ENDED]
            events: list[CallEvent] = []
            if known is None or (not known.is_ended and not open_legs):
                snapshot = info.event if info is not None else None
                events.append(
                    CallEvent(
                        call_id=cid,
                        entry_point_call_id=key,
                        state=CallState.HANGUP,
                        direction=snapshot.direction if snapshot else (known.direction if known else "unknown"),
                        external_number=snapshot.external_number if snapshot else None,
                        target=snapshot.target if snapshot else None,
                        event_timestamp=when,
                        date_ended=when,
                    )
                )
            for leg in open_legs:
                at = max(when, leg.at + timedelta(milliseconds=1))
                events.append(
                    CallEvent(
                        call_id=leg.call_id,
                        entry_point_call_id=key,
                        state=CallState.HANGUP,
                        direction=known.direction if known else "unknown",
                        target=leg.target,
                        event_timestamp=at,
                        date_ended=at,
                    )
                )
            for event in events:
                self._book.apply(event)
                self._publish(event)
            if events:
                log.info("call %s ended while the event stream was away; reported ended", key)
        elif known is not None:
            legs = dict(known.leg_states)
            ours = legs.get(cid)
            theirs = info.event
            if (
                ours is not None
                and theirs.state.moves_lifecycle
                and theirs.state is not ours.state
                and theirs.event_timestamp > ours.at
            ):
                self._book.apply(theirs)
                self._publish(theirs)
        call = self._book.calls.get(key)
        if call is None and info is not None:
            call = fold(None, info.event)
        return call

    def _publish(self, event: CallEvent) -> None:
        if self._queue is not None:
            self._queue.put_nowait(_Synthetic(event))
        else:
            self._pending.append(event)

    def _own_leg(self, call_id: str) -> str:
        """The leg of ``call_id`` this agent is on (what Dialpad's call actions expect), else ``call_id``."""
        key = self._book.leg_index.get(str(call_id))
        call = self._book.calls.get(key) if key else None
        if call is None:
            return str(call_id)
        mine = [
            leg
            for _, leg in call.leg_states
            if leg.target is not None
            and leg.target.type is PartyType.USER
            and leg.target.id == self.user_id
            and leg.state.phase is not CallPhase.ENDED
        ]
        return max(mine, key=lambda leg: leg.at).call_id if mine else str(call_id)

    # ================================================================== housekeeping
    async def cleanup_stale(
        self, *, websocket_ids: Sequence[str] = (), webhook_ids: Sequence[str] = ()
    ) -> dict[str, list[str]]:
        """Delete what pa-tui no longer needs: on its own endpoint, subscriptions for another user or
        scope (the user id changed) and duplicates; and the listed old websockets / webhooks (made
        with a previous key or user). Returns the ids deleted, by kind."""
        removed: dict[str, list[str]] = {"call_subscriptions": [], "agent_status_subscriptions": [], "websockets": [], "webhooks": []}
        endpoint = self._webhook_id if self.event_mode == "webhook" else self._websocket_id
        if endpoint:
            kept = False
            for sub in await self._client.list_call_subscriptions():
                if sub.endpoint_id != endpoint:
                    continue
                if not kept and self._wanted(sub):
                    kept = True
                    continue
                with contextlib.suppress(NotFound):
                    await self._client.delete_call_subscription(sub.id)
                removed["call_subscriptions"].append(sub.id)
            try:
                agent_subs = await self._client.list_agent_status_subscriptions()
            except PermissionDenied:
                agent_subs = []
            kept = not self._agent_status_events
            for agent_sub in agent_subs:
                if agent_sub.endpoint_id != endpoint:
                    continue
                if not kept and agent_sub.enabled:
                    kept = True
                    continue
                with contextlib.suppress(NotFound):
                    await self._client.delete_agent_status_subscription(agent_sub.id)
                removed["agent_status_subscriptions"].append(agent_sub.id)
        for wid in dict.fromkeys(websocket_ids):
            if wid and wid != self._websocket_id:
                with contextlib.suppress(NotFound):
                    await self._client.delete_websocket(wid)
                    removed["websockets"].append(wid)
        for hid in dict.fromkeys(webhook_ids):
            if hid and hid != self._webhook_id:
                with contextlib.suppress(NotFound):
                    await self._client.delete_webhook(hid)
                    removed["webhooks"].append(hid)
        gone = set(removed["call_subscriptions"]) | set(removed["agent_status_subscriptions"])
        self._created_call_subs = [s for s in self._created_call_subs if s not in gone]
        self._created_agent_subs = [s for s in self._created_agent_subs if s not in gone]
        if any(removed.values()):
            log.info("removed stale Dialpad setup: %s", {k: len(v) for k, v in removed.items() if v})
        return removed

    def track_active_calls(self, source: Callable[[], Sequence[str]]) -> None:
        """Tell the stream which calls the console believes active, for reconciling after a gap."""
        self._active_calls = source

    def diagnostics(self) -> dict[str, Any]:
        """The event stream's state, the websocket URL's age and expiry, and the rate budgets left."""
        now = self._clock()
        state = self._last_state
        return {
            "mode": self.event_mode,
            "status": state.status.value if state else None,
            "detail": state.detail if state else "",
            "user_id": self.user_id,
            "subscription_scope": self.subscription_scope,
            "websocket_id": self._websocket_id,
            "webhook_id": self._webhook_id,
            "webhook_url": self._webhook_url,
            "websocket_url_age_s": round(now - self._url_taken_mono, 1) if self._url_taken_mono is not None else None,
            "websocket_url_expires_in_s": round(self._url_expires_mono - now, 1) if self._url is not None else None,
            "websocket_url_expires_at": self._url_expires_at.isoformat() if self._url_expires_at else None,
            "websocket_url_lifetime_s": self._url_lifetime if self._url is not None else None,
            "connections_open": len(self._links),
            "reconnects": self.reconnects,
            "events": self._events_seen,
            "duplicates_dropped": self._duplicates,
            "last_event_at": self._last_event_at.isoformat() if self._last_event_at else None,
            "calls_to_reconcile": len(self._reconcile_backlog),
            "budgets": {
                name: {
                    "remaining": b.remaining,
                    "limit": b.limit,
                    "period_s": b.period,
                    "retry_in_s": b.retry_in,
                    "blocked_by_dialpad": b.blocked_by_dialpad,
                }
                for name, b in self._client.budgets().items()
            },
        }

    # ================================================================== lifecycle
    async def aclose(self) -> None:
        """Stop the event stream, close connections, optionally delete what we created, close the client."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._queue is not None:
            self._queue.put_nowait(_STOP)
        if self._reconcile_handle is not None:
            self._reconcile_handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_all_links()
        endpoint = self._webhook_id if self._created_webhook else self._websocket_id if self._created_websocket else None
        if not self._keep_websocket and endpoint:
            for sub_id in self._created_call_subs:
                with contextlib.suppress(BackendError):
                    await self._client.delete_call_subscription(sub_id)
            for sub_id in self._created_agent_subs:
                with contextlib.suppress(BackendError):
                    await self._client.delete_agent_status_subscription(sub_id)
            with contextlib.suppress(BackendError):
                if self._created_webhook:
                    await self._client.delete_webhook(endpoint)
                else:
                    await self._client.delete_websocket(endpoint)
        await self._client.aclose()

    def _spawn(self, coro: Any) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background Dialpad task failed: %s", type(task.exception()).__name__)

    # ================================================================== event stream
    async def events(self) -> AsyncIterator[TelephonyEvent]:
        """Connection states and events, until :meth:`aclose` or a rejected key."""
        if self._streaming:
            raise RuntimeError("events() is already being consumed")
        self._streaming = True
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue = queue
        for event in self._pending:
            queue.put_nowait(_Synthetic(event))
        self._pending = []
        inner = self._webhook_stream(queue) if self.event_mode == "webhook" else self._websocket_stream(queue)
        try:
            async for item in inner:
                if isinstance(item, CallEvent):
                    self._book.apply(item)
                    self._events_seen += 1
                    self._last_event_at = datetime.now(UTC)
                elif isinstance(item, AgentStatusEvent):
                    self._events_seen += 1
                    self._last_event_at = datetime.now(UTC)
                elif isinstance(item, ConnectionState):
                    self._last_state = item
                yield item
        finally:
            await inner.aclose()
            self._streaming = False
            self._queue = None

    def _after_connect(self) -> None:
        if self._reconcile_on_connect:
            self._spawn(self.reconcile())

    # ------------------------------------------------------------------ websocket mode
    async def _websocket_stream(self, queue: asyncio.Queue[Any]) -> AsyncIterator[TelephonyEvent]:  # noqa: C901
        """The websocket state machine, kept in one place."""
        failures = 0  # consecutive failures, for the backoff
        setup_needed = True
        current: int | None = None
        opened_before = False
        connected_since: datetime | None = None
        try:
            yield ConnectionState(status=LinkStatus.CONNECTING, detail="Connecting to Dialpad's event stream")
            while not self._closed:
                # ---------------------------------------------------------- endpoint + fresh URL
                try:
                    if setup_needed:
                        await self._setup()
                        setup_needed = False
                    elif self._clock() >= self._refresh_due():
                        await self._refresh_url()
                    link = await self._open(queue)
                except _StreamAuthFailed as exc:
                    yield self._auth_failed(exc.error)
                    return
                except _WebsocketGone:
                    log.info("websocket %s is gone; creating a new one", self._websocket_id)
                    self._websocket_id = None
                    setup_needed = True
                    failures += 1
                    if failures > 1 and await self._pause(self._backoff(failures - 1)):
                        break
                    continue
                except _HandshakeRejected as exc:
                    failures += 1
                    if exc.status == 404:
                        setup_needed = True
                    else:
                        self._url_expires_mono = 0.0  # token refused: fetch a fresh URL next
                    delay = self._backoff(failures - 1) if failures > 1 else 0.0
                    if delay:
                        yield self._reconnecting(delay, "Dialpad refused the event stream's URL; fetching a new one")
                        if await self._pause(delay):
                            break
                    continue
                except BackendError as exc:
                    failures += 1
                    delay = self._backoff(failures - 1)
                    if isinstance(exc, RateLimited):
                        delay = max(delay, exc.retry_after)
                    yield self._reconnecting(delay, str(exc))
                    if await self._pause(delay):
                        break
                    continue

                failures = 0
                if opened_before:
                    self.reconnects += 1
                opened_before = True
                current = link.id
                connected_since = datetime.now(UTC)
                yield self._connected(connected_since)
                self._after_connect()  # reconcile: calls may have ended or started while we were away

                # ---------------------------------------------------------- pump frames
                dropped = False
                self._schedule_refresh(queue)
                while not self._closed:
                    item = await queue.get()
                    if item is _STOP:
                        break
                    if item is _REFRESH:
                        if self._clock() < self._refresh_due() - 0.01:
                            self._schedule_refresh(queue)  # a stale timer: the URL was renewed meanwhile
                            continue
                        try:
                            new_link = await self._replace_link(queue)
                        except _StreamAuthFailed as exc:
                            yield self._auth_failed(exc.error)
                            return
                        self._schedule_refresh(queue)
                        if new_link is not None:
                            current = new_link.id
                            self.reconnects += 1
                            yield self._connected(connected_since)
                        continue
                    if isinstance(item, _Closed):
                        if item.link == current:
                            self._links.pop(item.link, None)
                            dropped = True
                            log.info("event stream dropped (close code %s)", item.code)
                            break
                        continue  # a retired connection finished closing
                    if isinstance(item, _Frame):
                        event = self._decode(item.data)
                        if event is not None:
                            yield event
                    elif isinstance(item, _Synthetic):
                        yield item.event
                if not dropped:
                    break
                # ---------------------------------------------------------- recover from a drop
                current = None
                failures += 1
                delay = self._backoff(failures - 1)
                yield self._reconnecting(delay, "Lost Dialpad's event stream; reconnecting")
                if await self._pause(delay):
                    break
                setup_needed = True  # re-check the websocket and resubscribe if needed
            yield ConnectionState(status=LinkStatus.STOPPED, detail="Dialpad event stream stopped")
        finally:
            if self._refresh_handle is not None:
                self._refresh_handle.cancel()
                self._refresh_handle = None
            await self._close_all_links()

    # ------------------------------------------------------------------ webhook mode
    async def _webhook_stream(self, queue: asyncio.Queue[Any]) -> AsyncIterator[TelephonyEvent]:
        """Set up the webhook and its subscriptions, then pass on what the listener hands over."""
        assert self._webhook_events is not None
        yield ConnectionState(status=LinkStatus.CONNECTING, detail="Setting up Dialpad's webhook")
        failures = 0
        while not self._closed:
            try:
                await self._setup_webhook()
                break
            except _StreamAuthFailed as exc:
                yield self._auth_failed(exc.error)
                return
            except BackendError as exc:
                failures += 1
                delay = self._backoff(failures - 1)
                if isinstance(exc, RateLimited):
                    delay = max(delay, exc.retry_after)
                yield self._reconnecting(delay, str(exc))
                if await self._pause(delay):
                    break
        if self._closed:
            yield ConnectionState(status=LinkStatus.STOPPED, detail="Dialpad event stream stopped")
            return
        source = self._webhook_events
        forwarder = asyncio.get_running_loop().create_task(self._forward(source, queue), name="dialpad-webhook-forward")
        try:
            yield ConnectionState(
                status=LinkStatus.CONNECTED,
                detail=" ".join(["Receiving Dialpad events by webhook.", *self._notes.values()]),
                connected_since=datetime.now(UTC),
            )
            self._after_connect()
            while not self._closed:
                item = await queue.get()
                if item is _STOP:
                    break
                if isinstance(item, _Synthetic):
                    yield item.event
                elif isinstance(item, _Inbound):
                    event = self._accept(item.item)
                    if event is not None:
                        yield event
            yield ConnectionState(status=LinkStatus.STOPPED, detail="Dialpad event stream stopped")
        finally:
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarder

    @staticmethod
    async def _forward(source: asyncio.Queue[Any], queue: asyncio.Queue[Any]) -> None:
        while True:
            queue.put_nowait(_Inbound(await source.get()))

    def _accept(self, item: Any) -> TelephonyEvent | None:
        """One item from the listener: a parsed event (deduplicated here) or a raw signed frame."""
        if isinstance(item, str | bytes | bytearray):
            return self._decode(bytes(item) if isinstance(item, bytearray) else item, self._webhook_secret)
        if isinstance(item, CallEvent):
            key = repr(item.dedupe_key).encode()
        elif isinstance(item, AgentStatusEvent):
            key = repr((item.agent_id, item.status.value, item.raw_status, item.event_timestamp.timestamp())).encode()
        else:
            log.debug("ignored a %s from the webhook queue", type(item).__name__)
            return None
        if not self._first_time(key):
            return None
        return item

    async def _setup_webhook(self) -> None:
        """Reuse pa-tui's webhook (by id, else by URL) or create one; then our subscriptions."""
        assert self._webhook_url is not None and self._webhook_secret is not None
        secret = self._webhook_secret.get_secret_value()
        try:
            hook: DialpadWebhook | None = None
            if self._webhook_id:
                try:
                    hook = await self._client.get_webhook(self._webhook_id)
                except NotFound:
                    log.info("stored webhook %s no longer exists", self._webhook_id)
                    self._webhook_id = None
            if hook is None:
                hook = next((h for h in await self._client.list_webhooks() if h.hook_url == self._webhook_url), None)
            if hook is None:
                hook = await self._client.create_webhook(self._webhook_url, secret)
                self._created_webhook = True
                log.info("created webhook %s", hook.id)
            elif hook.hook_url != self._webhook_url or hook.secret is None or hook.secret.get_secret_value() != secret:
                hook = await self._client.update_webhook(hook.id, hook_url=self._webhook_url, secret=secret)
                log.info("updated webhook %s (address or secret)", hook.id)
            self._webhook_id = hook.id
            if self._stale_check:
                await self.cleanup_stale()
                self._stale_check = False
            await self._ensure_subscriptions(hook.id)
        except (AuthError, PermissionDenied) as exc:
            raise _StreamAuthFailed(exc) from None

    # ------------------------------------------------------------------ setup
    async def _setup(self) -> None:
        """Websocket (reused or new) with a secret, a fresh URL, and our subscriptions."""
        try:
            ws: DialpadWebsocket | None = None
            if self._websocket_id:
                try:
                    ws = await self._client.get_websocket(self._websocket_id)
                except NotFound:
                    log.info("stored websocket %s no longer exists; creating a new one", self._websocket_id)
                    self._websocket_id = None
            if ws is None:
                secret = self._secret_factory()
                ws = await self._client.create_websocket(secret)
                self._created_websocket = True
                self._websocket_id = ws.id
                self._secret = SecretStr(secret)
                log.info("created websocket %s", ws.id)
            elif ws.secret is None:
                secret = self._secret_factory()
                ws = await self._client.update_websocket(ws.id, secret)
                self._secret = SecretStr(secret)
                log.info("websocket %s had no secret; set one", ws.id)
            else:
                self._secret = ws.secret
            self._take_url(ws)
            if self._stale_check:
                await self.cleanup_stale(websocket_ids=self._stale_websockets)
                self._stale_check = False
            await self._ensure_subscriptions(ws.id)
        except (AuthError, PermissionDenied) as exc:
            raise _StreamAuthFailed(exc) from None

    async def _ensure_subscriptions(self, endpoint_id: str) -> None:
        if self.subscription_scope == "user":
            target: tuple[str | None, str | None] = ("user", self.user_id)
            subs = await self._client.list_call_subscriptions(target_type="user", target_id=self.user_id)
        else:
            target = (None, None)
            subs = await self._client.list_call_subscriptions()
        if not any(s.endpoint_id == endpoint_id and self._wanted(s) for s in subs):
            created = await self._client.subscribe_calls(
                endpoint_id, self._call_states, target_type=target[0], target_id=target[1]
            )
            self._created_call_subs.append(created.id)
            log.info("created call subscription %s for websocket %s", created.id, endpoint_id)

        if not self._agent_status_events:
            return
        try:
            agent_subs = await self._client.list_agent_status_subscriptions()
            if not any(s.enabled and s.endpoint_id == endpoint_id for s in agent_subs):
                created_agent = await self._client.subscribe_agent_status(endpoint_id, "callcenter")
                self._created_agent_subs.append(created_agent.id)
                log.info("created agent-status subscription %s for websocket %s", created_agent.id, endpoint_id)
            self._notes.pop("agent-status", None)
        except PermissionDenied:
            # Agent-status subscriptions need a company-admin key. Calls still work without them.
            self._notes["agent-status"] = (
                "Colleagues' status updates are off: they need a company-admin Dialpad API key."
            )
            log.warning("agent-status subscription refused (permission); continuing with call events only")

    def _wanted(self, sub: CallSubscription) -> bool:
        """A call subscription that delivers what this console needs."""
        target = ("user", self.user_id) if self.subscription_scope == "user" else (None, None)
        return (
            sub.enabled
            and (sub.target_type, sub.target_id) == target
            and not sub.group_calls_only
            and sub.covers(self._call_states)
        )

    def _take_url(self, ws: DialpadWebsocket) -> None:
        if ws.websocket_url is None:
            raise Unavailable(
                "Dialpad returned a websocket without a URL",
                "Try again in a minute; if it repeats, report it to your Dialpad admin.",
            )
        self._url = ws.websocket_url
        self._url_lifetime = _url_lifetime(ws.websocket_url.get_secret_value())
        self._url_taken_mono = self._clock()
        self._url_expires_mono = self._url_taken_mono + self._url_lifetime
        self._url_expires_at = datetime.now(UTC) + timedelta(seconds=self._url_lifetime)

    async def _refresh_url(self) -> None:
        if not self._websocket_id:
            raise _WebsocketGone()
        try:
            ws = await self._client.get_websocket(self._websocket_id)
        except NotFound:
            raise _WebsocketGone() from None
        except (AuthError, PermissionDenied) as exc:
            raise _StreamAuthFailed(exc) from None
        if ws.secret is not None and self._secret is not None and (
            ws.secret.get_secret_value() != self._secret.get_secret_value()
        ):
            log.warning("websocket %s secret changed elsewhere; following it", ws.id)
            self._secret = ws.secret
        self._take_url(ws)

    def _margin(self) -> float:
        return min(self._refresh_margin, self._url_lifetime * 0.2)

    def _refresh_due(self) -> float:
        return self._url_expires_mono - self._margin()

    def _schedule_refresh(self, queue: asyncio.Queue[Any]) -> None:
        """Post a refresh marker into the frame queue when the URL is due for renewal."""
        if self._refresh_handle is not None:
            self._refresh_handle.cancel()
        delay = max(0.0, self._refresh_due() - self._clock())
        self._refresh_handle = asyncio.get_running_loop().call_later(delay, queue.put_nowait, _REFRESH)

    # ------------------------------------------------------------------ connections
    async def _open(self, queue: asyncio.Queue[Any]) -> _Link:
        if self._url is None:
            raise Unavailable("No event stream URL yet")
        url = self._url.get_secret_value()
        host = urlsplit(url).hostname or ""
        try:
            conn = await websockets.connect(
                url,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_interval,
                close_timeout=2.0,
                max_size=2**20,
                user_agent_header="pa-tui/0.1",
                proxy=None if host in _LOOPBACK_HOSTS else True,
                logger=_wire_log,
            )
        except InvalidStatus as exc:
            raise _HandshakeRejected(exc.response.status_code) from None
        except InvalidURI:
            raise Unavailable(
                "Dialpad returned an event stream URL pa-tui cannot use", "Report this to your Dialpad admin."
            ) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise Unavailable(
                f"Can't open Dialpad's event stream at {host or 'the websocket host'}",
                "Check the network connection; pa-tui keeps retrying.",
            ) from exc
        self._link_ids += 1
        link_id = self._link_ids
        reader = asyncio.create_task(self._read(link_id, conn, queue), name=f"dialpad-events-reader-{link_id}")
        link = _Link(id=link_id, conn=conn, reader=reader, expires_at=self._url_expires_mono)
        self._links[link_id] = link
        return link

    async def _read(self, link_id: int, conn: ClientConnection, queue: asyncio.Queue[Any]) -> None:
        code: int | None = None
        try:
            async for message in conn:
                queue.put_nowait(_Frame(link_id, message))
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        except Exception as exc:  # noqa: BLE001 - any failure is a drop of this link
            log.info("event stream reader stopped: %s", type(exc).__name__)
        else:
            code = conn.close_code
        finally:
            queue.put_nowait(_Closed(link_id, code))

    async def _replace_link(self, queue: asyncio.Queue[Any]) -> _Link | None:
        """Planned refresh: fresh URL, new connection, then retire the old one. ``None`` if it failed."""
        old = [link for link in self._links.values()]
        try:
            await self._refresh_url()
            new = await self._open(queue)
        except _StreamAuthFailed:
            raise
        except (BackendError, _HandshakeRejected, _WebsocketGone) as exc:
            # Keep the current connection; try again shortly (it may still have a little time left).
            retry = min(self._backoff(0), max(0.5, self._url_lifetime * 0.05))
            self._url_expires_mono = self._clock() + self._margin() + retry
            log.warning("refreshing the event stream URL failed (%s); retrying in %.1f s", type(exc).__name__, retry)
            return None
        for link in old:
            grace = max(0.2, min(5.0, link.expires_at - self._clock()))
            task = asyncio.create_task(self._retire(link, grace), name=f"dialpad-events-retire-{link.id}")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        return new

    async def _retire(self, link: _Link, grace: float) -> None:
        """Keep the old connection a moment so frames already in flight on it still arrive."""
        await asyncio.sleep(grace)
        self._links.pop(link.id, None)
        with contextlib.suppress(Exception):
            await link.conn.close()

    async def _close_all_links(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        links = list(self._links.values())
        self._links.clear()
        for link in links:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link.conn.close(), timeout=2.0)
            link.reader.cancel()
        if links:
            await asyncio.gather(*(link.reader for link in links), return_exceptions=True)

    # ------------------------------------------------------------------ frames
    def _first_time(self, raw: bytes) -> bool:
        """Remember ``raw`` (bounded); ``False`` if it was seen recently."""
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if digest in self._seen:
            self._seen.move_to_end(digest)
            self._duplicates += 1
            return False
        self._seen[digest] = None
        if len(self._seen) > self._dedupe_size:
            self._seen.popitem(last=False)
        return True

    def _decode(self, data: str | bytes, secret_str: SecretStr | None = None) -> TelephonyEvent | None:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
        if not self._first_time(raw):
            return None
        key = secret_str if secret_str is not None else self._secret
        secret = key.get_secret_value() if key is not None else None
        try:
            return parse_frame(data, secret)
        except EventParseError as exc:
            level = logging.INFO if exc.reason is ParseFailure.UNKNOWN_TYPE else logging.WARNING
            log.log(level, "skipped a Dialpad event frame: %s", exc.reason.value)
            serious = exc.reason in _SERIOUS_FAILURES
            return StreamNotice(text=str(exc) if serious else exc.title, serious=serious)
        except Exception as exc:  # noqa: BLE001 - a bad frame must never end the stream
            log.error("skipped a Dialpad event frame: unexpected %s", type(exc).__name__)
            return StreamNotice(text="Skipped a Dialpad event pa-tui could not read (see the log)")

    # ------------------------------------------------------------------ states & timing
    def _connected(self, since: datetime | None) -> ConnectionState:
        return ConnectionState(
            status=LinkStatus.CONNECTED,
            detail=" ".join(self._notes.values()),
            url_expires_at=self._url_expires_at,
            connected_since=since,
        )

    def _reconnecting(self, delay: float, detail: str) -> ConnectionState:
        return ConnectionState(status=LinkStatus.RECONNECTING, detail=detail, retry_in=round(delay, 2))

    def _auth_failed(self, error: BackendError) -> ConnectionState:
        if isinstance(error, PermissionDenied):
            detail = str(error)
        else:
            detail = f"{error.title} — {error.fix or AUTH_FIX}"
        return ConnectionState(status=LinkStatus.AUTH_FAILED, detail=detail)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with equal jitter: half fixed, half random."""
        base = min(self._backoff_max, self._backoff_initial * (2 ** min(attempt, 30)))
        return base / 2 + random.uniform(0, base / 2)

    async def _pause(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; ``True`` if :meth:`aclose` was called meanwhile."""
        if delay <= 0:
            return self._closed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        return self._closed


class _HandshakeRejected(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"websocket handshake rejected with HTTP {status}")
        self.status = status


def _url_lifetime(url: str) -> float:
    """Seconds the websocket URL stays valid, from its token's ``exp - iat`` (server time on both)."""
    token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return DOCUMENTED_URL_LIFETIME
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, int | float) and isinstance(iat, int | float) and exp > iat:
        lifetime = float(exp - iat)
    elif isinstance(exp, int | float):
        lifetime = float(exp) - time.time()
    else:
        return DOCUMENTED_URL_LIFETIME
    return min(max(lifetime, 1.0), 24 * 3600.0)


def _saved_id(raw: object) -> str | None:
    text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    return text if text.isdigit() else None


__all__ = ["DEFAULT_CALL_STATES", "DialpadTelephony", "new_secret"]
