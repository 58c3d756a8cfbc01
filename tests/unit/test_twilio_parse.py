"""Parsing Twilio webhooks: status callbacks, incoming messages, call status; keywords; never leaking PHI."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pa_tui.backends.twilio.parse import (
    CallStatus,
    MessageStatus,
    WebhookParseError,
    detect_keyword,
    parse_call_status,
    parse_inbound_sms,
    parse_status_callback,
)

SM = "SM" + "0123456789abcdef" * 2
CA = "CA" + "fedcba9876543210" * 2
AC = "AC5e0de000000000000000000000000001"
PATIENT = "+14085551212"
OURS = "+14155550123"


def status_params(**overrides: str) -> dict[str, str]:
    params = {
        "AccountSid": AC,
        "ApiVersion": "2010-04-01",
        "From": OURS,
        "MessageSid": SM,
        "MessageStatus": "delivered",
        "SmsSid": SM,
        "SmsStatus": "delivered",
        "To": PATIENT,
    }
    params.update(overrides)
    return params


def inbound_params(body: str = "C", **overrides: str) -> dict[str, str]:
    params = {
        "ToCountry": "US",
        "SmsMessageSid": SM,
        "NumMedia": "0",
        "SmsSid": SM,
        "SmsStatus": "received",
        "Body": body,
        "To": OURS,
        "NumSegments": "1",
        "MessageSid": SM,
        "AccountSid": AC,
        "From": PATIENT,
        "ApiVersion": "2010-04-01",
    }
    params.update(overrides)
    return params


# --------------------------------------------------------------------------- status callbacks
def test_delivered() -> None:
    status = parse_status_callback(status_params())
    assert status.message_sid == SM
    assert status.status is MessageStatus.DELIVERED
    assert status.delivered and status.is_final and not status.failed
    assert status.error_code is None
    assert status.to is not None and status.to.e164 == PATIENT
    assert status.account_sid == AC


def test_undelivered_with_error_code() -> None:
    status = parse_status_callback(status_params(MessageStatus="undelivered", SmsStatus="undelivered", ErrorCode="30006"))
    assert status.status is MessageStatus.UNDELIVERED and status.failed and status.is_final
    assert status.error_code == 30006


@pytest.mark.parametrize("status", ["queued", "sent", "accepted", "sending"])
def test_intermediate_statuses(status: str) -> None:
    parsed = parse_status_callback(status_params(MessageStatus=status))
    assert parsed.status.value == status and not parsed.is_final


def test_legacy_sms_fields_and_list_values() -> None:
    params = {"SmsSid": [SM], "SmsStatus": ["sent"], "To": [PATIENT]}
    parsed = parse_status_callback(params)
    assert parsed.message_sid == SM and parsed.status is MessageStatus.SENT


def test_multidict_like_starlette() -> None:
    class FormLike(dict):
        def getlist(self, name: str) -> list[str]:
            value = self[name]
            return value if isinstance(value, list) else [value]

    parsed = parse_status_callback(FormLike(status_params()))
    assert parsed.status is MessageStatus.DELIVERED


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({k: v for k, v in status_params().items() if k not in ("MessageSid", "SmsSid")}, "MessageSid"),
        ({k: v for k, v in status_params().items() if k not in ("MessageStatus", "SmsStatus")}, "MessageStatus"),
        (status_params(MessageSid="SM123", SmsSid="SM123"), "MessageSid"),
        (status_params(MessageStatus="teleported", SmsStatus="teleported"), "MessageStatus"),
        (status_params(ErrorCode="thirty"), "ErrorCode"),
        (status_params(AccountSid="ACnope"), "AccountSid"),
    ],
)
def test_status_callback_errors_name_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(WebhookParseError) as info:
        parse_status_callback(params)
    assert info.value.field == field
    assert PATIENT not in str(info.value)


def test_status_repr_has_no_number() -> None:
    status = parse_status_callback(status_params())
    assert PATIENT not in repr(status) and "5551212" not in str(status)


# --------------------------------------------------------------------------- inbound
@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("C", "CONFIRM"),
        ("c", "CONFIRM"),
        (" confirm ", "CONFIRM"),
        ("Confirmed!", "CONFIRM"),
        ("R", "RESCHEDULE"),
        ("reschedule", "RESCHEDULE"),
        ("STOP", "STOP"),
        ("stop.", "STOP"),
        ("StopAll", "STOP"),
        ("unsubscribe", "STOP"),
        ("Cancel", "STOP"),
        ("end", "STOP"),
        ("QUIT", "STOP"),
        ("start", "START"),
        ("UNSTOP", "START"),
        ("yes", "START"),
        ("help", "HELP"),
        ("Can I come at 10 instead?", None),
        ("c u there", None),
        ("", None),
        ("stop it please", None),
    ],
)
def test_keywords(body: str, keyword: str | None) -> None:
    assert detect_keyword(body) == keyword
    assert parse_inbound_sms(inbound_params(body)).keyword == keyword


def test_opt_out_type_wins() -> None:
    parsed = parse_inbound_sms(inbound_params("Arrêtez", OptOutType="STOP"))
    assert parsed.keyword == "STOP"


def test_inbound_fields() -> None:
    parsed = parse_inbound_sms(inbound_params("R", NumMedia="2", MessagingServiceSid="MG" + "1" * 32))
    assert parsed.message_sid == SM
    assert parsed.from_number is not None and parsed.from_number.e164 == PATIENT
    assert parsed.to == OURS and parsed.body == "R" and parsed.num_media == 2
    assert parsed.messaging_service_sid == "MG" + "1" * 32
    assert parsed.account_sid == AC


def test_inbound_from_short_code_or_alphanumeric_is_none() -> None:
    assert parse_inbound_sms(inbound_params(From="TWILIO")).from_number is None


def test_inbound_empty_body_is_allowed_for_mms() -> None:
    parsed = parse_inbound_sms(inbound_params("", NumMedia="1"))
    assert parsed.body == "" and parsed.keyword is None


@pytest.mark.parametrize("missing", ["From", "To", "Body"])
def test_inbound_missing_field(missing: str) -> None:
    params = inbound_params("C")
    del params[missing]
    with pytest.raises(WebhookParseError) as info:
        parse_inbound_sms(params)
    assert info.value.field == missing


def test_inbound_missing_sid() -> None:
    params = {k: v for k, v in inbound_params().items() if k not in ("MessageSid", "SmsMessageSid", "SmsSid")}
    with pytest.raises(WebhookParseError, match="MessageSid"):
        parse_inbound_sms(params)


def test_inbound_repr_and_logs_have_no_phi(caplog: pytest.LogCaptureFixture) -> None:
    secret_body = "my date of birth is 01/02/1960"
    with caplog.at_level(logging.DEBUG):
        parsed = parse_inbound_sms(inbound_params(secret_body))
        with pytest.raises(WebhookParseError) as info:
            parse_inbound_sms({"From": PATIENT, "Body": secret_body})
    for text in (repr(parsed), str(parsed), str(info.value), caplog.text):
        assert secret_body not in text and PATIENT not in text


# --------------------------------------------------------------------------- call status
def test_call_status() -> None:
    parsed = parse_call_status(
        {"CallSid": CA, "CallStatus": "completed", "CallDuration": "42", "To": PATIENT, "SequenceNumber": "3", "AccountSid": AC}
    )
    assert parsed.status is CallStatus.COMPLETED and parsed.is_final
    assert parsed.duration == 42 and parsed.sequence_number == 3
    assert parse_call_status({"CallSid": CA, "CallStatus": "ringing"}).status is CallStatus.RINGING


@pytest.mark.parametrize(
    "params",
    [{"CallStatus": "completed"}, {"CallSid": CA}, {"CallSid": "CA1", "CallStatus": "completed"}, {"CallSid": CA, "CallStatus": "x"}],
)
def test_call_status_errors(params: dict[str, str]) -> None:
    with pytest.raises(WebhookParseError):
        parse_call_status(params)


# --------------------------------------------------------------------------- property: only WebhookParseError
_scalars = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.binary(max_size=20),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.sampled_from([SM, CA, AC, PATIENT, "delivered", "completed", "STOP", "30006", "+1", "anonymous"]),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.text(max_size=3), _scalars, max_size=2))
_keys = st.one_of(
    st.sampled_from(
        ["MessageSid", "SmsSid", "SmsMessageSid", "MessageStatus", "SmsStatus", "ErrorCode", "To", "From", "Body",
         "NumMedia", "AccountSid", "OptOutType", "CallSid", "CallStatus", "CallDuration", "Duration",
         "SequenceNumber", "AnsweredBy", "MessagingServiceSid"]
    ),
    st.text(max_size=10),
    st.integers(),
)
_dicts = st.dictionaries(_keys, _values, max_size=12)
_anything = st.one_of(_dicts, st.none(), st.text(max_size=10), st.lists(st.integers(), max_size=3), st.integers())


@settings(max_examples=300, deadline=None)
@given(params=_anything)
def test_parsers_raise_only_webhook_parse_error(params: object) -> None:
    for parse in (parse_status_callback, parse_inbound_sms, parse_call_status):
        try:
            parse(params)  # type: ignore[arg-type]
        except WebhookParseError:
            pass


@settings(max_examples=200, deadline=None)
@given(
    sid=st.sampled_from([SM, "MM" + "a" * 32]),
    status=st.sampled_from([s.value for s in MessageStatus]),
    to=st.one_of(st.none(), st.text(max_size=20)),
    code=st.one_of(st.none(), st.integers(0, 99999).map(str)),
)
def test_valid_status_callbacks_always_parse(sid: str, status: str, to: str | None, code: str | None) -> None:
    params = {"MessageSid": sid, "MessageStatus": status}
    if to is not None:
        params["To"] = to
    if code is not None:
        params["ErrorCode"] = code
    parsed = parse_status_callback(params)
    assert parsed.message_sid == sid and parsed.status.value == status


@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=200))
def test_detect_keyword_never_raises(body: str) -> None:
    assert detect_keyword(body) in (None, "STOP", "START", "HELP", "CONFIRM", "RESCHEDULE")
