"""Dialpad API v2 REST client (httpx).

Every request sends the API key as ``Authorization: Bearer`` — never in a
URL, a log line, a ``repr`` or an exception. Every failure becomes a
:mod:`pa_tui.backends.base` error whose ``title`` and ``fix`` are written for
the agent.

Rate limits. Each operation's description in Dialpad's OpenAPI document states
its own limit (dialling and screen pop 5 a minute, looking up a call 10 a
minute, most others 1200 a minute); on top of that the company's key shares
about 20 requests a second. The client keeps a budget per operation
(:data:`OPERATIONS`) and one for the company. A budget's tokens come back one
period after they were spent (a sliding window), so pa-tui never exceeds
Dialpad's window however Dialpad counts it. When an action would exceed a
budget the client raises :class:`BudgetExhausted` (a
:class:`~pa_tui.backends.base.RateLimited`) *before* sending, with a plain
sentence ("Dialpad allows 5 calls a minute; try again in 23 s"); waits under a
second are simply waited out. A 429 from Dialpad closes that operation's
budget until its ``Retry-After`` has passed. :meth:`DialpadClient.budgets`
reports what is left, for a diagnostics view. Call state is never polled.

Retries (tenacity, exponential backoff with jitter; ``Retry-After`` on 429)
happen only where repeating is safe: reads, and writes that set a state
(PATCH, PUT, DELETE). Nothing that creates something — a call, a transfer, a
callback request, a screen pop, a websocket, a subscription — is ever sent twice.

Request bodies follow the official OpenAPI document
(``schemas.call.RingCallMessage``, ``schemas.call.TransferCallMessage``,
``schemas.call_event_subscription.CreateCallEventSubscription``, …): int64
ids go out as JSON integers, phone numbers in E.164, and the subscription's
endpoint is ``endpoint_id``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from pa_tui.backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from pa_tui.backends.dialpad.events import parse_id
from pa_tui.backends.dialpad.models import (
    AgentStatusSubscription,
    CallCenterStatus,
    CallSubscription,
    DialpadCall,
    DialpadUser,
    DialpadWebhook,
    DialpadWebsocket,
    DutyStatusInfo,
    TransferResult,
    UserStatus,
)
from pa_tui.domain.agents import CallCenter

log = logging.getLogger(__name__)

PRODUCTION_URL: Final = "https://dialpad.com"
SANDBOX_URL: Final = "https://sandbox.dialpad.com"
API_KEYS_PATH: Final = "Dialpad Admin › My Company › Authentication › API Keys"
AUTH_FIX: Final = (
    f"Create or copy a valid key in {API_KEYS_PATH} (sandbox keys only work against sandbox.dialpad.com), "
    "then run `pa-tui auth set dialpad`."
)
# Longest Retry-After we wait out inside one request; longer ones go back to the caller.
MAX_RETRY_AFTER_WAIT: Final = 30.0
MAX_PAGES: Final = 1000

CALL_STATES: Final = frozenset(
    """admin admin_recording ai_playbook all barge blocked call_transcription calling connected csat
    dispositions eavesdrop hangup hold merged missed monitor parked pcsat postcall preanswer queued
    recap_action_items recap_outcome recap_purposes recap_summary recording ringing takeover
    transcription voicemail voicemail_uploaded""".split()
)
TARGET_TYPES: Final = frozenset(
    "callcenter callrouter channel coachinggroup coachingteam department office room staffgroup unknown user".split()
)
TRANSFER_STATES: Final = ("hold", "parked", "preanswer", "voicemail")
TRANSFER_TARGET_TYPES: Final = ("callcenter", "department", "office", "user")
DIAL_GROUP_TYPES: Final = ("callcenter", "department", "office")
TransferState = Literal["hold", "parked", "preanswer", "voicemail"]

_PHONE_IN_TEXT = re.compile(r"\+\d{7,15}|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


# --------------------------------------------------------------------------- rate limits
@dataclass(frozen=True)
class RateLimit:
    """``count`` requests per ``period`` seconds; ``noun`` names what is counted, in the plural."""

    count: int
    period: float
    noun: str = "requests"

    def describe(self) -> str:
        per = {1.0: "a second", 60.0: "a minute", 3600.0: "an hour"}.get(
            self.period, f"every {self.period / 60:g} minutes" if self.period >= 60 else f"every {self.period:g} s"
        )
        return f"{self.count} {self.noun} {per}"


@dataclass(frozen=True)
class Operation:
    """One Dialpad operation the client uses: where it goes, its rate limit, and whether a retry is safe."""

    method: str
    path: str  # the spec's path template
    limit: RateLimit
    idempotent: bool
    needs: str | None = None  # what a 403 means is missing, when the spec says


def _per_minute(count: int, noun: str) -> RateLimit:
    return RateLimit(count, 60.0, noun)


_DEFAULT = 1200  # "Rate limit: 1200 per minute." — most operations
#: Every operation the client sends, keyed by the client method's name. The limits are the ones
#: each operation's description in Dialpad's OpenAPI document states (a unit test keeps them in step).
OPERATIONS: Final[dict[str, Operation]] = {
    "get_user": Operation("GET", "/api/v2/users/{id}", _per_minute(_DEFAULT, "user look-ups"), True),
    "list_users": Operation("GET", "/api/v2/users", _per_minute(_DEFAULT, "user list pages"), True),
    "set_user_status": Operation(
        "PATCH", "/api/v2/users/{id}/status", _per_minute(_DEFAULT, "status changes"), True
    ),
    "screen_pop": Operation(
        "POST", "/api/v2/users/{id}/screenpop", _per_minute(5, "screen pops"), False, needs='the "screen_pop" scope'
    ),
    "list_call_centers": Operation("GET", "/api/v2/callcenters", _per_minute(_DEFAULT, "call center list pages"), True),
    "list_operators": Operation(
        "GET", "/api/v2/callcenters/{id}/operators", _per_minute(_DEFAULT, "operator lists"), True
    ),
    "call_center_status": Operation(
        "GET", "/api/v2/callcenters/{id}/status", _per_minute(_DEFAULT, "call center status checks"), True
    ),
    "get_duty_status": Operation(
        "GET", "/api/v2/callcenters/operators/{id}/dutystatus", _per_minute(_DEFAULT, "duty status checks"), True
    ),
    "set_duty_status": Operation(
        "PATCH", "/api/v2/callcenters/operators/{id}/dutystatus", _per_minute(_DEFAULT, "duty status changes"), True
    ),
    "initiate_call": Operation("POST", "/api/v2/call", _per_minute(5, "calls"), False),
    "get_call": Operation("GET", "/api/v2/call/{id}", _per_minute(10, "call look-ups"), True),
    "transfer": Operation("POST", "/api/v2/call/{id}/transfer", _per_minute(_DEFAULT, "transfers"), False),
    "hangup": Operation("PUT", "/api/v2/call/{id}/actions/hangup", _per_minute(_DEFAULT, "hang-ups"), True),
    "set_call_labels": Operation("PUT", "/api/v2/call/{id}/labels", _per_minute(250, "label changes"), True),
    "request_callback": Operation("POST", "/api/v2/callback", _per_minute(_DEFAULT, "callback requests"), False),
    "create_websocket": Operation("POST", "/api/v2/websockets", _per_minute(250, "new websockets"), False),
    "get_websocket": Operation("GET", "/api/v2/websockets/{id}", _per_minute(_DEFAULT, "websocket look-ups"), True),
    "update_websocket": Operation(
        "PATCH", "/api/v2/websockets/{id}", _per_minute(_DEFAULT, "websocket changes"), True
    ),
    "list_websockets": Operation("GET", "/api/v2/websockets", _per_minute(_DEFAULT, "websocket list pages"), True),
    "delete_websocket": Operation(
        "DELETE", "/api/v2/websockets/{id}", _per_minute(_DEFAULT, "websocket deletions"), True
    ),
    "create_webhook": Operation("POST", "/api/v2/webhooks", _per_minute(100, "new webhooks"), False),
    "get_webhook": Operation("GET", "/api/v2/webhooks/{id}", _per_minute(_DEFAULT, "webhook look-ups"), True),
    "update_webhook": Operation("PATCH", "/api/v2/webhooks/{id}", _per_minute(_DEFAULT, "webhook changes"), True),
    "list_webhooks": Operation("GET", "/api/v2/webhooks", _per_minute(_DEFAULT, "webhook list pages"), True),
    "delete_webhook": Operation("DELETE", "/api/v2/webhooks/{id}", _per_minute(_DEFAULT, "webhook deletions"), True),
    "subscribe_calls": Operation(
        "POST", "/api/v2/subscriptions/call", _per_minute(_DEFAULT, "new call subscriptions"), False
    ),
    "list_call_subscriptions": Operation(
        "GET", "/api/v2/subscriptions/call", _per_minute(_DEFAULT, "subscription list pages"), True
    ),
    "delete_call_subscription": Operation(
        "DELETE", "/api/v2/subscriptions/call/{id}", _per_minute(_DEFAULT, "subscription deletions"), True
    ),
    "subscribe_agent_status": Operation(
        "POST",
        "/api/v2/subscriptions/agent_status",
        _per_minute(_DEFAULT, "new agent-status subscriptions"),
        False,
        needs="a company-admin key",
    ),
    "list_agent_status_subscriptions": Operation(
        "GET", "/api/v2/subscriptions/agent_status", _per_minute(_DEFAULT, "subscription list pages"), True
    ),
    "delete_agent_status_subscription": Operation(
        "DELETE", "/api/v2/subscriptions/agent_status/{id}", _per_minute(_DEFAULT, "subscription deletions"), True
    ),
}
#: Shared by every request on one company's key.
COMPANY_LIMIT: Final = RateLimit(20, 1.0, "requests")
COMPANY: Final = "company"


@dataclass(frozen=True)
class BudgetState:
    """One budget as :meth:`DialpadClient.budgets` reports it."""

    remaining: int
    limit: int
    period: float
    retry_in: float  # seconds until the next request may go; 0 when one may go now
    blocked_by_dialpad: bool = False  # a 429's Retry-After is still running


class BudgetExhausted(RateLimited):
    """Refused before sending: the operation's budget (or Dialpad's Retry-After) says wait. Nothing was sent."""


class _Budget:
    """A sliding-window budget: each token comes back ``period`` seconds after it was spent."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._spent: deque[float] = deque()
        self.blocked_until = -math.inf

    def _trim(self, now: float) -> None:
        horizon = now - self.limit.period
        while self._spent and self._spent[0] <= horizon:
            self._spent.popleft()

    def remaining(self, now: float) -> int:
        self._trim(now)
        return max(0, self.limit.count - len(self._spent))

    def wait(self, now: float) -> tuple[float, bool]:
        """Seconds until a request may go, and whether that is Dialpad's own Retry-After."""
        self._trim(now)
        window = 0.0
        if len(self._spent) >= self.limit.count:
            window = self._spent[len(self._spent) - self.limit.count] + self.limit.period - now
        blocked = self.blocked_until - now
        if blocked > 0 and blocked >= window:
            return blocked, True
        return max(0.0, window), False

    def take(self, now: float) -> None:
        self._spent.append(now)

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)

    def state(self, now: float) -> BudgetState:
        wait, blocked = self.wait(now)
        return BudgetState(
            remaining=0 if blocked else self.remaining(now),
            limit=self.limit.count,
            period=self.limit.period,
            retry_in=round(wait, 3),
            blocked_by_dialpad=blocked,
        )


