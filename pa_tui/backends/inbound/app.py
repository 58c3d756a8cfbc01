"""The inbound listener's ASGI app (Starlette): every route, every check, no I/O beyond the request.

Routes:

- ``POST /dialpad/events`` — a Dialpad webhook: a compact HS256 JWT signed with
  the webhook secret → ``CallEvent`` / ``AgentStatusEvent``.
- ``POST /twilio/status`` (:data:`STATUS_CALLBACK_PATH`) → ``DeliveryStatus``;
  ``POST /twilio/sms`` (:data:`INBOUND_SMS_PATH`) → ``InboundSms``, answered with
  empty TwiML; ``POST /twilio/call-status`` → ``CallStatusUpdate``;
  ``POST|GET /app_confirm`` — the confirmation call's TwiML (a one-key
  ``<Gather>``, then ``ConfirmationDigits``). Every Twilio request must carry a
  valid ``X-Twilio-Signature`` for the public URL Twilio was configured with.
- ``GET /?action=start&ani=…&dnis=…`` — an 8x8 Work caller-info pop → ``PopRequested``.
- ``POST /pop`` — ``pa-tui pop`` from a shell of the same user (bearer token).
- ``GET /healthz`` — ``ok``.

Facts go to ``emit`` (never blocks); the app never touches the UI. Log lines
carry route names, vendor ids and status codes only — never numbers, bodies,
query strings or tokens. Error texts never repeat a value from the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pa_tui.backends.dialpad.events import (
    JWT_LEEWAY_SECONDS,
    EventParseError,
    ParseFailure,
    decode_frame,
    parse_payload,
)
from pa_tui.backends.inbound.facts import ConfirmationDigits, PopRequested, fact_kind
from pa_tui.backends.twilio.messaging import INBOUND_SMS_PATH, STATUS_CALLBACK_PATH
from pa_tui.backends.twilio.parse import (
    WebhookParseError,
    parse_call_status,
    parse_inbound_sms,
    parse_status_callback,
)
from pa_tui.backends.twilio.signature import SIGNATURE_HEADER, verify_signature
from pa_tui.domain.calls import CallEvent
from pa_tui.domain.phones import DEFAULT_REGION, NoCallerId, PhoneNumber, PhoneNumberError, format_human, parse_phone

__all__ = [
    "APP_CONFIRM_PATH",
    "CALL_STATUS_PATH",
    "DIALPAD_EVENTS_PATH",
    "HEALTH_PATH",
    "MAX_BODY",
    "POP_PATH",
    "InboundConfig",
    "ReplayCache",
    "SecretSource",
    "build_app",
]

log = logging.getLogger("pa_tui.backends.inbound")

DIALPAD_EVENTS_PATH: Final = "/dialpad/events"
CALL_STATUS_PATH: Final = "/twilio/call-status"
APP_CONFIRM_PATH: Final = "/app_confirm"
POP_PATH: Final = "/pop"
HEALTH_PATH: Final = "/healthz"

MAX_BODY: Final = 64 * 1024
#: After an early answer (413, 404, …) the server discards at most this much more of the body, then closes.
DRAIN_LIMIT: Final = 1024 * 1024
_MAX_FORM_FIELDS: Final = 200
_MAX_PHONE_TEXT: Final = 64
_MAX_REPLAY_TTL: Final = 24 * 3600.0

# Dialpad's content type for JWT bodies is not documented; accept the plausible ones.
_DIALPAD_TYPES: Final = frozenset({"", "application/jwt", "text/plain", "application/json", "application/octet-stream"})
_FORM_TYPE: Final = "application/x-www-form-urlencoded"
_AUTH_FAILURES: Final = frozenset(
    {ParseFailure.BAD_SIGNATURE, ParseFailure.UNSIGNED, ParseFailure.EXPIRED, ParseFailure.UNEXPECTED_JWT}
)
_CALL_SID_RE: Final = re.compile(r"^CA[0-9a-fA-F]{32}$")
_ACCOUNT_SID_RE: Final = re.compile(r"^AC[0-9a-fA-F]{32}$")
# A canonical path: plain segments only. No percent-escapes, dot segments, empty segments or backslashes.
_CANONICAL_PATH_RE: Final = re.compile(rb"^/(?:[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*)?$")

_SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Frame-Options": "DENY",
}

#: A secret, or ``None`` when it is not configured. Called per request; must be cheap.
SecretSource = Callable[[], "SecretStr | str | None"]


def _reveal(source: SecretSource) -> str | None:
    value = source()
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value or None


@dataclass
class InboundConfig:
    """Everything the app needs to decide about a request."""

    dialpad_secret: SecretSource = lambda: None
    twilio_auth_token: SecretSource = lambda: None
    cli_token: str = ""
    pop_token: str | None = None  # 8x8 query token, required off loopback
    require_pop_token: bool = False
    public_base_url: str | None = None
    trust_proxy: bool = False
    max_body: int = MAX_BODY
    body_timeout: float = 10.0
    replay_window: float = 600.0
    region: str = DEFAULT_REGION
    replay_entries: int = 4096
    clock: Callable[[], float] = field(default=time.monotonic)
    wall_clock: Callable[[], float] = field(default=time.time)


# --------------------------------------------------------------------------- replay cache
class ReplayCache:
    """Keys seen recently, each until its own expiry; bounded (the oldest go first when full)."""

    def __init__(self, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._max = max(1, max_entries)
        self._clock = clock

    @staticmethod
    def _key(parts: tuple[str, ...]) -> bytes:
        return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).digest()

    def seen(self, *parts: str) -> bool:
        key = self._key(parts)
        expiry = self._entries.get(key)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._entries[key]
            return False
        return True

    def add(self, *parts: str, ttl: float) -> None:
        key = self._key(parts)
        self._entries[key] = self._clock() + max(0.0, ttl)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            now = self._clock()
            for k in [k for k, exp in self._entries.items() if exp <= now]:
                del self._entries[k]
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# --------------------------------------------------------------------------- raw ASGI guards
async def _plain(send: Send, status: int, text: str, *, close: bool = False) -> None:
    body = (text + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class GuardMiddleware:
    """Outermost: canonical paths only (else 404), bounded bodies (413) read in bounded time (408),
    and no exception ever reaches the server (500, logged by type only)."""

    def __init__(self, app: ASGIApp, *, max_body: int, body_timeout: float) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._handle(scope, receive, tracked_send)
        except Exception as exc:  # the last line of defence: never a traceback with request data
            log.error("inbound: internal error (%s)", type(exc).__name__)
            if not started:
                await _plain(send, 500, "internal error")

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path") or scope.get("path", "").encode("latin-1", "replace")
        if not _CANONICAL_PATH_RE.match(raw_path):
            log.info("inbound: non-canonical path → 404")
            await _plain(send, 404, "not found")
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                await _plain(send, 400, "bad Content-Length")
                return
            if int(length) > self.max_body:
                # Answer before reading it. A body small enough to drain is left to the server to
                # discard (so the client sees the 413 rather than a reset); a bigger one closes.
                log.info("inbound: body over %d bytes → 413", self.max_body)
                await _plain(send, 413, f"request body too large (at most {self.max_body} bytes)",
                             close=int(length) > DRAIN_LIMIT)
                return
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_body:
                        log.info("inbound: streamed body over %d bytes → 413", self.max_body)
                        await _plain(send, 413, f"request body too large (at most {self.max_body} bytes)")
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            log.info("inbound: request body not received in %.0f s → 408", self.body_timeout)
            await _plain(send, 408, "request body took too long", close=True)
            return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# --------------------------------------------------------------------------- helpers
def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _text(status: int, text: str, **headers: str) -> Response:
    return PlainTextResponse(text + "\n", status_code=status, headers={**_SECURITY_HEADERS, **headers})


def _twiml(inner: str = "", status: int = 200) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>' if inner else (
        '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    )
    return Response(body, status_code=status, media_type="application/xml", headers=_SECURITY_HEADERS)


def _page(status: int, title: str, message: str) -> Response:
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _same(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def _first_header(value: str | None) -> str | None:
    if not value:
        return None
    first = value.split(",", 1)[0].strip()
    return first or None


class _BadPhone(ValueError):
    pass


def _phone_or_withheld(raw: str, name: str, region: str) -> PhoneNumber | NoCallerId:
    if len(raw) > _MAX_PHONE_TEXT:
        raise _BadPhone(f"{name} is not a usable phone number (too long)")
    try:
        return parse_phone(raw, region)
    except PhoneNumberError as exc:  # the reason never repeats the value
        raise _BadPhone(f"{name} is not a usable phone number ({exc})") from None
    except Exception:  # phonenumbers on hostile input: a bad number, never a 500
        raise _BadPhone(f"{name} is not a usable phone number") from None


def _optional_dnis(raw: str | None, region: str) -> PhoneNumber | None:
    if not raw:
        return None
    try:
        parsed = _phone_or_withheld(raw, "dnis", region)
    except _BadPhone:
        return None  # a DNIS the console cannot read never stops the pop
    return parsed if isinstance(parsed, PhoneNumber) else None


# --------------------------------------------------------------------------- the app
class _Routes:
    def __init__(self, config: InboundConfig, emit: Callable[[object], None]) -> None:
        self.config = config
        self.emit = emit
        self.dialpad_seen = ReplayCache(config.replay_entries, config.clock)
        self.twilio_seen = ReplayCache(config.replay_entries, config.clock)
        base = config.public_base_url.rstrip("/") if config.public_base_url else None
        self.public_base = base
        prefix = urlsplit(base).path if base else ""
        # Twilio resolves a relative action against the request URL; behind a path prefix, spell it out.
        self.confirm_action = f"{base}{APP_CONFIRM_PATH}" if base and prefix else APP_CONFIRM_PATH

    # ------------------------------------------------------------ health
    async def healthz(self, request: Request) -> Response:
        return _text(200, "ok")

    # ------------------------------------------------------------ Dialpad
    async def dialpad_events(self, request: Request) -> Response:
        if _media_type(request) not in _DIALPAD_TYPES:
            log.info("inbound dialpad: unsupported content type → 415")
            return _text(415, "expected a JWT body (application/jwt or text/plain)")
        secret = _reveal(self.config.dialpad_secret)
        if not secret:
            log.warning("inbound dialpad: webhook secret not set → 503")
            return _text(503, "webhook secret not set (`pa-tui auth set dialpad-webhook`)")
        body = await request.body()
        if not body.strip():
            log.info("inbound dialpad: empty body → 400")
            return _text(400, "malformed Dialpad event: empty body (expected a signed JWT)")
        try:
            payload = decode_frame(body, secret)
        except EventParseError as exc:
            if exc.reason in _AUTH_FAILURES:
                log.warning("inbound dialpad: %s → 401", exc.reason.value)
                return _text(
                    401, f"Dialpad event rejected: {_title(exc)}", **{"WWW-Authenticate": 'Bearer realm="dialpad"'}
                )
            log.info("inbound dialpad: %s → 400", exc.reason.value)
            return _text(400, f"malformed Dialpad event: {exc.reason.value}: {_title(exc)}")

        key = _jti(payload) or hashlib.sha256(body.strip()).hexdigest()
        if self.dialpad_seen.seen("dialpad", key):
            log.info("inbound dialpad: replayed event ignored → 200")
            return _text(200, "duplicate ignored")
        ttl = self._dialpad_ttl(payload)
        try:
            event = parse_payload(payload)
        except EventParseError as exc:
            if exc.reason is ParseFailure.UNKNOWN_TYPE:
                self.dialpad_seen.add("dialpad", key, ttl=ttl)
                log.info("inbound dialpad: not a call or agent-status event, ignored → 200")
                return _text(200, "ignored: not a call or agent-status event")
            log.info("inbound dialpad: %s → 400", exc.reason.value)
            return _text(400, f"malformed Dialpad event: {exc.reason.value}: {_title(exc)}")
        self.dialpad_seen.add("dialpad", key, ttl=ttl)
        self.emit(event)
        event_id = event.call_id if isinstance(event, CallEvent) else event.agent_id
        log.info("inbound dialpad: %s %s → 200", fact_kind(event), event_id)
        return _text(200, "ok")

    def _dialpad_ttl(self, payload: dict[str, Any]) -> float:
        exp = payload.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            ttl = float(exp) + JWT_LEEWAY_SECONDS - self.config.wall_clock()
            return min(max(ttl, self.config.replay_window), _MAX_REPLAY_TTL)
        return self.config.replay_window

    # ------------------------------------------------------------ Twilio
    def public_url(self, request: Request) -> str:
        """The URL Twilio signed: the configured public base, else this request's own URL."""
        raw_path = request.scope.get("raw_path", b"/").decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        tail = raw_path + (f"?{query}" if query else "")
        if self.public_base:
            return self.public_base + tail
        scheme = request.scope.get("scheme", "http")
        host = request.headers.get("host")
        if self.config.trust_proxy:
            scheme = (_first_header(request.headers.get("x-forwarded-proto")) or scheme).lower()
            host = _first_header(request.headers.get("x-forwarded-host")) or host
        if not host:
            server = request.scope.get("server") or ("127.0.0.1", None)
            host = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
        return f"{scheme}://{host}{tail}"

    async def _twilio_params(
        self, request: Request, route: str
    ) -> tuple[ImmutableMultiDict[str, str] | None, Response | None, str]:
        """``(params, None, signature)`` for a verified request, else ``(None, response to send, "")``."""
        token = _reveal(self.config.twilio_auth_token)
        if request.method == "POST":
            if _media_type(request) != _FORM_TYPE:
                log.info("inbound %s: unsupported content type → 415", route)
                return None, _text(415, f"expected {_FORM_TYPE}"), ""
        if not token:
            log.warning("inbound %s: Twilio auth token not set → 503", route)
            return None, _text(503, "Twilio auth token not set (`pa-tui auth set twilio`)"), ""
        signature = request.headers.get(SIGNATURE_HEADER)
        if request.method == "POST":
            body = await request.body()
            try:
                text = body.decode("utf-8")
                pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FORM_FIELDS)
            except (UnicodeDecodeError, ValueError):
                pairs = None
            if pairs is None:
                # Can't be what Twilio signed; answer like any other forgery so as not to leak which check failed.
                log.warning("inbound %s: unreadable form body → 403", route)
                return None, _text(403, "Twilio signature does not verify"), ""
            ok = verify_signature(self.public_url(request), pairs, signature, token)
        else:
            try:
                pairs = parse_qsl(request.scope.get("query_string", b"").decode("utf-8"), keep_blank_values=True,
                                  max_num_fields=_MAX_FORM_FIELDS)
            except (UnicodeDecodeError, ValueError):
                pairs = None
            ok = pairs is not None and verify_signature(self.public_url(request), None, signature, token)
        if not ok:
            log.warning("inbound %s: %s → 403", route, "unsigned" if not signature else "bad signature")
            return None, _text(403, "Twilio signature does not verify"), ""
        return ImmutableMultiDict(pairs or []), None, signature or ""

    async def twilio_status(self, request: Request) -> Response:
        params, error, signature = await self._twilio_params(request, "twilio-status")
        if error is not None:
            return error
        assert params is not None
        try:
            fact = parse_status_callback(params)
        except WebhookParseError as exc:
            log.info("inbound twilio-status: malformed (%s) → 400", exc.field)
            return _text(400, f"malformed Twilio status callback: {exc}")
        return self._emit_once("twilio-status", signature, (fact.message_sid, fact.status.value), fact, _twiml())

    async def twilio_sms(self, request: Request) -> Response:
        params, error, signature = await self._twilio_params(request, "twilio-sms")
        if error is not None:
            return error
        assert params is not None
        try:
            fact = parse_inbound_sms(params)
        except WebhookParseError as exc:
            log.info("inbound twilio-sms: malformed (%s) → 400", exc.field)
            return _text(400, f"malformed Twilio incoming message: {exc}")
        return self._emit_once("twilio-sms", signature, (fact.message_sid, "received"), fact, _twiml())

    async def twilio_call_status(self, request: Request) -> Response:
        params, error, signature = await self._twilio_params(request, "twilio-call-status")
        if error is not None:
            return error
        assert params is not None
        try:
            fact = parse_call_status(params)
        except WebhookParseError as exc:
            log.info("inbound twilio-call-status: malformed (%s) → 400", exc.field)
            return _text(400, f"malformed Twilio call status callback: {exc}")
        key = (fact.call_sid, fact.status.value, str(fact.sequence_number or ""))
        return self._emit_once("twilio-call-status", signature, key, fact, _twiml())

    async def app_confirm(self, request: Request) -> Response:
        params, error, signature = await self._twilio_params(request, "app-confirm")
        if error is not None:
            return error
        assert params is not None
        call_sid = (params.get("CallSid") or "").strip()
        if not _CALL_SID_RE.match(call_sid):
            log.info("inbound app-confirm: no CallSid → 400")
            return _text(400, "malformed confirmation call request: CallSid is missing or not a Twilio call SID")
        account = (params.get("AccountSid") or "").strip()
        digits = params.get("Digits")
        if digits is None or digits.strip() == "":
            log.info("inbound app-confirm %s: prompt → 200", call_sid)
            return _twiml(self._gather())
        digits = digits.strip()
        if digits not in ("1", "2"):
            log.info("inbound app-confirm %s: not an option → 200 (prompt again)", call_sid)
            return _twiml("<Say>Sorry, that is not one of the options.</Say>" + self._gather())
        if digits == "1":
            thanks = "<Say>Thank you. Your appointment is confirmed. Goodbye.</Say><Hangup/>"
        else:
            thanks = "<Say>Thank you. The clinic will call you to find a new time. Goodbye.</Say><Hangup/>"
        fact = ConfirmationDigits(
            call_sid=call_sid, digits=digits, account_sid=account if _ACCOUNT_SID_RE.match(account) else None
        )
        return self._emit_once("app-confirm", signature, (call_sid, digits), fact, _twiml(thanks))

    def _gather(self) -> str:
        action = html.escape(self.confirm_action, quote=True)
        return (
            f'<Gather numDigits="1" action="{action}" method="POST" timeout="8">'
            "<Say>This is a reminder of your upcoming appointment. "
            "Press 1 to confirm, or press 2 to reschedule.</Say>"
            "</Gather><Say>We did not receive a response. Goodbye.</Say>"
        )

    def _emit_once(
        self, route: str, signature: str, key: tuple[str, ...], fact: object, response: Response
    ) -> Response:
        """Emit ``fact`` unless this very request (same signature and key) was seen lately; answer the same."""
        sid = key[0]
        if self.twilio_seen.seen(route, signature, *key):
            log.info("inbound %s %s: replayed request ignored → 200", route, sid)
            return response
        self.twilio_seen.add(route, signature, *key, ttl=self.config.replay_window)
        self.emit(fact)
        log.info("inbound %s %s %s → 200", route, sid, key[1])
        return response

    # ------------------------------------------------------------ 8x8 caller-info pop
    def _pop_token_needed(self, request: Request) -> bool:
        if self.config.require_pop_token or self.config.trust_proxy:
            return True
        client = request.client.host if request.client else None
        if not _is_loopback(client):
            return True
        # Came through a proxy on this machine: the outside world, not the agent's own 8x8 app.
        return any(h in request.headers for h in ("x-forwarded-for", "forwarded", "x-real-ip"))

    async def pop_8x8(self, request: Request) -> Response:
        if self._pop_token_needed(request):
            given = request.query_params.get("pop_token")
            if not self.config.pop_token:
                log.warning("inbound 8x8-pop: pop token required but none configured → 403")
                return _page(403, "Pop refused",
                             "This listener is reachable from outside this computer, so caller-info pops need a "
                             "pop_token, and none is configured.")
            if not _same(given, self.config.pop_token):
                log.warning("inbound 8x8-pop: %s pop_token → 403", "missing" if not given else "wrong")
                return _page(403, "Pop refused", "The pop_token parameter is missing or wrong.")
        if request.method == "HEAD":
            return Response(status_code=200, headers=_SECURITY_HEADERS)
        action = request.query_params.get("action")
        if action is None:
            log.info("inbound 8x8-pop: no action → 400")
            return _page(400, "Not popped",
                         "This address takes 8x8 caller-info pops: /?action=start&ani=<caller>&dnis=<dialled>. "
                         "The action parameter is missing.")
        if action.strip().lower() != "start":
            log.info("inbound 8x8-pop: unknown action → 400")
            return _page(400, "Not popped", "Unknown action: pa-tui only understands action=start.")
        raw_ani = request.query_params.get("ani")
        if raw_ani is None:
            log.info("inbound 8x8-pop: no ani → 400")
            return _page(400, "Not popped", "The ani parameter (the caller's number) is missing.")
        try:
            ani = _phone_or_withheld(raw_ani, "ani", self.config.region)
        except _BadPhone as exc:
            log.info("inbound 8x8-pop: unusable ani → 400")
            detail = str(exc).removeprefix("ani ")
            return _page(400, "Not popped", f"The ani parameter (the caller's number) {detail}.")
        dnis = _optional_dnis(request.query_params.get("dnis"), self.config.region)
        self.emit(PopRequested(ani=ani, dnis=dnis, source="8x8"))
        log.info("inbound 8x8-pop: pop requested (withheld=%s) → 200", isinstance(ani, NoCallerId))
        shown = "no caller ID" if isinstance(ani, NoCallerId) else format_human(ani)
        return _page(200, "Popped in pa-tui", f"Caller {shown} popped in pa-tui. You can close this tab.")

    # ------------------------------------------------------------ pa-tui pop
    async def pop_cli(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not _same(token.strip(), self.config.cli_token):
            log.warning("inbound cli-pop: %s token → 401", "missing" if not auth else "wrong")
            return JSONResponse({"error": "missing or wrong pop token"}, status_code=401,
                                headers={**_SECURITY_HEADERS, "WWW-Authenticate": 'Bearer realm="pa-tui"'})
        if _media_type(request) != "application/json":
            log.info("inbound cli-pop: unsupported content type → 415")
            return JSONResponse({"error": "expected application/json"}, status_code=415, headers=_SECURITY_HEADERS)
        body = await request.body()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return JSONResponse({"error": "body is not JSON"}, status_code=400, headers=_SECURITY_HEADERS)
        if not isinstance(data, dict) or not isinstance(data.get("ani"), str):
            return JSONResponse({"error": "ani is missing"}, status_code=400, headers=_SECURITY_HEADERS)
        raw_dnis = data.get("dnis")
        if raw_dnis is not None and not isinstance(raw_dnis, str):
            return JSONResponse({"error": "dnis must be text"}, status_code=400, headers=_SECURITY_HEADERS)
        try:
            ani = _phone_or_withheld(data["ani"], "ani", self.config.region)
        except _BadPhone as exc:
            log.info("inbound cli-pop: unusable ani → 400")
            return JSONResponse({"error": str(exc)}, status_code=400, headers=_SECURITY_HEADERS)
        dnis: PhoneNumber | None = None
        if raw_dnis:
            try:
                parsed = _phone_or_withheld(raw_dnis, "dnis", self.config.region)
            except _BadPhone as exc:
                return JSONResponse({"error": str(exc)}, status_code=400, headers=_SECURITY_HEADERS)
            dnis = parsed if isinstance(parsed, PhoneNumber) else None
        self.emit(PopRequested(ani=ani, dnis=dnis, source="cli"))
        log.info("inbound cli-pop: pop requested (withheld=%s) → 202", isinstance(ani, NoCallerId))
        return JSONResponse({"ok": True}, status_code=202, headers=_SECURITY_HEADERS)


def _title(exc: EventParseError) -> str:
    return exc.title.removeprefix("Skipped a Dialpad event: ")


def _jti(payload: dict[str, Any]) -> str | None:
    jti = payload.get("jti")
    if isinstance(jti, str) and jti.strip():
        return "jti:" + jti.strip()[:256]
    if isinstance(jti, int) and not isinstance(jti, bool):
        return f"jti:{jti}"
    return None


async def _not_found(request: Request, exc: Exception) -> Response:
    return _text(404, "not found")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    headers = dict(getattr(exc, "headers", None) or {})
    return _text(405, "method not allowed", **headers)


def build_app(config: InboundConfig, emit: Callable[[object], None]) -> ASGIApp:
    """The listener's ASGI app. ``emit`` receives each fact; it must not block."""
    routes = _Routes(config, emit)
    app = Starlette(
        routes=[
            Route(HEALTH_PATH, routes.healthz, methods=["GET"]),
            Route("/", routes.pop_8x8, methods=["GET"]),
            Route(POP_PATH, routes.pop_cli, methods=["POST"]),
            Route(DIALPAD_EVENTS_PATH, routes.dialpad_events, methods=["POST"]),
            Route(STATUS_CALLBACK_PATH, routes.twilio_status, methods=["POST"]),
            Route(INBOUND_SMS_PATH, routes.twilio_sms, methods=["POST"]),
            Route(CALL_STATUS_PATH, routes.twilio_call_status, methods=["POST"]),
            Route(APP_CONFIRM_PATH, routes.app_confirm, methods=["POST", "GET"]),
        ],
        exception_handlers={404: _not_found, 405: _method_not_allowed},
    )
    app.router.redirect_slashes = False
    guarded = GuardMiddleware(app, max_body=config.max_body, body_timeout=config.body_timeout)
    guarded.routes = routes  # type: ignore[attr-defined]  # for tests and introspection
    return guarded
