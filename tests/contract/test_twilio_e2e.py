"""End to end over loopback: TwilioClient → simulator → signed webhooks → a receiver (SimulatorHost).

Signatures are checked twice: with pa-tui's verify_signature and with Twilio's own RequestValidator.
"""

from __future__ import annotations

import pytest
from twilio_fixtures import (
    KEY_SECRET,
    LANDLINE,
    OURS,
    PATIENT,
    SK,
    TOKEN,
    UNREGISTERED,
    Received,
    TwilioEnv,
    eventually,
    twilio_env,  # noqa: F401  (fixture)
)

from pa_tui.backends.base import AuthError, BadRequest, RateLimited, Unavailable
from pa_tui.backends.twilio import (
    INBOUND_SMS_PATH,
    SIGNATURE_HEADER,
    STATUS_CALLBACK_PATH,
    MessageStatus,
    TwilioError,
    TwilioMessaging,
    parse_call_status,
    parse_inbound_sms,
    parse_status_callback,
    verify_signature,
)
from pa_tui.domain.phones import parse_phone

RequestValidator = pytest.importorskip("twilio.request_validator").RequestValidator


def assert_signed(hook: Received) -> None:
    signature = hook.headers[SIGNATURE_HEADER.lower()]
    params = hook.params if hook.method == "POST" else None
    assert verify_signature(hook.url, params, signature, TOKEN)
    assert RequestValidator(TOKEN).validate(hook.url, dict(hook.params) if params else {}, signature)
    assert not verify_signature(hook.url, params, signature, "another-token")
    assert hook.headers["content-type"].startswith("application/x-www-form-urlencoded") or hook.method == "GET"


async def test_send_then_signed_status_callbacks_in_order(twilio_env: TwilioEnv) -> None:
    env = twilio_env
    messaging = TwilioMessaging(env.client(), OURS, env.hook(""))
    sid = await messaging.send_sms(parse_phone(PATIENT), "Reminder: Tue 9:30 with Dr Lee. Reply C to confirm.")
    await eventually(lambda: len(env.receiver.at(STATUS_CALLBACK_PATH)) == 3)
    hooks = env.receiver.at(STATUS_CALLBACK_PATH)
    statuses = [parse_status_callback(h.form) for h in hooks]
    assert [s.status for s in statuses] == [MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.DELIVERED]
    assert {s.message_sid for s in statuses} == {sid}
    assert statuses[-1].delivered and statuses[-1].error_code is None
    assert statuses[-1].to is not None and statuses[-1].to.e164 == PATIENT
    for hook in hooks:
        assert_signed(hook)
        assert hook.headers["user-agent"].startswith("TwilioProxy")
    info = await messaging.client.get_message(sid)
    assert info.status == "delivered" and info.error_code is None
    await messaging.aclose()


async def test_fail_numbers_end_with_their_error_code(twilio_env: TwilioEnv) -> None:
    env = twilio_env
    async with env.client() as client:
        landline = await client.send_sms(parse_phone(LANDLINE), "Reminder", from_=OURS, status_callback=env.hook("/cb"))
        unregistered = await client.send_sms(parse_phone(UNREGISTERED), "Reminder", from_=OURS, status_callback=env.hook("/cb"))
        await eventually(lambda: len(env.receiver.at("/cb")) == 5)
        by_sid: dict[str, list] = {}
        for hook in env.receiver.at("/cb"):
            assert_signed(hook)
            status = parse_status_callback(hook.form)
            by_sid.setdefault(status.message_sid, []).append(status)
        assert [s.status.value for s in by_sid[landline.sid]] == ["queued", "sent", "undelivered"]
        assert by_sid[landline.sid][-1].error_code == 30006 and by_sid[landline.sid][-1].failed
        assert [s.status.value for s in by_sid[unregistered.sid]] == ["queued", "failed"]
        assert by_sid[unregistered.sid][-1].error_code == 30034
        info = await client.get_message(landline.sid)
    assert info.status == "undelivered" and info.error_code == 30006
    assert info.error_title == "Twilio: the number is a landline or cannot receive texts (30006)"


async def test_stop_reply_then_send_is_a_readable_21610(twilio_env: TwilioEnv) -> None:
    env = twilio_env
    async with env.client() as client:
        await client.send_sms(parse_phone(PATIENT), "Reminder", from_=OURS)
        result = await env.run(env.sim.reply(PATIENT, "Stop", env.hook(INBOUND_SMS_PATH)))
        assert result.status_code == 200 and result.keyword == "STOP"
        (hook,) = env.receiver.at(INBOUND_SMS_PATH)
        assert_signed(hook)
        inbound = parse_inbound_sms(hook.form)
        assert inbound.keyword == "STOP" and inbound.body == "Stop"
        assert inbound.from_number is not None and inbound.from_number.e164 == PATIENT and inbound.to == OURS
        assert hook.form["OptOutType"] == "STOP" and hook.form["AccountSid"] == env.sim.account_sid

        with pytest.raises(TwilioError) as info:
            await client.send_sms(parse_phone(PATIENT), "Another reminder", from_=OURS)
        err = info.value
        assert isinstance(err, BadRequest) and err.code == 21610 and err.opted_out
        assert str(err) == (
            "Twilio: the patient has opted out of texts from this number (they replied STOP) (21610) — "
            "Do not text this number; call the patient instead. They can reply START to opt back in."
        )
        assert PATIENT not in str(err)

        await env.run(env.sim.reply(PATIENT, "START", env.hook(INBOUND_SMS_PATH)))
        assert parse_inbound_sms(env.receiver.at(INBOUND_SMS_PATH)[-1].form).keyword == "START"
        again = await client.send_sms(parse_phone(PATIENT), "Welcome back", from_=OURS)
        assert again.status == "queued"