# --------------------------------------------------------------------------- helpers
class _BearerAuth(httpx.Auth):
    """Adds the key per request, so it lives in one place and never in default headers or URLs."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(**********)"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, BudgetExhausted):
        return False  # refused before sending: the caller decides
    if isinstance(exc, RateLimited):
        return exc.retry_after <= MAX_RETRY_AFTER_WAIT
    return isinstance(exc, Unavailable)


class _Wait:
    """Backoff with jitter for 5xx / transport errors; ``Retry-After`` for 429."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = max(0.0, initial)
        self._max = max(self._initial, maximum)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            return max(0.0, exc.retry_after)
        exponent = max(0, state.attempt_number - 1)
        return min(self._max, self._initial * 2**exponent) + random.uniform(0, self._initial)


def _int_id(value: str | int, what: str) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise BadRequest(f"{what} must be a numeric Dialpad id", "Check the id in pa-tui's configuration.")
    return int(text)


def _path_id(value: str | int, what: str) -> str:
    text = str(value).strip()
    if not text or not (text.isdigit() or text == "me"):
        raise BadRequest(f"{what} must be a numeric Dialpad id", "Check the id in pa-tui's configuration.")
    return quote(text, safe="")


def _e164(value: str, what: str) -> str:
    text = str(value).strip() if value is not None else ""
    if not _E164.match(text):
        raise BadRequest(
            f"{what} must be in E.164 format (like +14155550123)",
            "pa-tui normalises numbers before dialling; if this repeats, report it.",
        )
    return text


