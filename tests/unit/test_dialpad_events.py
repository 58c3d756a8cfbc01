"""Dialpad event frames → domain events: plain JSON, signed JWTs, and everything that can go wrong."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from pa_tui.domain.phones import UnreadableNumber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pa_tui.backends.base import BackendError
from pa_tui.backends.dialpad.events import EventParseError, ParseFailure, ms_to_datetime, parse_frame, parse_id
from pa_tui.domain.agents import AgentStatusEvent, DutyStatus
from pa_tui.domain.calls import CallBook, CallDirection, CallEvent, CallState, PartyType
from pa_tui.domain.phones import NO_CALLER_ID, PhoneNumber

SECRET = "websocket-secret-0123456789abcdef0123456789"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in epoch ms


def call_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "call_id": 6300000000000008,
        "master_call_id": 6300000000000001,
        "entry_point_call_id": 6300000000000001,
        "operator_call_id": None,
        "state": "ringing",
        "direction": "inbound",
        "date_started": T0,
        "date_rang": T0 + 150,
        "date_connected": None,
        "date_ended": None,
        "event_timestamp": T0 + 200,
        "external_number": "+14155550199",
        "internal_number": "+14155550110",
        "contact": {"id": "c1", "name": "Jane Example", "phone": "+14155550199", "type": "unknown"},
        "target": {"id": 6104827395610001, "type": "user", "name": "Avery Quinn", "phone": "+14155550131"},
        "entry_point_target": {"id": 5218472930164401, "type": "callcenter", "name": "Scheduling"},
        "group_id": "CallCenter:5218472930164401",
        "is_transferred": False,
        "labels": ["new-patient"],
        "custom_data": None,
    }
    payload.update(overrides)
    return payload


def status_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "availability_status": "available",
        "call_center_ids": [5218472930164401, "5218472930164402"],
        "date": T0,
        "event_timestamp": T0 + 5,
        "on_duty_status": "available",
        "on_duty_status_reason": None,
        "powerdialer_mode": False,
        "target": {"id": 6104827395610001, "type": "user", "name": "Avery Quinn"},
    }
    payload.update(overrides)
    return payload


def as_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload)


def as_jwt(payload: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


# --------------------------------------------------------------------------- call events
def test_plain_json_call_event_is_normalised() -> None:
    event = parse_frame(as_json(call_payload()), None)

    assert isinstance(event, CallEvent)
    assert event.call_id == "6300000000000008"
    assert event.master_call_id == "6300000000000001"
    assert event.entry_point_call_id == "6300000000000001"
    assert event.key == "6300000000000001"
    assert event.state is CallState.RINGING and event.raw_state is None
    assert event.direction is CallDirection.INBOUND
    assert isinstance(event.external_number, PhoneNumber) and event.external_number.e164 == "+14155550199"
    assert isinstance(event.internal_number, PhoneNumber) and event.internal_number.e164 == "+14155550110"
    assert event.target is not None and event.target.id == "6104827395610001"
    assert event.target.type is PartyType.USER and event.target.name == "Avery Quinn"
    assert event.entry_point_target is not None and event.entry_point_target.type is PartyType.CALL_CENTER
    assert event.labels == ("new-patient",)
    assert event.event_timestamp == datetime(2026, 1, 1, 0, 0, 0, 200_000, tzinfo=UTC)
    assert event.event_timestamp.tzinfo is UTC
    assert event.date_started == datetime(2026, 1, 1, tzinfo=UTC)
    assert event.date_connected is None


def test_signed_frame_verifies_and_matches_plain_json() -> None:
    signed = parse_frame(as_jwt(call_payload()), SECRET)
    plain = parse_frame(as_json(call_payload()), None)
    assert signed == plain


def test_bytes_frames_are_accepted() -> None:
    event = parse_frame(as_jwt(call_payload()).encode(), SECRET)
    assert isinstance(event, CallEvent)


def test_ids_as_strings_or_integers_parse_the_same() -> None:
    as_ints = parse_frame(as_json(call_payload()), None)
    as_strs = parse_frame(
        as_json(
            call_payload(
                call_id="6300000000000008",
                master_call_id="6300000000000001",
                entry_point_call_id="6300000000000001",
                target={"id": "6104827395610001", "type": "user", "name": "Avery Quinn"},
                entry_point_target={"id": "5218472930164401", "type": "callcenter", "name": "Scheduling"},
            )
        ),
        None,
    )
    assert as_ints == as_strs


def test_epoch_ms_as_digit_strings() -> None:
    event = parse_frame(as_json(call_payload(event_timestamp=str(T0 + 200), date_started=str(T0))), None)
    assert event.event_timestamp == datetime(2026, 1, 1, 0, 0, 0, 200_000, tzinfo=UTC)


def test_unknown_state_is_kept_not_an_error() -> None:
    event = parse_frame(as_json(call_payload(state="holographic")), None)
    assert isinstance(event, CallEvent)
    assert event.state is CallState.UNKNOWN
    assert event.raw_state == "holographic"


@pytest.mark.parametrize("number", [None, "", "anonymous", "Restricted", "0000000000"])
def test_no_caller_id_is_tolerated(number: object) -> None:
    event = parse_frame(as_json(call_payload(external_number=number)), None)
    assert event.external_number == NO_CALLER_ID


def test_missing_external_number_on_an_inbound_call_means_no_caller_id() -> None:
    payload = call_payload()
    del payload["external_number"]
    assert parse_frame(as_json(payload), None).external_number == NO_CALLER_ID


def test_unparseable_number_is_marked_unreadable_and_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pa_tui.backends.dialpad")
    event = parse_frame(as_json(call_payload(external_number="+99987")), None)
    assert isinstance(event.external_number, UnreadableNumber)
    assert "unknown country code" in event.external_number.reason
    assert "99987" not in event.external_number.reason
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings, "an unusable number should be reported"
    assert "6300000000000008" in caplog.text  # the call id is fine to log
    assert "99987" not in caplog.text  # the number is not


def test_parsing_never_logs_phi(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    parse_frame(as_json(call_payload(state="weird-new-state", external_number="(415) 555-01")), None)
    for secret_text in ("Jane Example", "555-01", "4155550199", "Avery Quinn"):
        assert secret_text not in caplog.text


def test_event_timestamp_falls_back_to_receipt_time() -> None:
    now = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
    event = parse_frame(as_json(call_payload(event_timestamp=None)), None, now=now)
    assert event.event_timestamp == now
    event = parse_frame(as_json(call_payload(event_timestamp="yesterday")), None, now=now)
    assert event.event_timestamp == now


def test_events_fold_into_one_call() -> None:
    book = CallBook()
    for state, ts in (("ringing", 200), ("connected", 900), ("hangup", 5000)):
        extra = {"date_connected": T0 + 900} if state != "ringing" else {}
        book.apply(parse_frame(as_json(call_payload(state=state, event_timestamp=T0 + ts, **extra)), None))
    call = book.calls["6300000000000001"]
    assert call.is_ended and call.state is CallState.HANGUP
    assert isinstance(call.ani, PhoneNumber) and call.ani.e164 == "+14155550199"


# --------------------------------------------------------------------------- agent-status events
def test_agent_status_event() -> None:
    event = parse_frame(as_jwt(status_payload(on_duty_status="occupied-end")), SECRET)
    assert isinstance(event, AgentStatusEvent)
    assert event.agent_id == "6104827395610001"
    assert event.status is DutyStatus.AVAILABLE
    assert event.raw_status == "occupied-end"
    assert event.call_center_ids == ("5218472930164401", "5218472930164402")
    assert event.availability == "available"
    assert event.event_timestamp == datetime(2026, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)


def test_agent_status_unknown_status_is_unknown() -> None:
    event = parse_frame(as_json(status_payload(on_duty_status="teleporting", on_duty_status_reason="Lunch")), None)
    assert isinstance(event, AgentStatusEvent)
    assert event.status is DutyStatus.UNKNOWN and event.raw_status == "teleporting"
    assert event.reason == "Lunch"


# --------------------------------------------------------------------------- failures
def failure(data: str | bytes, secret: str | None = None) -> EventParseError:
    with pytest.raises(EventParseError) as info:
        parse_frame(data, secret)
    assert isinstance(info.value, BackendError)
    assert info.value.title and info.value.fix
    return info.value


def test_bad_signature() -> None:
    assert failure(as_jwt(call_payload(), "someone-elses-secret-0123456789abcdef"), SECRET).reason is (
        ParseFailure.BAD_SIGNATURE
    )


def test_tampered_payload_fails_signature() -> None:
    header, _, signature = as_jwt(call_payload()).split(".")
    forged = jwt.utils.base64url_encode(json.dumps(call_payload(state="hangup")).encode()).decode()
    assert failure(f"{header}.{forged}.{signature}", SECRET).reason is ParseFailure.BAD_SIGNATURE


def test_alg_none_is_refused() -> None:
    token = jwt.encode(call_payload(), None, algorithm="none")
    assert failure(token, SECRET).reason in (ParseFailure.BAD_SIGNATURE, ParseFailure.NOT_JWT)


def test_expired_jwt() -> None:
    payload = call_payload(exp=int(time.time()) - 3600)
    assert failure(as_jwt(payload), SECRET).reason is ParseFailure.EXPIRED


def test_jwt_not_valid_yet_and_malformed_claims() -> None:
    future = call_payload(nbf=int(time.time()) + 3600)
    assert failure(as_jwt(future), SECRET).reason is ParseFailure.EXPIRED
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode()
    body = jwt.utils.base64url_encode(json.dumps(call_payload(iat=[])).encode()).decode()
    signature = jwt.utils.base64url_encode(
        hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    ).decode()
    assert failure(f"{header}.{body}.{signature}", SECRET).reason is ParseFailure.NOT_JWT


def test_unsigned_frame_on_a_signed_stream_is_refused() -> None:
    assert failure(as_json(call_payload()), SECRET).reason is ParseFailure.UNSIGNED


def test_jwt_without_a_secret_is_refused() -> None:
    assert failure(as_jwt(call_payload()), None).reason is ParseFailure.UNEXPECTED_JWT


def test_not_json() -> None:
    error = failure("Jane Example called from (415) 555-0199")
    assert error.reason is ParseFailure.NOT_JSON
    assert "Jane" not in str(error) and "555" not in str(error)


def test_not_an_object() -> None:
    assert failure("[1, 2, 3]").reason is ParseFailure.NOT_OBJECT
    assert failure('"ringing"').reason is ParseFailure.NOT_OBJECT


def test_not_utf8() -> None:
    assert failure(b"\xff\xfe\x00garbage").reason is ParseFailure.NOT_TEXT


@pytest.mark.parametrize("call_id", [None, "", "   ", True, {"id": 1}, [1], 1.5])
def test_missing_or_unusable_call_id(call_id: object) -> None:
    assert failure(as_json(call_payload(call_id=call_id))).reason is ParseFailure.MISSING_ID


def test_unusable_entry_point_id() -> None:
    assert failure(as_json(call_payload(entry_point_call_id={"x": 1}))).reason is ParseFailure.MISSING_ID


def test_agent_status_without_an_agent() -> None:
    payload = status_payload()
    del payload["target"]
    assert failure(as_json(payload)).reason is ParseFailure.MISSING_ID


def test_unknown_event_type() -> None:
    assert failure(as_json({"type": "sms", "text": "hi"})).reason is ParseFailure.UNKNOWN_TYPE


def test_small_coercions() -> None:
    assert parse_id(12) == "12" and parse_id(" 12 ") == "12" and parse_id(12.0) == "12"
    assert parse_id(True) is None and parse_id(-1.5) is None and parse_id(float("nan")) is None
    assert ms_to_datetime(T0) == datetime(2026, 1, 1, tzinfo=UTC)
    assert ms_to_datetime(float("inf")) is None and ms_to_datetime(10**30) is None and ms_to_datetime(5) is None
    assert ms_to_datetime("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- properties
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
event_keys = st.sampled_from(
    [
        "call_id",
        "master_call_id",
        "entry_point_call_id",
        "state",
        "direction",
        "external_number",
        "internal_number",
        "target",
        "entry_point_target",
        "event_timestamp",
        "date_started",
        "date_rang",
        "date_connected",
        "date_ended",
        "is_transferred",
        "custom_data",
        "labels",
        "group_id",
        "on_duty_status",
        "call_center_ids",
        "on_duty_status_reason",
        "availability_status",
        "date",
        "user_id",
    ]
)
event_like = st.dictionaries(event_keys | st.text(max_size=8), json_values, max_size=12)
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_parse_errors(data: str | bytes, secret: str | None) -> None:
    try:
        result = parse_frame(data, secret)
    except EventParseError as exc:
        assert isinstance(exc.reason, ParseFailure)
    else:
        assert isinstance(result, CallEvent | AgentStatusEvent)


@PROPERTY_SETTINGS
@given(st.text())
def test_arbitrary_text_only_raises_parse_errors(text: str) -> None:
    _only_parse_errors(text, None)
    _only_parse_errors(text, SECRET)


@PROPERTY_SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_parse_errors(data: bytes) -> None:
    _only_parse_errors(data, None)
    _only_parse_errors(data, SECRET)


@PROPERTY_SETTINGS
@given(json_values)
def test_arbitrary_json_only_raises_parse_errors(value: Any) -> None:
    _only_parse_errors(json.dumps(value), None)


@PROPERTY_SETTINGS
@given(event_like)
def test_event_shaped_json_only_raises_parse_errors(payload: dict[str, Any]) -> None:
    _only_parse_errors(json.dumps(payload), None)
    try:
        token = as_jwt(payload)
    except (TypeError, ValueError):  # PyJWT itself refuses to sign e.g. a non-string "iss"
        return
    _only_parse_errors(token, SECRET)


@PROPERTY_SETTINGS
@given(st.dictionaries(event_keys, json_values, max_size=6))
def test_call_events_with_arbitrary_fields_only_raise_parse_errors(extra: dict[str, Any]) -> None:
    payload = call_payload()
    payload.update(extra)
    _only_parse_errors(json.dumps(payload), None)
