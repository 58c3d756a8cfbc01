"""TwilioClient against a scripted transport: requests, error mapping, retries, and secrets kept secret."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from pa_tui.backends.base import AuthError, BadRequest, Messaging, NotFound, RateLimited, Unavailable
from pa_tui.backends.twilio import (
    TwilioBadRequest,
    TwilioClient,
    TwilioError,
    TwilioMessaging,
    TwilioUnavailable,
    describe_code,
)
from pa_tui.domain.phones import NO_CALLER_ID, parse_phone

AC = "AC5e0de000000000000000000000000001"
TOKEN = "tok-SECRET-0123456789abcdef0123"
SK = "SK" + "c" * 32
KEY_SECRET = "keysecret-SECRET-abcdef"
SM = "SM" + "1" * 32
CA = "CA" + "2" * 32
PATIENT = parse_phone("+14085551212")
OURS = "+14155550123"


def message_json(status: str = "queued", **extra: object) -> dict[str, object]:
    return {"sid": SM, "status": status, "num_segments": "1", "direction": "outbound-api", **extra}


class Script:
    """A transport that answers from a list of responses (or callables) and records requests."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def client(self, **kwargs: object) -> TwilioClient:
        kwargs.setdefault("auth_token", TOKEN)
        return TwilioClient(
            account_sid=AC,
            base_url="https://api.twilio.test",
            transport=httpx.MockTransport(self),
            backoff_initial=0.001,
            backoff_max=0.002,
            **kwargs,  # type: ignore[arg-type]
        )