def _line(value: str, what: str, limit: int = 2000) -> str:
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        raise BadRequest(f"{what} must be a single line of text")
    if len(value) > limit:
        raise BadRequest(f"{what} is longer than {limit} characters")
    return value


def _scrub(message: str) -> str:
    """Vendor error text, shortened and with anything like a phone number masked."""
    return _PHONE_IN_TEXT.sub("[number]", " ".join(message.split()))[:200]


def _retry_after(response: httpx.Response, default: float = 60.0) -> float:
    raw = response.headers.get("Retry-After")
    if not raw:
        return default
    raw = raw.strip()
    try:
        value = float(raw)
        return max(0.0, value) if math.isfinite(value) else default
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _vendor_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _scrub(response.text) if response.text else ""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            message = error.get("message")
            if not message and isinstance(error.get("errors"), list) and error["errors"]:
                first = error["errors"][0]
                message = first.get("message") if isinstance(first, Mapping) else None
            if isinstance(message, str):
                return _scrub(message)
        if isinstance(error, str):
            return _scrub(error)
        if isinstance(body.get("message"), str):
            return _scrub(body["message"])
    return ""


def key_fingerprint(api_key: str | SecretStr) -> str:
    """A short, one-way id of an API key: lets pa-tui notice the key changed without storing it."""
    value = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    return hashlib.sha256(b"pa-tui/dialpad-key\0" + value.strip().encode()).hexdigest()[:16]


