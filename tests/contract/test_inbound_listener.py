"""The inbound listener over real loopback HTTP: uvicorn on port 0 inside the test's own loop.

Dialpad webhooks (signed JWTs), Twilio callbacks (X-Twilio-Signature), 8x8
caller-info pops, ``pa-tui pop`` and the hardening around them. Nothing here
reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pa_tui.backends.inbound import (
    APP_CONFIRM_PATH,
    CALL_STATUS_PATH,
    DIALPAD_EVENTS_PATH,
    INBOUND_SMS_PATH,
    STATUS_CALLBACK_PATH,
    AgentStatusEvent,
    CallEvent,
    CallStatusUpdate,
    ConfirmationDigits,
    ConsoleNotRunning,
    DeliveryStatus,
    InboundError,
    InboundListener,
    InboundSms,
    PopError,
    PopRequested,
    read_pop_endpoint,
    send_pop,
)
from pa_tui.backends.twilio.signature import SIGNATURE_HEADER, compute_signature
from pa_tui.domain.phones import NoCallerId, PhoneNumber

DIALPAD_SECRET = "dialpad-webhook-secret-0123456789abcdef"
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
MESSAGE_SID = "SM" + "a" * 32
CALL_SID = "CA" + "b" * 32
PATIENT = "+14085551212"
CLINIC = "+18005550100"

MakeListener = Callable[..., Awaitable[InboundListener]]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _private_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default endpoint file must never land in the developer's real /run/user directory."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))


@pytest.fixture
async def make_listener(tmp_path: Path) -> AsyncIterator[MakeListener]:
    started: list[InboundListener] = []

    async def make(**kwargs: Any) -> InboundListener:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("dialpad_secret", DIALPAD_SECRET)
        kwargs.setdefault("twilio_auth_token", TWILIO_TOKEN)
        kwargs.setdefault("endpoint_file", tmp_path / f"pop-{len(started)}.json")
        listener = InboundListener(**kwargs)
        await listener.start()
        started.append(listener)
        return listener

    yield make
    for listener in started:
        await listener.stop()


@pytest.fixture
async def listener(make_listener: MakeListener) -> InboundListener:
    return await make_listener()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Plain http to loopback only; verify=False just skips building a CA bundle per test.
    async with httpx.AsyncClient(timeout=5.0, trust_env=False, verify=False) as http:
        yield http


# --------------------------------------------------------------------------- helpers
def drain(listener: InboundListener) -> list[Any]:
    facts = []
    while not listener.queue.empty():
        facts.append(listener.queue.get_nowait())
    return facts


def dialpad_token(payload: dict[str, Any] | None = None, secret: str = DIALPAD_SECRET, **claims: Any) -> str:
    body = {
        "call_id": 6021010101010101,
        "entry_point_call_id": 6021010101010101,
        "state": "ringing",
        "direction": "inbound",
        "external_number": PATIENT,
        "internal_number": CLINIC,
        "event_timestamp": int(time.time() * 1000),
    }
    if payload is not None:
        body = payload
    return jwt.encode({**body, **claims}, secret, algorithm="HS256")


async def post_dialpad(
    client: httpx.AsyncClient, listener: InboundListener, body: str | bytes, content_type: str = "application/jwt"
) -> httpx.Response:
    return await client.post(listener.url + DIALPAD_EVENTS_PATH, content=body, headers={"Content-Type": content_type})


def status_params(**over: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": CLINIC,
        "MessageSid": MESSAGE_SID,
        "MessageStatus": "delivered",
        "SmsSid": MESSAGE_SID,
        "SmsStatus": "delivered",
        "To": PATIENT,
        **over,
    }


def sms_params(**over: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "Body": "C",
        "From": PATIENT,
        "MessageSid": "SM" + "c" * 32,
        "NumMedia": "0",
        "SmsMessageSid": "SM" + "c" * 32,
        "SmsSid": "SM" + "c" * 32,
        "SmsStatus": "received",
        "To": CLINIC,
        **over,
    }


def call_params(**over: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": CALL_SID,
        "CallStatus": "in-progress",
        "Direction": "outbound-api",
        "From": CLINIC,
        "To": PATIENT,
        **over,
    }


async def post_twilio(
    client: httpx.AsyncClient,
    listener: InboundListener,
    path: str,
    params: dict[str, str],
    *,
    sign_url: str | None = None,
    sign_params: dict[str, str] | None = None,
    token: str = TWILIO_TOKEN,
    signed: bool = True,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    url = listener.url + path
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    if signed:
        hdrs[SIGNATURE_HEADER] = compute_signature(sign_url or url, sign_params or params, token)
    return await client.post(url, content=urlencode(params).encode(), headers=hdrs)


async def raw_request(listener: InboundListener, data: bytes, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """Send bytes as they are; the status code of the answer (``None`` if the server just closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        writer.write(data)
        await writer.drain()
        chunks = []
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    raw = b"".join(chunks)
    if not raw.startswith(b"HTTP/1.1 "):
        return None, raw
    return int(raw.split(b" ", 2)[1]), raw


# --------------------------------------------------------------------------- health
async def test_healthz_says_ok_and_nothing_else(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await client.get(listener.url + "/healthz")
    assert r.status_code == 200
    assert r.text.strip() == "ok"
    assert "server" not in r.headers
    assert r.headers["cache-control"] == "no-store"
    assert listener.url.startswith("http://127.0.0.1:")


# --------------------------------------------------------------------------- Dialpad
async def test_dialpad_signed_call_event_is_emitted(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await post_dialpad(client, listener, dialpad_token())
    assert r.status_code == 200, r.text
    (fact,) = drain(listener)
    assert isinstance(fact, CallEvent)
    assert fact.call_id == "6021010101010101"
    assert fact.state.value == "ringing"
    assert isinstance(fact.external_number, PhoneNumber) and fact.external_number.e164 == PATIENT


async def test_dialpad_agent_status_event(listener: InboundListener, client: httpx.AsyncClient) -> None:
    token = dialpad_token({"target": {"id": 5001, "type": "user"}, "on_duty_status": "available",
                           "call_center_ids": [77], "event_timestamp": int(time.time() * 1000)})
    r = await post_dialpad(client, listener, token, content_type="text/plain")
    assert r.status_code == 200, r.text
    (fact,) = drain(listener)
    assert isinstance(fact, AgentStatusEvent)
    assert fact.agent_id == "5001"
    assert fact.call_center_ids == ("77",)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(dialpad_token(secret="someone-elses-secret-0123456789abcdef"), id="forged"),
        pytest.param(json.dumps({"call_id": 1, "state": "ringing"}), id="unsigned-json"),
        pytest.param(jwt.encode({"call_id": 1, "state": "ringing"}, None, algorithm="none"), id="alg-none"),
        pytest.param(dialpad_token(exp=int(time.time()) - 3600), id="expired"),
    ],
)
async def test_dialpad_unsigned_or_forged_is_401_and_dropped(
    listener: InboundListener, client: httpx.AsyncClient, body: str
) -> None:
    r = await post_dialpad(client, listener, body, content_type="application/json")
    assert r.status_code == 401
    assert DIALPAD_SECRET not in r.text
    assert drain(listener) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("this is not a jwt", "not-jwt"),
        ("", "empty body"),
        (dialpad_token({"state": "ringing", "direction": "inbound", "target": {"bad": 1}}), "missing-id"),
    ],
)
async def test_dialpad_malformed_is_400_with_a_specific_message(
    listener: InboundListener, client: httpx.AsyncClient, body: str, reason: str
) -> None:
    r = await post_dialpad(client, listener, body)
    assert r.status_code == 400
    assert "malformed Dialpad event" in r.text and reason in r.text
    assert drain(listener) == []