def twilio_error(status: int, code: int, message: str = "The 'To' number +14085551212 is not valid") -> httpx.Response:
    return httpx.Response(
        status,
        json={"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
    )


# --------------------------------------------------------------------------- requests
async def test_send_sms_request_shape() -> None:
    script = Script(httpx.Response(201, json=message_json()))
    async with script.client() as client:
        result = await client.send_sms(PATIENT, "Reminder: 9:30 tomorrow. Reply C to confirm", from_=OURS,
                                       status_callback="https://pa.example.org/twilio/status")
    assert result.sid == SM and result.status == "queued" and result.num_segments == 1
    (request,) = script.requests
    assert request.method == "POST"
    assert request.url.path == f"/2010-04-01/Accounts/{AC}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode())
    assert form == {
        "To": ["+14085551212"],
        "From": [OURS],
        "Body": ["Reminder: 9:30 tomorrow. Reply C to confirm"],
        "StatusCallback": ["https://pa.example.org/twilio/status"],
    }
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{AC}:{TOKEN}".encode()).decode()


async def test_api_key_auth_and_messaging_service() -> None:
    script = Script(httpx.Response(201, json=message_json("accepted")))
    async with script.client(auth_token=None, api_key=SK, api_secret=KEY_SECRET) as client:
        result = await client.send_sms("+1 (408) 555-1212", "hi", messaging_service_sid="MG" + "a" * 32)
    assert result.status == "accepted"
    (request,) = script.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{SK}:{KEY_SECRET}".encode()).decode()
    assert request.url.path.startswith(f"/2010-04-01/Accounts/{AC}/")
    assert parse_qs(request.content.decode())["MessagingServiceSid"] == ["MG" + "a" * 32]


async def test_confirmation_call_request_shape() -> None:
    script = Script(httpx.Response(201, json={"sid": CA, "status": "queued"}))
    async with script.client() as client:
        result = await client.start_confirmation_call(
            PATIENT, from_=OURS, twiml_url="https://pa.example.org/twilio/confirm",
            status_callback="https://pa.example.org/twilio/call-status",
            status_callback_events=("answered", "completed"),
        )
    assert result.sid == CA and result.status == "queued"
    form = parse_qs(script.requests[0].content.decode())
    assert form["Url"] == ["https://pa.example.org/twilio/confirm"]
    assert form["StatusCallbackEvent"] == ["answered", "completed"]
    assert script.requests[0].url.path == f"/2010-04-01/Accounts/{AC}/Calls.json"


async def test_call_needs_exactly_one_of_url_and_twiml() -> None:
    script = Script(httpx.Response(201, json={"sid": CA, "status": "queued"}))
    async with script.client() as client:
        with pytest.raises(BadRequest):
            await client.start_confirmation_call(PATIENT, from_=OURS)
        with pytest.raises(BadRequest):
            await client.start_confirmation_call(PATIENT, from_=OURS, twiml="<Response/>", twiml_url="https://x.example/t")
    assert script.requests == []


async def test_get_message_and_check() -> None:
    script = Script(
        httpx.Response(200, json=message_json("undelivered", error_code=30006, body="PHI", date_created="Thu, 24 Aug 2023 05:01:45 +0000")),
        httpx.Response(200, json={"sid": AC, "friendly_name": "Clinic", "status": "active", "type": "Full", "auth_token": TOKEN}),
    )
    async with script.client() as client:
        info = await client.get_message(SM)
        account = await client.check()
    assert info.status == "undelivered" and info.error_code == 30006
    assert info.error_title is not None and "(30006)" in info.error_title
    assert info.date_created is not None and info.date_created.year == 2023
    assert "PHI" not in repr(info)
    assert account.friendly_name == "Clinic" and TOKEN not in repr(account)
    assert script.requests[1].url.path == f"/2010-04-01/Accounts/{AC}.json"


# --------------------------------------------------------------------------- local validation (no request sent)
@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": PATIENT, "body": "hi"}, 21603),
        ({"to": PATIENT, "body": "   ", "from_": OURS}, 21602),
        ({"to": NO_CALLER_ID, "body": "hi", "from_": OURS}, 21211),
        ({"to": "not a number", "body": "hi", "from_": OURS}, 21211),
        ({"to": PATIENT, "body": "hi", "from_": "12"}, 21212),
        ({"to": PATIENT, "body": "hi", "messaging_service_sid": "MG123"}, 21705),
        ({"to": PATIENT, "body": "hi", "from_": OURS, "status_callback": "ftp://x"}, 21609),
        ({"to": PATIENT, "body": "hi", "from_": OURS, "status_callback": "http://[::1"}, 21609),
    ],
)
async def test_local_validation(kwargs: dict[str, object], code: int) -> None:
    script = Script(httpx.Response(201, json=message_json()))
    async with script.client() as client:
        with pytest.raises(TwilioBadRequest) as info:
            await client.send_sms(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == code and f"({code})" in info.value.title
    assert script.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"account_sid": "AC123", "auth_token": TOKEN},
        {"account_sid": AC},
        {"account_sid": AC, "auth_token": "   "},
        {"account_sid": AC, "api_key": "SKnope", "api_secret": KEY_SECRET},
        {"account_sid": AC, "api_key": SK},
    ],
)
def test_constructor_refuses_bad_credentials(kwargs: dict[str, str]) -> None:
    with pytest.raises(AuthError) as info:
        TwilioClient(**kwargs)  # type: ignore[arg-type]
    assert TOKEN not in str(info.value) and KEY_SECRET not in str(info.value)
    assert "pa-tui auth set twilio" in info.value.fix


def test_base_url_must_be_http() -> None:
    with pytest.raises(BadRequest):
        TwilioClient(account_sid=AC, auth_token=TOKEN, base_url="ftp://api.twilio.com")


