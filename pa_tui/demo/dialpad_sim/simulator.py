"""A stateful fake of the Dialpad API v2 subset pa-tui uses (in the spirit of stripe-mock).

:class:`DialpadSimulator` is a Starlette app (``.app``) plus a control API.
Serve the app with :class:`pa_tui.demo.host.SimulatorHost`; call the control
coroutines (``ring``, ``answer``, ``hangup``, ``set_duty_status``,
``drop_websockets``…) on the simulator's loop (``host.call(sim.ring(...))``).

REST paths, methods and bodies follow the official OpenAPI document
(``/work/shared/specs/dialpad_api_spec.json``): users (status, screen pop),
call centers (operators, live status), operator duty status, calls (dial,
look-up, transfer, hang-up, labels, callback requests), websockets, webhooks,
call and agent-status subscriptions. Requests need ``Authorization: Bearer
<key>``; bad input gets a 400 with a message, in Dialpad's error envelope.
int64 ids go out as numeric strings (as Dialpad's own examples show) and are
accepted as strings or integers. Each operation's own rate limit (the spec's
"Rate limit: 5 per minute" …) is enforced with a 429 and ``Retry-After``.

Calls are stateful. A dialled call rings (calling → ringing → connected after
``outbound_answer_delay``; a number in ``unreachable_numbers`` ends without
connecting). A transfer rings the target on a new leg (``is_transferred``,
same entry-point call id) and, once it is answered (automatically after
``transfer_answer_delay`` unless the agent is in ``controlled_agents``), the
old agent's leg hangs up; a transfer to a call center queues the call there,
to a number opens an external leg. An offer not answered within
``ring_timeout`` seconds is ``missed`` on that leg; a call nobody answers goes
to voicemail. Every leg that was connected gets a ``postcall`` event after the
call ends.

Fault knobs: ``inject_fault`` (any status, ``Retry-After``, N times: 429
storms, 5xx bursts), ``latency`` (slow answers), ``expire_key_at`` /
``rotate_key`` (an API key that stops working), ``drop_websockets``,
``inject_frame``, ``duplicate_frames``.

Websockets are real: ``websocket_url`` carries a signed token that expires
after ``websocket_lifetime`` seconds, GET on the websocket mints a fresh one,
and an open connection is closed when its token expires. Each call or
agent-status event goes to every open connection of every endpoint with a
matching, enabled subscription — as a compact HS256 JWT of the payload when
the websocket has a secret, as JSON text otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import json
import logging
import math
import re
import secrets as pysecrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import jwt
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from pa_tui.demo.dialpad_sim.roster import DEFAULT_COMPANY_NUMBER, SimAgent, SimCallCenter, default_roster

log = logging.getLogger(__name__)

API: Final = "/api/v2"
TOKEN_TYPE: Final = "vnd.dialpad.websocket+jwt"
TOKEN_ISSUER: Final = "https://dialpad-simulator.pa-tui.invalid"

DUTY_STATUSES: Final = ("available", "busy", "occupied", "occupied-end", "unavailable", "wrapup", "wrapup-end")
CALL_STATES: Final = frozenset(
    """admin admin_recording ai_playbook all barge blocked call_transcription calling connected csat
    dispositions eavesdrop hangup hold merged missed monitor parked pcsat postcall preanswer queued
    recap_action_items recap_outcome recap_purposes recap_summary recording ringing takeover
    transcription voicemail voicemail_uploaded""".split()
)
TARGET_TYPES: Final = frozenset(
    "callcenter callrouter channel coachinggroup coachingteam department office room staffgroup unknown user".split()
)
_ENDED: Final = frozenset({"hangup", "missed", "voicemail", "blocked", "postcall"})
_LIVE: Final = frozenset({"connected", "hold", "merged", "parked"})
_RINGING: Final = frozenset({"calling", "preanswer", "ringing"})
TRANSFER_STATES: Final = ("hold", "parked", "preanswer", "voicemail")
_E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})

#: Per-operation rate limits from the spec's descriptions (operationId -> count, seconds); others 1200/min.
RATE_LIMITS: Final[dict[str, tuple[int, float]]] = {
    "call.call": (5, 60.0),
    "screen_pop.initiate": (5, 60.0),
    "call.get_call_info": (10, 60.0),
    "call.put_call_labels": (250, 60.0),
    "websockets.create": (250, 60.0),
    "webhooks.create": (100, 60.0),
}
DEFAULT_RATE_LIMIT: Final = (1200, 60.0)


# --------------------------------------------------------------------------- errors
class SimApiError(Exception):
    """An API error answered in Dialpad's envelope."""

    _REASONS: Final = {400: "badRequest", 401: "required", 403: "forbidden", 404: "notFound", 429: "rateLimitExceeded"}

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        reason = self._REASONS.get(self.status, "backendError" if self.status >= 500 else "error")
        body = {
            "error": {
                "code": self.status,
                "errors": [{"domain": "global", "message": self.message, "reason": reason}],
                "message": self.message,
            }
        }
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# --------------------------------------------------------------------------- state
@dataclass(frozen=True)
class RecordedRequest:
    """One REST request as the simulator saw it (the Authorization header is never kept).

    ``body`` is ``None`` when the request had none; ``response`` is the JSON answered
    (``None`` for an empty answer); ``at`` is the simulator clock when it arrived.
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    response: Any = None
    at: float = 0.0
    operation: str | None = None  # the spec's operationId


@dataclass
class _Fault:
    status: int
    remaining: int
    path: str | None
    method: str | None
    retry_after: float | None
    message: str


@dataclass(eq=False)
class _Conn:
    ws: WebSocket
    endpoint_id: str
    expires_at: float
    outbox: asyncio.Queue[str | tuple[int, str]] = field(default_factory=asyncio.Queue)
    open: bool = True

    def abort(self) -> bool:
        """Drop the TCP connection without a close frame, if the server exposes its transport."""
        raw_send = self.ws.scope.get("pa_tui.raw_send")
        transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
        if transport is None or not hasattr(transport, "abort"):
            return False
        transport.abort()
        return True


@dataclass
class _Endpoint:
    id: str
    secret: str | None
    conns: set[_Conn] = field(default_factory=set)


@dataclass
class _Webhook:
    id: str
    hook_url: str
    secret: str | None
    outbox: asyncio.Queue[str] | None = None
    worker: asyncio.Task[None] | None = None


@dataclass
class _CallSub:
    id: str
    endpoint_id: str
    call_states: tuple[str, ...]
    target_type: str | None
    target_id: str | None
    group_calls_only: bool
    enabled: bool


@dataclass
class _AgentSub:
    id: str
    endpoint_id: str
    agent_type: str
    enabled: bool


@dataclass
class _Duty:
    status: str
    reason: str | None
    status_started: int  # epoch ms
    on_duty_started: int | None


@dataclass
class _Leg:
    call_id: str
    master_call_id: str | None
    target: dict[str, Any]
    user_id: str | None  # set on legs that ring a user
    state: str | None = None
    date_started: int | None = None
    date_rang: int | None = None
    date_first_rang: int | None = None
    date_queued: int | None = None
    date_connected: int | None = None
    date_ended: int | None = None
    kind: str = "entry"  # entry | offer (call-center ring) | transfer (to a user) | external (to a number)
    is_transferred: bool = False
    auto_answer: bool = False
    from_leg: str | None = None  # transfer legs: the agent leg that handed the call over
    updated: int | None = None  # event_timestamp of the leg's last event
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.state in _ENDED

    @property
    def live(self) -> bool:
        return self.state in _LIVE

    def cancel_timers(self) -> None:
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()


@dataclass
class _Call:
    id: str  # the entry-point call id (also the entry leg's id)
    from_number: str
    internal_number: str
    entry_point_target: dict[str, Any]
    call_center_id: str | None
    direct_user_id: str | None
    date_started: int
    legs: dict[str, _Leg] = field(default_factory=dict)
    operator_leg: str | None = None
    answered_by: str | None = None
    ended: bool = False
    direction: str = "inbound"
    custom_data: str | None = None
    labels: list[str] = field(default_factory=list)
    transferred: bool = False
    offered: bool = False  # a call-center offer went out at least once

    @property
    def entry(self) -> _Leg:
        return self.legs[self.id]


@dataclass(frozen=True)
class SimLeg:
    call_id: str
    user_id: str | None
    state: str | None
    kind: str = "entry"
    is_transferred: bool = False


@dataclass(frozen=True)
class SimCallInfo:
    """A snapshot of one simulated customer call (for tests and scenario runners)."""

    call_id: str  # entry-point call id
    from_number: str
    state: str | None  # the entry leg's state
    call_center_id: str | None
    user_id: str | None  # the user rung directly, if not a call-center call
    answered_by: str | None
    legs: tuple[SimLeg, ...]
    direction: str = "inbound"
    ended: bool = False
    custom_data: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimCallback:
    """A call-back request (``POST /api/v2/callback``)."""

    call_center_id: str
    phone_number: str
    position: int
    at: float


class _CaptureRawSend:
    """Keeps the server's own ``send`` in the scope, so ``drop_websockets`` can reach the socket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "pa_tui.raw_send": send}
        await self.app(scope, receive, send)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