async def test_dialpad_event_of_another_kind_is_acknowledged_and_ignored(
    listener: InboundListener, client: httpx.AsyncClient
) -> None:
    r = await post_dialpad(client, listener, dialpad_token({"sms_id": 1, "text": "hi"}))
    assert r.status_code == 200 and "ignored" in r.text
    assert drain(listener) == []


async def test_dialpad_replayed_token_is_not_emitted_twice(
    listener: InboundListener, client: httpx.AsyncClient
) -> None:
    token = dialpad_token(exp=int(time.time()) + 300)
    assert (await post_dialpad(client, listener, token)).status_code == 200
    second = await post_dialpad(client, listener, token)
    assert second.status_code == 200 and "duplicate" in second.text
    assert len(drain(listener)) == 1

    # Same jti, different token (re-signed with a new iat): still the same event.
    a = dialpad_token(jti="evt-42", iat=int(time.time()) - 5)
    b = dialpad_token(jti="evt-42", iat=int(time.time()))
    assert a != b
    assert (await post_dialpad(client, listener, a)).status_code == 200
    assert (await post_dialpad(client, listener, b)).status_code == 200
    assert len(drain(listener)) == 1


async def test_dialpad_without_a_secret_is_503_saying_how_to_set_it(
    make_listener: MakeListener, client: httpx.AsyncClient
) -> None:
    listener = await make_listener(dialpad_secret=None)
    r = await post_dialpad(client, listener, dialpad_token())
    assert r.status_code == 503
    assert "webhook secret not set (`pa-tui auth set dialpad-webhook`)" in r.text
    assert drain(listener) == []