# --------------------------------------------------------------------------- error mapping
@pytest.mark.parametrize(
    ("status", "code", "base", "words"),
    [
        (400, 21211, BadRequest, "not a valid phone number"),
        (400, 21610, BadRequest, "opted out"),
        (400, 21606, BadRequest, "sender number"),
        (400, 21617, BadRequest, "1600"),
        (400, 99999, BadRequest, "99999"),
        (401, 20003, AuthError, "not accepted"),
        (404, 20404, NotFound, "not found"),
        (429, 20429, RateLimited, "too many"),
        (500, 20500, Unavailable, "internal error"),
        (503, 20503, Unavailable, "unavailable"),
    ],
)
async def test_error_mapping(status: int, code: int, base: type[Exception], words: str) -> None:
    script = Script(twilio_error(status, code))
    async with script.client() as client:
        with pytest.raises(TwilioError) as info:
            await client.send_sms(PATIENT, "hi", from_=OURS)
    err = info.value
    assert isinstance(err, base)
    assert err.code == code and err.status == status
    assert err.title.startswith("Twilio") and f"({code})" in err.title
    assert words in err.title.lower() or words in str(err).lower()
    assert err.fix
    assert "+14085551212" not in str(err)  # Twilio's own message repeats the number: never shown


async def test_21610_is_flagged_as_opted_out() -> None:
    script = Script(twilio_error(400, 21610))
    async with script.client() as client:
        with pytest.raises(TwilioBadRequest) as info:
            await client.send_sms(PATIENT, "hi", from_=OURS)
    assert info.value.opted_out
    assert "STOP" in info.value.title


async def test_401_without_body_is_auth_error() -> None:
    script = Script(httpx.Response(401, text="Unauthorized"))
    async with script.client() as client:
        with pytest.raises(AuthError) as info:
            await client.get_message(SM)
    assert isinstance(info.value, TwilioError) and info.value.code == 20003
    assert len(script.requests) == 1  # never retried


async def test_success_that_is_not_json_is_unavailable() -> None:
    script = Script(httpx.Response(200, text="<html>proxy login</html>"))
    async with script.client() as client:
        with pytest.raises(Unavailable):
            await client.get_message(SM)


def test_describe_code() -> None:
    assert describe_code(21211).title == "Twilio: the patient's number is not a valid phone number (21211)"
    unknown = describe_code(12345)
    assert unknown.title == "Twilio rejected the request (12345)" and "twilio.com/docs/errors/12345" in unknown.fix


# --------------------------------------------------------------------------- retries
async def test_post_is_never_retried_on_5xx() -> None:
    script = Script(twilio_error(503, 20503), httpx.Response(201, json=message_json()))
    async with script.client() as client:
        with pytest.raises(TwilioUnavailable) as info:
            await client.send_sms(PATIENT, "hi", from_=OURS)
    assert len(script.requests) == 1
    assert info.value.may_have_sent


async def test_post_is_never_retried_on_read_timeout() -> None:
    script = Script(httpx.ReadTimeout("read timed out"), httpx.Response(201, json=message_json()))
    async with script.client() as client:
        with pytest.raises(TwilioUnavailable) as info:
            await client.send_sms(PATIENT, "hi", from_=OURS)
    assert len(script.requests) == 1
    assert info.value.may_have_sent and "may or may not" in info.value.title


async def test_post_connect_error_says_nothing_was_sent() -> None:
    script = Script(httpx.ConnectError("refused"))
    async with script.client() as client:
        with pytest.raises(TwilioUnavailable) as info:
            await client.start_confirmation_call(PATIENT, from_=OURS, twiml="<Response/>")
    assert len(script.requests) == 1
    assert not info.value.may_have_sent


async def test_post_429_is_not_retried() -> None:
    script = Script(twilio_error(429, 20429), httpx.Response(201, json=message_json()))
    async with script.client() as client:
        with pytest.raises(RateLimited):
            await client.send_sms(PATIENT, "hi", from_=OURS)
    assert len(script.requests) == 1


async def test_get_is_retried_on_5xx_and_transport_errors() -> None:
    script = Script(twilio_error(503, 20503), httpx.ConnectError("refused"), httpx.Response(200, json=message_json("sent")))
    async with script.client() as client:
        info = await client.get_message(SM)
    assert info.status == "sent" and len(script.requests) == 3