# --------------------------------------------------------------------------- simulator
class DialpadSimulator:
    """A fake Dialpad company. ``.app`` is the ASGI app; the async methods drive it."""

    def __init__(
        self,
        api_key: str,
        agents: Sequence[SimAgent],
        call_centers: Sequence[SimCallCenter],
        company_number: str = DEFAULT_COMPANY_NUMBER,
        *,
        websocket_lifetime: float = 3600.0,
        clock: Callable[[], float] = time.time,
        page_size: int = 100,
        company_id: str = "4508591728425653",
        office_id: str = "6422934115149452",
        ring_timeout: float | None = 20.0,
        transfer_answer_delay: float | None = 1.0,
        outbound_answer_delay: float | None = 1.0,
        controlled_agents: Iterable[str] = (),
        rate_limits: bool = True,
        company_rate_limit: tuple[int, float] | None = None,
        latency: float = 0.0,
    ) -> None:
        """Knobs: ``ring_timeout`` (an unanswered offer becomes ``missed``; ``None``: rings forever),
        ``transfer_answer_delay`` (a transfer's target agent answers by itself after this long, unless
        in ``controlled_agents``; ``None``: never), ``outbound_answer_delay`` (a dialled number answers
        after this long; ``None``: only via :meth:`answer`), ``rate_limits`` (enforce each operation's
        limit from the spec), ``company_rate_limit`` (count, seconds) across all requests,
        ``latency`` (seconds added to every REST answer)."""
        if not api_key:
            raise ValueError("the simulator needs an API key to check requests against")
        if websocket_lifetime <= 0:
            raise ValueError("websocket_lifetime must be positive")
        self._api_key = api_key
        self._key_expires_at: float | None = None
        self.ring_timeout = ring_timeout
        self.transfer_answer_delay = transfer_answer_delay
        self.outbound_answer_delay = outbound_answer_delay
        self.controlled_agents: set[str] = {str(a) for a in controlled_agents}
        self.unreachable_numbers: set[str] = set()
        self.rate_limits = rate_limits
        self.company_rate_limit = company_rate_limit
        self.latency = max(0.0, latency)
        self.duplicate_frames = False
        self.company_number = company_number
        self.websocket_lifetime = float(websocket_lifetime)
        self._clock = clock
        self.page_size = max(1, page_size)
        self.company_id = company_id
        self.office_id = office_id
        self._signing_key = pysecrets.token_bytes(32)

        self.agents: dict[str, SimAgent] = {a.id: a for a in agents}
        self.call_centers: dict[str, SimCallCenter] = {c.id: c for c in call_centers}
        for agent in agents:
            for cc in agent.call_center_ids:
                if cc not in self.call_centers:
                    raise ValueError(f"agent {agent.id} belongs to unknown call center {cc}")
        started = self._ms()
        self._started = started
        self._duty: dict[str, _Duty] = {
            a.id: _Duty(status="available", reason=None, status_started=started, on_duty_started=started)
            for a in agents
            if a.call_center_ids
        }

        self._ws_ids = itertools.count(4700000000000001)
        self._sub_ids = itertools.count(4800000000000001)
        self._call_ids = itertools.count(6300000000000001, 7)
        self._endpoints: dict[str, _Endpoint] = {}
        self._webhooks: dict[str, _Webhook] = {}
        self._hook_ids = itertools.count(4900000000000001)
        self._call_subs: dict[str, _CallSub] = {}
        self._agent_subs: dict[str, _AgentSub] = {}
        self._calls: dict[str, _Call] = {}
        self._leg_index: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: httpx.AsyncClient | None = None
        self._last_event_ms = 0

        self.screen_pops: defaultdict[str, list[str]] = defaultdict(list)  # user id -> URIs, oldest first
        self.user_statuses: dict[str, tuple[str | None, int | None]] = {}  # user id -> (message, expiration)
        self.callbacks: list[SimCallback] = []
        self.webhook_deliveries: deque[tuple[str, int | str]] = deque(maxlen=2000)  # (webhook id, status)

        self.requests: deque[RecordedRequest] = deque(maxlen=2000)
        self.emitted: deque[tuple[str, dict[str, Any]]] = deque(maxlen=2000)
        self.connections_opened = 0
        self.base_url: str | None = None  # set by whoever serves the app, for display only

        self.app = self._build_app()

    @classmethod
    def with_default_roster(cls, api_key: str, **kwargs: Any) -> DialpadSimulator:
        roster = default_roster()
        return cls(api_key, roster.agents, roster.call_centers, **kwargs)

    def __repr__(self) -> str:
        return f"DialpadSimulator(agents={len(self.agents)}, call_centers={len(self.call_centers)})"

    # ================================================================== control API
    async def ring(
        self, from_number: str, *, user_id: str | None = None, call_center_id: str | None = None
    ) -> str:
        """An inbound call. Returns its entry-point call id.

        Rings ``user_id`` directly, or queues in ``call_center_id`` (default: the
        first call center) and offers the call to each available operator on a
        leg of its own, all sharing the entry-point call id. An offer nobody
        answers within ``ring_timeout`` is missed; then the call goes to voicemail.
        """
        if user_id is not None and call_center_id is not None:
            raise ValueError("ring a user or a call center, not both")
        now = self._ms()
        call_id = self._new_call_id()
        if user_id is not None:
            agent = self._agent(str(user_id))
            target = self._user_target(agent)
            call = _Call(
                id=call_id,
                from_number=from_number,
                internal_number=agent.phone,
                entry_point_target=target,
                call_center_id=None,
                direct_user_id=agent.id,
                date_started=now,
            )
            leg = _Leg(call_id=call_id, master_call_id=None, target=target, user_id=agent.id, date_started=now)
            self._add(call, leg)
            await self._emit(call, leg, "preanswer")
            leg.date_rang = leg.date_first_rang = self._ms()
            await self._emit(call, leg, "ringing")
            self._ring_timer(call, leg)
            return call_id

        if call_center_id is None:
            if not self.call_centers:
                raise ValueError("no call center to ring")
            call_center_id = next(iter(self.call_centers))
        cc = self._call_center(str(call_center_id))
        target = self._cc_target(cc)
        call = _Call(
            id=call_id,
            from_number=from_number,
            internal_number=cc.phone or self.company_number,
            entry_point_target=target,
            call_center_id=cc.id,
            direct_user_id=None,
            date_started=now,
        )
        leg = _Leg(call_id=call_id, master_call_id=None, target=target, user_id=None, date_started=now)
        self._add(call, leg)
        await self._emit(call, leg, "preanswer")
        leg.date_queued = self._ms()
        await self._emit(call, leg, "queued")
        await self._offer(call)
        return call_id

    async def dial(self, user_id: str, number: str, *, custom_data: str | None = None) -> str:
        """An outbound call placed by ``user_id`` (as ``POST /api/v2/call`` does). Returns its id."""
        agent = self._agent(str(user_id))
        return await self._start_outbound(agent, number, agent.phone, custom_data)

    async def answer(self, call_id: str, user_id: str | None = None) -> str:
        """Someone picks up a ringing leg: an agent (an offer, a transfer, a direct call) or, for a
        dialled call or a transfer to a number, the person called. Returns the leg that connected."""
        call = self._call(str(call_id))
        if call.ended:
            raise ValueError(f"call {call.id} has ended")
        uid = str(user_id) if user_id is not None else None
        ringing = [
            lg
            for lg in call.legs.values()
            if lg.state == "ringing" and (uid is None or lg.user_id == uid) and (lg.user_id is not None or lg.kind == "external")
        ]
        if not ringing:
            if call.call_center_id is None and call.entry.live and (uid is None or call.entry.user_id == uid):
                raise ValueError(f"call {call.id} is already connected")
            who = f"user {uid}" if uid else "anyone"
            raise ValueError(f"call {call.id} is not ringing {who}")
        leg = ringing[0]
        await self._connect(call, leg)
        return leg.call_id

    async def hangup(self, call_id: str) -> None:
        """The call ends (either side hung up): every leg still up ends, operators go back on duty,
        and each leg that was connected gets a ``postcall`` event."""
        call = self._call(str(call_id))
        if call.ended:
            return
        call.ended = True
        legs = [lg for lg in call.legs.values() if lg.call_id != call.id] + [call.entry]
        freed: list[str] = []
        connected: list[_Leg] = []
        for leg in legs:
            leg.cancel_timers()
            if leg.ended:
                continue
            leg.date_ended = self._ms()
            state = "hangup" if leg.date_connected is not None or call.direction == "outbound" else "missed"
            if leg.date_connected is not None:
                connected.append(leg)
                if leg.user_id:
                    freed.append(leg.user_id)
            await self._emit(call, leg, state)
        for leg in connected:
            await self._emit(call, leg, "postcall")
        for uid in freed:
            duty = self._duty.get(uid)
            if duty is not None and duty.status == "occupied":
                await self._change_duty(uid, "occupied-end", None)

    async def transfer(
        self,
        call_id: str,
        *,
        user_id: str | None = None,
        call_center_id: str | None = None,
        number: str | None = None,
        transfer_state: str | None = None,
        custom_data: str | None = None,
    ) -> dict[str, Any]:
        """Transfer the call as ``POST /api/v2/call/{id}/transfer`` does; returns that answer."""
        call = self._call(str(call_id))
        if call.ended:
            raise ValueError(f"call {call.id} has ended")
        return await self._transfer(call, str(call_id), user_id, call_center_id, number, transfer_state, custom_data)

    # ------------------------------------------------------------------ fault knobs & test control
    async def expire_key_at(self, when: float) -> None:
        """Fault knob: the API key stops working at ``when`` (simulator clock): 401 from then on,
        until :meth:`rotate_key`. Open websockets keep their (already signed) URLs."""
        self._key_expires_at = float(when)

    async def expire_key(self) -> None:
        await self.expire_key_at(self._clock())

    async def rotate_key(self, new_key: str) -> None:
        """A new API key replaces the old one (which stays invalid)."""
        if not new_key:
            raise ValueError("the new key must not be empty")
        self._api_key = new_key
        self._key_expires_at = None

    async def clear_faults(self) -> None:
        """Forget every injected fault still pending."""
        self._faults.clear()

    async def set_latency(self, seconds: float) -> None:
        """Fault knob: every REST answer takes ``seconds`` longer."""
        self.latency = max(0.0, float(seconds))

    async def control_agents(self, *user_ids: str) -> None:
        """These agents never answer on their own: a test answers for them with :meth:`answer`."""
        self.controlled_agents.update(str(u) for u in user_ids)

    async def shutdown(self) -> None:
        """Cancel pending timers and webhook deliveries; close the webhook HTTP client."""
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        for hook in self._webhooks.values():
            if hook.worker is not None:
                hook.worker.cancel()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def callbacks_for(self, call_center_id: str) -> list[SimCallback]:
        return [c for c in self.callbacks if c.call_center_id == str(call_center_id)]

    async def set_duty_status(self, user_id: str, status: str, reason: str | None = None) -> None:
        """An operator's status changes (emits an agent-status event). Available operators get queued calls."""
        if status not in DUTY_STATUSES:
            raise ValueError(f"unknown duty status {status!r}; use one of {', '.join(DUTY_STATUSES)}")
        uid = str(user_id)
        if uid not in self._duty:
            raise ValueError(f"user {uid} is not a call-center operator")
        await self._change_duty(uid, status, reason)

    async def drop_websockets(self) -> int:
        """Fault knob: cut every open websocket connection abruptly. Returns how many."""
        count = 0
        for endpoint in self._endpoints.values():
            for conn in list(endpoint.conns):
                count += 1
                endpoint.conns.discard(conn)
                conn.open = False
                if not conn.abort():
                    conn.outbox.put_nowait((1012, "service restart"))
        return count

    async def inject_frame(self, frame: str | Mapping[str, Any]) -> int:
        """Fault knob: push one frame to every open connection. Returns how many got it.

        A mapping is encoded as a real event would be (JWT with the websocket's
        secret, else JSON); a string goes out verbatim (garbage, forged JWTs…).
        """
        count = 0
        for endpoint in self._endpoints.values():
            if isinstance(frame, Mapping):
                self._send(endpoint, dict(frame))
            else:
                for conn in endpoint.conns:
                    if conn.open:
                        conn.outbox.put_nowait(frame)
            count += sum(1 for c in endpoint.conns if c.open)
        return count

    async def inject_fault(
        self,
        status: int,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Fault knob: answer the next ``times`` matching REST requests with ``status``."""
        self._faults.append(
            _Fault(
                status=status,
                remaining=times,
                path=path,
                method=method.upper() if method else None,
                retry_after=retry_after,
                message=message or ("Rate limit exceeded" if status == 429 else "Simulated failure"),
            )
        )

    async def wait_for_listener(self, user_id: str, timeout: float | None = None) -> bool:
        """Wait until some open websocket would receive ``user_id``'s calls. ``False`` on timeout.

        A scenario runner awaits this before its first ring, so a console
        that is still connecting does not miss the opening call.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self.has_listener(str(user_id)):
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def has_listener(self, user_id: str) -> bool:
        """True when an open connection has an enabled call subscription covering ``user_id``'s calls."""
        agent = self.agents.get(str(user_id))
        listening = [e.id for e in list(self._endpoints.values()) if any(c.open for c in e.conns)]
        listening += list(self._webhooks)
        for endpoint_id in listening:
            for sub in list(self._call_subs.values()):
                if sub.endpoint_id != endpoint_id or not sub.enabled:
                    continue
                if sub.target_type is None or (sub.target_type == "office" and sub.target_id == self.office_id):
                    return True
                if sub.target_type == "user" and sub.target_id == str(user_id):
                    return True
                if sub.target_type == "callcenter" and agent is not None and sub.target_id in agent.call_center_ids:
                    return True
        return False

    def active_calls(self) -> list[SimCallInfo]:
        """Calls still up (ringing, queued or connected)."""
        return [self._info(c) for c in list(self._calls.values()) if not c.ended]

    def call_info(self, call_id: str) -> SimCallInfo:
        return self._info(self._call(str(call_id)))

    def open_connections(self) -> int:
        return sum(len(e.conns) for e in list(self._endpoints.values()))

    def duty_status(self, user_id: str) -> str:
        return self._duty[str(user_id)].status

    # ================================================================== calls: internals
    def _ms(self) -> int:
        return int(self._clock() * 1000)

    def _stamp(self) -> int:
        """An event timestamp: the clock, but strictly after the previous event's."""
        self._last_event_ms = max(self._ms(), self._last_event_ms + 1)
        return self._last_event_ms

    def _new_call_id(self) -> str:
        return str(next(self._call_ids))

    def _add(self, call: _Call, leg: _Leg) -> None:
        call.legs[leg.call_id] = leg
        self._leg_index[leg.call_id] = call.id
        self._calls.setdefault(call.id, call)

    def _call(self, call_id: str) -> _Call:
        key = self._leg_index.get(call_id)
        if key is None:
            raise ValueError(f"no call {call_id}")
        return self._calls[key]

    def _agent(self, user_id: str) -> SimAgent:
        try:
            return self.agents[user_id]
        except KeyError:
            raise ValueError(f"no user {user_id}") from None

    def _call_center(self, cc_id: str) -> SimCallCenter:
        try:
            return self.call_centers[cc_id]
        except KeyError:
            raise ValueError(f"no call center {cc_id}") from None

    def _user_target(self, agent: SimAgent) -> dict[str, Any]:
        return {
            "id": int(agent.id),
            "type": "user",
            "name": agent.name,
            "phone": agent.phone,
            "email": agent.email,
            "office_id": int(self.office_id),
        }

    def _cc_target(self, cc: SimCallCenter) -> dict[str, Any]:
        return {
            "id": int(cc.id),
            "type": "callcenter",
            "name": cc.name,
            "phone": cc.phone or self.company_number,
            "email": "",
            "office_id": int(self.office_id),
        }

    @staticmethod
    def _number_target(number: str) -> dict[str, Any]:
        return {"id": "", "type": "number", "name": number, "phone": number, "email": ""}

    def _busy(self, user_id: str) -> bool:
        return any(
            lg.user_id == user_id and lg.state in _LIVE
            for c in self._calls.values()
            if not c.ended
            for lg in c.legs.values()
        )

    # ------------------------------------------------------------------ timers
    def _later(self, delay: float, fn: Callable[..., Awaitable[Any]], *args: Any) -> asyncio.TimerHandle | None:
        """Run ``fn(*args)`` on this loop after ``delay`` seconds (nothing when no loop is running)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None

        def fire() -> None:
            self._timers.discard(handle)
            task = loop.create_task(self._guarded(fn, *args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        handle = loop.call_later(max(0.0, delay), fire)
        self._timers.add(handle)
        return handle

    @staticmethod
    async def _guarded(fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        try:
            await fn(*args)
        except Exception:  # noqa: BLE001 - a timer must never take the simulator down
            log.warning("simulator timer %s failed", getattr(fn, "__name__", fn), exc_info=True)

    def _leg_timer(self, leg: _Leg, delay: float | None, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if delay is None:
            return
        handle = self._later(delay, fn, *args)
        if handle is not None:
            leg.timers.append(handle)

    def _ring_timer(self, call: _Call, leg: _Leg) -> None:
        self._leg_timer(leg, self.ring_timeout, self._ring_timed_out, call.id, leg.call_id)

    def _auto_answer(self, call: _Call, leg: _Leg, delay: float | None) -> None:
        if leg.user_id is not None and leg.user_id in self.controlled_agents:
            return
        self._leg_timer(leg, delay, self._answer_if_ringing, call.id, leg.call_id)

    async def _answer_if_ringing(self, call_id: str, leg_id: str) -> None:
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call else None
        if call is None or leg is None or call.ended or leg.state != "ringing":
            return
        await self._connect(call, leg)

    async def _ring_timed_out(self, call_id: str, leg_id: str) -> None:
        call = self._calls.get(call_id)
        leg = call.legs.get(leg_id) if call else None
        if call is None or leg is None or call.ended or leg.state not in _RINGING:
            return
        leg.cancel_timers()
        leg.date_ended = self._ms()
        if leg.kind == "entry":
            if call.direction == "outbound":  # nobody picked up at the other end
                call.ended = True
                await self._emit(call, leg, "hangup")
                return
            await self._emit(call, leg, "missed")
            call.ended = True
            await self._emit(call, leg, "voicemail")
            return
        await self._emit(call, leg, "missed")
        if leg.kind in ("transfer", "external"):
            await self._resume_from(call, leg)
            return
        await self._after_offers(call)

    async def _after_offers(self, call: _Call) -> None:
        """A call-center offer was missed: offer again, or send the call to voicemail."""
        if call.ended or call.answered_by:
            return
        if any(lg.state in _RINGING for lg in call.legs.values() if lg.kind == "offer"):
            return
        await self._offer(call)
        if any(lg.state in _RINGING for lg in call.legs.values() if lg.kind == "offer"):
            return
        call.ended = True
        entry = call.entry
        entry.cancel_timers()
        if not entry.ended:
            entry.date_ended = self._ms()
            await self._emit(call, entry, "voicemail")

    # ------------------------------------------------------------------ call-center offers
    async def _offer(self, call: _Call) -> None:
        """Ring every available, idle operator of the call's call center not yet offered it."""
        if call.ended or call.answered_by or call.call_center_id is None:
            return
        offered = {lg.user_id for lg in call.legs.values() if lg.user_id}
        for agent in self.agents.values():
            if call.call_center_id not in agent.call_center_ids or agent.id in offered:
                continue
            duty = self._duty.get(agent.id)
            if duty is None or duty.status not in ("available", "occupied-end", "wrapup-end") or self._busy(agent.id):
                continue
            now = self._ms()
            leg = _Leg(
                call_id=self._new_call_id(),
                master_call_id=call.id,
                target=self._user_target(agent),
                user_id=agent.id,
                date_started=now,
                date_rang=now,
                date_first_rang=call.entry.date_first_rang or now,
                kind="offer",
                is_transferred=call.transferred,
                auto_answer=call.transferred,
            )
            call.entry.date_first_rang = call.entry.date_first_rang or now
            call.offered = True
            self._add(call, leg)
            await self._emit(call, leg, "ringing")
            self._ring_timer(call, leg)
            if leg.auto_answer:
                self._auto_answer(call, leg, self.transfer_answer_delay)

    # ------------------------------------------------------------------ connecting and transferring
    def _agent_leg(self, call: _Call) -> _Leg | None:
        """The leg of whoever has the call now (the agent who could transfer it)."""
        if call.operator_leg and call.operator_leg in call.legs and not call.legs[call.operator_leg].ended:
            return call.legs[call.operator_leg]
        entry = call.entry
        if entry.user_id is not None and not entry.ended and entry.state in _LIVE:
            return entry
        return None

    async def _connect(self, call: _Call, leg: _Leg) -> None:
        now = self._ms()
        leg.cancel_timers()
        leg.date_connected = now
        if leg.kind == "entry":
            call.answered_by = leg.user_id if call.direction == "inbound" else call.answered_by or leg.user_id
            await self._emit(call, leg, "connected")
            if call.direction == "inbound" and leg.user_id:
                await self._occupy(leg.user_id)
            return
        if leg.kind == "offer":
            call.answered_by = leg.user_id
            call.operator_leg = leg.call_id
            entry = call.entry
            if not entry.ended:  # the entry leg first, so the operator's leg is the newest connected one
                entry.date_connected = entry.date_connected or now
                await self._emit(call, entry, "connected")
            await self._emit(call, leg, "connected")
            for other in call.legs.values():
                if other is not leg and other.kind == "offer" and other.state in _RINGING:
                    other.cancel_timers()
                    other.date_ended = self._ms()
                    await self._emit(call, other, "hangup")
            if leg.user_id:
                await self._occupy(leg.user_id)
            return
        # a transfer (to a user or a number) was answered: the call moves, the old agent's leg ends
        previous = call.legs.get(leg.from_leg) if leg.from_leg else None
        await self._emit(call, leg, "connected")
        call.operator_leg = leg.call_id
        call.answered_by = leg.user_id
        if leg.user_id:
            await self._occupy(leg.user_id)
        if previous is not None and not previous.ended:
            await self._end_leg(call, previous)

    async def _end_leg(self, call: _Call, leg: _Leg) -> None:
        """One agent's leg hangs up while the call goes on (after a transfer)."""
        leg.cancel_timers()
        leg.date_ended = self._ms()
        connected = leg.date_connected is not None
        await self._emit(call, leg, "hangup" if connected else "missed")
        if connected:
            await self._emit(call, leg, "postcall")
            duty = self._duty.get(leg.user_id or "")
            if duty is not None and duty.status == "occupied":
                await self._change_duty(leg.user_id or "", "occupied-end", None)

    async def _occupy(self, uid: str) -> None:
        if uid in self._duty and self._duty[uid].status != "unavailable":
            await self._change_duty(uid, "occupied", None)

    async def _resume_from(self, call: _Call, leg: _Leg) -> None:
        """A transfer was not answered: the agent who held the call has it again."""
        previous = call.legs.get(leg.from_leg) if leg.from_leg else None
        if previous is not None and previous.state in ("hold", "parked"):
            await self._emit(call, previous, "connected")

    async def _transfer(
        self,
        call: _Call,
        via: str,
        user_id: str | None,
        call_center_id: str | None,
        number: str | None,
        transfer_state: str | None,
        custom_data: str | None,
    ) -> dict[str, Any]:
        if sum(x is not None for x in (user_id, call_center_id, number)) != 1:
            raise ValueError("transfer to exactly one of a user, a call center or a number")
        if transfer_state is not None and transfer_state not in TRANSFER_STATES:
            raise ValueError(f"unknown transfer state {transfer_state!r}")
        previous = self._agent_leg(call)
        if previous is None:
            raise ValueError(f"call {call.id} is not connected to an agent who could transfer it")
        if custom_data is not None:
            call.custom_data = custom_data
        result: dict[str, Any] = {"call_id": via}
        if transfer_state is not None:
            result["transferred_to_state"] = transfer_state
        now = self._ms()

        if call_center_id is not None:
            cc = self._call_center(str(call_center_id))
            result["transferred_to_number"] = cc.phone or self.company_number
            call.transferred = True
            await self._end_leg(call, previous)
            call.answered_by = None
            call.operator_leg = None
            call.call_center_id = cc.id
            entry = call.entry
            if not entry.ended and entry is not previous:
                entry.date_queued = self._ms()
                await self._emit(call, entry, "queued")
            await self._offer(call)  # nobody on duty: the call waits in the queue until someone is
            return result

        if user_id is not None:
            agent = self._agent(str(user_id))
            target, kind, uid, label = self._user_target(agent), "transfer", agent.id, agent.phone
        else:
            if number is None or not _E164.match(number):
                raise ValueError("the number to transfer to must be in E.164 format")
            target, kind, uid, label = self._number_target(number), "external", None, number
        result["transferred_to_number"] = label
        call.transferred = True
        leg = _Leg(
            call_id=self._new_call_id(),
            master_call_id=call.id,
            target=target,
            user_id=uid,
            date_started=now,
            kind=kind,
            is_transferred=True,
            from_leg=previous.call_id,
        )
        self._add(call, leg)
        if transfer_state == "voicemail":
            leg.date_ended = self._ms()
            await self._emit(call, leg, "voicemail")
            await self._end_leg(call, previous)
            call.ended = True
            entry = call.entry
            if not entry.ended:
                entry.date_ended = self._ms()
                await self._emit(call, entry, "hangup")
            return result
        if transfer_state in ("hold", "parked"):
            await self._emit(call, previous, transfer_state)
        if kind == "external":
            await self._emit(call, leg, "calling")
        elif transfer_state == "preanswer":
            await self._emit(call, leg, "preanswer")
        leg.date_rang = self._ms()
        await self._emit(call, leg, "ringing")
        self._ring_timer(call, leg)
        if kind == "external":
            if number not in self.unreachable_numbers:
                self._leg_timer(leg, self.outbound_answer_delay, self._answer_if_ringing, call.id, leg.call_id)
        else:
            self._auto_answer(call, leg, self.transfer_answer_delay)
        return result

    async def _start_outbound(
        self,
        agent: SimAgent,
        number: str,
        caller_id: str,
        custom_data: str | None,
        call_center_id: str | None = None,
    ) -> str:
        if not _E164.match(number):
            raise ValueError("the number to call must be in E.164 format")
        now = self._ms()
        call_id = self._new_call_id()
        target = self._user_target(agent)
        call = _Call(
            id=call_id,
            from_number=number,
            internal_number=caller_id,
            entry_point_target=target,
            call_center_id=None,
            direct_user_id=agent.id,
            date_started=now,
            direction="outbound",
            custom_data=custom_data,
        )
        leg = _Leg(call_id=call_id, master_call_id=None, target=target, user_id=agent.id, date_started=now)
        self._add(call, leg)
        await self._emit(call, leg, "calling")
        leg.date_rang = leg.date_first_rang = self._ms()
        await self._emit(call, leg, "ringing")
        self._ring_timer(call, leg)
        if number in self.unreachable_numbers:
            self._leg_timer(leg, self.outbound_answer_delay or 0.0, self._fail_outbound, call.id)
        else:
            self._leg_timer(leg, self.outbound_answer_delay, self._answer_if_ringing, call.id, leg.call_id)
        return call_id

    async def _fail_outbound(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None or call.ended or call.entry.state not in _RINGING:
            return
        call.ended = True
        entry = call.entry
        entry.cancel_timers()
        entry.date_ended = self._ms()
        await self._emit(call, entry, "hangup")

    # ------------------------------------------------------------------ events
    def _payload(self, call: _Call, leg: _Leg, state: str, stamp: int | None = None) -> dict[str, Any]:
        now = self._ms()
        talk = (leg.date_ended or now) - leg.date_connected if leg.date_connected else None
        return {
            "call_id": int(leg.call_id),
            "master_call_id": int(leg.master_call_id) if leg.master_call_id else None,
            "entry_point_call_id": int(call.id),
            "operator_call_id": int(call.operator_leg) if call.operator_leg and leg.call_id == call.id else None,
            "state": state,
            "direction": call.direction,
            "date_started": leg.date_started,
            "date_rang": leg.date_rang,
            "date_first_rang": leg.date_first_rang,
            "date_queued": leg.date_queued,
            "date_connected": leg.date_connected,
            "date_ended": leg.date_ended,
            "event_timestamp": stamp if stamp is not None else now,
            "external_number": call.from_number,
            "internal_number": call.internal_number,
            "contact": {
                "id": f"number:{call.from_number}",
                "name": call.from_number,
                "phone": call.from_number,
                "email": "",
                "type": "unknown",
            },
            "target": dict(leg.target),
            "entry_point_target": dict(call.entry_point_target),
            "proxy_target": {},
            "group_id": f"CallCenter:{call.call_center_id}" if call.call_center_id else None,
            "is_transferred": leg.is_transferred,
            "labels": list(call.labels),
            "custom_data": call.custom_data,
            "was_recorded": False,
            "hold_time": 0,
            "talk_time": talk,
            "routing_breadcrumbs": [],
        }

    def _leg_view_state(self, call: _Call, leg: _Leg) -> str | None:
        """What ``GET /call/{id}`` says: the leg's state; for the entry-point id, the whole call's."""
        if leg.call_id != call.id or call.ended or not leg.ended:
            return leg.state
        live = [lg for lg in call.legs.values() if not lg.ended and lg.state]
        for wanted in (_LIVE, _RINGING | {"queued"}):
            for other in live:
                if other.state in wanted:
                    return "connected" if wanted is _LIVE else "queued"
        return leg.state

    def _call_proto(self, call: _Call, leg: _Leg) -> dict[str, Any]:
        """``schemas.call.CallProto`` for one leg (``GET /call/{id}``, ``PUT /call/{id}/labels``)."""
        payload = self._payload(call, leg, self._leg_view_state(call, leg) or "preanswer", leg.updated)

        def contact(raw: Mapping[str, Any]) -> dict[str, Any]:
            out = {k: raw[k] for k in ("email", "name", "phone", "type") if raw.get(k) is not None}
            if raw.get("id") not in (None, ""):
                out["id"] = str(raw["id"])
            return out

        body: dict[str, Any] = {
            k: payload[k]
            for k in (
                "call_id",
                "master_call_id",
                "entry_point_call_id",
                "operator_call_id",
                "state",
                "direction",
                "date_started",
                "date_rang",
                "date_connected",
                "date_ended",
                "event_timestamp",
                "external_number",
                "internal_number",
                "group_id",
                "is_transferred",
                "labels",
                "custom_data",
                "was_recorded",
            )
            if payload[k] is not None
        }
        for key in ("contact", "target", "entry_point_target", "proxy_target"):
            body[key] = contact(payload[key])
        if leg.date_connected is not None:
            body["duration"] = float((leg.date_ended or self._ms()) - leg.date_connected)
        if leg.date_started is not None:
            body["total_duration"] = float((leg.date_ended or self._ms()) - leg.date_started)
        return body

    async def _emit(self, call: _Call, leg: _Leg, state: str) -> None:
        if state != "postcall":
            leg.state = state
        stamp = self._stamp()
        leg.updated = stamp
        payload = self._payload(call, leg, state, stamp)
        self.emitted.append(("call", payload))
        for endpoint in list(self._endpoints.values()):
            if endpoint.conns and any(
                self._call_sub_matches(sub, call, leg, state)
                for sub in self._call_subs.values()
                if sub.endpoint_id == endpoint.id
            ):
                self._send(endpoint, payload)
        for hook in list(self._webhooks.values()):
            if any(
                self._call_sub_matches(sub, call, leg, state)
                for sub in self._call_subs.values()
                if sub.endpoint_id == hook.id
            ):
                self._deliver(hook, payload)

    def _call_sub_matches(self, sub: _CallSub, call: _Call, leg: _Leg, state: str) -> bool:
        if not sub.enabled:
            return False
        if sub.call_states and "all" not in sub.call_states and state not in sub.call_states:
            return False
        if sub.group_calls_only and call.call_center_id is None:
            return False
        if sub.target_type is None:
            return True
        if sub.target_type == "user":
            return leg.user_id == sub.target_id
        if sub.target_type == "callcenter":
            return call.call_center_id == sub.target_id
        if sub.target_type == "office":
            return sub.target_id == self.office_id
        return False

    async def _change_duty(self, uid: str, status: str, reason: str | None) -> None:
        duty = self._duty[uid]
        now = self._ms()
        was_on = duty.status != "unavailable"
        duty.status, duty.reason, duty.status_started = status, reason, now
        if status == "unavailable":
            duty.on_duty_started = None
        elif not was_on:
            duty.on_duty_started = now
        self._agent_event(uid)
        # "-end" statuses are transitions: the operator is available again.
        if status in ("occupied-end", "wrapup-end"):
            duty.status = "available"
        if duty.status == "available":
            agent = self.agents[uid]
            for call in list(self._calls.values()):
                if call.call_center_id in agent.call_center_ids and not call.ended and not call.answered_by:
                    await self._offer(call)

    def _agent_event(self, uid: str) -> None:
        """Emit an agent-status event with the operator's current duty status."""
        duty = self._duty[uid]
        agent = self.agents[uid]
        status = duty.status
        on_duty = status != "unavailable"
        available = on_duty and status in ("available", "occupied-end", "wrapup-end") and not self._busy(uid)
        now = self._stamp()
        payload = {
            "availability_status": "available" if available else "unavailable",
            "call_center_ids": list(agent.call_center_ids) if on_duty else [],
            "date": now,
            "event_timestamp": now,
            "on_duty_status": status,
            "on_duty_status_reason": duty.reason,
            "powerdialer_mode": False,
            "target": self._user_target(agent),
        }
        self.emitted.append(("agent_status", payload))
        for endpoint in list(self._endpoints.values()):
            if endpoint.conns and self._agent_subscribed(endpoint.id):
                self._send(endpoint, payload)
        for hook in list(self._webhooks.values()):
            if self._agent_subscribed(hook.id):
                self._deliver(hook, payload)

    def _agent_subscribed(self, endpoint_id: str) -> bool:
        return any(
            s.enabled and s.agent_type == "callcenter" and s.endpoint_id == endpoint_id
            for s in self._agent_subs.values()
        )

    def _send(self, endpoint: _Endpoint, payload: dict[str, Any]) -> None:
        if endpoint.secret:
            frame = jwt.encode(payload, endpoint.secret, algorithm="HS256")
        else:
            frame = json.dumps(payload, separators=(",", ":"))
        for conn in list(endpoint.conns):
            if conn.open:
                conn.outbox.put_nowait(frame)
                if self.duplicate_frames:
                    conn.outbox.put_nowait(frame)

    # ------------------------------------------------------------------ webhook delivery
    def _deliver(self, hook: _Webhook, payload: dict[str, Any]) -> None:
        """Queue one event for ``hook``: POSTed in order, as a JWT when it has a secret. Loopback only."""
        if hook.secret:
            frame = jwt.encode({**payload, "iat": int(self._clock())}, hook.secret, algorithm="HS256")
        else:
            frame = json.dumps(payload, separators=(",", ":"))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if hook.outbox is None:
            hook.outbox = asyncio.Queue()
        if hook.worker is None or hook.worker.done():
            hook.worker = loop.create_task(self._hook_worker(hook), name=f"sim-webhook-{hook.id}")
        hook.outbox.put_nowait(frame)
        if self.duplicate_frames:
            hook.outbox.put_nowait(frame)

    async def _hook_worker(self, hook: _Webhook) -> None:
        assert hook.outbox is not None
        while True:
            frame = await hook.outbox.get()
            host = httpx.URL(hook.hook_url).host
            if host not in _LOOPBACK:
                self.webhook_deliveries.append((hook.id, "not delivered: the simulator only calls loopback"))
                continue
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=5.0, trust_env=False)
            content_type = "application/jwt" if hook.secret else "application/json"
            try:
                response = await self._http.post(hook.hook_url, content=frame, headers={"Content-Type": content_type})
                self.webhook_deliveries.append((hook.id, response.status_code))
            except httpx.HTTPError as exc:
                self.webhook_deliveries.append((hook.id, type(exc).__name__))

    def _info(self, call: _Call) -> SimCallInfo:
        return SimCallInfo(
            call_id=call.id,
            from_number=call.from_number,
            state=call.entry.state,
            call_center_id=call.call_center_id,
            user_id=call.direct_user_id,
            answered_by=call.answered_by,
            legs=tuple(
                SimLeg(call_id=lg.call_id, user_id=lg.user_id, state=lg.state, kind=lg.kind, is_transferred=lg.is_transferred)
                for lg in call.legs.values()
            ),
            direction=call.direction,
            ended=call.ended,
            custom_data=call.custom_data,
            labels=tuple(call.labels),
        )

    # ================================================================== HTTP app
    def _build_app(self) -> Starlette:
        r = self._route
        routes = [
            Route(f"{API}/users", r(self._list_users, "users.list"), methods=["GET"]),
            Route(f"{API}/users/{{id}}", r(self._get_user, "users.get"), methods=["GET"]),
            Route(f"{API}/users/{{id}}/status", r(self._patch_user_status, "users.update_status"), methods=["PATCH"]),
            Route(f"{API}/users/{{id}}/screenpop", r(self._screen_pop, "screen_pop.initiate"), methods=["POST"]),
            Route(f"{API}/callcenters", r(self._list_call_centers, "callcenters.listall"), methods=["GET"]),
            Route(
                f"{API}/callcenters/operators/{{id}}/dutystatus",
                r(self._get_duty, "callcenters.operators.get.dutystatus"),
                methods=["GET"],
            ),
            Route(
                f"{API}/callcenters/operators/{{id}}/dutystatus",
                r(self._patch_duty, "callcenters.operators.dutystatus"),
                methods=["PATCH"],
            ),
            Route(f"{API}/callcenters/{{id}}", r(self._get_call_center, "callcenters.get"), methods=["GET"]),
            Route(
                f"{API}/callcenters/{{id}}/operators", r(self._list_operators, "callcenters.operators.get"), methods=["GET"]
            ),
            Route(f"{API}/callcenters/{{id}}/status", r(self._cc_status, "callcenters.status"), methods=["GET"]),
            Route(f"{API}/call", r(self._initiate_call, "call.call"), methods=["POST"]),
            Route(f"{API}/call/{{id}}", r(self._get_call, "call.get_call_info"), methods=["GET"]),
            Route(f"{API}/call/{{id}}/transfer", r(self._transfer_call, "call.transfer_call"), methods=["POST"]),
            Route(f"{API}/call/{{id}}/actions/hangup", r(self._hangup_call, "call.actions.hangup"), methods=["PUT"]),
            Route(f"{API}/call/{{id}}/labels", r(self._put_labels, "call.put_call_labels"), methods=["PUT"]),
            Route(f"{API}/callback", r(self._callback, "call.callback"), methods=["POST"]),
            Route(f"{API}/websockets", r(self._list_websockets, "websockets.list"), methods=["GET"]),
            Route(f"{API}/websockets", r(self._create_websocket, "websockets.create"), methods=["POST"]),
            Route(f"{API}/websockets/{{id}}", r(self._get_websocket, "websockets.get"), methods=["GET"]),
            Route(f"{API}/websockets/{{id}}", r(self._patch_websocket, "websockets.update"), methods=["PATCH"]),
            Route(f"{API}/websockets/{{id}}", r(self._delete_websocket, "websockets.delete"), methods=["DELETE"]),
            Route(f"{API}/webhooks", r(self._list_webhooks, "webhooks.list"), methods=["GET"]),
            Route(f"{API}/webhooks", r(self._create_webhook, "webhooks.create"), methods=["POST"]),
            Route(f"{API}/webhooks/{{id}}", r(self._get_webhook, "webhooks.get"), methods=["GET"]),
            Route(f"{API}/webhooks/{{id}}", r(self._patch_webhook, "webhook.update"), methods=["PATCH"]),
            Route(f"{API}/webhooks/{{id}}", r(self._delete_webhook, "webhooks.delete"), methods=["DELETE"]),
            Route(f"{API}/subscriptions/call", r(self._list_call_subs, "webhook_call_event_subscription.list"), methods=["GET"]),
            Route(
                f"{API}/subscriptions/call", r(self._create_call_sub, "webhook_call_event_subscription.create"), methods=["POST"]
            ),
            Route(
                f"{API}/subscriptions/call/{{id}}", r(self._get_call_sub, "webhook_call_event_subscription.get"), methods=["GET"]
            ),
            Route(
                f"{API}/subscriptions/call/{{id}}",
                r(self._patch_call_sub, "webhook_call_event_subscription.update"),
                methods=["PATCH"],
            ),
            Route(
                f"{API}/subscriptions/call/{{id}}",
                r(self._delete_call_sub, "webhook_call_event_subscription.delete"),
                methods=["DELETE"],
            ),
            Route(
                f"{API}/subscriptions/agent_status",
                r(self._list_agent_subs, "webhook_agent_status_event_subscription.list"),
                methods=["GET"],
            ),
            Route(
                f"{API}/subscriptions/agent_status",
                r(self._create_agent_sub, "webhook_agent_status_event_subscription.create"),
                methods=["POST"],
            ),
            Route(
                f"{API}/subscriptions/agent_status/{{id}}",
                r(self._get_agent_sub, "webhook_agent_status_event_subscription.get"),
                methods=["GET"],
            ),
            Route(
                f"{API}/subscriptions/agent_status/{{id}}",
                r(self._patch_agent_sub, "webhook_agent_status_event_subscription.update"),
                methods=["PATCH"],
            ),
            Route(
                f"{API}/subscriptions/agent_status/{{id}}",
                r(self._delete_agent_sub, "webhook_agent_status_event_subscription.delete"),
                methods=["DELETE"],
            ),
            WebSocketRoute("/events/{token}", self._events_socket),
        ]

        async def http_error(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            message = {404: "Not found", 405: "Method not allowed"}.get(status, "Error")
            return SimApiError(status, f"{message}: {request.method} {request.url.path}").response()

        return Starlette(
            routes=routes,
            middleware=[Middleware(_CaptureRawSend)],
            exception_handlers={HTTPException: http_error},
        )

    def _route(
        self,
        handler: Callable[[Request, dict[str, Any] | None], Awaitable[dict[str, Any] | None]],
        operation: str,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            body: Any = None
            result: Any = None
            arrived = self._clock()
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                self._take_fault(request)
                self._check_auth(request)
                self._check_rate(operation)
                if request.method in ("POST", "PATCH", "PUT"):
                    body = await self._json_body(request)
                result = await handler(request, body)
                response: Response = Response(status_code=200) if result is None else JSONResponse(result)
            except SimApiError as exc:
                result = None
                response = exc.response()
            except ValueError as exc:  # the control API's refusals, answered as Dialpad would
                result = None
                response = SimApiError(400, str(exc)).response()
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=dict(request.query_params),
                    body=body,
                    status=response.status_code,
                    response=result,
                    at=arrived,
                    operation=operation,
                )
            )
            return response

        return endpoint

    def _check_rate(self, operation: str) -> None:
        now = self._clock()
        checks: list[tuple[str, tuple[int, float]]] = []
        if self.rate_limits:
            checks.append((operation, RATE_LIMITS.get(operation, DEFAULT_RATE_LIMIT)))
        if self.company_rate_limit is not None:
            checks.append(("*company*", self.company_rate_limit))
        for key, (count, period) in checks:
            hits = self._hits[key]
            while hits and hits[0] <= now - period:
                hits.popleft()
            if len(hits) >= count:
                wait = max(1, math.ceil(hits[0] + period - now))
                raise SimApiError(429, "Rate limit exceeded", headers={"Retry-After": str(wait)})
        for key, _ in checks:
            self._hits[key].append(now)

    def _take_fault(self, request: Request) -> None:
        for fault in self._faults:
            if fault.remaining <= 0:
                continue
            if fault.method and fault.method != request.method:
                continue
            if fault.path and not request.url.path.startswith(fault.path):
                continue
            fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining > 0]
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
            raise SimApiError(fault.status, fault.message, headers=headers)

    def _check_auth(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else ""
        if not presented:
            presented = request.query_params.get("apikey", "")
        if not presented:
            raise SimApiError(401, "Missing API key: send 'Authorization: Bearer <api key>'")
        if not hmac.compare_digest(presented.encode(), self._api_key.encode()):
            raise SimApiError(401, "Invalid API key")
        if self._key_expires_at is not None and self._clock() >= self._key_expires_at:
            raise SimApiError(401, "API key expired")

    async def _json_body(self, request: Request) -> dict[str, Any] | None:
        raw = await request.body()
        if not raw.strip():
            return None
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise SimApiError(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise SimApiError(400, "Request body must be a JSON object")
        return body

    # ------------------------------------------------------------------ validation helpers
    @staticmethod
    def _fields(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise SimApiError(400, f"Unknown field(s): {', '.join(unknown)}")

    @staticmethod
    def _id(value: Any, name: str, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                raise SimApiError(400, f"{name} is required")
            return None
        if isinstance(value, bool):
            raise SimApiError(400, f"{name} must be an integer id")
        if isinstance(value, int) and value >= 0:
            return str(value)
        if isinstance(value, str) and value.strip().isdigit():
            return str(int(value.strip()))
        raise SimApiError(400, f"{name} must be an integer id")

    @staticmethod
    def _bool(value: Any, name: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise SimApiError(400, f"{name} must be true or false")

    @staticmethod
    def _line(value: Any, name: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise SimApiError(400, f"{name} must be a string")
        if "\n" in value or "\r" in value:
            raise SimApiError(400, f"{name} must be a single line")
        return value

    def _path_id(self, request: Request, what: str) -> str:
        raw = request.path_params["id"]
        if not raw.isdigit():
            raise SimApiError(400, f"Invalid {what} id")
        return str(int(raw))

    def _page(self, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
        cursor = request.query_params.get("cursor")
        offset = 0
        if cursor:
            try:
                decoded = base64.urlsafe_b64decode(cursor.encode() + b"==").decode()
                kind, _, number = decoded.partition(":")
                if kind != "offset" or not number.isdigit():
                    raise ValueError
                offset = int(number)
            except (ValueError, UnicodeDecodeError):
                raise SimApiError(400, "Invalid cursor") from None
        page = items[offset : offset + self.page_size]
        result: dict[str, Any] = {"items": page}
        if offset + self.page_size < len(items):
            nxt = f"offset:{offset + self.page_size}".encode()
            result["cursor"] = base64.urlsafe_b64encode(nxt).decode().rstrip("=")
        return result

    # ------------------------------------------------------------------ users & call centers
    def _user_json(self, agent: SimAgent) -> dict[str, Any]:
        duty = self._duty.get(agent.id)
        groups: list[dict[str, Any]] = [
            {"group_id": cc, "group_type": "callcenter", "role": "operator", "do_not_disturb": False}
            for cc in agent.call_center_ids
        ]
        groups.append({"group_id": self.office_id, "group_type": "office", "role": "operator", "do_not_disturb": False})
        user: dict[str, Any] = {
            "id": agent.id,
            "company_id": self.company_id,
            "office_id": self.office_id,
            "display_name": agent.name,
            "first_name": agent.first_name,
            "last_name": agent.last_name,
            "emails": [agent.email],
            "phone_numbers": [agent.phone],
            "forwarding_numbers": [],
            "admin_office_ids": [],
            "group_details": groups,
            "country": "us",
            "language": "en",
            "timezone": "US/Pacific",
            "license": "agents" if agent.call_center_ids else "talk",
            "state": "active",
            "date_added": _iso(self._started),
            "date_active": _iso(self._started),
            "date_first_login": _iso(self._started),
            "is_admin": False,
            "is_super_admin": False,
            "is_online": True,
            "is_available": not self._busy(agent.id) and (duty is None or duty.status == "available"),
            "do_not_disturb": False,
            "international_dialing_enabled": False,
            "muted": False,
            "job_title": "Patient access representative",
            "location": "Main clinic",
            "status_message": "",
        }
        if duty is not None:
            user["is_on_duty"] = duty.status != "unavailable"
            user["on_duty_status"] = duty.status
            user["duty_status_started"] = _iso(duty.status_started)
            if duty.on_duty_started is not None:
                user["on_duty_started"] = _iso(duty.on_duty_started)
            if duty.reason:
                user["duty_status_reason"] = duty.reason
        return user

    async def _get_user(self, request: Request, _: Any) -> dict[str, Any]:
        raw = request.path_params["id"]
        if raw == "me":
            raise SimApiError(400, "'me' needs a user-level API key; this key belongs to the company")
        uid = self._path_id(request, "user")
        if uid not in self.agents:
            raise SimApiError(404, f"User {uid} not found")
        return self._user_json(self.agents[uid])

    async def _list_users(self, request: Request, _: Any) -> dict[str, Any]:
        q = request.query_params
        state = q.get("state")
        if state and state not in ("active", "all", "cancelled", "deleted", "pending", "suspended"):
            raise SimApiError(400, "Invalid state filter")
        agents = list(self.agents.values())
        if state not in (None, "", "active", "all"):
            agents = []
        if q.get("email"):
            agents = [a for a in agents if a.email.lower() == q["email"].lower()]
        if q.get("number"):
            agents = [a for a in agents if a.phone == q["number"]]
        return self._page(request, [self._user_json(a) for a in agents])

    def _cc_json(self, cc: SimCallCenter) -> dict[str, Any]:
        return {
            "id": cc.id,
            "name": cc.name,
            "office_id": self.office_id,
            "state": "active",
            "availability_status": "open",
            "phone_numbers": [cc.phone or self.company_number],
            "ring_seconds": 30,
            "country": "us",
            "timezone": "US/Pacific",
            "first_action": "operators",
            "no_operators_action": "voicemail",
            "hours_on": False,
        }

    async def _list_call_centers(self, request: Request, _: Any) -> dict[str, Any]:
        centers = list(self.call_centers.values())
        if request.query_params.get("name_search"):
            needle = request.query_params["name_search"].lower()
            centers = [c for c in centers if needle in c.name.lower()]
        return self._page(request, [self._cc_json(c) for c in centers])

    async def _get_call_center(self, request: Request, _: Any) -> dict[str, Any]:
        cc_id = self._path_id(request, "call center")
        if cc_id not in self.call_centers:
            raise SimApiError(404, f"Call center {cc_id} not found")
        return self._cc_json(self.call_centers[cc_id])

    def _duty_json(self, uid: str) -> dict[str, Any]:
        duty = self._duty[uid]
        body: dict[str, Any] = {
            "user_id": uid,
            "on_duty": duty.status != "unavailable",
            "on_duty_status": duty.status,
            "duty_status_started": str(duty.status_started),
        }
        if duty.on_duty_started is not None:
            body["on_duty_started"] = str(duty.on_duty_started)
        if duty.reason:
            body["duty_status_reason"] = duty.reason
        return body

    def _operator(self, request: Request) -> str:
        uid = self._path_id(request, "operator")
        if uid not in self.agents:
            raise SimApiError(404, f"User {uid} not found")
        if uid not in self._duty:
            raise SimApiError(400, f"User {uid} is not an operator of any call center")
        return uid

    async def _get_duty(self, request: Request, _: Any) -> dict[str, Any]:
        return self._duty_json(self._operator(request))

    async def _patch_duty(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        uid = self._operator(request)
        body = body or {}
        self._fields(body, ("on_duty", "duty_status_reason"))
        on_duty = self._bool(body.get("on_duty"), "on_duty")
        if on_duty is None:
            raise SimApiError(400, "on_duty is required")
        reason = self._line(body.get("duty_status_reason"), "duty_status_reason")
        current = self._duty[uid].status
        if on_duty and current == "unavailable":
            await self._change_duty(uid, "available", reason)
        elif not on_duty:
            await self._change_duty(uid, "unavailable", reason)
        elif reason is not None:
            self._duty[uid].reason = reason
        return self._duty_json(uid)

    # ------------------------------------------------------------------ users: status, screen pop
    def _user(self, request: Request) -> SimAgent:
        if request.path_params["id"] == "me":
            raise SimApiError(400, "'me' needs a user-level API key; this key belongs to the company")
        uid = self._path_id(request, "user")
        if uid not in self.agents:
            raise SimApiError(404, f"User {uid} not found")
        return self.agents[uid]

    async def _patch_user_status(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        agent = self._user(request)
        body = body or {}
        self._fields(body, ("status_message", "expiration"))
        message = self._line(body.get("status_message"), "status_message")
        expiration = body.get("expiration")
        if expiration is not None:
            if isinstance(expiration, bool) or not (
                isinstance(expiration, int) or (isinstance(expiration, str) and expiration.isdigit())
            ):
                raise SimApiError(400, "expiration must be an integer")
            expiration = int(expiration)
        self.user_statuses[agent.id] = (message, expiration)
        if agent.id in self._duty:
            self._agent_event(agent.id)
        answer: dict[str, Any] = {"id": agent.id, "status_message": message or ""}
        if expiration is not None:
            answer["expiration"] = str(expiration)
        return answer

    async def _screen_pop(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        agent = self._user(request)
        body = body or {}
        self._fields(body, ("screen_pop_uri",))
        uri = self._line(body.get("screen_pop_uri"), "screen_pop_uri")
        if not uri:
            raise SimApiError(400, "screen_pop_uri is required")
        scheme, sep, rest = uri.partition(":")
        if not sep or not scheme or not rest:
            raise SimApiError(400, "screen_pop_uri must start with a scheme, such as https://")
        authority = rest[2:].split("/", 1)[0] if rest.startswith("//") else ""
        if "@" in authority:
            raise SimApiError(400, "screen_pop_uri with userinfo is not supported")
        self.screen_pops[agent.id].append(uri)
        return {
            "device": {
                "id": f"web-{agent.id}",
                "type": "web",
                "user_id": agent.id,
                "display_name": "Dialpad web app",
                "phone_number": agent.phone,
            }
        }

    # ------------------------------------------------------------------ call centers: operators, status
    def _cc(self, request: Request) -> SimCallCenter:
        cc_id = self._path_id(request, "call center")
        if cc_id not in self.call_centers:
            raise SimApiError(404, f"Call center {cc_id} not found")
        return self.call_centers[cc_id]

    async def _list_operators(self, request: Request, _: Any) -> dict[str, Any]:
        cc = self._cc(request)
        return {"users": [self._user_json(a) for a in self.agents.values() if cc.id in a.call_center_ids]}

    async def _cc_status(self, request: Request, _: Any) -> dict[str, Any]:
        cc = self._cc(request)
        operators = [a for a in self.agents.values() if cc.id in a.call_center_ids]
        on_duty = [a for a in operators if self._duty.get(a.id) and self._duty[a.id].status != "unavailable"]
        capacity = [
            a for a in on_duty if self._duty[a.id].status in ("available", "occupied-end", "wrapup-end") and not self._busy(a.id)
        ]
        waiting = [
            c for c in self._calls.values() if c.call_center_id == cc.id and not c.ended and not c.answered_by
        ]
        now = self._ms()
        longest = max(
            ((now - (c.entry.date_queued or c.date_started)) // 1000 for c in waiting), default=0
        )
        return {
            "availability": {"status": "open"},
            "capacity": str(len(capacity)),
            "longest_call_wait_time": str(int(longest)),
            "on_duty_operators": str(len(on_duty)),
            "pending": str(len(waiting)),
        }

    # ------------------------------------------------------------------ calls
    def _find_call(self, request: Request) -> tuple[_Call, _Leg]:
        leg_id = self._path_id(request, "call")
        key = self._leg_index.get(leg_id)
        if key is None:
            raise SimApiError(404, f"Call {leg_id} not found")
        call = self._calls[key]
        return call, call.legs[leg_id]

    @staticmethod
    def _e164(value: Any, name: str) -> str:
        if not isinstance(value, str) or not _E164.match(value):
            raise SimApiError(400, f"{name} must be an E.164 number, like +14155550123")
        return value

    async def _initiate_call(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        body = body or {}
        self._fields(
            body,
            ("custom_data", "device_id", "group_id", "group_type", "is_consult", "outbound_caller_id", "phone_number", "user_id"),
        )
        uid = self._id(body.get("user_id"), "user_id", required=True)
        if uid not in self.agents:
            raise SimApiError(400, f"User {uid} not found")
        agent = self.agents[uid or ""]
        number = self._e164(body.get("phone_number"), "phone_number")
        caller_id = agent.phone
        group_type = body.get("group_type")
        group_id = self._id(body.get("group_id"), "group_id")
        if (group_type is None) != (group_id is None):
            raise SimApiError(400, "group_id and group_type must be given together")
        if group_type is not None:
            if group_type not in ("callcenter", "department", "office"):
                raise SimApiError(400, "Invalid group_type")
            if group_type == "callcenter":
                if group_id not in self.call_centers:
                    raise SimApiError(400, f"Call center {group_id} not found")
                if group_id not in agent.call_center_ids:
                    raise SimApiError(400, f"User {uid} is not an operator of call center {group_id}")
                caller_id = self.call_centers[group_id or ""].phone or self.company_number
            elif group_type == "office" and group_id != self.office_id:
                raise SimApiError(400, f"Office {group_id} not found")
        outbound = body.get("outbound_caller_id")
        if outbound is not None:
            caller_id = outbound if outbound == "blocked" else self._e164(outbound, "outbound_caller_id")
        custom_data = self._line(body.get("custom_data"), "custom_data")
        self._line(body.get("device_id"), "device_id")
        self._bool(body.get("is_consult"), "is_consult")
        call_id = await self._start_outbound(agent, number, caller_id, custom_data)
        return {"call_id": call_id}

    async def _get_call(self, request: Request, _: Any) -> dict[str, Any]:
        call, leg = self._find_call(request)
        return self._call_proto(call, leg)

    async def _transfer_call(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        call, leg = self._find_call(request)
        body = body or {}
        self._fields(body, ("custom_data", "to", "transfer_state"))
        to = body.get("to")
        if not isinstance(to, dict) or not to:
            raise SimApiError(400, "to is required: a number, a call_id, or a target_type and target_id")
        state = body.get("transfer_state")
        if state is not None and state not in TRANSFER_STATES:
            raise SimApiError(400, f"Invalid transfer_state; use one of {', '.join(TRANSFER_STATES)}")
        custom_data = self._line(body.get("custom_data"), "custom_data")
        user_id = cc_id = number = None
        if set(to) == {"number"}:
            number = self._e164(to["number"], "to.number")
        elif set(to) == {"target_type", "target_id"}:
            target_id = self._id(to.get("target_id"), "to.target_id", required=True)
            target_type = to.get("target_type")
            if target_type == "user":
                if target_id not in self.agents:
                    raise SimApiError(400, f"User {target_id} not found")
                user_id = target_id
            elif target_type == "callcenter":
                if target_id not in self.call_centers:
                    raise SimApiError(400, f"Call center {target_id} not found")
                cc_id = target_id
            elif target_type in ("department", "office"):
                raise SimApiError(400, f"Transfers to a {target_type} are not simulated")
            else:
                raise SimApiError(400, "Invalid to.target_type")
        elif set(to) == {"call_id"}:
            raise SimApiError(400, "Transfers into another call are not simulated")
        else:
            raise SimApiError(400, "to must be exactly one of: number, call_id, or target_type with target_id")
        if call.ended:
            raise SimApiError(400, f"Call {leg.call_id} has already ended")
        return await self._transfer(call, leg.call_id, user_id, cc_id, number, state, custom_data)

    async def _hangup_call(self, request: Request, _: Any) -> None:
        call, _leg = self._find_call(request)
        await self.hangup(call.id)  # hanging up an ended call is a no-op: repeating is safe
        return None

    async def _put_labels(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        call, leg = self._find_call(request)
        body = body or {}
        self._fields(body, ("labels",))
        labels = body.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
            raise SimApiError(400, "labels must be a list of non-empty strings")
        call.labels = list(dict.fromkeys(x.strip() for x in labels))
        return self._call_proto(call, leg)

    async def _callback(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        body = body or {}
        self._fields(body, ("call_center_id", "phone_number"))
        cc_id = self._id(body.get("call_center_id"), "call_center_id", required=True)
        if cc_id not in self.call_centers:
            raise SimApiError(400, f"Call center {cc_id} not found")
        number = self._e164(body.get("phone_number"), "phone_number")
        if not number.startswith("+1"):
            raise SimApiError(400, "International call backs are not supported")
        if any(c.call_center_id == cc_id and c.phone_number == number for c in self.callbacks):
            raise SimApiError(400, "A call back to this number is already queued in this call center")
        position = len(self.callbacks_for(cc_id or "")) + 1
        self.callbacks.append(SimCallback(call_center_id=cc_id or "", phone_number=number, position=position, at=self._clock()))
        return {"position": str(position)}

    # ------------------------------------------------------------------ webhooks
    def _hook_json(self, hook: _Webhook) -> dict[str, Any]:
        body: dict[str, Any] = {"id": hook.id, "hook_url": hook.hook_url}
        if hook.secret:
            body["signature"] = {"algo": "HS256", "secret": hook.secret, "type": "jwt"}
        return body

    def _hook(self, request: Request) -> _Webhook:
        hook_id = self._path_id(request, "webhook")
        if hook_id not in self._webhooks:
            raise SimApiError(404, f"Webhook {hook_id} not found")
        return self._webhooks[hook_id]

    def _hook_url(self, value: Any) -> str:
        url = self._line(value, "hook_url")
        if not url or not url.startswith(("http://", "https://")):
            raise SimApiError(400, "hook_url must be an http(s) URL")
        return url

    async def _create_webhook(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        body = body or {}
        self._fields(body, ("hook_url", "secret"))
        hook = _Webhook(
            id=str(next(self._hook_ids)),
            hook_url=self._hook_url(body.get("hook_url")),
            secret=self._line(body.get("secret"), "secret") or None,
        )
        self._webhooks[hook.id] = hook
        return self._hook_json(hook)

    async def _list_webhooks(self, request: Request, _: Any) -> dict[str, Any]:
        return self._page(request, [self._hook_json(h) for h in self._webhooks.values()])

    async def _get_webhook(self, request: Request, _: Any) -> dict[str, Any]:
        return self._hook_json(self._hook(request))

    async def _patch_webhook(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        hook = self._hook(request)
        body = body or {}
        self._fields(body, ("hook_url", "secret"))
        if body.get("hook_url") is not None:
            hook.hook_url = self._hook_url(body.get("hook_url"))
        if "secret" in body:
            hook.secret = self._line(body.get("secret"), "secret") or None
        return self._hook_json(hook)

    async def _delete_webhook(self, request: Request, _: Any) -> dict[str, Any]:
        hook = self._hook(request)
        del self._webhooks[hook.id]
        for subs in (self._call_subs, self._agent_subs):
            for sid in [s for s, sub in subs.items() if sub.endpoint_id == hook.id]:
                del subs[sid]
        if hook.worker is not None:
            hook.worker.cancel()
        return self._hook_json(hook)

    # ------------------------------------------------------------------ websockets
    def _ws_url(self, request: Request, endpoint: _Endpoint) -> str:
        now = self._clock()
        claims = {
            "sub": f"endpoint:{endpoint.id}:*",
            "iss": TOKEN_ISSUER,
            "iat": round(now, 3),
            "exp": round(now + self.websocket_lifetime, 3),
            "jti": pysecrets.token_hex(8),
        }
        token = jwt.encode(claims, self._signing_key, algorithm="HS256", headers={"typ": TOKEN_TYPE})
        scheme = "wss" if request.url.scheme == "https" else "ws"
        return f"{scheme}://{request.url.netloc}/events/{token}"

    def _ws_json(self, endpoint: _Endpoint, request: Request | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"id": endpoint.id}
        if request is not None:
            body["websocket_url"] = self._ws_url(request, endpoint)
        if endpoint.secret:
            body["signature"] = {"algo": "HS256", "secret": endpoint.secret, "type": "jwt"}
        return body

    def _endpoint(self, request: Request) -> _Endpoint:
        ws_id = self._path_id(request, "websocket")
        if ws_id not in self._endpoints:
            raise SimApiError(404, f"Websocket {ws_id} not found")
        return self._endpoints[ws_id]

    async def _create_websocket(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        body = body or {}
        self._fields(body, ("secret",))
        secret = self._line(body.get("secret"), "secret")
        endpoint = _Endpoint(id=str(next(self._ws_ids)), secret=secret or None)
        self._endpoints[endpoint.id] = endpoint
        return self._ws_json(endpoint, request)

    async def _list_websockets(self, request: Request, _: Any) -> dict[str, Any]:
        return self._page(request, [self._ws_json(e, request) for e in self._endpoints.values()])

    async def _get_websocket(self, request: Request, _: Any) -> dict[str, Any]:
        return self._ws_json(self._endpoint(request), request)

    async def _patch_websocket(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        endpoint = self._endpoint(request)
        body = body or {}
        self._fields(body, ("secret",))
        if "secret" in body:
            endpoint.secret = self._line(body.get("secret"), "secret") or None
        return self._ws_json(endpoint, request)

    async def _delete_websocket(self, request: Request, _: Any) -> dict[str, Any]:
        endpoint = self._endpoint(request)
        del self._endpoints[endpoint.id]
        for subs in (self._call_subs, self._agent_subs):
            for sid in [s for s, sub in subs.items() if sub.endpoint_id == endpoint.id]:
                del subs[sid]
        for conn in list(endpoint.conns):
            conn.outbox.put_nowait((1008, "websocket deleted"))
        endpoint.conns.clear()
        return self._ws_json(endpoint)

    def _check_token(self, token: str) -> tuple[_Endpoint | None, float, str]:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token, self._signing_key, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
            )
        except jwt.InvalidTokenError:
            return None, 0.0, "Invalid websocket token"
        if header.get("typ") != TOKEN_TYPE or claims.get("iss") != TOKEN_ISSUER:
            return None, 0.0, "Invalid websocket token"
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= self._clock():
            return None, 0.0, "Websocket token expired; GET the websocket for a fresh URL"
        sub = str(claims.get("sub", ""))
        parts = sub.split(":")
        endpoint = self._endpoints.get(parts[1]) if len(parts) == 3 and parts[0] == "endpoint" else None
        if endpoint is None:
            return None, 0.0, "Websocket not found"
        return endpoint, float(exp), ""

    async def _events_socket(self, websocket: WebSocket) -> None:
        endpoint, expires_at, problem = self._check_token(websocket.path_params["token"])
        if endpoint is None:
            status = 404 if problem == "Websocket not found" else 401
            try:
                await websocket.send_denial_response(SimApiError(status, problem).response())
            except RuntimeError:
                await websocket.close(code=1008, reason=problem[:100])
            return
        # Registered before the handshake completes: once the client sees the connection open,
        # every later event is already queued for it (the writer starts after accept()).
        conn = _Conn(ws=websocket, endpoint_id=endpoint.id, expires_at=expires_at)
        endpoint.conns.add(conn)
        self.connections_opened += 1
        writer: asyncio.Task[None] | None = None
        watchdog: asyncio.Task[None] | None = None
        try:
            await websocket.accept()
            writer = asyncio.create_task(self._writer(conn), name=f"sim-ws-writer-{endpoint.id}")
            watchdog = asyncio.create_task(self._expiry(conn), name=f"sim-ws-expiry-{endpoint.id}")
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except Exception:  # noqa: BLE001 - any failure ends this connection only
            pass
        finally:
            conn.open = False
            endpoint.conns.discard(conn)
            tasks = [t for t in (writer, watchdog) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _writer(self, conn: _Conn) -> None:
        while True:
            item = await conn.outbox.get()
            try:
                if isinstance(item, tuple):
                    conn.open = False
                    await conn.ws.close(code=item[0], reason=item[1])
                    return
                await conn.ws.send_text(item)
            except Exception:  # noqa: BLE001 - the peer went away; the reader notices
                conn.open = False
                return

    async def _expiry(self, conn: _Conn) -> None:
        while conn.open:
            remaining = conn.expires_at - self._clock()
            if remaining <= 0:
                conn.open = False
                for endpoint in self._endpoints.values():
                    endpoint.conns.discard(conn)
                conn.outbox.put_nowait((1008, "websocket token expired"))
                return
            step = min(remaining, 60.0) if self._clock is time.time else min(remaining, 0.1)
            await asyncio.sleep(step)

    # ------------------------------------------------------------------ subscriptions
    def _validate_endpoint(self, value: Any, *, required: bool) -> str | None:
        endpoint_id = self._id(value, "endpoint_id", required=required)
        if endpoint_id is not None and endpoint_id not in self._endpoints and endpoint_id not in self._webhooks:
            raise SimApiError(400, f"endpoint_id {endpoint_id} does not match any webhook or websocket")
        return endpoint_id

    def _call_sub_json(self, sub: _CallSub) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": sub.id,
            "enabled": sub.enabled,
            "group_calls_only": sub.group_calls_only,
        }
        if sub.call_states:
            body["call_states"] = list(sub.call_states)
        if sub.target_type:
            body["target_type"] = sub.target_type
            body["target_id"] = sub.target_id
        self._endpoint_json(sub.endpoint_id, body)
        return body

    def _endpoint_json(self, endpoint_id: str, body: dict[str, Any]) -> None:
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is not None:
            body["websocket"] = self._ws_json(endpoint)
        hook = self._webhooks.get(endpoint_id)
        if hook is not None:
            body["webhook"] = self._hook_json(hook)

    def _apply_call_sub(self, body: Mapping[str, Any], sub: _CallSub | None) -> dict[str, Any]:
        self._fields(body, ("endpoint_id", "call_states", "enabled", "group_calls_only", "target_id", "target_type"))
        values: dict[str, Any] = {}
        if "endpoint_id" in body or sub is None:
            values["endpoint_id"] = self._validate_endpoint(body.get("endpoint_id"), required=True)
        if "call_states" in body:
            states = body.get("call_states")
            if states is None:
                states = []
            if not isinstance(states, list) or not all(isinstance(s, str) for s in states):
                raise SimApiError(400, "call_states must be a list of strings")
            unknown = sorted(set(states) - CALL_STATES)
            if unknown:
                raise SimApiError(400, f"Invalid call state(s): {', '.join(unknown)}")
            values["call_states"] = tuple(dict.fromkeys(states))
        for name in ("enabled", "group_calls_only"):
            if name in body:
                values[name] = self._bool(body.get(name), name)
        if "target_type" in body or "target_id" in body:
            target_type = body.get("target_type")
            target_id = self._id(body.get("target_id"), "target_id")
            if target_type is not None and (not isinstance(target_type, str) or target_type not in TARGET_TYPES):
                raise SimApiError(400, "Invalid target_type")
            if (target_type is None) != (target_id is None):
                raise SimApiError(400, "target_type and target_id must be given together")
            if target_type == "user" and target_id not in self.agents:
                raise SimApiError(400, f"Target user {target_id} not found")
            if target_type == "callcenter" and target_id not in self.call_centers:
                raise SimApiError(400, f"Target call center {target_id} not found")
            if target_type == "office" and target_id != self.office_id:
                raise SimApiError(400, f"Target office {target_id} not found")
            values["target_type"], values["target_id"] = target_type, target_id
        return values

    async def _create_call_sub(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        values = self._apply_call_sub(body or {}, None)
        sub = _CallSub(
            id=str(next(self._sub_ids)),
            endpoint_id=values["endpoint_id"],
            call_states=values.get("call_states", ()),
            target_type=values.get("target_type"),
            target_id=values.get("target_id"),
            group_calls_only=bool(values.get("group_calls_only")),
            enabled=values.get("enabled") is not False,
        )
        self._call_subs[sub.id] = sub
        return self._call_sub_json(sub)

    def _find_call_sub(self, request: Request) -> _CallSub:
        sid = self._path_id(request, "subscription")
        if sid not in self._call_subs:
            raise SimApiError(404, f"Call event subscription {sid} not found")
        return self._call_subs[sid]

    async def _list_call_subs(self, request: Request, _: Any) -> dict[str, Any]:
        q = request.query_params
        subs = list(self._call_subs.values())
        if q.get("target_type"):
            if q["target_type"] not in TARGET_TYPES:
                raise SimApiError(400, "Invalid target_type")
            subs = [s for s in subs if s.target_type == q["target_type"]]
        if q.get("target_id"):
            tid = self._id(q["target_id"], "target_id")
            subs = [s for s in subs if s.target_id == tid]
        return self._page(request, [self._call_sub_json(s) for s in subs])

    async def _get_call_sub(self, request: Request, _: Any) -> dict[str, Any]:
        return self._call_sub_json(self._find_call_sub(request))

    async def _patch_call_sub(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        sub = self._find_call_sub(request)
        values = self._apply_call_sub(body or {}, sub)
        for name, value in values.items():
            if name in ("enabled", "group_calls_only") and value is None:
                continue
            setattr(sub, name, value)
        return self._call_sub_json(sub)

    async def _delete_call_sub(self, request: Request, _: Any) -> dict[str, Any]:
        sub = self._find_call_sub(request)
        body = self._call_sub_json(sub)
        del self._call_subs[sub.id]
        return body

    def _agent_sub_json(self, sub: _AgentSub) -> dict[str, Any]:
        body: dict[str, Any] = {"id": sub.id, "agent_type": sub.agent_type, "enabled": sub.enabled}
        self._endpoint_json(sub.endpoint_id, body)
        return body

    def _apply_agent_sub(self, body: Mapping[str, Any], creating: bool) -> dict[str, Any]:
        self._fields(body, ("endpoint_id", "agent_type", "enabled"))
        values: dict[str, Any] = {}
        if "endpoint_id" in body or creating:
            values["endpoint_id"] = self._validate_endpoint(body.get("endpoint_id"), required=True)
        if "agent_type" in body or creating:
            agent_type = body.get("agent_type")
            if agent_type is None and creating:
                raise SimApiError(400, "agent_type is required")
            if agent_type is not None and agent_type != "callcenter":
                raise SimApiError(400, "Invalid agent_type: only 'callcenter' is supported")
            if agent_type is not None:
                values["agent_type"] = agent_type
        if "enabled" in body:
            enabled = self._bool(body.get("enabled"), "enabled")
            if enabled is not None:
                values["enabled"] = enabled
        return values

    async def _create_agent_sub(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        values = self._apply_agent_sub(body or {}, True)
        sub = _AgentSub(
            id=str(next(self._sub_ids)),
            endpoint_id=values["endpoint_id"],
            agent_type=values["agent_type"],
            enabled=values.get("enabled", True),
        )
        self._agent_subs[sub.id] = sub
        return self._agent_sub_json(sub)

    def _find_agent_sub(self, request: Request) -> _AgentSub:
        sid = self._path_id(request, "subscription")
        if sid not in self._agent_subs:
            raise SimApiError(404, f"Agent status event subscription {sid} not found")
        return self._agent_subs[sid]

    async def _list_agent_subs(self, request: Request, _: Any) -> dict[str, Any]:
        return self._page(request, [self._agent_sub_json(s) for s in self._agent_subs.values()])

    async def _get_agent_sub(self, request: Request, _: Any) -> dict[str, Any]:
        return self._agent_sub_json(self._find_agent_sub(request))

    async def _patch_agent_sub(self, request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
        sub = self._find_agent_sub(request)
        for name, value in self._apply_agent_sub(body or {}, False).items():
            setattr(sub, name, value)
        return self._agent_sub_json(sub)

    async def _delete_agent_sub(self, request: Request, _: Any) -> dict[str, Any]:
        sub = self._find_agent_sub(request)
        body = self._agent_sub_json(sub)
        del self._agent_subs[sub.id]
        return body


__all__ = ["DialpadSimulator", "RecordedRequest", "SimApiError", "SimCallInfo", "SimCallback", "SimLeg"]