async def test_dialpad_secret_is_read_from_the_environment_by_default(
    make_listener: MakeListener, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pa_tui.backends.inbound import FROM_SECRETS

    monkeypatch.setenv("PA_TUI_DIALPAD_WEBHOOK_SECRET", DIALPAD_SECRET)
    listener = await make_listener(dialpad_secret=FROM_SECRETS, twilio_auth_token=FROM_SECRETS)
    assert (await post_dialpad(client, listener, dialpad_token())).status_code == 200
    r = await post_twilio(client, listener, STATUS_CALLBACK_PATH, status_params())
    assert r.status_code == 503 and "pa-tui auth set twilio" in r.text


async def test_dialpad_wrong_content_type_is_415(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await post_dialpad(client, listener, dialpad_token(), content_type="multipart/form-data; boundary=x")
    assert r.status_code == 415
    assert drain(listener) == []


# --------------------------------------------------------------------------- Twilio
async def test_twilio_status_callback_signed_for_the_request_url(
    listener: InboundListener, client: httpx.AsyncClient
) -> None:
    r = await post_twilio(client, listener, STATUS_CALLBACK_PATH, status_params())
    assert r.status_code == 200, r.text
    (fact,) = drain(listener)
    assert isinstance(fact, DeliveryStatus)
    assert fact.message_sid == MESSAGE_SID and fact.delivered


async def test_twilio_signature_without_the_port_is_accepted(
    listener: InboundListener, client: httpx.AsyncClient
) -> None:
    portless = f"http://127.0.0.1{STATUS_CALLBACK_PATH}"
    r = await post_twilio(client, listener, STATUS_CALLBACK_PATH, status_params(), sign_url=portless)
    assert r.status_code == 200, r.text
    assert len(drain(listener)) == 1


@pytest.mark.parametrize("case", ["tampered", "unsigned", "wrong-token", "other-path"])
async def test_twilio_bad_signatures_are_403_and_not_processed(
    listener: InboundListener, client: httpx.AsyncClient, case: str
) -> None:
    params = status_params()
    kwargs: dict[str, Any] = {}
    if case == "tampered":
        kwargs["sign_params"] = params
        params = status_params(MessageStatus="failed")
    elif case == "unsigned":
        kwargs["signed"] = False
    elif case == "wrong-token":
        kwargs["token"] = "f" * 32
    else:
        kwargs["sign_url"] = listener.url + INBOUND_SMS_PATH
    r = await post_twilio(client, listener, STATUS_CALLBACK_PATH, params, **kwargs)
    assert r.status_code == 403
    assert drain(listener) == []


async def test_twilio_inbound_sms_answers_empty_twiml(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await post_twilio(client, listener, INBOUND_SMS_PATH, sms_params(Body="Confirm!"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert r.text.endswith("<Response/>")
    (fact,) = drain(listener)
    assert isinstance(fact, InboundSms)
    assert fact.keyword == "CONFIRM"
    assert fact.from_number is not None and fact.from_number.e164 == PATIENT


async def test_twilio_replayed_request_is_acknowledged_but_not_emitted_twice(
    listener: InboundListener, client: httpx.AsyncClient
) -> None:
    for _ in range(3):
        r = await post_twilio(client, listener, INBOUND_SMS_PATH, sms_params())
        assert r.status_code == 200 and r.text.endswith("<Response/>")
    assert len(drain(listener)) == 1
    # The next status of the same message is news.
    await post_twilio(client, listener, STATUS_CALLBACK_PATH, status_params(MessageStatus="sent", SmsStatus="sent"))
    await post_twilio(client, listener, STATUS_CALLBACK_PATH, status_params())
    await post_twilio(client, listener, STATUS_CALLBACK_PATH, status_params())
    assert [f.status.value for f in drain(listener)] == ["sent", "delivered"]


async def test_twilio_call_status(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await post_twilio(client, listener, CALL_STATUS_PATH, call_params(CallStatus="completed", CallDuration="42"))
    assert r.status_code == 200
    (fact,) = drain(listener)
    assert isinstance(fact, CallStatusUpdate)
    assert fact.call_sid == CALL_SID and fact.is_final and fact.duration == 42


async def test_twilio_signed_but_malformed_is_400(listener: InboundListener, client: httpx.AsyncClient) -> None:
    params = status_params()
    del params["MessageSid"], params["SmsSid"]
    r = await post_twilio(client, listener, STATUS_CALLBACK_PATH, params)
    assert r.status_code == 400 and "MessageSid" in r.text
    assert PATIENT not in r.text
    assert drain(listener) == []


async def test_twilio_wrong_content_type_is_415(listener: InboundListener, client: httpx.AsyncClient) -> None:
    url = listener.url + INBOUND_SMS_PATH
    signature = compute_signature(url, None, TWILIO_TOKEN)
    r = await client.post(url, json=sms_params(), headers={SIGNATURE_HEADER: signature})
    assert r.status_code == 415
    assert drain(listener) == []


async def test_app_confirm_gathers_one_digit_then_thanks(listener: InboundListener, client: httpx.AsyncClient) -> None:
    first = await post_twilio(client, listener, APP_CONFIRM_PATH, call_params())
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/xml")
    assert '<Gather numDigits="1" action="/app_confirm"' in first.text
    assert "press 1 to confirm" in first.text.lower() and "press 2 to reschedule" in first.text.lower()
    assert drain(listener) == []

    second = await post_twilio(client, listener, APP_CONFIRM_PATH, call_params(Digits="1"))
    assert second.status_code == 200
    assert "<Say>Thank you" in second.text and "<Gather" not in second.text
    (fact,) = drain(listener)
    assert isinstance(fact, ConfirmationDigits)
    assert (fact.call_sid, fact.digits, fact.choice) == (CALL_SID, "1", "confirm")

    # Twilio retrying the same request: same answer, no second fact.
    again = await post_twilio(client, listener, APP_CONFIRM_PATH, call_params(Digits="1"))
    assert again.text == second.text
    assert drain(listener) == []


async def test_app_confirm_reprompts_on_a_key_that_is_no_option(
    listener: InboundListener, client: httpx.AsyncClient
) -> None:
    r = await post_twilio(client, listener, APP_CONFIRM_PATH, call_params(Digits="9"))
    assert r.status_code == 200 and "<Gather" in r.text and "not one of the options" in r.text
    assert drain(listener) == []
    r = await post_twilio(client, listener, APP_CONFIRM_PATH, call_params(Digits="2"))
    (fact,) = drain(listener)
    assert fact.choice == "reschedule"


async def test_app_confirm_by_get_is_signed_over_the_query(
    listener: InboundListener, client: httpx.AsyncClient
) -> None:
    url = f"{listener.url}{APP_CONFIRM_PATH}?{urlencode(call_params(Digits='2'))}"
    r = await client.get(url, headers={SIGNATURE_HEADER: compute_signature(url, None, TWILIO_TOKEN)})
    assert r.status_code == 200 and "Thank you" in r.text
    assert [f.digits for f in drain(listener)] == ["2"]
    r = await client.get(url.replace("Digits=2", "Digits=1"),
                         headers={SIGNATURE_HEADER: compute_signature(url, None, TWILIO_TOKEN)})
    assert r.status_code == 403
    assert drain(listener) == []


async def test_app_confirm_without_call_sid_is_400(listener: InboundListener, client: httpx.AsyncClient) -> None:
    params = call_params(Digits="1")
    del params["CallSid"]
    r = await post_twilio(client, listener, APP_CONFIRM_PATH, params)
    assert r.status_code == 400
    assert drain(listener) == []


async def test_twilio_behind_a_tls_proxy_is_checked_against_public_base_url(
    make_listener: MakeListener, client: httpx.AsyncClient
) -> None:
    listener = await make_listener(public_base_url="https://pa.clinic.example/")
    public = "https://pa.clinic.example" + INBOUND_SMS_PATH
    r = await post_twilio(client, listener, INBOUND_SMS_PATH, sms_params(), sign_url=public)
    assert r.status_code == 200, r.text
    # Twilio sometimes signs with the default port spelled out.
    r = await post_twilio(client, listener, STATUS_CALLBACK_PATH, status_params(),
                          sign_url="https://pa.clinic.example:443" + STATUS_CALLBACK_PATH)
    assert r.status_code == 200, r.text
    # The loopback URL is not what Twilio was configured with.
    r = await post_twilio(client, listener, CALL_STATUS_PATH, call_params())
    assert r.status_code == 403
    assert len(drain(listener)) == 2


async def test_app_confirm_behind_a_path_prefix_names_the_full_action(
    make_listener: MakeListener, client: httpx.AsyncClient
) -> None:
    listener = await make_listener(public_base_url="https://clinic.example/pa-tui")
    r = await post_twilio(client, listener, APP_CONFIRM_PATH, call_params(),
                          sign_url="https://clinic.example/pa-tui" + APP_CONFIRM_PATH)
    assert r.status_code == 200
    assert 'action="https://clinic.example/pa-tui/app_confirm"' in r.text


async def test_forwarded_headers_count_only_with_trust_proxy(
    make_listener: MakeListener, client: httpx.AsyncClient
) -> None:
    public = "https://pa.clinic.example" + STATUS_CALLBACK_PATH
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pa.clinic.example"}
    plain = await make_listener()
    r = await post_twilio(client, plain, STATUS_CALLBACK_PATH, status_params(), sign_url=public, headers=forwarded)
    assert r.status_code == 403
    trusting = await make_listener(trust_proxy=True)
    r = await post_twilio(client, trusting, STATUS_CALLBACK_PATH, status_params(), sign_url=public, headers=forwarded)
    assert r.status_code == 200, r.text
    assert drain(plain) == [] and len(drain(trusting)) == 1


# --------------------------------------------------------------------------- 8x8 caller-info pop
async def test_8x8_pop_accepts_the_usual_formats(listener: InboundListener, client: httpx.AsyncClient) -> None:
    for ani in ("4085551212", "+14085551212", "(408) 555-1212", "14085551212", "408.555.1212", "tel:+1-408-555-1212"):
        r = await client.get(listener.url + "/", params={"action": "start", "ani": ani, "dnis": "8005550100"})
        assert r.status_code == 200, ani
        assert r.headers["content-type"].startswith("text/html")
        assert "Popped in pa-tui" in r.text
        (fact,) = drain(listener)
        assert isinstance(fact, PopRequested)
        assert fact.source == "8x8"
        assert isinstance(fact.ani, PhoneNumber) and fact.ani.e164 == PATIENT, ani
        assert fact.dnis is not None and fact.dnis.e164 == CLINIC
        assert "4085551212" not in repr(fact) and "555" not in repr(fact)


async def test_8x8_pop_of_a_withheld_number(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await client.get(listener.url + "/?action=start&ani=anonymous")
    assert r.status_code == 200
    (fact,) = drain(listener)
    assert isinstance(fact.ani, NoCallerId) and fact.dnis is None


_BAD_POPS = [
    ("action=start", "ani parameter"),
    ("action=start&ani=", None),  # empty: withheld, see below
    ("action=start&ani=hello", "no digits"),
    ("action=start&ani=12", "too few digits"),
    ("action=start&ani=%3Cscript%3E", "not digits"),
    ("action=start&ani=" + "9" * 80, "too long"),
    ("action=stop&ani=4085551212", "Unknown action"),
    ("ani=4085551212", "action parameter is missing"),
    ("", "action parameter is missing"),
]


async def test_8x8_pop_without_usable_input_is_a_clear_400(
    listener: InboundListener, client: httpx.AsyncClient
) -> None:
    for query, says in _BAD_POPS:
        r = await client.get(listener.url + "/" + (f"?{query}" if query else ""))
        if says is None:
            assert r.status_code == 200
            assert [type(f.ani) for f in drain(listener)] == [NoCallerId]
            continue
        assert r.status_code == 400, query
        assert r.headers["content-type"].startswith("text/html")
        assert says in r.text, (query, r.text)
        assert "hello" not in r.text and "<script>" not in r.text
        assert drain(listener) == []


async def test_8x8_head_request_pops_nothing(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await client.head(listener.url + "/?action=start&ani=4085551212")
    assert r.status_code == 200
    assert drain(listener) == []


async def test_8x8_pop_off_loopback_needs_the_pop_token(make_listener: MakeListener, client: httpx.AsyncClient) -> None:
    assert InboundListener(host="0.0.0.0", endpoint_file=False).pop_token_required
    assert not InboundListener(host="127.0.0.1", endpoint_file=False).pop_token_required
    # Served on loopback here, but configured as if reachable from the network.
    listener = await make_listener(require_pop_token=True, pop_token="pop-token-0123456789")
    query = "/?action=start&ani=4085551212"
    assert (await client.get(listener.url + query)).status_code == 403
    assert (await client.get(listener.url + query + "&pop_token=wrong")).status_code == 403
    assert drain(listener) == []
    r = await client.get(listener.url + query + "&pop_token=pop-token-0123456789")
    assert r.status_code == 200
    assert len(drain(listener)) == 1


async def test_8x8_pop_off_loopback_without_a_configured_token_is_refused(
    make_listener: MakeListener, client: httpx.AsyncClient
) -> None:
    listener = await make_listener(require_pop_token=True)
    r = await client.get(listener.url + "/?action=start&ani=4085551212&pop_token=")
    assert r.status_code == 403 and "none is configured" in r.text
    # A request relayed by a local reverse proxy is from the outside world too.
    plain = await make_listener()
    r = await client.get(plain.url + "/?action=start&ani=4085551212", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 403
    assert drain(listener) == [] and drain(plain) == []


# --------------------------------------------------------------------------- pa-tui pop
async def test_send_pop_round_trip(listener: InboundListener) -> None:
    assert listener.endpoint_path is not None and listener.endpoint_path.exists()
    assert listener.endpoint_path.stat().st_mode & 0o777 == 0o600
    await send_pop("(408) 555-1212", "8005550100", endpoint_file=listener.endpoint_path)
    (fact,) = drain(listener)
    assert isinstance(fact, PopRequested) and fact.source == "cli"
    assert isinstance(fact.ani, PhoneNumber) and fact.ani.e164 == PATIENT
    assert fact.dnis is not None and fact.dnis.e164 == CLINIC


async def test_send_pop_finds_the_console_through_the_default_location(make_listener: MakeListener) -> None:
    listener = await make_listener(endpoint_file=True)
    assert listener.endpoint_path is not None
    assert read_pop_endpoint().url == listener.url
    await send_pop("+14085551212")
    assert [f.source for f in drain(listener)] == ["cli"]
    await listener.stop()
    assert not listener.endpoint_path or not listener.endpoint_path.exists()
    with pytest.raises(ConsoleNotRunning, match="no pa-tui console is running for this user"):
        await send_pop("+14085551212")


async def test_pop_with_a_wrong_token_is_401(listener: InboundListener, client: httpx.AsyncClient) -> None:
    for auth in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {listener.cli_token}"}):
        r = await client.post(listener.url + "/pop", json={"ani": PATIENT}, headers=auth)
        assert r.status_code == 401
    assert drain(listener) == []
    # send_pop reports it clearly.
    assert listener.endpoint_path is not None
    data = json.loads(listener.endpoint_path.read_text())
    data["token"] = "stale-token"
    listener.endpoint_path.write_text(json.dumps(data))
    with pytest.raises(PopError, match="token does not match"):
        await send_pop(PATIENT, endpoint_file=listener.endpoint_path)
    assert drain(listener) == []


async def test_pop_rejects_bad_input_clearly(listener: InboundListener, client: httpx.AsyncClient) -> None:
    with pytest.raises(PopError, match="ani is not a usable phone number") as info:
        await send_pop("call me maybe", endpoint_file=listener.endpoint_path)
    assert info.value.status == 400
    auth = {"Authorization": f"Bearer {listener.cli_token}"}
    r = await client.post(listener.url + "/pop", content=b"ani=1", headers={**auth, "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = await client.post(listener.url + "/pop", content=b"{", headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400
    r = await client.post(listener.url + "/pop", json={"dnis": CLINIC}, headers=auth)
    assert r.status_code == 400
    assert drain(listener) == []


async def test_send_pop_with_no_console_running(tmp_path: Path) -> None:
    with pytest.raises(ConsoleNotRunning, match="no pa-tui console is running for this user"):
        await send_pop(PATIENT, endpoint_file=tmp_path / "nowhere.json")
    with pytest.raises(ConsoleNotRunning):
        await send_pop(PATIENT)  # the default locations are empty too
    # A file left by a console that died without cleaning up: nobody listens at its URL.
    from pa_tui.backends.inbound import write_pop_endpoint

    stale = write_pop_endpoint("http://127.0.0.1:9", "token", tmp_path / "stale.json")
    with pytest.raises(ConsoleNotRunning):
        await send_pop(PATIENT, endpoint_file=stale)


# --------------------------------------------------------------------------- hardening
async def test_oversized_body_is_413(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await client.post(listener.url + INBOUND_SMS_PATH, content=b"a=" + b"x" * 70_000,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    assert drain(listener) == []


async def test_oversized_chunked_body_is_413(listener: InboundListener, client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield b"x" * 8192

    r = await client.post(listener.url + DIALPAD_EVENTS_PATH, content=chunks(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 413
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert drain(listener) == []


async def test_oversized_content_length_is_refused_before_the_body_is_sent(listener: InboundListener) -> None:
    head = (
        f"POST {DIALPAD_EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        "Content-Length: 10000000\r\n\r\n"
    ).encode()
    status, raw = await raw_request(listener, head)
    assert status == 413
    assert b"connection: close" in raw.lower()


_TRICKS = [
    "GET /..%2fhealthz",
    "GET /twilio/..%2f..%2fhealthz",
    "GET //healthz",
    "GET /healthz/",
    "GET /./healthz",
    "GET /HEALTHZ",
    "GET /%2e%2e/healthz",
    "GET /nope",
    "POST /twilio/%73ms",
    "POST /twilio//sms",
    "POST /twilio/sms/",
    "POST /dialpad/events/..",
    "POST /dialpad/events/%2e%2e/",
    "POST //pop",
]


async def test_path_tricks_are_404(listener: InboundListener) -> None:
    for trick in _TRICKS:
        request = f"{trick} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        status, _ = await raw_request(listener, request.encode())
        assert status == 404, trick
    assert (await raw_request(listener, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))[0] == 200


async def test_wrong_method_is_405(listener: InboundListener, client: httpx.AsyncClient) -> None:
    r = await client.get(listener.url + INBOUND_SMS_PATH)
    assert r.status_code == 405


async def test_slow_clients_are_cut_off(make_listener: MakeListener) -> None:
    listener = await make_listener(header_timeout=0.4, body_timeout=0.4)
    started = time.monotonic()
    status, _ = await raw_request(listener, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", timeout=5)
    assert status is None  # closed without an answer: headers never completed
    assert time.monotonic() - started < 3
    head = (
        f"POST {INBOUND_SMS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nBody=hi"
    ).encode()
    status, _ = await raw_request(listener, head, timeout=5)
    assert status == 408
    assert drain(listener) == []


async def test_bounded_queue_drops_facts_without_blocking_responses(
    make_listener: MakeListener, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    listener = await make_listener(queue_size=2)
    caplog.set_level(logging.INFO, logger="pa_tui")
    for ani in ("4085551212", "4085551213", "4085551214", "4085551215"):
        r = await client.get(listener.url + "/", params={"action": "start", "ani": ani})
        assert r.status_code == 200
    assert len(drain(listener)) == 2
    assert listener.dropped == 2
    assert any("dropped a pop fact" in rec.getMessage() for rec in caplog.records)


async def test_events_iterator_yields_then_ends_at_stop(listener: InboundListener, client: httpx.AsyncClient) -> None:
    seen: list[Any] = []

    async def consume() -> None:
        async for fact in listener.events():
            seen.append(fact)

    consumer = asyncio.create_task(consume())
    await client.get(listener.url + "/?action=start&ani=4085551212")
    await post_twilio(client, listener, INBOUND_SMS_PATH, sms_params())
    await listener.stop()
    await asyncio.wait_for(consumer, 2)
    assert [type(f) for f in seen] == [PopRequested, InboundSms]
    assert not listener.running


async def test_serve_runs_until_cancelled_and_cleans_up(tmp_path: Path, client: httpx.AsyncClient) -> None:
    listener = InboundListener(port=0, endpoint_file=tmp_path / "pop.json", dialpad_secret=None, twilio_auth_token=None)
    task = asyncio.create_task(listener.serve())
    for _ in range(200):
        if listener.url and listener.running:
            break
        await asyncio.sleep(0.01)
    assert (await client.get(listener.url + "/healthz")).status_code == 200
    assert (tmp_path / "pop.json").exists()
    with pytest.raises(RuntimeError, match="already running"):
        await listener.start()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not listener.running and not (tmp_path / "pop.json").exists()
    assert [f async for f in listener.events()] == []
    # It can start again, with a fresh stream of facts.
    async with listener:
        await client.get(listener.url + "/?action=start&ani=4085551212")
        assert [f.source for f in drain(listener)] == ["8x8"]


async def test_a_taken_port_is_a_clear_error(listener: InboundListener) -> None:
    other = InboundListener(port=listener.port, endpoint_file=False, dialpad_secret=None, twilio_auth_token=None)
    with pytest.raises(InboundError, match="cannot listen on 127.0.0.1"):
        await other.start()


async def test_logs_carry_ids_and_codes_only(
    listener: InboundListener, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await client.get(listener.url + "/?action=start&ani=4085551212")
    await client.get(listener.url + "/?action=start&ani=hello-4085551212")
    await post_twilio(client, listener, INBOUND_SMS_PATH, sms_params(Body="my secret symptoms"))
    await post_twilio(client, listener, INBOUND_SMS_PATH, sms_params(), token="f" * 32)
    await post_dialpad(client, listener, dialpad_token())
    await post_dialpad(client, listener, dialpad_token(secret="x" * 40))
    await send_pop("4085551212", endpoint_file=listener.endpoint_path)
    # The listener's own lines and uvicorn's (the test's httpx client logs its URLs; that is not ours).
    text = "\n".join(rec.getMessage() for rec in caplog.records if rec.name.startswith(("pa_tui", "uvicorn")))
    assert "inbound" in text
    for leak in ("4085551212", "408", "555", "symptoms", "hello", DIALPAD_SECRET, TWILIO_TOKEN, listener.cli_token):
        assert leak not in text, leak


async def test_listener_still_serves_after_abuse(listener: InboundListener, client: httpx.AsyncClient) -> None:
    await raw_request(listener, b"GARBAGE\r\n\r\n")
    await raw_request(listener, b"GET /..%2f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    big_header = b"X-Big: " + b"a" * 40_000 + b"\r\n"
    await raw_request(listener, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + big_header + b"\r\n")
    await raw_request(
        listener, f"POST {DIALPAD_EVENTS_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n".encode()
    )
    await post_dialpad(client, listener, "x" * 70_000)
    await post_twilio(client, listener, INBOUND_SMS_PATH, {"a": "\x00" * 100}, signed=False)
    r = await client.get(listener.url + "/healthz")
    assert r.status_code == 200
    assert (await post_dialpad(client, listener, dialpad_token())).status_code == 200
    assert len(drain(listener)) == 1


# --------------------------------------------------------------------------- fuzz
_keys = st.sampled_from(["action", "ani", "dnis", "pop_token", "", "ani[]", "x"])
_values = st.one_of(
    st.sampled_from(["start", "START", "stop", "", "anonymous", "4085551212", "+1", "tel:+1-408-555-1212", "0" * 20]),
    st.text(max_size=40),
    st.from_regex(r"[0-9+()\-. x#*]{0,30}", fullmatch=True),
)
_structured = st.lists(st.tuples(_keys, _values), max_size=6).map(lambda pairs: urlencode(pairs))
_raw = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80
).map(lambda text: quote(text, safe="=&%+;,/?:@!$'()*"))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=st.one_of(_structured, _raw))
async def test_fuzzed_pop_queries_never_500(listener: InboundListener, client: httpx.AsyncClient, query: str) -> None:
    r = await client.get(f"{listener.url}/?{query}")
    assert r.status_code in (200, 400, 403), (r.status_code, query)
    drain(listener)
