"""Dialpad event frames (websocket messages, webhook bodies) → domain events.

A frame is either JSON text or, when the websocket / webhook was created with
a secret, a compact HS256 JWT whose payload is that JSON. :func:`parse_frame`
verifies and decodes it and returns a :class:`~pa_tui.domain.calls.CallEvent`
or an :class:`~pa_tui.domain.agents.AgentStatusEvent`; anything it cannot use
raises :class:`EventParseError` with a :class:`ParseFailure` reason. Nothing
else escapes: a caller can log and skip.

Payloads carry PHI (the caller's number, the contact's name). This module
logs ids only, never a number, a name or the frame itself.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import jwt
from pydantic import ValidationError

from pa_tui.backends.base import BackendError
from pa_tui.domain.agents import AgentStatusEvent, DutyStatus
from pa_tui.domain.calls import CallDirection, CallEvent, CallState, Party, PartyType
from pa_tui.domain.phones import NoCallerId, PhoneNumber, PhoneNumberError, UnreadableNumber, parse_phone

log = logging.getLogger(__name__)

_JWT_RE: Final = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# Clock skew tolerated on a signed event's own exp / iat / nbf claims, if it has any.
JWT_LEEWAY_SECONDS: Final = 120.0
# Epoch-ms bounds we believe: 2000-01-01 .. 2100-01-01.
_MIN_MS: Final = 946_684_800_000
_MAX_MS: Final = 4_102_444_800_000
_MAX_TEXT: Final = 4096


class ParseFailure(StrEnum):
    """Why a frame was skipped."""

    NOT_TEXT = "not-text"  # bytes that are not UTF-8
    NOT_JSON = "not-json"
    NOT_OBJECT = "not-object"  # JSON, but not an object
    BAD_SIGNATURE = "bad-signature"  # a JWT whose signature does not verify with our secret
    EXPIRED = "expired"  # a JWT past its exp claim
    NOT_JWT = "not-jwt"  # a signed websocket sent something that is not a well-formed JWT
    UNSIGNED = "unsigned"  # plain JSON although the websocket has a secret
    UNEXPECTED_JWT = "unexpected-jwt"  # a JWT although we hold no secret to verify it
    MISSING_ID = "missing-id"  # no call_id / agent id, or an id that is not a string or integer
    UNKNOWN_TYPE = "unknown-type"  # neither a call event nor an agent-status event
    BAD_FIELD = "bad-field"  # a field whose value cannot be used


_TITLES: Final[dict[ParseFailure, str]] = {
    ParseFailure.NOT_TEXT: "frame is not UTF-8 text",
    ParseFailure.NOT_JSON: "frame is not JSON",
    ParseFailure.NOT_OBJECT: "frame is not a JSON object",
    ParseFailure.BAD_SIGNATURE: "JWT signature does not verify",
    ParseFailure.EXPIRED: "signed event has expired",
    ParseFailure.NOT_JWT: "frame is not a well-formed JWT",
    ParseFailure.UNSIGNED: "unsigned frame on a signed event stream",
    ParseFailure.UNEXPECTED_JWT: "signed frame but no secret to verify it",
    ParseFailure.MISSING_ID: "event has no usable id",
    ParseFailure.UNKNOWN_TYPE: "not a call or agent-status event",
    ParseFailure.BAD_FIELD: "event has a field pa-tui cannot read",
}

_FIXES: Final[dict[ParseFailure, str]] = {
    ParseFailure.BAD_SIGNATURE: (
        "The websocket's secret no longer matches pa-tui's. Someone may have updated the websocket; "
        "restart pa-tui so it sets up its own event stream again."
    ),
    ParseFailure.UNSIGNED: (
        "Events should arrive signed. Restart pa-tui so it sets up a signed event stream; "
        "if this repeats, report it to your Dialpad admin."
    ),
    ParseFailure.UNEXPECTED_JWT: "Restart pa-tui so it sets up its own event stream with a known secret.",
    ParseFailure.EXPIRED: "Check this computer's clock (time sync); events older than their expiry are dropped.",
}


class EventParseError(BackendError):
    """A frame that cannot become an event. ``reason`` says why; the text never quotes the frame."""

    area = "dialpad-events"

    def __init__(self, reason: ParseFailure, detail: str = "") -> None:
        title = f"Skipped a Dialpad event: {_TITLES[reason]}"
        if detail:
            title = f"{title} ({detail})"
        super().__init__(title, _FIXES.get(reason, "Nothing to do: pa-tui skipped it and keeps listening."))
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- entry point
def parse_frame(
    data: str | bytes,
    secret: str | None,
    *,
    now: datetime | None = None,
) -> CallEvent | AgentStatusEvent:
    """Verify and decode one frame.

    ``secret`` is the websocket's (or webhook's) secret; with one, only a JWT
    that verifies with HS256 is accepted, without one only plain JSON is.
    ``now`` is used when the payload carries no usable ``event_timestamp``.
    """
    payload = decode_frame(data, secret)
    return parse_payload(payload, now=now)


def decode_frame(data: str | bytes, secret: str | None) -> dict[str, Any]:
    """The frame's JSON object, after verifying its signature when ``secret`` is set."""
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise EventParseError(ParseFailure.NOT_TEXT) from None
    elif isinstance(data, str):
        text = data
    else:
        raise EventParseError(ParseFailure.NOT_TEXT)
    text = text.strip()
    looks_like_jwt = bool(_JWT_RE.match(text))

    if secret:
        if not looks_like_jwt:
            if text.startswith("{"):
                raise EventParseError(ParseFailure.UNSIGNED)
            raise EventParseError(ParseFailure.NOT_JWT)
        return _verify_jwt(text, secret)
    if looks_like_jwt:
        raise EventParseError(ParseFailure.UNEXPECTED_JWT)
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise EventParseError(ParseFailure.NOT_JSON) from None
    if not isinstance(payload, dict):
        raise EventParseError(ParseFailure.NOT_OBJECT)
    return payload


