"""A stateful fake of the Twilio REST API 2010-04-01 subset pa-tui uses (in the spirit of stripe-mock).

:class:`TwilioSimulator` is a Starlette app (``.app``) plus a control API.
Serve the app with :class:`pa_tui.demo.host.SimulatorHost` (or call it
in-process through ``httpx.ASGITransport``); run the control coroutines
(``reply``, ``drain``) on the simulator's loop (``host.call(sim.reply(...))``).

Endpoints, as in the official OpenAPI document (``twilio_api_v2010.json``):

- ``GET  /2010-04-01/Accounts/{Sid}.json``
- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form: To, From or
  MessagingServiceSid, Body or MediaUrl, StatusCallback…)
- ``GET  /2010-04-01/Accounts/{AccountSid}/Messages.json`` (To / From / DateSent
  filters; PageSize, Page, PageToken paging, newest first)
- ``GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``
- ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (To, From, Url or Twiml…)
- ``GET  /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json``

Requests need HTTP basic auth: the Account SID and auth token, or an API key
SID and its secret; otherwise 401 with Twilio's error body (code 20003).
Invalid input gets 400 with Twilio's error code (21604/21211 recipient,
21603/21212/21606 sender, 21705/21701 Messaging Service, 21602 empty body,
21617 body over 1600 characters, 21609 bad StatusCallback, 21610 recipient
opted out; 21201/21213/21211/21212/21210/21205 for calls) and, for a value of
the wrong type / pattern / enum per the specification, 400 with code 400.

After a message is created the simulator plays its delivery: ``queued`` →
``sent`` → ``delivered`` (``failed`` / ``undelivered`` with an ``ErrorCode`` for
``fail_numbers``), POSTing each status form-encoded to the message's
StatusCallback, signed with ``X-Twilio-Signature`` exactly as Twilio signs.
Calls go queued → initiated → ringing → in-progress (fetching the TwiML
``Url``, signed) → completed, or end busy / no-answer / failed for
``call_outcomes``; the StatusCallback gets the events asked for in
StatusCallbackEvent (``completed`` by default).

:meth:`TwilioSimulator.reply` plays a patient's text: it posts Twilio's
incoming-message webhook, signed, to a URL, and applies Advanced Opt-Out —
STOP (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) blocks later messages from that
sender to that number with 21610 until START (UNSTOP, YES); Twilio's
confirmation reply is recorded as an ``outbound-reply`` message.

Webhooks go over the network like Twilio's (pass ``webhook_transport`` to
keep them in-process). Fault knobs (plain attributes, change them at any time): ``latency`` seconds
before each answer, ``down`` (503, code 20503), ``rate_limit`` requests per
``rate_window`` seconds (429, code 20429; 0 limits every request),
``fail_numbers``, ``call_outcomes``. Nothing here logs a phone number or a body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import math
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import phonenumbers
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pa_tui.backends.twilio.signature import SIGNATURE_HEADER, compute_signature

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_NUMBER",
    "CALL_FIELDS",
    "MESSAGE_FIELDS",
    "CallbackRecord",
    "FieldSpec",
    "ReplyResult",
    "SimCall",
    "SimMessage",
    "TwilioSimulator",
]

log = logging.getLogger(__name__)

API_VERSION: Final = "2010-04-01"
PREFIX: Final = f"/{API_VERSION}/Accounts"
# Demo credentials: they open nothing but this simulator.
DEFAULT_ACCOUNT_SID: Final = "AC" + "5e0de0" + "0" * 23 + "001"
DEFAULT_AUTH_TOKEN: Final = "sim-twilio-auth-token-0123456789"
DEFAULT_NUMBER: Final = "+14155550123"
MAX_BODY: Final = 1600
MAX_URL: Final = 4000

STOP_WORDS: Final = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS: Final = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS: Final = frozenset({"HELP", "INFO"})
_AUTO_REPLIES: Final = {
    "STOP": "You have successfully been unsubscribed. You will not receive any more messages from this number. "
    "Reply START to resubscribe.",
    "START": "You have successfully been re-subscribed to messages from this number. Reply HELP for help. "
    "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
}
# Delivery failures Twilio reports as "failed" (never left Twilio); other codes end "undelivered".
_FAILED_CODES: Final = frozenset({30001, 30002, 30034})
_ERROR_MESSAGES: Final = {
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Carrier violation",
    30008: "Unknown error",
    30034: "Message from an unregistered number",
}
CALL_EVENTS: Final = ("initiated", "ringing", "answered", "completed")

_GSM7: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT: Final = frozenset("^{}\\[~]|€\f")


# --------------------------------------------------------------------------- request fields (from the spec)
@dataclass(frozen=True)
class FieldSpec:
    """How the specification types one form field of a create request."""

    kind: str  # "string" | "boolean" | "integer" | "number"
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    array: bool = False
    min_length: int | None = None
    max_length: int | None = None


def _sid_field(prefix: str) -> FieldSpec:
    return FieldSpec("string", pattern=f"^{prefix}[0-9a-fA-F]{{32}}$", min_length=34, max_length=34)


_S: Final = FieldSpec("string")
_B: Final = FieldSpec("boolean")
_I: Final = FieldSpec("integer")
_METHOD: Final = FieldSpec("string", enum=("GET", "POST"))

#: ``CreateMessageRequest`` of the specification (required: To).
MESSAGE_FIELDS: Final[dict[str, FieldSpec]] = {
    "To": _S,
    "StatusCallback": _S,
    "ApplicationSid": _sid_field("AP"),
    "MaxPrice": FieldSpec("number"),
    "ProvideFeedback": _B,
    "Attempt": _I,
    "ValidityPeriod": _I,
    "ForceDelivery": _B,
    "ContentRetention": FieldSpec("string", enum=("retain", "discard")),
    "AddressRetention": FieldSpec("string", enum=("retain", "obfuscate")),
    "SmartEncoded": _B,
    "PersistentAction": FieldSpec("string", array=True),
    "TrafficType": FieldSpec("string", enum=("free",)),
    "ShortenUrls": _B,
    "ScheduleType": FieldSpec("string", enum=("fixed",)),
    "SendAt": _S,
    "SendAsMms": _B,
    "ContentVariables": _S,
    "RiskCheck": FieldSpec("string", enum=("enable", "disable")),
    "From": _S,
    "FallbackFrom": _S,
    "MessagingServiceSid": _sid_field("MG"),
    "Body": _S,
    "MediaUrl": FieldSpec("string", array=True),
    "ContentSid": _sid_field("HX"),
}

#: ``CreateCallRequest`` of the specification (required: To, From).
CALL_FIELDS: Final[dict[str, FieldSpec]] = {
    "To": _S,
    "From": _S,
    "Method": _METHOD,
    "FallbackUrl": _S,
    "FallbackMethod": _METHOD,
    "StatusCallback": _S,
    "StatusCallbackEvent": FieldSpec("string", array=True),
    "StatusCallbackMethod": _METHOD,
    "SendDigits": _S,
    "Timeout": _I,
    "Record": _B,
    "RecordingChannels": _S,
    "RecordingStatusCallback": _S,
    "RecordingStatusCallbackMethod": _METHOD,
    "SipAuthUsername": _S,
    "SipAuthPassword": _S,
    "MachineDetection": _S,
    "MachineDetectionTimeout": _I,
    "RecordingStatusCallbackEvent": FieldSpec("string", array=True),
    "Trim": _S,
    "CallerId": _S,
    "MachineDetectionSpeechThreshold": _I,
    "MachineDetectionSpeechEndThreshold": _I,
    "MachineDetectionSilenceTimeout": _I,
    "AsyncAmd": _S,
    "AsyncAmdStatusCallback": _S,
    "AsyncAmdStatusCallbackMethod": _METHOD,
    "Byoc": _sid_field("BY"),
    "CallReason": _S,
    "CallToken": _S,
    "RecordingTrack": _S,
    "TimeLimit": _I,
    "ClientNotificationUrl": _S,
    "Url": _S,
    "Twiml": _S,
    "ApplicationSid": _sid_field("AP"),
}

_INT_RE: Final = re.compile(r"^[+-]?\d+$")
_ACCOUNT_SID_RE: Final = re.compile(r"^AC[0-9a-fA-F]{32}$")
_MESSAGE_SID_RE: Final = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_CALL_SID_RE: Final = re.compile(r"^CA[0-9a-fA-F]{32}$")


# --------------------------------------------------------------------------- errors
class SimApiError(Exception):
    """An API error answered in Twilio's error body."""

    def __init__(
        self, status: int, code: int, message: str, *, detail: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _bad(code: int, message: str) -> SimApiError:
    return SimApiError(400, code, message)


# --------------------------------------------------------------------------- state
@dataclass
class CallbackRecord:
    """One webhook the simulator sent (status callback, TwiML fetch or incoming message)."""

    kind: str  # "message-status" | "call-status" | "call-twiml" | "incoming-message"
    url: str
    method: str
    params: dict[str, str]
    signature: str
    status_code: int | None = None
    error: str | None = None
    response_body: str = ""
    at: float = field(default_factory=time.monotonic)


@dataclass
class SimMessage:
    sid: str
    to: str
    from_: str | None
    body: str
    direction: str  # outbound-api | inbound | outbound-reply
    status: str
    created: datetime
    updated: datetime
    sent: datetime | None = None
    error_code: int | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    num_media: int = 0
    sender: str | None = None  # the number it goes out from (a pool number for a Messaging Service send)
    callbacks: list[CallbackRecord] = field(default_factory=list)
    history: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # never the number or body
        return f"SimMessage(sid={self.sid!r}, direction={self.direction!r}, status={self.status!r})"


@dataclass
class SimCall:
    sid: str
    to: str
    from_: str
    status: str
    created: datetime
    updated: datetime
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    events: tuple[str, ...] = ("completed",)
    started: datetime | None = None
    ended: datetime | None = None
    duration: int | None = None
    phone_number_sid: str | None = None
    twiml_response: str | None = None
    callbacks: list[CallbackRecord] = field(default_factory=list)
    history: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"SimCall(sid={self.sid!r}, status={self.status!r})"


@dataclass(frozen=True)
class ReplyResult:
    """What happened to a simulated patient text."""

    message_sid: str
    status_code: int | None
    response_body: str
    keyword: str | None  # STOP / START / HELP when Twilio's opt-out handling acted on it
    error: str | None = None


# --------------------------------------------------------------------------- helpers
def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _rfc2822(value: datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


def _e164(raw: str | None) -> str | None:
    """E.164 of a possible phone number, else ``None``."""
    if not raw or not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > 32 or not re.fullmatch(r"[\d\s+().\-]+", text):
        return None
    try:
        parsed = phonenumbers.parse(text, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _formatted(e164: str) -> str:
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    fmt = phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == 1 else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(parsed, fmt)


def _valid_url(value: str) -> bool:
    if not value or len(value) > MAX_URL or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme in ("http", "https") and bool(host) and "_" not in host


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def num_segments(body: str) -> int:
    """How many SMS segments Twilio bills for ``body`` (GSM-7: 160/153 chars; UCS-2: 70/67 code units)."""
    if not body:
        return 1
    if all(c in _GSM7 or c in _GSM7_EXT for c in body):
        length = sum(2 if c in _GSM7_EXT else 1 for c in body)
        return 1 if length <= 160 else math.ceil(length / 153)
    length = _utf16_len(body)
    return 1 if length <= 70 else math.ceil(length / 67)


def _keyword(body: str) -> str | None:
    word = body.strip().strip(".!?,;:'\"()").strip().upper()
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    if word in HELP_WORDS:
        return "HELP"
    return None


def _check_fields(form: Mapping[str, list[str]], fields: Mapping[str, FieldSpec]) -> None:
    """Reject values of the wrong type, pattern, length or enum, as the specification would."""
    for name, values in form.items():
        spec = fields.get(name)
        if spec is None:  # Twilio ignores parameters it does not know (warning 20001)
            continue
        if not spec.array and len(values) > 1:
            values = values[-1:]
        for value in values:
            ok = True
            if spec.kind == "boolean":
                ok = value.lower() in ("true", "false")
            elif spec.kind == "integer":
                ok = bool(_INT_RE.match(value.strip()))
            elif spec.kind == "number":
                try:
                    ok = math.isfinite(float(value))
                except ValueError:
                    ok = False
            if ok and spec.enum is not None:
                ok = value in spec.enum
            if ok and spec.pattern is not None:
                ok = re.search(spec.pattern, value) is not None
            if ok and spec.min_length is not None:
                ok = len(value) >= spec.min_length
            if ok and spec.max_length is not None:
                ok = len(value) <= spec.max_length
            if not ok:
                raise _bad(400, f"Invalid value for parameter {name}")


def _seconds(value: float | None) -> float:
    return max(0.0, float(value or 0.0))


# --------------------------------------------------------------------------- the simulator
class TwilioSimulator:
    """A Twilio account: numbers, a Messaging Service, messages, calls, opt-outs; plus fault knobs."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        api_keys: Mapping[str, str] | None = None,
        numbers: Iterable[str] = (DEFAULT_NUMBER,),
        messaging_service_sid: str | None = None,
        verified_caller_ids: Iterable[str] = (),
        fail_numbers: Mapping[str, int | tuple[str, int]] | Iterable[str] = (),
        call_outcomes: Mapping[str, str] | None = None,
        latency: float = 0.0,
        callback_delay: float = 0.02,
        down: bool = False,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
        retry_after: float | None = None,
        friendly_name: str = "pa-tui demo",
        seed: int | None = None,
        on_message: Callable[[SimMessage], Any] | None = None,
        on_call: Callable[[SimCall], Any] | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not _ACCOUNT_SID_RE.match(account_sid):
            raise ValueError("account_sid must be AC followed by 32 hex digits")
        if messaging_service_sid is not None and not re.fullmatch(r"MG[0-9a-fA-F]{32}", messaging_service_sid):
            raise ValueError("messaging_service_sid must be MG followed by 32 hex digits")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.api_keys: dict[str, str] = dict(api_keys or {})
        owned = [_e164(n) for n in numbers]
        if any(n is None for n in owned):
            raise ValueError("every owned number must be a phone number")
        self.numbers: list[str] = [n for n in owned if n is not None]
        self.messaging_service_sid = messaging_service_sid
        self.verified_caller_ids: set[str] = {n for n in (_e164(v) for v in verified_caller_ids) if n}
        self.fail_numbers: dict[str, tuple[str, int]] = self._normalise_failures(fail_numbers)
        self.call_outcomes: dict[str, str] = {
            n: outcome for raw, outcome in (call_outcomes or {}).items() if (n := _e164(raw)) is not None
        }
        self.latency = latency
        self.callback_delay = callback_delay
        self.down = down
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.retry_after = retry_after
        self.friendly_name = friendly_name
        self.on_message = on_message
        self.on_call = on_call
        self.webhook_transport = webhook_transport  # where webhooks go (default: the network, as Twilio)
        self.messages: list[SimMessage] = []
        self.calls: list[SimCall] = []
        self.callbacks: list[CallbackRecord] = []
        self.opted_out: set[tuple[str, str]] = set()  # (our number, patient number)
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) — no bodies
        self.created = _now()
        self._rng = random.Random(seed)
        self._recent: deque[float] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pn_sids = {n: self._sid("PN") for n in self.numbers}
        self.app = self._build_app()

    # ------------------------------------------------------------------ control
    def _normalise_failures(
        self, fail_numbers: Mapping[str, int | tuple[str, int]] | Iterable[str]
    ) -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        items: Iterable[tuple[str, int | tuple[str, int]]]
        if isinstance(fail_numbers, Mapping):
            items = fail_numbers.items()
        else:
            items = ((n, 30006) for n in fail_numbers)
        for raw, how in items:
            number = _e164(raw)
            if number is None:
                raise ValueError("fail_numbers must be phone numbers")
            if isinstance(how, tuple):
                status, code = how
            else:
                code = int(how)
                status = "failed" if code in _FAILED_CODES else "undelivered"
            if status not in ("failed", "undelivered"):
                raise ValueError("a failing number ends 'failed' or 'undelivered'")
            out[number] = (status, code)
        return out

    def set_fail_numbers(self, fail_numbers: Mapping[str, int | tuple[str, int]] | Iterable[str]) -> None:
        self.fail_numbers = self._normalise_failures(fail_numbers)

    def opt_out(self, number: str, sender: str | None = None) -> None:
        """Mark ``number`` as having texted STOP to ``sender`` (default: every owned number)."""
        patient = _e164(number)
        if patient is None:
            raise ValueError("not a phone number")
        for ours in [_e164(sender)] if sender else self.numbers:
            if ours:
                self.opted_out.add((ours, patient))

    def is_opted_out(self, number: str, sender: str | None = None) -> bool:
        patient = _e164(number)
        return any((ours, patient) in self.opted_out for ours in ([_e164(sender)] if sender else self.numbers))

    def message(self, sid: str) -> SimMessage | None:
        return next((m for m in self.messages if m.sid == sid), None)

    def call(self, sid: str) -> SimCall | None:
        return next((c for c in self.calls if c.sid == sid), None)

    @property
    def outbound(self) -> list[SimMessage]:
        return [m for m in self.messages if m.direction == "outbound-api"]

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every pending status progression and callback has finished."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("simulated deliveries still pending")
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def reply(
        self,
        from_number: str,
        body: str,
        to_url: str | None,
        *,
        to: str | None = None,
        num_media: int = 0,
        method: str = "POST",
    ) -> ReplyResult:
        """A patient texts ``body`` from ``from_number``: opt-out handling, then the signed webhook to ``to_url``.

        ``to`` is the account number texted (default: the number that last texted
        this patient, else the first owned number). With ``to_url=None`` only the
        state changes (opt-out, message log).
        """
        patient = _e164(from_number)
        if patient is None:
            raise ValueError("from_number must be a phone number")
        ours = _e164(to) if to else self._last_sender_to(patient)
        if ours is None:
            raise ValueError("to must be one of the account's numbers")
        now = _now()
        message = SimMessage(
            sid=self._sid("SM"),
            to=ours,
            from_=patient,
            body=body,
            direction="inbound",
            status="received",
            created=now,
            updated=now,
            sent=now,
            num_media=num_media,
            messaging_service_sid=self.messaging_service_sid,
            sender=ours,
        )
        self.messages.append(message)
        keyword = _keyword(body)
        if keyword == "STOP":
            self.opted_out.add((ours, patient))
        elif keyword == "START":
            self.opted_out.discard((ours, patient))
        params: dict[str, str] = {
            "ToCountry": "US",
            "ToState": "",
            "SmsMessageSid": message.sid,
            "NumMedia": str(num_media),
            "ToCity": "",
            "FromZip": "",
            "SmsSid": message.sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": phonenumbers.region_code_for_number(phonenumbers.parse(patient, None)) or "",
            "To": ours,
            "ToZip": "",
            "NumSegments": str(num_segments(body)),
            "MessageSid": message.sid,
            "AccountSid": self.account_sid,
            "From": patient,
            "ApiVersion": API_VERSION,
        }
        if self.messaging_service_sid:
            params["MessagingServiceSid"] = self.messaging_service_sid
        if keyword is not None:
            params["OptOutType"] = keyword
        record: CallbackRecord | None = None
        if to_url:
            record = await self._webhook("incoming-message", to_url, params, method=method)
            message.callbacks.append(record)
        if keyword is not None:
            self._auto_reply(ours, patient, _AUTO_REPLIES[keyword])
        return ReplyResult(
            message_sid=message.sid,
            status_code=record.status_code if record else None,
            response_body=record.response_body if record else "",
            keyword=keyword,
            error=record.error if record else None,
        )

    # ------------------------------------------------------------------ internals
    def _sid(self, prefix: str) -> str:
        return f"{prefix}{self._rng.getrandbits(128):032x}"

    def _last_sender_to(self, patient: str) -> str | None:
        for m in reversed(self.messages):
            if m.direction != "inbound" and m.to == patient and m.sender:
                return m.sender
        return self.numbers[0] if self.numbers else None

    def _auto_reply(self, ours: str, patient: str, text: str) -> None:
        now = _now()
        self.messages.append(
            SimMessage(
                sid=self._sid("SM"),
                to=patient,
                from_=ours,
                body=text,
                direction="outbound-reply",
                status="delivered",
                created=now,
                updated=now,
                sent=now,
                sender=ours,
                messaging_service_sid=self.messaging_service_sid,
            )
        )

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _webhook(self, kind: str, url: str, params: Mapping[str, str], *, method: str = "POST") -> CallbackRecord:
        """Send one signed webhook the way Twilio does; never raises."""
        params = dict(params)
        if method.upper() == "GET":
            sep = "&" if urlsplit(url).query else "?"
            target = f"{url}{sep}{urlencode(params)}"
            signature = compute_signature(target, None, self.auth_token)
        else:
            target = url
            signature = compute_signature(url, params, self.auth_token)
        record = CallbackRecord(kind=kind, url=url, method=method.upper(), params=params, signature=signature)
        headers = {
            SIGNATURE_HEADER: signature,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "Accept": "*/*",
        }
        try:
            async with httpx.AsyncClient(
                timeout=5.0, follow_redirects=False, transport=self.webhook_transport
            ) as http:
                if method.upper() == "GET":
                    response = await http.get(target, headers=headers)
                else:
                    response = await http.post(
                        url,
                        content=urlencode(params).encode(),
                        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                    )
            record.status_code = response.status_code
            record.response_body = response.text[:4000]
        except httpx.HTTPError as exc:
            record.error = type(exc).__name__
        self.callbacks.append(record)
        log.debug("twilio sim %s webhook → %s", kind, record.status_code or record.error)
        return record

    # ------------------------------------------------------------------ message lifecycle
    def _message_resource(self, m: SimMessage) -> dict[str, Any]:
        base = f"{PREFIX}/{self.account_sid}/Messages/{m.sid}"
        error_message = _ERROR_MESSAGES.get(m.error_code, "Unknown error") if m.error_code is not None else None
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": m.body,
            "date_created": _rfc2822(m.created),
            "date_sent": _rfc2822(m.sent),
            "date_updated": _rfc2822(m.updated),
            "direction": m.direction,
            "error_code": m.error_code,
            "error_message": error_message,
            "from": m.from_,
            "messaging_service_sid": m.messaging_service_sid,
            "num_media": str(m.num_media),
            "num_segments": str(num_segments(m.body)),
            "price": "-0.00790" if m.status in ("sent", "delivered", "undelivered") else None,
            "price_unit": "USD",
            "sid": m.sid,
            "status": m.status,
            "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
            "to": m.to,
            "uri": f"{base}.json",
        }

    async def _message_status(self, m: SimMessage, status: str, error_code: int | None = None) -> None:
        now = _now()
        m.status = status
        m.updated = now
        m.history.append(status)
        if status == "sent":
            m.sent = now
            if m.from_ is None:
                m.from_ = m.sender
        if error_code is not None:
            m.error_code = error_code
        if not m.status_callback:
            return
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": m.from_ or "",
            "MessageSid": m.sid,
            "MessageStatus": status,
            "SmsSid": m.sid,
            "SmsStatus": status,
            "To": m.to,
        }
        if m.messaging_service_sid:
            params["MessagingServiceSid"] = m.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        if status == "delivered":
            params["RawDlrDoneDate"] = now.strftime("%y%m%d%H%M")
        record = await self._webhook("message-status", m.status_callback, params)
        m.callbacks.append(record)

    async def _deliver(self, m: SimMessage) -> None:
        delay = _seconds(self.callback_delay)
        failure = self.fail_numbers.get(m.to)
        await asyncio.sleep(delay)
        await self._message_status(m, "queued")
        if failure is not None and failure[0] == "failed":
            await asyncio.sleep(delay)
            await self._message_status(m, "failed", failure[1])
            return
        await asyncio.sleep(delay)
        await self._message_status(m, "sent")
        await asyncio.sleep(delay)
        if failure is not None:
            await self._message_status(m, "undelivered", failure[1])
        else:
            await self._message_status(m, "delivered")

    # ------------------------------------------------------------------ call lifecycle
    def _call_resource(self, c: SimCall) -> dict[str, Any]:
        base = f"{PREFIX}/{self.account_sid}/Calls/{c.sid}"
        subresources = (
            "notifications recordings payments events siprec streams transcriptions "
            "user_defined_message_subscriptions user_defined_messages"
        ).split()
        names = {
            "user_defined_message_subscriptions": "UserDefinedMessageSubscriptions",
            "user_defined_messages": "UserDefinedMessages",
        }
        return {
            "account_sid": self.account_sid,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(c.created),
            "date_updated": _rfc2822(c.updated),
            "direction": "outbound-api",
            "duration": str(c.duration) if c.duration is not None else None,
            "end_time": _rfc2822(c.ended),
            "forwarded_from": None,
            "from": c.from_,
            "from_formatted": _formatted(c.from_),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": c.phone_number_sid,
            "price": "-0.01400" if c.status == "completed" else None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": c.sid,
            "start_time": _rfc2822(c.started),
            "status": c.status,
            "subresource_uris": {s: f"{base}/{names.get(s, s.capitalize())}.json" for s in subresources},
            "to": c.to,
            "to_formatted": _formatted(c.to) if c.to.startswith("+") else c.to,
            "trunk_sid": None,
            "uri": f"{base}.json",
        }

    async def _call_event(self, c: SimCall, event: str, status: str) -> None:
        now = _now()
        c.status = status if status != "initiated" else "queued"
        c.updated = now
        c.history.append(status)
        if not c.status_callback or event not in c.events:
            return
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": c.sid,
            "CallStatus": status,
            "Called": c.to,
            "Caller": c.from_,
            "Direction": "outbound-api",
            "From": c.from_,
            "To": c.to,
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(sum(1 for r in c.callbacks if r.kind == "call-status")),
            "Timestamp": _rfc2822(now) or "",
        }
        if event == "completed":
            params["CallDuration"] = str(c.duration or 0)
            params["Duration"] = str(math.ceil((c.duration or 0) / 60))
        record = await self._webhook("call-status", c.status_callback, params, method=c.status_callback_method)
        c.callbacks.append(record)

    async def _run_call(self, c: SimCall) -> None:
        delay = _seconds(self.callback_delay)
        outcome = self.call_outcomes.get(c.to)
        await asyncio.sleep(delay)
        await self._call_event(c, "initiated", "initiated")
        await asyncio.sleep(delay)
        await self._call_event(c, "ringing", "ringing")
        await asyncio.sleep(delay)
        if outcome in ("busy", "no-answer", "failed", "canceled"):
            c.ended = _now()
            c.duration = 0
            await self._call_event(c, "completed", outcome)
            return
        c.started = _now()
        await self._call_event(c, "answered", "in-progress")
        if c.url:
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "CallSid": c.sid,
                "CallStatus": "in-progress",
                "Called": c.to,
                "Caller": c.from_,
                "Direction": "outbound-api",
                "From": c.from_,
                "To": c.to,
            }
            record = await self._webhook("call-twiml", c.url, params, method=c.method)
            c.callbacks.append(record)
            c.twiml_response = record.response_body
        await asyncio.sleep(delay)
        c.ended = _now()
        c.duration = max(1, int((c.ended - c.started).total_seconds()))
        await self._call_event(c, "completed", "completed")

    # ------------------------------------------------------------------ HTTP plumbing
    def _authenticate(self, request: Request) -> str:
        """Returns how the request authenticated: ``"token"`` or ``"key"``; raises 401 otherwise."""
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        failure = SimApiError(
            401,
            20003,
            "Authenticate",
            detail="Your AccountSid or AuthToken was incorrect.",
            headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
        )
        if scheme.lower() != "basic" or not encoded:
            raise failure
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise failure from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise failure
        if hmac.compare_digest(username.encode(), self.account_sid.encode()) and hmac.compare_digest(
            password.encode(), self.auth_token.encode()
        ):
            return "token"
        secret = self.api_keys.get(username)
        if secret is not None and hmac.compare_digest(password.encode(), secret.encode()):
            return "key"
        raise failure

    def _check_rate(self) -> None:
        if self.rate_limit is None:
            return
        now = time.monotonic()
        while self._recent and now - self._recent[0] > self.rate_window:
            self._recent.popleft()
        if len(self._recent) >= max(0, self.rate_limit):
            headers = {"Retry-After": f"{self.retry_after:g}"} if self.retry_after is not None else None
            raise SimApiError(429, 20429, "Too Many Requests", headers=headers)
        self._recent.append(now)

    def _endpoint(self, handler: Callable[[Request, str], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                if self.latency:
                    await asyncio.sleep(_seconds(self.latency))
                if self.down:
                    raise SimApiError(503, 20503, "Service Unavailable")
                how = self._authenticate(request)
                self._check_rate()
                account = request.path_params.get("AccountSid") or request.path_params.get("Sid")
                if account != self.account_sid:
                    if account is None or not _ACCOUNT_SID_RE.match(account):
                        raise self._not_found(request)
                    raise SimApiError(
                        401, 20003, "Authenticate", detail="Your AccountSid or AuthToken was incorrect."
                    )
                response = await handler(request, how)
            except SimApiError as exc:
                response = exc.response()
            self.requests.append((request.method, request.url.path, response.status_code))
            return response

        return endpoint

    @staticmethod
    def _not_found(request: Request) -> SimApiError:
        return SimApiError(404, 20404, f"The requested resource {request.url.path} was not found")

    @staticmethod
    async def _form(request: Request) -> dict[str, list[str]]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if content_type != "application/x-www-form-urlencoded" or not raw:
            return {}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(400, "The request body is not UTF-8") from None
        form: dict[str, list[str]] = {}
        for name, value in parse_qsl(text, keep_blank_values=True):
            form.setdefault(name, []).append(value)
        return form

    @staticmethod
    def _one(form: Mapping[str, list[str]], name: str) -> str | None:
        values = form.get(name)
        return values[-1] if values else None

    # ------------------------------------------------------------------ handlers
    async def _get_account(self, request: Request, how: str) -> Response:
        base = f"{PREFIX}/{self.account_sid}"
        names = (
            "addresses conferences signing_keys transcriptions connect_apps sip authorized_connect_apps usage "
            "keys applications recordings short_codes calls notifications incoming_phone_numbers queues messages "
            "outgoing_caller_ids available_phone_numbers balance"
        ).split()
        special = {
            "signing_keys": "SigningKeys",
            "connect_apps": "ConnectApps",
            "authorized_connect_apps": "AuthorizedConnectApps",
            "short_codes": "SMS/ShortCodes",
            "incoming_phone_numbers": "IncomingPhoneNumbers",
            "outgoing_caller_ids": "OutgoingCallerIds",
            "available_phone_numbers": "AvailablePhoneNumbers",
            "sip": "SIP",
        }
        return JSONResponse(
            {
                "auth_token": self.auth_token if how == "token" else None,
                "date_created": _rfc2822(self.created),
                "date_updated": _rfc2822(self.created),
                "friendly_name": self.friendly_name,
                "owner_account_sid": self.account_sid,
                "sid": self.account_sid,
                "status": "active",
                "subresource_uris": {n: f"{base}/{special.get(n, n.capitalize())}.json" for n in names},
                "type": "Full",
                "uri": f"{base}.json",
            }
        )

    async def _create_message(self, request: Request, how: str) -> Response:
        form = await self._form(request)
        to_raw = (self._one(form, "To") or "").strip()
        if not to_raw:
            raise _bad(21604, "A 'To' phone number is required.")
        to = _e164(to_raw)
        if to is None:
            raise _bad(21211, f"The 'To' number {to_raw} is not a valid phone number.")
        from_raw = (self._one(form, "From") or "").strip()
        service = (self._one(form, "MessagingServiceSid") or "").strip()
        if not from_raw and not service:
            raise _bad(21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
        if service:
            if not re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
                raise _bad(21705, "The Messaging Service Sid provided is invalid.")
            if service != self.messaging_service_sid:
                raise _bad(21701, "The Messaging Service does not exist or does not belong to this account.")
        sender: str | None = None
        if from_raw:
            sender = _e164(from_raw)
            if sender is None:
                raise _bad(21212, f"The 'From' number {from_raw} is not a valid phone number, shortcode, or alphanumeric sender ID.")
            if sender not in self.numbers:
                raise _bad(
                    21606,
                    f"The 'From' phone number provided ({from_raw}) is not a valid message-capable Twilio phone "
                    "number for this destination/account.",
                )
        body = self._one(form, "Body") or ""
        media = form.get("MediaUrl", [])
        if not body.strip() and not media and not self._one(form, "ContentSid"):
            raise _bad(21602, "Message body is required.")
        if _utf16_len(body) > MAX_BODY:
            raise _bad(21617, "The concatenated message body exceeds the 1600 character limit.")
        callback = self._one(form, "StatusCallback")
        if callback is not None and not _valid_url(callback):
            raise _bad(21609, "The StatusCallback URL is not a valid URL.")
        for url in media:
            if not _valid_url(url):
                raise _bad(21620, "Invalid media URL(s).")
        _check_fields(form, MESSAGE_FIELDS)
        out_number = sender or (self.numbers[0] if self.numbers else None)
        if out_number is not None and (out_number, to) in self.opted_out:
            raise _bad(21610, "Attempt to send to unsubscribed recipient")
        now = _now()
        message = SimMessage(
            sid=self._sid("MM" if media else "SM"),
            to=to,
            from_=sender,
            body=body,
            direction="outbound-api",
            status="accepted" if service and not sender else "queued",
            created=now,
            updated=now,
            messaging_service_sid=service or None,
            status_callback=callback or None,
            num_media=len(media),
            sender=out_number,
        )
        self.messages.append(message)
        log.debug("twilio sim message %s created", message.sid)
        if self.on_message is not None:
            result = self.on_message(message)
            if asyncio.iscoroutine(result):
                await result
        self._spawn(self._deliver(message))
        return JSONResponse(self._message_resource(message), status_code=201)

    async def _fetch_message(self, request: Request, how: str) -> Response:
        sid = request.path_params["Sid"]
        message = self.message(sid) if _MESSAGE_SID_RE.match(sid) else None
        if message is None:
            raise self._not_found(request)
        return JSONResponse(self._message_resource(message))

    async def _list_messages(self, request: Request, how: str) -> Response:
        query = request.query_params
        try:
            page_size = int(query.get("PageSize", "50"))
            page = int(query.get("Page", "0"))
        except ValueError:
            raise _bad(400, "Invalid value for parameter PageSize or Page") from None
        if not 1 <= page_size <= 1000 or page < 0:
            raise _bad(400, "Invalid value for parameter PageSize or Page")
        items = list(reversed(self.messages))  # newest first
        to_filter = query.get("To")
        if to_filter is not None:
            wanted = _e164(to_filter) or to_filter
            items = [m for m in items if m.to == wanted]
        from_filter = query.get("From")
        if from_filter is not None:
            wanted = _e164(from_filter) or from_filter
            items = [m for m in items if m.from_ == wanted]
        for key, compare in (
            ("DateSent", lambda d, w: d == w),
            ("DateSent<", lambda d, w: d <= w),
            ("DateSent>", lambda d, w: d >= w),
        ):
            raw = query.get(key)
            if raw is None:
                continue
            try:
                wanted_date = date.fromisoformat(raw.strip()[:10])
            except ValueError:
                raise _bad(400, f"Invalid value for parameter {key}") from None
            items = [m for m in items if m.sent is not None and compare(m.sent.date(), wanted_date)]
        token = query.get("PageToken")
        start = page * page_size
        if token:
            anchor = token[2:]
            index = next((i for i, m in enumerate(items) if m.sid == anchor), None)
            if index is None or token[:2] not in ("PA", "PB"):
                raise _bad(400, "Invalid value for parameter PageToken")
            start = index + 1 if token[:2] == "PA" else max(0, index - page_size)
        chunk = items[start : start + page_size]
        filters = [(k, v) for k, v in query.multi_items() if k not in ("PageSize", "Page", "PageToken")]
        path = request.url.path

        def uri(page_no: int, page_token: str | None) -> str:
            params = [*filters, ("PageSize", str(page_size)), ("Page", str(page_no))]
            if page_token:
                params.append(("PageToken", page_token))
            return f"{path}?{urlencode(params)}"

        has_next = start + page_size < len(items) and bool(chunk)
        return JSONResponse(
            {
                "end": start + max(0, len(chunk) - 1),
                "first_page_uri": uri(0, None),
                "messages": [self._message_resource(m) for m in chunk],
                "next_page_uri": uri(page + 1, f"PA{chunk[-1].sid}") if has_next else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": uri(page - 1, f"PB{chunk[0].sid}") if page > 0 and chunk else None,
                "start": start,
                "uri": uri(page, token),
            }
        )

    async def _create_call(self, request: Request, how: str) -> Response:
        form = await self._form(request)
        to_raw = (self._one(form, "To") or "").strip()
        if not to_raw:
            raise _bad(21201, "No 'To' number is specified")
        from_raw = (self._one(form, "From") or "").strip()
        if not from_raw:
            raise _bad(21213, "No 'From' number is specified")
        if to_raw.startswith(("client:", "sip:")):
            to = to_raw
        else:
            parsed_to = _e164(to_raw)
            if parsed_to is None:
                raise _bad(21211, f"The 'To' number {to_raw} is not a valid phone number.")
            to = parsed_to
        sender = _e164(from_raw)
        if sender is None:
            raise _bad(21212, f"The 'From' number {from_raw} is not a valid phone number.")
        if sender not in self.numbers and sender not in self.verified_caller_ids:
            raise _bad(21210, f"The source phone number provided, {from_raw}, is not yet verified for your account.")
        url = self._one(form, "Url")
        twiml = self._one(form, "Twiml")
        application = self._one(form, "ApplicationSid")
        if not url and not twiml and not application:
            raise _bad(21205, "Url, ApplicationSid or Twiml is required to create a call.")
        if url is not None and url and not _valid_url(url):
            raise _bad(21205, "Url is not a valid URL.")
        for name in ("StatusCallback", "FallbackUrl"):
            value = self._one(form, name)
            if value is not None and not _valid_url(value):
                raise _bad(21205 if name == "FallbackUrl" else 400, f"{name} is not a valid URL.")
        _check_fields(form, CALL_FIELDS)
        events = tuple(e.strip() for v in form.get("StatusCallbackEvent", []) for e in v.split() if e.strip())
        unknown = [e for e in events if e not in CALL_EVENTS]
        if unknown:
            raise _bad(400, "Invalid value for parameter StatusCallbackEvent")
        now = _now()
        call = SimCall(
            sid=self._sid("CA"),
            to=to,
            from_=sender,
            status="queued",
            created=now,
            updated=now,
            url=url or None,
            method=(self._one(form, "Method") or "POST").upper(),
            twiml=twiml,
            status_callback=self._one(form, "StatusCallback") or None,
            status_callback_method=(self._one(form, "StatusCallbackMethod") or "POST").upper(),
            events=events or ("completed",),
            phone_number_sid=self._pn_sids.get(sender),
        )
        self.calls.append(call)
        log.debug("twilio sim call %s created", call.sid)
        if self.on_call is not None:
            result = self.on_call(call)
            if asyncio.iscoroutine(result):
                await result
        self._spawn(self._run_call(call))
        return JSONResponse(self._call_resource(call), status_code=201)

    async def _fetch_call(self, request: Request, how: str) -> Response:
        sid = request.path_params["Sid"]
        call = self.call(sid) if _CALL_SID_RE.match(sid) else None
        if call is None:
            raise self._not_found(request)
        return JSONResponse(self._call_resource(call))

    # ------------------------------------------------------------------ app
    def _build_app(self) -> Starlette:
        e = self._endpoint
        routes = [
            Route(f"{PREFIX}/{{Sid}}.json", e(self._get_account), methods=["GET"]),
            Route(f"{PREFIX}/{{AccountSid}}/Messages.json", e(self._create_message), methods=["POST"]),
            Route(f"{PREFIX}/{{AccountSid}}/Messages.json", e(self._list_messages), methods=["GET"]),
            Route(f"{PREFIX}/{{AccountSid}}/Messages/{{Sid}}.json", e(self._fetch_message), methods=["GET"]),
            Route(f"{PREFIX}/{{AccountSid}}/Calls.json", e(self._create_call), methods=["POST"]),
            Route(f"{PREFIX}/{{AccountSid}}/Calls/{{Sid}}.json", e(self._fetch_call), methods=["GET"]),
        ]

        async def http_error(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            if status == 404:
                return self._not_found(request).response()
            if status == 405:
                return SimApiError(405, 20004, "Method not allowed").response()
            return SimApiError(status, 20500, "Internal Server Error").response()

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error})

