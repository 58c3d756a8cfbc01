"""Pure parsing of Twilio webhooks: message status callbacks, incoming messages, call status.

Input is the webhook's form parameters as a mapping (``str`` → ``str``, or a
multi-dict / ``str`` → list of ``str``); output is a small frozen pydantic
model. Anything missing or malformed raises :class:`WebhookParseError`, whose
message names the field but never repeats a value (numbers and message bodies
are PHI). Nothing here logs or does I/O; verify the signature
(:mod:`pa_tui.backends.twilio.signature`) before parsing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.phones import PhoneNumber, try_parse_phone

__all__ = [
    "FINAL_CALL_STATUSES",
    "FINAL_MESSAGE_STATUSES",
    "CallStatus",
    "CallStatusUpdate",
    "DeliveryStatus",
    "InboundSms",
    "Keyword",
    "MessageStatus",
    "WebhookParseError",
    "detect_keyword",
    "parse_call_status",
    "parse_inbound_sms",
    "parse_status_callback",
]

Keyword = Literal["STOP", "START", "HELP", "CONFIRM", "RESCHEDULE"]


class WebhookParseError(ValueError):
    """A webhook lacks a field or carries one in an unexpected form. Names the field, never its value."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MessageStatus(StrEnum):
    """``message_enum_status`` of the Twilio API 2010-04-01 specification."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    RECEIVING = "receiving"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    READ = "read"
    PARTIALLY_DELIVERED = "partially_delivered"
    CANCELED = "canceled"


FINAL_MESSAGE_STATUSES: Final = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.READ,
        MessageStatus.CANCELED,
        MessageStatus.RECEIVED,
    }
)


class CallStatus(StrEnum):
    """``call_enum_status`` of the specification, plus ``initiated`` which status callbacks also report."""

    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"


FINAL_CALL_STATUSES: Final = frozenset(
    {CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.FAILED, CallStatus.NO_ANSWER, CallStatus.CANCELED}
)

_MESSAGE_SID_RE: Final = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
_CALL_SID_RE: Final = re.compile(r"^CA[0-9a-fA-F]{32}$")
_ACCOUNT_SID_RE: Final = re.compile(r"^AC[0-9a-fA-F]{32}$")

# Whole-message keywords. Twilio's default opt-out / opt-in / help keywords, then pa-tui's reminder answers.
_KEYWORDS: Final[dict[str, Keyword]] = {
    **dict.fromkeys(("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"), "STOP"),
    **dict.fromkeys(("START", "UNSTOP", "YES"), "START"),
    **dict.fromkeys(("HELP", "INFO"), "HELP"),
    **dict.fromkeys(("C", "CONFIRM", "CONFIRMED"), "CONFIRM"),
    **dict.fromkeys(("R", "RESCHEDULE"), "RESCHEDULE"),
}
# Twilio's Advanced Opt-Out tells the receiver which kind of keyword it matched.
_OPT_OUT_TYPES: Final[dict[str, Keyword]] = {"STOP": "STOP", "START": "START", "HELP": "HELP"}
_TRIM: Final = " \t\r\n\u00a0.!?,;:'\"()[]"


class DeliveryStatus(BaseModel):
    """A message status callback (``MessageStatus`` queued → sent → delivered, or failed/undelivered)."""

    model_config = ConfigDict(frozen=True)

    message_sid: str
    status: MessageStatus
    error_code: int | None = None
    to: PhoneNumber | None = None
    account_sid: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_MESSAGE_STATUSES

    @property
    def delivered(self) -> bool:
        return self.status in (MessageStatus.DELIVERED, MessageStatus.READ)

    @property
    def failed(self) -> bool:
        return self.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.CANCELED)

    def __repr__(self) -> str:  # the number stays out of reprs (and so out of logs)
        return f"DeliveryStatus(message_sid={self.message_sid!r}, status={self.status.value!r}, error_code={self.error_code!r})"

    __str__ = __repr__


class InboundSms(BaseModel):
    """An incoming message (a patient's reply). ``from_number`` is ``None`` when it is not a phone number."""

    model_config = ConfigDict(frozen=True)

    message_sid: str
    from_number: PhoneNumber | None
    to: str
    body: str
    keyword: Keyword | None = None
    num_media: int = 0
    account_sid: str | None = None
    messaging_service_sid: str | None = None

    def __repr__(self) -> str:  # never the number or the body
        return f"InboundSms(message_sid={self.message_sid!r}, keyword={self.keyword!r}, num_media={self.num_media})"

    __str__ = __repr__


class CallStatusUpdate(BaseModel):
    """A call status callback (for the appointment confirmation call)."""

    model_config = ConfigDict(frozen=True)

    call_sid: str
    status: CallStatus
    to: PhoneNumber | None = None
    duration: int | None = None
    answered_by: str | None = None
    sequence_number: int | None = None
    account_sid: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_CALL_STATUSES

    def __repr__(self) -> str:
        return f"CallStatusUpdate(call_sid={self.call_sid!r}, status={self.status.value!r})"

    __str__ = __repr__


# --------------------------------------------------------------------------- helpers
def _get(params: object, name: str) -> str | None:
    """The first value of ``name``; ``None`` when absent. Raises only :class:`WebhookParseError`."""
    if not isinstance(params, Mapping):
        raise WebhookParseError("webhook parameters are not a mapping of names to values")
    try:
        getlist = getattr(params, "getlist", None) or getattr(params, "getall", None)
        if getlist is not None:
            values: Any = list(getlist(name)) if name in params else []
            value: Any = values[0] if values else None
        else:
            value = params.get(name)
    except WebhookParseError:
        raise
    except Exception:  # a hostile Mapping: treat as malformed, not as a crash
        raise WebhookParseError(f"webhook parameter {name} could not be read", field=name) from None
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        value = value[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookParseError(f"webhook parameter {name} is not UTF-8 text", field=name) from None
    if not isinstance(value, str):
        raise WebhookParseError(f"webhook parameter {name} is not text", field=name)
    return value


def _require(params: object, *names: str) -> str:
    for name in names:
        value = _get(params, name)
        if value is not None and value.strip():
            return value.strip()
    raise WebhookParseError(f"webhook is missing {names[0]}", field=names[0])


def _sid(params: object, pattern: re.Pattern[str], what: str, *names: str) -> str:
    value = _require(params, *names)
    if not pattern.match(value):
        raise WebhookParseError(f"webhook {names[0]} is not a Twilio {what} SID", field=names[0])
    return value


def _optional_account(params: object) -> str | None:
    value = (_get(params, "AccountSid") or "").strip()
    if not value:
        return None
    if not _ACCOUNT_SID_RE.match(value):
        raise WebhookParseError("webhook AccountSid is not a Twilio account SID", field="AccountSid")
    return value


def _optional_int(params: object, name: str) -> int | None:
    value = (_get(params, name) or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise WebhookParseError(f"webhook {name} is not a whole number", field=name)
    return int(value)


def _phone(value: str | None) -> PhoneNumber | None:
    if not value:
        return None
    try:
        parsed = try_parse_phone(value)
    except Exception:  # phonenumbers on hostile input: not a number, never a crash
        return None
    return parsed if isinstance(parsed, PhoneNumber) else None


def detect_keyword(body: str, opt_out_type: str | None = None) -> Keyword | None:
    """The keyword a reply consists of, if any: the whole message, ignoring case, spaces and punctuation.

    Twilio's ``OptOutType`` (Advanced Opt-Out) wins when present: Twilio has
    already acted on it (a STOP blocks further messages to the sender).
    """
    if opt_out_type:
        known = _OPT_OUT_TYPES.get(opt_out_type.strip().upper())
        if known is not None:
            return known
    text = unicodedata.normalize("NFKC", body).strip(_TRIM).upper()
    return _KEYWORDS.get(text)


# --------------------------------------------------------------------------- parsers
def parse_status_callback(params: Mapping[str, Any]) -> DeliveryStatus:
    """A message status callback. Needs ``MessageSid`` (or ``SmsSid``) and ``MessageStatus`` (or ``SmsStatus``)."""
    sid = _sid(params, _MESSAGE_SID_RE, "message", "MessageSid", "SmsSid")
    raw_status = _require(params, "MessageStatus", "SmsStatus").lower()
    try:
        status = MessageStatus(raw_status)
    except ValueError:
        raise WebhookParseError("webhook MessageStatus is not a known message status", field="MessageStatus") from None
    return DeliveryStatus(
        message_sid=sid,
        status=status,
        error_code=_optional_int(params, "ErrorCode"),
        to=_phone(_get(params, "To")),
        account_sid=_optional_account(params),
    )


def parse_inbound_sms(params: Mapping[str, Any]) -> InboundSms:
    """An incoming message webhook. Needs ``MessageSid`` (or ``SmsMessageSid``/``SmsSid``), ``From``, ``To``, ``Body``."""
    sid = _sid(params, _MESSAGE_SID_RE, "message", "MessageSid", "SmsMessageSid", "SmsSid")
    sender = _require(params, "From")
    to = _require(params, "To")
    body = _get(params, "Body")
    if body is None:
        raise WebhookParseError("webhook is missing Body", field="Body")
    num_media = _optional_int(params, "NumMedia") or 0
    service = (_get(params, "MessagingServiceSid") or "").strip() or None
    return InboundSms(
        message_sid=sid,
        from_number=_phone(sender),
        to=to,
        body=body,
        keyword=detect_keyword(body, _get(params, "OptOutType")),
        num_media=num_media,
        account_sid=_optional_account(params),
        messaging_service_sid=service,
    )


def parse_call_status(params: Mapping[str, Any]) -> CallStatusUpdate:
    """A call status callback. Needs ``CallSid`` and ``CallStatus``."""
    sid = _sid(params, _CALL_SID_RE, "call", "CallSid")
    raw_status = _require(params, "CallStatus").lower()
    try:
        status = CallStatus(raw_status)
    except ValueError:
        raise WebhookParseError("webhook CallStatus is not a known call status", field="CallStatus") from None
    duration = _optional_int(params, "CallDuration")
    if duration is None:
        duration = _optional_int(params, "Duration")
    answered_by = (_get(params, "AnsweredBy") or "").strip() or None
    return CallStatusUpdate(
        call_sid=sid,
        status=status,
        to=_phone(_get(params, "To")),
        duration=duration,
        answered_by=answered_by,
        sequence_number=_optional_int(params, "SequenceNumber"),
        account_sid=_optional_account(params),
    )