def _verify_jwt(token: str, secret: str) -> dict[str, Any]:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=JWT_LEEWAY_SECONDS,
            options={"verify_aud": False, "verify_iss": False, "verify_sub": False, "verify_jti": False},
        )
    except jwt.ExpiredSignatureError:
        raise EventParseError(ParseFailure.EXPIRED) from None
    except jwt.InvalidSignatureError:
        raise EventParseError(ParseFailure.BAD_SIGNATURE) from None
    except jwt.InvalidAlgorithmError:
        raise EventParseError(ParseFailure.BAD_SIGNATURE, "only HS256 is accepted") from None
    except jwt.DecodeError:
        raise EventParseError(ParseFailure.NOT_JWT) from None
    except jwt.ImmatureSignatureError:  # nbf / iat in the future: a clock problem, like expiry
        raise EventParseError(ParseFailure.EXPIRED, "not valid yet") from None
    except jwt.InvalidTokenError:  # a signed token whose registered claims are malformed
        raise EventParseError(ParseFailure.NOT_JWT, "malformed claims") from None
    except (ValueError, TypeError, RecursionError):  # pragma: no cover - defensive: PyJWT internals
        raise EventParseError(ParseFailure.NOT_JWT) from None
    if not isinstance(payload, dict):  # pragma: no cover - PyJWT already insists on an object
        raise EventParseError(ParseFailure.NOT_OBJECT)
    return payload


def parse_payload(payload: Mapping[str, Any], *, now: datetime | None = None) -> CallEvent | AgentStatusEvent:
    """A decoded payload → domain event. Raises :class:`EventParseError` only."""
    if not isinstance(payload, Mapping):
        raise EventParseError(ParseFailure.NOT_OBJECT)
    if "call_id" in payload or ("state" in payload and "on_duty_status" not in payload):
        return _call_event(payload, now)
    if "on_duty_status" in payload:
        return _agent_status_event(payload, now)
    raise EventParseError(ParseFailure.UNKNOWN_TYPE)


def event_kind(event: CallEvent | AgentStatusEvent) -> str:
    return "call" if isinstance(event, CallEvent) else "agent_status"


# --------------------------------------------------------------------------- call events
def _call_event(p: Mapping[str, Any], now: datetime | None) -> CallEvent:
    call_id = parse_id(p.get("call_id"))
    if call_id is None:
        raise EventParseError(ParseFailure.MISSING_ID, "call_id")
    master = _optional_id(p, "master_call_id")
    entry = _optional_id(p, "entry_point_call_id")

    raw_state = p.get("state")
    state = CallState.parse(raw_state)
    kept_state: str | None = None
    if state is CallState.UNKNOWN:
        kept_state = _text(raw_state, 64) if isinstance(raw_state, str) else None
        log.info("call %s: unknown call state, kept as raw_state", call_id)

    direction = CallDirection.parse(p.get("direction"))
    if "external_number" in p:
        external: PhoneNumber | NoCallerId | UnreadableNumber | None = _phone(
            p.get("external_number"), "external_number", call_id
        )
    elif direction is CallDirection.INBOUND:
        external = parse_phone(None)  # an inbound call without a number: the network withheld it
    else:
        external = None
    internal = _phone(p.get("internal_number"), "internal_number", call_id) if p.get("internal_number") else None
    if not isinstance(internal, PhoneNumber):
        internal = None

    timestamp = ms_to_datetime(p.get("event_timestamp"))
    if timestamp is None:
        timestamp = now or datetime.now(UTC)
        log.debug("call %s: no usable event_timestamp, using receipt time", call_id)

    try:
        return CallEvent(
            call_id=call_id,
            master_call_id=master,
            entry_point_call_id=entry,
            state=state,
            raw_state=kept_state,
            direction=direction,
            external_number=external,
            internal_number=internal,
            target=_party(p.get("target")),
            entry_point_target=_party(p.get("entry_point_target")),
            group_id=_text(p.get("group_id"), 256) if isinstance(p.get("group_id"), str | int) else None,
            is_transferred=_flag(p.get("is_transferred")),
            custom_data=_custom_data(p.get("custom_data")),
            labels=_labels(p.get("labels")),
            event_timestamp=timestamp,
            date_started=ms_to_datetime(p.get("date_started")),
            date_rang=ms_to_datetime(p.get("date_rang")) or ms_to_datetime(p.get("date_first_rang")),
            date_connected=ms_to_datetime(p.get("date_connected")),
            date_ended=ms_to_datetime(p.get("date_ended")),
        )
    except ValidationError as exc:  # pragma: no cover - every field above is already coerced
        fields = ",".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc"))
        raise EventParseError(ParseFailure.BAD_FIELD, fields) from None