class DialpadClient:
    """Async Dialpad API v2 client. Use ``async with`` or call :meth:`aclose`.

    ``clock`` (monotonic seconds) drives the rate budgets; tests inject one.
    ``max_budget_wait``: waits up to this long (the company's per-second budget,
    the tail of a Retry-After) are waited out instead of refused.
    """

    def __init__(
        self,
        api_key: str | SecretStr,
        base_url: str = PRODUCTION_URL,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = 3,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
        max_budget_wait: float = 1.0,
        rate_limits: Mapping[str, RateLimit] | None = None,
        company_limit: RateLimit | None = COMPANY_LIMIT,
    ) -> None:
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not key.get_secret_value().strip():
            raise AuthError("No Dialpad API key is set", AUTH_FIX)
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequest(
                "The Dialpad base URL is not an http(s) URL",
                f"Use {PRODUCTION_URL} (production) or {SANDBOX_URL} (sandbox).",
            )
        self.host = parts.hostname or parts.netloc
        self.key_id = key_fingerprint(key)
        self._retries = max(1, retries)
        self._wait = _Wait(backoff_initial, backoff_max)
        self._clock = clock
        self._max_budget_wait = max(0.0, max_budget_wait)
        overrides = dict(rate_limits or {})
        unknown = set(overrides) - set(OPERATIONS)
        if unknown:
            raise ValueError(f"no Dialpad operation {', '.join(sorted(unknown))}")
        self._budgets: dict[str, _Budget] = {
            name: _Budget(overrides.get(name, op.limit)) for name, op in OPERATIONS.items()
        }
        self._company = _Budget(company_limit) if company_limit is not None else None
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            auth=_BearerAuth(key),
            headers={"Accept": "application/json", "User-Agent": "pa-tui/0.1 (+dialpad-api-v2)"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"DialpadClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> DialpadClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def is_sandbox(self) -> bool:
        return self.host.startswith("sandbox.")

    # ------------------------------------------------------------------ budgets
    def budgets(self) -> dict[str, BudgetState]:
        """What is left of each operation's budget (and ``"company"``'s), for a diagnostics view."""
        now = self._clock()
        states = {name: budget.state(now) for name, budget in self._budgets.items()}
        if self._company is not None:
            states[COMPANY] = self._company.state(now)
        return states

    def budget_wait(self, operation: str) -> float:
        """Seconds until ``operation`` may be sent (0: now)."""
        now = self._clock()
        waits = [self._budgets[operation].wait(now)[0]]
        if self._company is not None:
            waits.append(self._company.wait(now)[0])
        return max(waits)

    async def _acquire(self, name: str) -> None:
        budgets = [(name, self._budgets[name])]
        if self._company is not None:
            budgets.append((COMPANY, self._company))
        now = self._clock()
        wait, who, blocked = 0.0, name, False
        for label, budget in budgets:
            w, b = budget.wait(now)
            if w > wait:
                wait, who, blocked = w, label, b
        if wait > self._max_budget_wait:
            raise self._refusal(who, wait, blocked)
        if wait > 0:
            await asyncio.sleep(wait)
            now = self._clock()
        for _, budget in budgets:
            budget.take(now)

    def _refusal(self, who: str, wait: float, blocked: bool) -> BudgetExhausted:
        seconds = max(1, math.ceil(wait))
        if blocked:
            title = f"Dialpad asked pa-tui to slow down; try again in {seconds} s"
        else:
            limit = self._company.limit if who == COMPANY and self._company is not None else self._budgets[who].limit
            title = f"Dialpad allows {limit.describe()}; try again in {seconds} s"
        return BudgetExhausted(
            title,
            "pa-tui did not send it, so nothing happened at Dialpad. Other tools using the same API key count "
            "towards the same limit.",
            retry_after=wait,
            status=None,
        )

    # ------------------------------------------------------------------ users
    async def get_user(self, user_id: str | int) -> DialpadUser:
        uid = _path_id(user_id, "The user id")
        body = await self._call("get_user", f"/api/v2/users/{uid}", operation=f"reading user {uid}", thing=f"user {uid}")
        return _model(DialpadUser.from_api, body, "user")

    async def list_users(self, *, email: str | None = None, state: str | None = None) -> list[DialpadUser]:
        params = {k: v for k, v in (("email", email), ("state", state)) if v}
        return [
            _model(DialpadUser.from_api, item, "user")
            async for item in self._paginate("list_users", "/api/v2/users", "listing users", params)
        ]

    async def set_user_status(
        self, user_id: str | int, status_message: str, *, expiration: int | None = None
    ) -> UserStatus:
        """The user's status message (``expiration`` in seconds; ``None``: until changed)."""
        uid = _path_id(user_id, "The user id")
        payload: dict[str, Any] = {"status_message": _line(status_message, "A status message", 200)}
        if expiration is not None:
            if isinstance(expiration, bool) or not isinstance(expiration, int) or expiration < 0:
                raise BadRequest("A status expiration must be a whole number of seconds")
            payload["expiration"] = expiration
        body = await self._call(
            "set_user_status",
            f"/api/v2/users/{uid}/status",
            payload,
            operation=f"changing the status of user {uid}",
            thing=f"user {uid}",
        )
        return UserStatus.from_api(body, str(user_id))

    async def screen_pop(self, user_id: str | int, uri: str) -> str | None:
        """Open ``uri`` on the user's Dialpad app. Returns the device's id when Dialpad names it."""
        uid = _path_id(user_id, "The user id")
        text = _line(uri.strip() if isinstance(uri, str) else uri, "A screen-pop address", 2000)
        parts = urlsplit(text)
        if not parts.scheme or not (parts.netloc or parts.path):
            raise BadRequest("A screen-pop address needs a scheme, like https://…")
        if "@" in parts.netloc:
            raise BadRequest("Dialpad does not accept a screen-pop address with a user name or password in it")
        body = await self._call(
            "screen_pop",
            f"/api/v2/users/{uid}/screenpop",
            {"screen_pop_uri": text},
            operation=f"opening a screen pop for user {uid}",
            thing=f"user {uid}",
        )
        device = body.get("device")
        return parse_id(device.get("id")) if isinstance(device, Mapping) else None

    # ------------------------------------------------------------------ call centers
    async def list_call_centers(self) -> list[CallCenter]:
        centers = []
        async for item in self._paginate("list_call_centers", "/api/v2/callcenters", "listing call centers"):
            cc_id = parse_id(item.get("id"))
            if cc_id is None:
                continue
            name = item.get("name") if isinstance(item.get("name"), str) and item["name"].strip() else None
            centers.append(CallCenter(id=cc_id, name=name or f"Call center {cc_id}"))
        return centers

    async def list_operators(self, call_center_id: str | int) -> list[DialpadUser]:
        """The users who are operators of the call center (rooms are left out)."""
        cid = _path_id(call_center_id, "The call center id")
        body = await self._call(
            "list_operators",
            f"/api/v2/callcenters/{cid}/operators",
            operation=f"listing the operators of call center {cid}",
            thing=f"call center {cid}",
        )
        users = body.get("users")
        return [_model(DialpadUser.from_api, u, "operator") for u in users if isinstance(u, Mapping)] if isinstance(
            users, list
        ) else []

    async def call_center_status(self, call_center_id: str | int) -> CallCenterStatus:
        cid = _path_id(call_center_id, "The call center id")
        body = await self._call(
            "call_center_status",
            f"/api/v2/callcenters/{cid}/status",
            operation=f"reading the status of call center {cid}",
            thing=f"call center {cid}",
        )
        return CallCenterStatus.from_api(body, str(call_center_id))

    async def get_duty_status(self, user_id: str | int) -> DutyStatusInfo:
        uid = _path_id(user_id, "The operator id")
        body = await self._call(
            "get_duty_status",
            f"/api/v2/callcenters/operators/{uid}/dutystatus",
            operation=f"reading the duty status of user {uid}",
            thing=f"operator {uid}",
        )
        return DutyStatusInfo.from_api(body, str(user_id))

    async def set_duty_status(self, user_id: str | int, on_duty: bool, reason: str | None = None) -> DutyStatusInfo:
        uid = _path_id(user_id, "The operator id")
        payload: dict[str, Any] = {"on_duty": bool(on_duty)}
        if reason:
            payload["duty_status_reason"] = " ".join(reason.split())[:200]
        body = await self._call(
            "set_duty_status",
            f"/api/v2/callcenters/operators/{uid}/dutystatus",
            payload,
            operation=f"changing the duty status of user {uid}",
            thing=f"operator {uid}",
        )
        return DutyStatusInfo.from_api(body, str(user_id))

    # ------------------------------------------------------------------ calls
    async def initiate_call(
        self,
        user_id: str | int,
        phone_number: str,
        *,
        outbound_caller_id: str | None = None,
        group_id: str | int | None = None,
        group_type: str | None = None,
        custom_data: str | None = None,
        device_id: str | None = None,
        is_consult: bool | None = None,
    ) -> str:
        """Ring the user's devices and dial ``phone_number`` (E.164). Returns the new call's id.

        ``outbound_caller_id``: the E.164 number to show (or ``"blocked"``); ``group_id`` /
        ``group_type``: call as a call center, department or office. Never retried.
        """
        payload: dict[str, Any] = {
            "user_id": _int_id(user_id, "The user id"),
            "phone_number": _e164(phone_number, "The number to call"),
        }
        if outbound_caller_id is not None:
            payload["outbound_caller_id"] = (
                "blocked" if outbound_caller_id == "blocked" else _e164(outbound_caller_id, "The caller ID to show")
            )
        if (group_id is None) != (group_type is None):
            raise BadRequest("Calling as a group needs both the group's id and its type")
        if group_type is not None:
            if group_type not in DIAL_GROUP_TYPES:
                raise BadRequest(f"Dialpad cannot place a call as a {group_type!r}")
            payload["group_id"] = _int_id(group_id, "The group id")  # type: ignore[arg-type]
            payload["group_type"] = group_type
        if custom_data is not None:
            payload["custom_data"] = _line(custom_data, "The call's custom data")
        if device_id is not None:
            payload["device_id"] = _line(device_id, "The device id", 200)
        if is_consult is not None:
            payload["is_consult"] = bool(is_consult)
        body = await self._call("initiate_call", "/api/v2/call", payload, operation="placing a call")
        call_id = parse_id(body.get("call_id"))
        if call_id is None:
            raise Unavailable(
                "Dialpad accepted the call but did not say which call it is",
                "Look for it in the Dialpad app; pa-tui shows it when its first event arrives.",
            )
        return call_id

    async def get_call(self, call_id: str | int) -> DialpadCall:
        """One call leg as Dialpad sees it now (10 a minute: never used for polling)."""
        cid = _path_id(call_id, "The call id")
        body = await self._call("get_call", f"/api/v2/call/{cid}", operation=f"looking up call {cid}", thing=f"call {cid}")
        return _model(DialpadCall.from_api, {"call_id": cid, **body} if "call_id" not in body else body, "call")

    async def transfer(
        self,
        call_id: str | int,
        *,
        user_id: str | int | None = None,
        call_center_id: str | int | None = None,
        number: str | None = None,
        to_call_id: str | int | None = None,
        target_type: str | None = None,
        target_id: str | int | None = None,
        transfer_state: TransferState | None = None,
        custom_data: str | None = None,
    ) -> TransferResult:
        """Transfer the call to exactly one destination: a user, a call center, an E.164 number,
        another ongoing call, or any ``target_type``/``target_id`` the spec allows. Never retried."""
        cid = _path_id(call_id, "The call id")
        given = [x for x in (user_id, call_center_id, number, to_call_id, target_type or target_id) if x is not None]
        if len(given) != 1:
            raise BadRequest("A transfer needs exactly one destination")
        to: dict[str, Any]
        if user_id is not None:
            to = {"target_type": "user", "target_id": _int_id(user_id, "The user id")}
        elif call_center_id is not None:
            to = {"target_type": "callcenter", "target_id": _int_id(call_center_id, "The call center id")}
        elif number is not None:
            to = {"number": _e164(number, "The number to transfer to")}
        elif to_call_id is not None:
            to = {"call_id": _int_id(to_call_id, "The call to transfer to")}
        else:
            if target_type not in TRANSFER_TARGET_TYPES or target_id is None:
                raise BadRequest(f"Dialpad cannot transfer to a {target_type!r}")
            to = {"target_type": target_type, "target_id": _int_id(target_id, "The target id")}
        payload: dict[str, Any] = {"to": to}
        if transfer_state is not None:
            if transfer_state not in TRANSFER_STATES:
                raise BadRequest(f"Dialpad has no transfer state {transfer_state!r}")
            payload["transfer_state"] = transfer_state
        if custom_data is not None:
            payload["custom_data"] = _line(custom_data, "The call's custom data")
        body = await self._call(
            "transfer",
            f"/api/v2/call/{cid}/transfer",
            payload,
            operation=f"transferring call {cid}",
            thing=f"call {cid}",
        )
        return TransferResult.from_api(body)

    async def hangup(self, call_id: str | int) -> None:
        cid = _path_id(call_id, "The call id")
        await self._call(
            "hangup", f"/api/v2/call/{cid}/actions/hangup", operation=f"hanging up call {cid}", thing=f"call {cid}"
        )

    async def set_call_labels(self, call_id: str | int, labels: Sequence[str]) -> DialpadCall:
        """Replace the call's labels (wrap-up codes)."""
        cid = _path_id(call_id, "The call id")
        if isinstance(labels, str):
            raise BadRequest("Labels must be a list of words, not one string")
        clean = list(dict.fromkeys(_line(label, "A label", 128).strip() for label in labels if str(label).strip()))
        body = await self._call(
            "set_call_labels",
            f"/api/v2/call/{cid}/labels",
            {"labels": clean},
            operation=f"labelling call {cid}",
            thing=f"call {cid}",
        )
        return _model(DialpadCall.from_api, {"call_id": cid, **body} if "call_id" not in body else body, "call")

    async def request_callback(self, call_center_id: str | int, phone_number: str) -> int | None:
        """Queue a call back to ``phone_number`` (E.164) in the call center. Returns its queue position.

        Dialpad refuses duplicates and international numbers with a message (a ``BadRequest``). Never retried.
        """
        payload = {
            "call_center_id": _int_id(call_center_id, "The call center id"),
            "phone_number": _e164(phone_number, "The number to call back"),
        }
        body = await self._call(
            "request_callback", "/api/v2/callback", payload, operation="requesting a call back"
        )
        position = body.get("position")
        if isinstance(position, bool):
            return None
        if isinstance(position, int):
            return position
        if isinstance(position, str) and position.isdigit():
            return int(position)
        return None

    # ------------------------------------------------------------------ websockets
    async def create_websocket(self, secret: str | SecretStr | None = None) -> DialpadWebsocket:
        payload: dict[str, Any] = {}
        if secret is not None:
            payload["secret"] = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        body = await self._call("create_websocket", "/api/v2/websockets", payload, operation="creating the event websocket")
        return _model(DialpadWebsocket.from_api, body, "websocket")

    async def get_websocket(self, websocket_id: str | int) -> DialpadWebsocket:
        """The websocket, with a freshly signed ``websocket_url``."""
        wid = _path_id(websocket_id, "The websocket id")
        body = await self._call(
            "get_websocket", f"/api/v2/websockets/{wid}", operation=f"reading websocket {wid}", thing=f"websocket {wid}"
        )
        return _model(DialpadWebsocket.from_api, body, "websocket")

    async def update_websocket(self, websocket_id: str | int, secret: str | SecretStr) -> DialpadWebsocket:
        wid = _path_id(websocket_id, "The websocket id")
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        body = await self._call(
            "update_websocket",
            f"/api/v2/websockets/{wid}",
            {"secret": value},
            operation=f"updating websocket {wid}",
            thing=f"websocket {wid}",
        )
        return _model(DialpadWebsocket.from_api, body, "websocket")

    async def list_websockets(self) -> list[DialpadWebsocket]:
        return [
            _model(DialpadWebsocket.from_api, item, "websocket")
            async for item in self._paginate("list_websockets", "/api/v2/websockets", "listing websockets")
        ]

    async def delete_websocket(self, websocket_id: str | int) -> None:
        wid = _path_id(websocket_id, "The websocket id")
        await self._call(
            "delete_websocket",
            f"/api/v2/websockets/{wid}",
            operation=f"deleting websocket {wid}",
            thing=f"websocket {wid}",
        )

    # ------------------------------------------------------------------ webhooks
    async def create_webhook(self, hook_url: str, secret: str | SecretStr | None = None) -> DialpadWebhook:
        payload: dict[str, Any] = {"hook_url": _hook_url(hook_url)}
        if secret is not None:
            payload["secret"] = _line(secret.get_secret_value() if isinstance(secret, SecretStr) else secret, "secret")
        body = await self._call("create_webhook", "/api/v2/webhooks", payload, operation="creating the event webhook")
        return _model(DialpadWebhook.from_api, body, "webhook")

    async def get_webhook(self, webhook_id: str | int) -> DialpadWebhook:
        hid = _path_id(webhook_id, "The webhook id")
        body = await self._call(
            "get_webhook", f"/api/v2/webhooks/{hid}", operation=f"reading webhook {hid}", thing=f"webhook {hid}"
        )
        return _model(DialpadWebhook.from_api, body, "webhook")

    async def update_webhook(
        self, webhook_id: str | int, *, hook_url: str | None = None, secret: str | SecretStr | None = None
    ) -> DialpadWebhook:
        hid = _path_id(webhook_id, "The webhook id")
        payload: dict[str, Any] = {}
        if hook_url is not None:
            payload["hook_url"] = _hook_url(hook_url)
        if secret is not None:
            payload["secret"] = _line(secret.get_secret_value() if isinstance(secret, SecretStr) else secret, "secret")
        body = await self._call(
            "update_webhook",
            f"/api/v2/webhooks/{hid}",
            payload,
            operation=f"updating webhook {hid}",
            thing=f"webhook {hid}",
        )
        return _model(DialpadWebhook.from_api, body, "webhook")

    async def list_webhooks(self) -> list[DialpadWebhook]:
        return [
            _model(DialpadWebhook.from_api, item, "webhook")
            async for item in self._paginate("list_webhooks", "/api/v2/webhooks", "listing webhooks")
        ]

    async def delete_webhook(self, webhook_id: str | int) -> None:
        hid = _path_id(webhook_id, "The webhook id")
        await self._call(
            "delete_webhook",
            f"/api/v2/webhooks/{hid}",
            operation=f"deleting webhook {hid}",
            thing=f"webhook {hid}",
        )

    # ------------------------------------------------------------------ subscriptions
    async def subscribe_calls(
        self,
        endpoint_id: str | int,
        call_states: Sequence[str] | None = None,
        target_type: str | None = None,
        target_id: str | int | None = None,
        *,
        group_calls_only: bool | None = None,
        enabled: bool = True,
    ) -> CallSubscription:
        payload: dict[str, Any] = {"endpoint_id": _int_id(endpoint_id, "The websocket id"), "enabled": enabled}
        if call_states:
            unknown = sorted(set(call_states) - CALL_STATES)
            if unknown:
                raise BadRequest(
                    f"Dialpad has no call state {', '.join(unknown)}", "Use the call states listed in Dialpad's API."
                )
            payload["call_states"] = list(dict.fromkeys(call_states))
        if (target_type is None) != (target_id is None):
            raise BadRequest("A call subscription needs both a target type and a target id, or neither")
        if target_type is not None:
            if target_type not in TARGET_TYPES:
                raise BadRequest(f"Dialpad has no subscription target type {target_type!r}")
            payload["target_type"] = target_type
            payload["target_id"] = _int_id(target_id, "The target id")  # type: ignore[arg-type]
        if group_calls_only is not None:
            payload["group_calls_only"] = group_calls_only
        body = await self._call(
            "subscribe_calls", "/api/v2/subscriptions/call", payload, operation="subscribing to call events"
        )
        return _model(CallSubscription.from_api, body, "call subscription")

    async def subscribe_agent_status(
        self, endpoint_id: str | int, agent_type: str = "callcenter", *, enabled: bool = True
    ) -> AgentStatusSubscription:
        payload = {"endpoint_id": _int_id(endpoint_id, "The websocket id"), "agent_type": agent_type, "enabled": enabled}
        body = await self._call(
            "subscribe_agent_status",
            "/api/v2/subscriptions/agent_status",
            payload,
            operation="subscribing to agent-status events",
        )
        return _model(AgentStatusSubscription.from_api, body, "agent-status subscription")

    async def list_call_subscriptions(
        self, *, target_type: str | None = None, target_id: str | int | None = None
    ) -> list[CallSubscription]:
        params: dict[str, str] = {}
        if target_type and target_id is not None:
            params = {"target_type": target_type, "target_id": str(_int_id(target_id, "The target id"))}
        return [
            _model(CallSubscription.from_api, item, "call subscription")
            async for item in self._paginate(
                "list_call_subscriptions", "/api/v2/subscriptions/call", "listing call subscriptions", params
            )
        ]

    async def list_agent_status_subscriptions(self) -> list[AgentStatusSubscription]:
        return [
            _model(AgentStatusSubscription.from_api, item, "agent-status subscription")
            async for item in self._paginate(
                "list_agent_status_subscriptions",
                "/api/v2/subscriptions/agent_status",
                "listing agent-status subscriptions",
            )
        ]

    async def list_subscriptions(
        self, *, endpoint_id: str | int | None = None
    ) -> list[CallSubscription | AgentStatusSubscription]:
        """Call and agent-status subscriptions, optionally only those delivering to ``endpoint_id``."""
        subs: list[CallSubscription | AgentStatusSubscription] = [
            *await self.list_call_subscriptions(),
            *await self.list_agent_status_subscriptions(),
        ]
        if endpoint_id is None:
            return subs
        wanted = str(endpoint_id)
        return [s for s in subs if s.endpoint_id == wanted]

    async def delete_call_subscription(self, subscription_id: str | int) -> None:
        sid = _path_id(subscription_id, "The subscription id")
        await self._call(
            "delete_call_subscription",
            f"/api/v2/subscriptions/call/{sid}",
            operation=f"deleting call subscription {sid}",
            thing=f"call subscription {sid}",
        )

    async def delete_agent_status_subscription(self, subscription_id: str | int) -> None:
        sid = _path_id(subscription_id, "The subscription id")
        await self._call(
            "delete_agent_status_subscription",
            f"/api/v2/subscriptions/agent_status/{sid}",
            operation=f"deleting agent-status subscription {sid}",
            thing=f"agent-status subscription {sid}",
        )

    async def delete_subscription(self, subscription: CallSubscription | AgentStatusSubscription) -> None:
        """Delete a subscription of either kind (as :meth:`list_subscriptions` returns them)."""
        if isinstance(subscription, CallSubscription):
            await self.delete_call_subscription(subscription.id)
        elif isinstance(subscription, AgentStatusSubscription):
            await self.delete_agent_status_subscription(subscription.id)
        else:
            raise TypeError("not a Dialpad subscription")

    # ------------------------------------------------------------------ plumbing
    async def _paginate(
        self, name: str, path: str, operation: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[Mapping[str, Any]]:
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            query = dict(params or {})
            if cursor:
                query["cursor"] = cursor
            body = await self._call(name, path, operation=operation, params=query)
            items = body.get("items")
            for item in items if isinstance(items, list) else []:
                if isinstance(item, Mapping):
                    yield item
            nxt = body.get("cursor")
            if not isinstance(nxt, str) or not nxt or nxt in seen:
                return
            seen.add(nxt)
            cursor = nxt
        log.warning("%s: stopped after %d pages", operation, MAX_PAGES)

    async def _call(
        self,
        name: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        operation: str,
        thing: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any]:
        """Send operation ``name``: budget first, then the request; retried only when it is idempotent."""
        op = OPERATIONS[name]

        async def once() -> Mapping[str, Any]:
            await self._acquire(name)
            try:
                return await self._request(op.method, path, payload, operation=operation, thing=thing, params=params, op=op)
            except RateLimited as exc:
                self._budgets[name].block(self._clock() + exc.retry_after)
                raise

        if not op.idempotent:
            return await once()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retries),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    log.info("retrying %s (attempt %d)", operation, attempt.retry_state.attempt_number)
                return await once()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        *,
        operation: str,
        thing: str | None,
        params: Mapping[str, str] | None = None,
        op: Operation | None = None,
    ) -> Mapping[str, Any]:
        started = time.monotonic()
        try:
            response = await self._http.request(method, path, json=payload, params=params or None)
        except httpx.TimeoutException:
            raise Unavailable(
                f"Dialpad did not answer in time ({operation})",
                f"Check the network connection to {self.host}; pa-tui keeps retrying.",
            ) from None
        except httpx.TransportError as exc:
            raise Unavailable(
                f"Can't reach Dialpad at {self.host} ({operation})",
                "Check the network connection and the Dialpad base URL in pa-tui's settings.",
            ) from exc
        log.debug("%s %s → %d in %.0f ms", method, path, response.status_code, (time.monotonic() - started) * 1000)
        if response.is_success:
            if not response.content:
                return {}
            try:
                body = response.json()
            except ValueError:
                raise Unavailable(
                    f"Dialpad sent an unreadable answer ({operation})",
                    f"Check that the base URL {self.base_url} points at Dialpad's API.",
                    status=response.status_code,
                ) from None
            if body is None:
                return {}
            if not isinstance(body, Mapping):
                raise Unavailable(f"Dialpad sent an unexpected answer ({operation})", status=response.status_code)
            return body
        raise self._error(response, operation=operation, thing=thing, op=op)

    def _error(
        self, response: httpx.Response, *, operation: str, thing: str | None, op: Operation | None = None
    ) -> BackendError:
        status = response.status_code
        message = _vendor_message(response)
        if status == 401:
            return AuthError("Dialpad rejected the API key", AUTH_FIX, status=status)
        if status == 403:
            needs = op.needs if op is not None and op.needs else "a company-admin key or an extra OAuth scope"
            return PermissionDenied(
                f"Dialpad refused {operation}: the API key lacks permission",
                f"This needs {needs}. Ask a Dialpad admin for a key with access ({API_KEYS_PATH}), "
                "then run `pa-tui auth set dialpad`.",
                status=status,
            )
        if status == 404:
            if thing is None:
                return NotFound(
                    f"Dialpad has no such API at {self.host} ({operation})",
                    f"Check the Dialpad base URL: production is {PRODUCTION_URL}, sandbox is {SANDBOX_URL}, "
                    "and a key only works in the environment it was made in.",
                    status=status,
                )
            return NotFound(f"Dialpad has no {thing}", "It may have been deleted; pa-tui will set it up again.", status=status)
        if status == 429:
            wait = _retry_after(response)
            return RateLimited(
                f"Dialpad rate limit reached ({operation})",
                f"Wait {math.ceil(wait)} s; pa-tui retries on its own. Heavy use by other tools on the same key "
                "counts towards the same limit.",
                retry_after=wait,
                status=status,
            )
        if status in (400, 409, 422):
            detail = f": {message}" if message else ""
            return BadRequest(
                f"Dialpad rejected {operation}{detail}",
                "Check pa-tui's Dialpad settings (ids, call center, user); if they look right, report this.",
                status=status,
            )
        if status >= 500:
            return Unavailable(
                f"Dialpad is having trouble (HTTP {status}, {operation})",
                "Try again in a minute; check status.dialpad.com. pa-tui keeps what it has meanwhile.",
                status=status,
            )
        return BackendError(f"Dialpad answered HTTP {status} ({operation})", status=status)


def _hook_url(value: str) -> str:
    text = _line(value.strip() if isinstance(value, str) else value, "The webhook URL")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        raise BadRequest("The webhook URL must be an http(s) URL without a user name or password")
    return text


def _model(factory: Any, raw: Any, what: str) -> Any:
    if not isinstance(raw, Mapping):
        raise Unavailable(f"Dialpad sent an unexpected {what}")
    try:
        return factory(raw)
    except (ValueError, TypeError) as exc:
        raise Unavailable(f"Dialpad sent an unreadable {what}", str(exc)[:120]) from None


__all__ = [
    "AUTH_FIX",
    "COMPANY_LIMIT",
    "OPERATIONS",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "TRANSFER_STATES",
    "BudgetExhausted",
    "BudgetState",
    "DialpadClient",
    "Operation",
    "RateLimit",
    "key_fingerprint",
]
