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
   ends the stream with ``AUTH_FAILED`` and the fix.
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
from collections.abc import AsyncIterator, Callable, Sequence
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
    ConnectionState,
    LinkStatus,
    NotFound,
    NotSupported,
    PermissionDenied,
    RateLimited,
    StreamNotice,
    TelephonyEvent,
    TransferTarget,
    Unavailable,
)
from pa_tui.backends.dialpad.client import AUTH_FIX, DialpadClient
from pa_tui.backends.dialpad.events import EventParseError, ParseFailure, parse_frame
from pa_tui.backends.dialpad.models import DialpadWebsocket
from pa_tui.domain.agents import Agent, AgentStatus, CallCenter, DutyStatus
from pa_tui.domain.calls import Call
from pa_tui.domain.phones import PhoneNumber, try_parse_phone

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
    """Dialpad as the console's telephony. Owns ``client`` and closes it in :meth:`aclose`."""

    def __init__(
        self,
        client: DialpadClient,
        *,
        user_id: str,
        subscription_scope: Literal["user", "company"] = "user",
        secret_factory: Callable[[], str] = new_secret,
        mini_dialer_client_id: str | None = None,
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
    ) -> None:
        if subscription_scope not in ("user", "company"):
            raise ValueError("subscription_scope must be 'user' or 'company'")
        if not str(user_id).strip():
            raise ValueError("user_id is required")
        self._client = client
        self.user_id = str(user_id).strip()
        self.subscription_scope = subscription_scope
        self._secret_factory = secret_factory
        self._mini_dialer_client_id = mini_dialer_client_id
        self._sandbox = sandbox
        self._websocket_id = websocket_id
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

        self._me: Agent | None = None
        self._secret: SecretStr | None = None
        self._url: SecretStr | None = None
        self._url_lifetime = DOCUMENTED_URL_LIFETIME
        self._url_expires_mono = 0.0
        self._url_expires_at: datetime | None = None
        self._created_websocket = False
        self._created_call_subs: list[str] = []
        self._created_agent_subs: list[str] = []
        self._notes: dict[str, str] = {}
        self._links: dict[int, _Link] = {}
        self._link_ids = 0
        self._retiring: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[Any] | None = None
        self._refresh_handle: asyncio.TimerHandle | None = None
        self._stop = asyncio.Event()
        self._closed = False
        self._streaming = False
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self.reconnects = 0  # connections opened after the first (refreshes and recoveries)

    def __repr__(self) -> str:
        return f"DialpadTelephony(user_id={self.user_id!r}, scope={self.subscription_scope!r})"

    @property
    def websocket_id(self) -> str | None:
        """The websocket in use; store it so the next start reuses it rather than creating another."""
        return self._websocket_id

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

    async def call_centers(self) -> list[CallCenter]:
        return await self._client.list_call_centers()

    def mini_dialer_url(self) -> str | None:
        if not self._mini_dialer_client_id:
            return None
        host = "https://sandbox.dialpad.com" if self._sandbox else "https://dialpad.com"
        return f"{host}/apps/{quote(self._mini_dialer_client_id.strip(), safe='')}"

    # Completed by the full Dialpad issue; the console shows the title and fix meanwhile.
    async def dial(self, agent_id: str, number: PhoneNumber, *, custom_data: str | None = None) -> str:
        raise _not_yet("Dialling from pa-tui")

    async def transfer(self, call_id: str, target: TransferTarget, *, custom_data: str | None = None) -> None:
        raise _not_yet("Transferring from pa-tui")

    async def hangup(self, call_id: str) -> None:
        raise _not_yet("Hanging up from pa-tui")

    async def screen_pop(self, agent_id: str, uri: str) -> None:
        raise _not_yet("Screen pop")

    async def transfer_targets(self) -> list[TransferTarget]:
        raise _not_yet("The transfer list")

    async def get_call(self, call_id: str) -> Call | None:
        raise _not_yet("Looking up a call")

    # ================================================================== lifecycle
    async def aclose(self) -> None:
        """Stop the event stream, close connections, optionally delete what we created, close the client."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._queue is not None:
            self._queue.put_nowait(_STOP)
        await self._close_all_links()
        if not self._keep_websocket and self._created_websocket and self._websocket_id:
            for sub_id in self._created_call_subs:
                with contextlib.suppress(BackendError):
                    await self._client.delete_call_subscription(sub_id)
            for sub_id in self._created_agent_subs:
                with contextlib.suppress(BackendError):
                    await self._client.delete_agent_status_subscription(sub_id)
            with contextlib.suppress(BackendError):
                await self._client.delete_websocket(self._websocket_id)
        await self._client.aclose()

    # ================================================================== event stream
    async def events(self) -> AsyncIterator[TelephonyEvent]:  # noqa: C901 - one state machine, kept in one place
        """Connection states and events, until :meth:`aclose` or a rejected key."""
        if self._streaming:
            raise RuntimeError("events() is already being consumed")
        self._streaming = True
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue = queue
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
            self._streaming = False
            self._queue = None
            await self._close_all_links()

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
        if not any(
            s.enabled
            and s.endpoint_id == endpoint_id
            and (s.target_type, s.target_id) == target
            and not s.group_calls_only
            and s.covers(self._call_states)
            for s in subs
        ):
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

    def _take_url(self, ws: DialpadWebsocket) -> None:
        if ws.websocket_url is None:
            raise Unavailable(
                "Dialpad returned a websocket without a URL",
                "Try again in a minute; if it repeats, report it to your Dialpad admin.",
            )
        self._url = ws.websocket_url
        self._url_lifetime = _url_lifetime(ws.websocket_url.get_secret_value())
        self._url_expires_mono = self._clock() + self._url_lifetime
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
    def _decode(self, data: str | bytes) -> TelephonyEvent | None:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        if digest in self._seen:
            self._seen.move_to_end(digest)
            return None
        self._seen[digest] = None
        if len(self._seen) > self._dedupe_size:
            self._seen.popitem(last=False)
        secret = self._secret.get_secret_value() if self._secret is not None else None
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


def _not_yet(what: str) -> NotSupported:
    return NotSupported(
        f"{what} is not available in this version of pa-tui",
        "Use the Dialpad app or the mini dialer for this for now.",
    )


__all__ = ["DEFAULT_CALL_STATES", "DialpadTelephony", "new_secret"]