def _optional_id(p: Mapping[str, Any], name: str) -> str | None:
    raw = p.get(name)
    if raw is None or raw == "" or raw == 0:
        return None
    value = parse_id(raw)
    if value is None:
        raise EventParseError(ParseFailure.MISSING_ID, f"{name} is not an id")
    return value


def _party(raw: object) -> Party | None:
    if not isinstance(raw, Mapping) or not raw:
        return None
    party_id = parse_id(raw.get("id"))
    name = _text(raw.get("name"), 256) if isinstance(raw.get("name"), str) else None
    if party_id is None and not name:
        return None
    return Party(id=party_id, type=PartyType.parse(raw.get("type")), name=name or None)


def _phone(raw: object, field: str, call_id: str) -> PhoneNumber | NoCallerId | UnreadableNumber:
    try:
        return parse_phone(raw)
    except PhoneNumberError as exc:
        # The reason never repeats the value; the value itself is PHI and stays out of logs.
        log.warning("call %s: %s is not a phone number (%s)", call_id, field, exc)
        return UnreadableNumber(reason=str(exc))


def _custom_data(raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        return raw[:_MAX_TEXT]
    try:
        return json.dumps(raw, sort_keys=True)[:_MAX_TEXT]
    except (TypeError, ValueError, RecursionError):
        return None


def _labels(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple):
        return ()
    return tuple(_text(x, 128) for x in raw if isinstance(x, str) and x.strip())


# --------------------------------------------------------------------------- agent status
def _agent_status_event(p: Mapping[str, Any], now: datetime | None) -> AgentStatusEvent:
    agent_id = None
    target = p.get("target")
    if isinstance(target, Mapping):
        agent_id = parse_id(target.get("id"))
    for key in ("user_id", "agent_id", "operator_id"):
        if agent_id is None:
            agent_id = parse_id(p.get(key))
    if agent_id is None:
        raise EventParseError(ParseFailure.MISSING_ID, "agent id")
    raw_status = p.get("on_duty_status")
    status = DutyStatus.parse(raw_status)
    timestamp = ms_to_datetime(p.get("event_timestamp")) or ms_to_datetime(p.get("date"))
    if timestamp is None:
        timestamp = now or datetime.now(UTC)
    centers = p.get("call_center_ids")
    ids = tuple(i for i in (parse_id(x) for x in centers) if i) if isinstance(centers, list | tuple) else ()
    reason = p.get("on_duty_status_reason")
    availability = p.get("availability_status")
    try:
        return AgentStatusEvent(
            agent_id=agent_id,
            status=status,
            raw_status=_text(raw_status, 64) if isinstance(raw_status, str) else None,
            reason=_text(reason, 256) if isinstance(reason, str) and reason else None,
            availability=_text(availability, 64) if isinstance(availability, str) and availability else None,
            call_center_ids=ids,
            event_timestamp=timestamp,
        )
    except ValidationError as exc:  # pragma: no cover - every field above is already coerced
        fields = ",".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc"))
        raise EventParseError(ParseFailure.BAD_FIELD, fields) from None


# --------------------------------------------------------------------------- small coercions
def parse_id(raw: object) -> str | None:
    """A Dialpad id (64-bit, sent as an integer or a string) as a string, or ``None``."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        # JSON numbers past 2**53 lose precision in some encoders; accept integral values only.
        return str(int(raw)) if math.isfinite(raw) and raw.is_integer() and raw >= 0 else None
    if isinstance(raw, str):
        text = raw.strip()
        if not text or len(text) > 128 or any(c.isspace() or not c.isprintable() for c in text):
            return None
        return text
    return None


def ms_to_datetime(raw: object) -> datetime | None:
    """Epoch milliseconds (int, float or digit string; ISO-8601 text tolerated) → aware UTC."""
    if raw is None or isinstance(raw, bool):
        return None
    value: float | None = None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if value is None or not math.isfinite(value) or not _MIN_MS <= value <= _MAX_MS:
        return None
    return datetime.fromtimestamp(value / 1000.0, tz=UTC)


def _flag(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        return raw == 1
    if isinstance(raw, str):
        return raw.strip().lower() in ("true", "1", "yes")
    return False


def _text(raw: object, limit: int) -> str:
    return str(raw).strip()[:limit]


__all__ = [
    "EventParseError",
    "ParseFailure",
    "decode_frame",
    "event_kind",
    "ms_to_datetime",
    "parse_frame",
    "parse_id",
    "parse_payload",
]
