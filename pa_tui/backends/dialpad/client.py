"""Dialpad API v2 REST client (httpx).

Every request sends the API key as ``Authorization: Bearer`` — never in a
URL, a log line, a ``repr`` or an exception. Every failure becomes a
:mod:`pa_tui.backends.base` error whose ``title`` and ``fix`` are written for
the agent. Idempotent GETs are retried (tenacity) on 5xx and transport errors
with exponential backoff and jitter, and on 429 after ``Retry-After``;
writes are never retried here.

Request bodies follow the official OpenAPI document
(``schemas.websocket.CreateWebsocket``,
``schemas.call_event_subscription.CreateCallEventSubscription``, …): int64
ids go out as JSON integers, and the subscription's endpoint is ``endpoint_id``.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final
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
    CallSubscription,
    DialpadUser,
    DialpadWebsocket,
    DutyStatusInfo,
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
# Longest Retry-After we wait out inside one GET; longer ones go back to the caller.
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

_PHONE_IN_TEXT = re.compile(r"\+\d{7,15}|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")


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


class DialpadClient:
    """Async Dialpad API v2 client. Use ``async with`` or call :meth:`aclose`."""

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
        self._retries = max(1, retries)
        self._wait = _Wait(backoff_initial, backoff_max)
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

    # ------------------------------------------------------------------ users
    async def get_user(self, user_id: str | int) -> DialpadUser:
        uid = _path_id(user_id, "The user id")
        body = await self._get(f"/api/v2/users/{uid}", operation=f"reading user {uid}", thing=f"user {uid}")
        return _model(DialpadUser.from_api, body, "user")

    async def list_users(self, *, email: str | None = None, state: str | None = None) -> list[DialpadUser]:
        params = {k: v for k, v in (("email", email), ("state", state)) if v}
        return [
            _model(DialpadUser.from_api, item, "user")
            async for item in self._paginate("/api/v2/users", "listing users", params)
        ]

    # ------------------------------------------------------------------ call centers
    async def list_call_centers(self) -> list[CallCenter]:
        centers = []
        async for item in self._paginate("/api/v2/callcenters", "listing call centers"):
            cc_id = parse_id(item.get("id"))
            if cc_id is None:
                continue
            name = item.get("name") if isinstance(item.get("name"), str) and item["name"].strip() else None
            centers.append(CallCenter(id=cc_id, name=name or f"Call center {cc_id}"))
        return centers

    async def get_duty_status(self, user_id: str | int) -> DutyStatusInfo:
        uid = _path_id(user_id, "The operator id")
        body = await self._get(
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
        body = await self._send(
            "PATCH",
            f"/api/v2/callcenters/operators/{uid}/dutystatus",
            payload,
            operation=f"changing the duty status of user {uid}",
            thing=f"operator {uid}",
        )
        return DutyStatusInfo.from_api(body, str(user_id))

    # ------------------------------------------------------------------ websockets
    async def create_websocket(self, secret: str | SecretStr | None = None) -> DialpadWebsocket:
        payload: dict[str, Any] = {}
        if secret is not None:
            payload["secret"] = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        body = await self._send("POST", "/api/v2/websockets", payload, operation="creating the event websocket")
        return _model(DialpadWebsocket.from_api, body, "websocket")

    async def get_websocket(self, websocket_id: str | int) -> DialpadWebsocket:
        """The websocket, with a freshly signed ``websocket_url``."""
        wid = _path_id(websocket_id, "The websocket id")
        body = await self._get(
            f"/api/v2/websockets/{wid}", operation=f"reading websocket {wid}", thing=f"websocket {wid}"
        )
        return _model(DialpadWebsocket.from_api, body, "websocket")

    async def update_websocket(self, websocket_id: str | int, secret: str | SecretStr) -> DialpadWebsocket:
        wid = _path_id(websocket_id, "The websocket id")
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        body = await self._send(
            "PATCH",
            f"/api/v2/websockets/{wid}",
            {"secret": value},
            operation=f"updating websocket {wid}",
            thing=f"websocket {wid}",
        )
        return _model(DialpadWebsocket.from_api, body, "websocket")

    async def list_websockets(self) -> list[DialpadWebsocket]:
        return [
            _model(DialpadWebsocket.from_api, item, "websocket")
            async for item in self._paginate("/api/v2/websockets", "listing websockets")
        ]

    async def delete_websocket(self, websocket_id: str | int) -> None:
        wid = _path_id(websocket_id, "The websocket id")
        await self._send(
            "DELETE", f"/api/v2/websockets/{wid}", None, operation=f"deleting websocket {wid}", thing=f"websocket {wid}"
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
        body = await self._send(
            "POST", "/api/v2/subscriptions/call", payload, operation="subscribing to call events"
        )
        return _model(CallSubscription.from_api, body, "call subscription")

    async def subscribe_agent_status(
        self, endpoint_id: str | int, agent_type: str = "callcenter", *, enabled: bool = True
    ) -> AgentStatusSubscription:
        payload = {"endpoint_id": _int_id(endpoint_id, "The websocket id"), "agent_type": agent_type, "enabled": enabled}
        body = await self._send(
            "POST", "/api/v2/subscriptions/agent_status", payload, operation="subscribing to agent-status events"
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
            async for item in self._paginate("/api/v2/subscriptions/call", "listing call subscriptions", params)
        ]

    async def list_agent_status_subscriptions(self) -> list[AgentStatusSubscription]:
        return [
            _model(AgentStatusSubscription.from_api, item, "agent-status subscription")
            async for item in self._paginate(
                "/api/v2/subscriptions/agent_status", "listing agent-status subscriptions"
            )
        ]

    async def delete_call_subscription(self, subscription_id: str | int) -> None:
        sid = _path_id(subscription_id, "The subscription id")
        await self._send(
            "DELETE",
            f"/api/v2/subscriptions/call/{sid}",
            None,
            operation=f"deleting call subscription {sid}",
            thing=f"call subscription {sid}",
        )

    async def delete_agent_status_subscription(self, subscription_id: str | int) -> None:
        sid = _path_id(subscription_id, "The subscription id")
        await self._send(
            "DELETE",
            f"/api/v2/subscriptions/agent_status/{sid}",
            None,
            operation=f"deleting agent-status subscription {sid}",
            thing=f"agent-status subscription {sid}",
        )

    # ------------------------------------------------------------------ plumbing
    async def _paginate(
        self, path: str, operation: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[Mapping[str, Any]]:
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            query = dict(params or {})
            if cursor:
                query["cursor"] = cursor
            body = await self._get(path, operation=operation, params=query)
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

    async def _get(
        self,
        path: str,
        *,
        operation: str,
        thing: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any]:
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
                return await self._request("GET", path, None, operation=operation, thing=thing, params=params)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, method: str, path: str, payload: Mapping[str, Any] | None, *, operation: str, thing: str | None = None
    ) -> Mapping[str, Any]:
        return await self._request(method, path, payload, operation=operation, thing=thing)

    async def _request(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        *,
        operation: str,
        thing: str | None,
        params: Mapping[str, str] | None = None,
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
            if not isinstance(body, Mapping):
                raise Unavailable(f"Dialpad sent an unexpected answer ({operation})", status=response.status_code)
            return body
        raise self._error(response, operation=operation, thing=thing)

    def _error(self, response: httpx.Response, *, operation: str, thing: str | None) -> BackendError:
        status = response.status_code
        message = _vendor_message(response)
        if status == 401:
            return AuthError("Dialpad rejected the API key", AUTH_FIX, status=status)
        if status == 403:
            return PermissionDenied(
                f"Dialpad refused {operation}: the API key lacks permission",
                "Some operations need a company-admin key or an extra OAuth scope. Ask a Dialpad admin for a key "
                f"with access ({API_KEYS_PATH}), then run `pa-tui auth set dialpad`.",
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


def _model(factory: Any, raw: Any, what: str) -> Any:
    if not isinstance(raw, Mapping):
        raise Unavailable(f"Dialpad sent an unexpected {what}")
    try:
        return factory(raw)
    except (ValueError, TypeError) as exc:
        raise Unavailable(f"Dialpad sent an unreadable {what}", str(exc)[:120]) from None


__all__ = ["AUTH_FIX", "PRODUCTION_URL", "SANDBOX_URL", "DialpadClient"]