async def test_confirm_and_reschedule_replies_reach_the_receiver(twilio_env: TwilioEnv) -> None:
    env = twilio_env
    for body, keyword in (("c", "CONFIRM"), ("Reschedule", "RESCHEDULE"), ("Can I come Friday?", None)):
        await env.run(env.sim.reply(PATIENT, body, env.hook(INBOUND_SMS_PATH)))
        hook = env.receiver.at(INBOUND_SMS_PATH)[-1]
        assert_signed(hook)
        assert parse_inbound_sms(hook.form).keyword == keyword
    assert not env.sim.is_opted_out(PATIENT)


async def test_wrong_token_is_auth_error(twilio_env: TwilioEnv) -> None:
    env = twilio_env
    async with env.client(auth_token="not-the-token") as client:
        with pytest.raises(AuthError) as info:
            await client.send_sms(parse_phone(PATIENT), "Reminder", from_=OURS)
        with pytest.raises(AuthError):
            await client.check()
    assert info.value.code == 20003  # type: ignore[attr-defined]
    assert "not-the-token" not in str(info.value) and "pa-tui auth set twilio" in info.value.fix
    assert env.sim.messages == []


async def test_api_key_credentials_work(twilio_env: TwilioEnv) -> None:
    env = twilio_env
    async with env.client(api_key=SK, api_secret=KEY_SECRET) as client:
        account = await client.check()
        sent = await client.send_sms(parse_phone(PATIENT), "Reminder", from_=OURS)
    assert account.sid == env.sim.account_sid and account.status == "active"
    assert sent.sid.startswith("SM")


async def test_confirmation_call_fetches_twiml_and_reports_status(twilio_env: TwilioEnv) -> None:
    env = twilio_env
    async with env.client() as client:
        call = await client.start_confirmation_call(
            parse_phone(PATIENT), from_=OURS, twiml_url=env.hook("/twiml"),
            status_callback=env.hook("/call-status"), status_callback_events=("ringing", "answered", "completed"),
        )
        await eventually(lambda: len(env.receiver.at("/call-status")) == 3)
        statuses = [parse_call_status(h.form) for h in env.receiver.at("/call-status")]
        assert [s.status.value for s in statuses] == ["ringing", "in-progress", "completed"]
        assert statuses[-1].is_final and statuses[-1].call_sid == call.sid
        (twiml_fetch,) = env.receiver.at("/twiml")
        for hook in (twiml_fetch, *env.receiver.at("/call-status")):
            assert_signed(hook)
        assert twiml_fetch.form["CallSid"] == call.sid
        assert (await client.get_call(call.sid)).status == "completed"


async def test_outage_and_rate_limit_map_to_base_errors(twilio_env: TwilioEnv) -> None:
    env = twilio_env
    async with env.client(retries=2) as client:
        env.sim.down = True
        with pytest.raises(Unavailable) as down:
            await client.send_sms(parse_phone(PATIENT), "Reminder", from_=OURS)
        assert down.value.may_have_sent  # type: ignore[attr-defined]  # a 5xx on create: check before resending
        with pytest.raises(Unavailable):
            await client.check()
        env.sim.down = False
        env.sim.rate_limit, env.sim.rate_window, env.sim.retry_after = 0, 60.0, 30.0
        with pytest.raises(RateLimited) as limited:
            await client.send_sms(parse_phone(PATIENT), "Reminder", from_=OURS)
        assert limited.value.retry_after == 30.0
        env.sim.rate_limit = None
        assert (await client.check()).status == "active"
    assert env.sim.messages == []


async def test_unreachable_twilio_is_unavailable_and_nothing_sent() -> None:
    import socket

    from pa_tui.backends.twilio import TwilioClient
    from pa_tui.demo.twilio_sim import DEFAULT_ACCOUNT_SID

    with socket.socket() as probe:  # a loopback port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with TwilioClient(
        account_sid=DEFAULT_ACCOUNT_SID, auth_token=TOKEN, base_url=f"http://127.0.0.1:{port}", retries=1
    ) as client:
        with pytest.raises(Unavailable) as info:
            await client.send_sms(parse_phone(PATIENT), "Reminder", from_=OURS)
    assert info.value.may_have_sent is False  # type: ignore[attr-defined]