async def test_get_retries_give_up() -> None:
    script = Script(twilio_error(500, 20500))
    async with script.client(retries=2) as client:
        with pytest.raises(Unavailable):
            await client.get_call(CA)
    assert len(script.requests) == 2


async def test_get_waits_out_short_retry_after() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "0"}, json={"code": 20429, "message": "Too Many Requests", "status": 429})
    script = Script(limited, httpx.Response(200, json={"sid": CA, "status": "completed", "duration": "17"}))
    async with script.client() as client:
        call = await client.get_call(CA)
    assert call.status == "completed" and call.duration == 17 and len(script.requests) == 2


async def test_get_long_retry_after_goes_back_to_caller() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "120"}, json={"code": 20429, "message": "Too Many Requests", "status": 429})
    script = Script(limited)
    async with script.client() as client:
        with pytest.raises(RateLimited) as info:
            await client.get_message(SM)
    assert info.value.retry_after == 120 and len(script.requests) == 1


async def test_bad_sids_are_refused_locally() -> None:
    script = Script(httpx.Response(200, json=message_json()))
    async with script.client() as client:
        with pytest.raises(BadRequest):
            await client.get_message("../../Calls")
        with pytest.raises(BadRequest):
            await client.get_call(SM)
    assert script.requests == []


# --------------------------------------------------------------------------- secrets
async def test_secrets_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    script = Script(
        twilio_error(401, 20003, "Authenticate"),
        httpx.ConnectError(f"failed https://{AC}:{TOKEN}@api.twilio.test"),
        twilio_error(400, 21211),
    )
    errors: list[BaseException] = []
    for kwargs in ({"auth_token": TOKEN}, {"auth_token": None, "api_key": SK, "api_secret": KEY_SECRET}):
        async with script.client(**kwargs) as client:
            text = repr(client) + str(vars(client)) + repr(client._http.auth)
            for coro in (client.check(), client.send_sms(PATIENT, "hi", from_=OURS), client.send_sms(PATIENT, "hi", from_=OURS)):
                try:
                    await coro
                except TwilioError as exc:
                    errors.append(exc)
            for secret in (TOKEN, KEY_SECRET):
                assert secret not in text
    assert errors
    for exc in errors:
        chain = [exc, exc.__cause__, exc.__context__]
        rendered = " ".join(f"{e!r} {e!s}" for e in chain if e is not None)
        assert TOKEN not in rendered and KEY_SECRET not in rendered
        assert "+14085551212" not in rendered
    assert TOKEN not in caplog.text and KEY_SECRET not in caplog.text
    assert "+14085551212" not in caplog.text


# --------------------------------------------------------------------------- Messaging
async def test_twilio_messaging_implements_protocol() -> None:
    script = Script(httpx.Response(201, json=message_json()))
    messaging = TwilioMessaging(script.client(), OURS, "https://pa.example.org/")
    assert isinstance(messaging, Messaging)
    sid = await messaging.send_sms(PATIENT, "Reminder")
    assert sid == SM
    form = parse_qs(script.requests[0].content.decode())
    assert form["From"] == [OURS]
    assert form["StatusCallback"] == ["https://pa.example.org/twilio/status"]
    await messaging.send_sms(PATIENT, "Reminder", status_callback="https://other.example/cb")
    assert parse_qs(script.requests[1].content.decode())["StatusCallback"] == ["https://other.example/cb"]
    await messaging.aclose()
    assert messaging.client._http.is_closed
    assert TOKEN not in repr(messaging)


async def test_twilio_messaging_without_callback_base_and_with_service() -> None:
    script = Script(httpx.Response(201, json=message_json("accepted")))
    messaging = TwilioMessaging(script.client(), None, messaging_service_sid="MG" + "b" * 32)
    await messaging.send_sms(PATIENT, "Reminder")
    form = parse_qs(script.requests[0].content.decode())
    assert "StatusCallback" not in form and "From" not in form
    await messaging.aclose()
    with pytest.raises(ValueError):
        TwilioMessaging(script.client(), None)
