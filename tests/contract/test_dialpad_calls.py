"""Console actions and live-event recovery, end to end: DialpadTelephony against the simulator on loopback.

Dial, transfer, hang up, screen pop, labels, callbacks, the transfer list; rate budgets and 429s;
an expired key; websocket expiry mid-call; a dropped stream with calls ending and starting in the
gap; duplicate frames; webhook delivery.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pa_tui.backends.base import AuthError, BadRequest, LinkStatus, RateLimited, TransferTarget
from pa_tui.backends.dialpad.client import API_KEYS_PATH, BudgetExhausted, DialpadClient
from pa_tui.backends.dialpad.events import parse_frame
from pa_tui.backends.dialpad.telephony import DialpadTelephony
from pa_tui.demo.dialpad_sim import BILLING_ID, SCHEDULING_ID
from pa_tui.demo.host import SimulatorHost
from pa_tui.domain.calls import CallBook, CallDirection, CallEvent, CallState, PartyType
from pa_tui.domain.phones import parse_phone
from tests.contract.test_dialpad_telephony import Recorder, make_telephony

CALLER = "+14155550199"
OTHER_CALLER = "+14155550166"
NEW_KEY = "rotated-dialpad-key-0123456789abcdef"


def book_of(events: list[CallEvent]) -> CallBook:
    book = CallBook()
    for event in events:
        book.apply(event)
    return book


async def listening(env, *agents: str) -> None:
    for agent in agents:
        assert await env.run(env.sim.wait_for_listener(agent, timeout=2))


# --------------------------------------------------------------------------- dialling
async def test_dial_creates_an_outbound_call_that_rings_then_connects(dialpad_env_factory) -> None:
    env = dialpad_env_factory(outbound_answer_delay=0.1)
    avery = env.agent_ids[0]
    env.sim.unreachable_numbers.add("+14155550124")
    rec = Recorder(make_telephony(env, avery))
    await rec.connected()
    await listening(env, avery)

    call_id = await rec.telephony.dial(avery, parse_phone("(415) 555-0123"), custom_data="pa-tui:ref/42")
    failed_id = await rec.telephony.dial(avery, parse_phone("+14155550124"))
    await rec.wait(lambda: any(e.call_id == call_id and e.state is CallState.CONNECTED for e in rec.calls()))
    await rec.wait(lambda: any(e.call_id == failed_id and e.state is CallState.HANGUP for e in rec.calls()))
    await rec.stop()

    book = book_of(rec.calls())
    call = book.calls[call_id]
    assert call.direction is CallDirection.OUTBOUND and call.state is CallState.CONNECTED
    assert call.ani is not None and call.ani.e164 == "+14155550123"  # the customer, as dialled
    assert call.custom_data == "pa-tui:ref/42" and call.agent is not None and call.agent.id == avery
    assert [e.state for e in rec.calls() if e.call_id == call_id] == [
        CallState.CALLING,
        CallState.RINGING,
        CallState.CONNECTED,
    ]
    failed = book.calls[failed_id]
    assert failed.is_ended and failed.connected_at is None  # rang out without anyone answering
    body = next(r.body for r in env.sim.requests if r.method == "POST" and r.path == "/api/v2/call")
    assert body == {"user_id": int(avery), "phone_number": "+14155550123", "custom_data": "pa-tui:ref/42"}


async def test_a_sixth_dial_in_a_minute_is_refused_before_sending(dialpad_env_factory, fake_clock) -> None:
    env = dialpad_env_factory(clock=fake_clock, outbound_answer_delay=None, ring_timeout=None)
    avery = env.agent_ids[0]
    telephony = DialpadTelephony(env.client(clock=fake_clock), user_id=avery)
    for n in range(5):
        await telephony.dial(avery, parse_phone(f"+1415555012{n}"))
        fake_clock.advance(1)
    with pytest.raises(RateLimited) as info:
        await telephony.dial(avery, parse_phone("+14155550129"))
    assert isinstance(info.value, BudgetExhausted) and info.value.status is None
    assert info.value.title == "Dialpad allows 5 calls a minute; try again in 55 s"
    assert "did not send" in info.value.fix
    fake_clock.advance(32)
    with pytest.raises(RateLimited) as later:
        await telephony.dial(avery, parse_phone("+14155550129"))
    assert later.value.title.endswith("try again in 23 s")
    dials = [r for r in env.sim.requests if r.path == "/api/v2/call"]
    assert len(dials) == 5 and all(r.status == 200 for r in dials)  # nothing reached Dialpad

    fake_clock.advance(23)  # the first dial's token is back, and Dialpad (same clock) agrees
    await telephony.dial(avery, parse_phone("+14155550129"))
    assert [r.status for r in env.sim.requests if r.path == "/api/v2/call"] == [200] * 6
    assert telephony.diagnostics()["budgets"]["initiate_call"]["remaining"] == 0
    await telephony.aclose()


# --------------------------------------------------------------------------- 429s and keys
async def test_a_429_storm_waits_for_retry_after_and_never_hammers(dialpad_env) -> None:
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    call_id = await dialpad_env.run(sim.ring(CALLER, user_id=avery))
    await dialpad_env.run(sim.inject_fault(429, path=f"/api/v2/call/{call_id}", method="GET", times=2, retry_after=0.25))
    async with dialpad_env.client() as client:
        info = await client.get_call(call_id)
        assert info.event.state is CallState.RINGING
        looked_up = [r for r in sim.requests if r.method == "GET"]
        assert [r.status for r in looked_up] == [429, 429, 200]
        gaps = [b.at - a.at for a, b in zip(looked_up, looked_up[1:], strict=False)]
        assert all(gap >= 0.24 for gap in gaps), gaps  # waited out each Retry-After

        # A 429 on a dial goes back to the caller (never a second dial) and closes the budget:
        await dialpad_env.run(sim.inject_fault(429, path="/api/v2/call", method="POST", retry_after=30))
        with pytest.raises(RateLimited) as first:
            await client.initiate_call(avery, "+14155550123")
        assert first.value.status == 429 and first.value.retry_after == 30
        with pytest.raises(BudgetExhausted) as second:
            await client.initiate_call(avery, "+14155550123")
        assert second.value.title == "Dialpad asked pa-tui to slow down; try again in 30 s"
        assert client.budgets()["initiate_call"].blocked_by_dialpad
    assert len([r for r in sim.requests if r.method == "POST"]) == 1  # the refused one was never sent


async def test_an_expired_key_is_a_clear_auth_error_and_the_stream_stops_without_retrying(dialpad_env) -> None:
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    rec = Recorder(make_telephony(dialpad_env, avery))
    await rec.connected()
    await dialpad_env.run(sim.expire_key())

    with pytest.raises(AuthError) as info:
        await rec.telephony.me()
    assert info.value.title == "Dialpad rejected the API key" and API_KEYS_PATH in info.value.fix

    rejected_before = sum(r.status == 401 for r in sim.requests)
    await dialpad_env.run(sim.drop_websockets())
    await asyncio.wait_for(rec.task, 5)
    assert rec.statuses[-1] is LinkStatus.AUTH_FAILED
    assert API_KEYS_PATH in rec.states[-1].detail and "pa-tui auth set dialpad" in rec.states[-1].detail
    await asyncio.sleep(0.3)
    assert sum(r.status == 401 for r in sim.requests) == rejected_before + 1  # one try, no retry loop
    await rec.telephony.aclose()

    await dialpad_env.run(sim.rotate_key(NEW_KEY))
    async with dialpad_env.client(NEW_KEY) as client:
        assert (await client.get_user(avery)).id == avery


async def test_a_key_that_expires_mid_stream_stops_it_at_the_next_url_refresh(dialpad_env_factory) -> None:
    env = dialpad_env_factory(websocket_lifetime=1.0)
    rec = Recorder(make_telephony(env, env.agent_ids[0]))
    await rec.connected()
    await env.run(env.sim.expire_key())
    await asyncio.wait_for(rec.task, 5)  # the refresh (GET on the websocket) is refused: stop, don't loop
    assert rec.statuses[-1] is LinkStatus.AUTH_FAILED
    assert [r.status for r in env.sim.requests if r.status == 401] == [401]
    await rec.telephony.aclose()


# --------------------------------------------------------------------------- websocket lifecycle
async def test_websocket_url_expiry_and_refresh_mid_call(dialpad_env_factory) -> None:
    env = dialpad_env_factory(websocket_lifetime=1.0)
    avery = env.agent_ids[0]
    telephony = make_telephony(env, avery)
    rec = Recorder(telephony)
    await rec.connected()
    await listening(env, avery)
    call_id = await env.run(env.sim.ring(CALLER, user_id=avery))
    await env.run(env.sim.answer(call_id, avery))
    await rec.wait(lambda: telephony.reconnects >= 2, timeout=5)  # the URL was renewed twice, mid-call
    diagnostics = telephony.diagnostics()
    assert diagnostics["websocket_url_age_s"] < 1.0 < diagnostics["websocket_url_lifetime_s"] + 0.01
    assert 0 < diagnostics["websocket_url_expires_in_s"] <= 1.0 and diagnostics["websocket_url_expires_at"]
    assert diagnostics["budgets"]["get_call"]["limit"] == 10
    await env.run(env.sim.hangup(call_id))
    await rec.wait(lambda: rec.calls(CallState.POSTCALL))
    await rec.stop()

    assert [e.state for e in rec.calls()] == [
        CallState.PREANSWER,
        CallState.RINGING,
        CallState.CONNECTED,
        CallState.HANGUP,
        CallState.POSTCALL,
    ]
    assert LinkStatus.RECONNECTING not in rec.statuses
    call = book_of(rec.calls()).calls[call_id]
    assert call.is_ended and call.connected_at is not None


async def test_drop_and_reconnect_reconciles_calls_that_ended_or_started_in_the_gap(
    dialpad_env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pa_tui")
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    rec: Recorder | None = None

    def console_active_calls() -> list[str]:  # what the App would pass: its CallBook's active calls
        assert rec is not None
        return [c.id for c in book_of(rec.calls()).active()]

    rec = Recorder(make_telephony(dialpad_env, avery, active_calls=console_active_calls))
    await rec.connected()
    await listening(dialpad_env, avery)
    first = await dialpad_env.run(sim.ring(CALLER, call_center_id=SCHEDULING_ID))
    await dialpad_env.run(sim.answer(first, avery))
    await rec.wait(lambda: rec.calls(CallState.CONNECTED))

    # The stream drops and stays down (Dialpad's websocket API fails) while one call ends and another starts.
    await dialpad_env.run(sim.inject_fault(503, path="/api/v2/websockets", times=10_000))
    await dialpad_env.run(sim.drop_websockets())
    await rec.wait(lambda: LinkStatus.RECONNECTING in rec.statuses)
    await dialpad_env.run(sim.hangup(first))
    second = await dialpad_env.run(sim.ring(OTHER_CALLER, user_id=avery))
    assert book_of(rec.calls()).calls[first].is_active  # the console cannot know yet
    await dialpad_env.run(sim.clear_faults())
    await rec.connected(2)

    # Right after reconnecting, the ended call is reported ended (reconciled with GET /call/{id}).
    await rec.wait(lambda: book_of(rec.calls()).calls[first].is_ended)
    synthetic = [e for e in rec.calls() if e.key == first and e.state is CallState.HANGUP]
    assert synthetic and synthetic[-1].target is not None and synthetic[-1].target.id == avery
    assert any(r.path == f"/api/v2/call/{first}" and r.status == 200 for r in sim.requests)
    assert second not in book_of(rec.calls()).calls  # its first events fell in the gap…

    await dialpad_env.run(sim.answer(second, avery))  # …and it shows with its next one
    await rec.wait(lambda: second in book_of(rec.calls()).calls)
    await rec.stop()
    call = book_of(rec.calls()).calls[second]
    assert call.state is CallState.CONNECTED and call.ani is not None and call.ani.e164 == OTHER_CALLER
    assert not any(r.path == f"/api/v2/call/{second}" for r in sim.requests)  # never polled
    for phi in ("4155550199", "4155550166"):
        assert phi not in caplog.text


async def test_reconciling_stays_within_the_call_look_up_budget(dialpad_env_factory, fake_clock) -> None:
    env = dialpad_env_factory(clock=fake_clock, ring_timeout=None)
    avery = env.agent_ids[0]
    calls = [await env.run(env.sim.ring(CALLER, user_id=avery)) for _ in range(12)]
    await env.run(env.sim.hangup(calls[0]))
    telephony = DialpadTelephony(env.client(clock=fake_clock), user_id=avery)
    checked = await telephony.reconcile(list(reversed(calls)))  # most recent first
    assert [c.id for c in checked] == list(reversed(calls))[:10]
    assert telephony.diagnostics()["calls_to_reconcile"] == 2
    fake_clock.advance(60)
    rest = await telephony._reconcile_backlog_now()  # noqa: SLF001 - what the deferred timer runs
    assert [c.id for c in rest] == [calls[1], calls[0]] and rest[-1].is_ended
    assert await telephony._reconcile_backlog_now() == []  # noqa: SLF001 - nothing left: no re-checks
    lookups = [r for r in env.sim.requests if r.path.startswith("/api/v2/call/")]
    assert len(lookups) == 12 and all(r.status == 200 for r in lookups)  # never a 429, never twice
    await telephony.aclose()


async def test_duplicate_frames_are_yielded_once(dialpad_env) -> None:
    avery = dialpad_env.agent_ids[0]
    dialpad_env.sim.duplicate_frames = True
    telephony = make_telephony(dialpad_env, avery)
    rec = Recorder(telephony)
    await rec.connected()
    await listening(dialpad_env, avery)
    call_id = await dialpad_env.run(dialpad_env.sim.ring(CALLER, user_id=avery))
    await dialpad_env.run(dialpad_env.sim.hangup(call_id))
    await rec.wait(lambda: rec.calls(CallState.MISSED))
    await asyncio.sleep(0.1)
    await rec.stop()
    assert [e.state for e in rec.calls()] == [CallState.PREANSWER, CallState.RINGING, CallState.MISSED]
    assert telephony.diagnostics()["duplicates_dropped"] == 3


# --------------------------------------------------------------------------- transfer and hang up
async def test_transfer_a_to_b_folds_into_one_call_with_a_hop_and_b_as_agent(dialpad_env_factory) -> None:
    env = dialpad_env_factory(transfer_answer_delay=0.1)
    sim = env.sim
    avery, jordan, riley = env.agent_ids[:3]
    supervisor = Recorder(make_telephony(env, riley, subscription_scope="company", agent_status_events=False))
    agent_a = Recorder(make_telephony(env, avery, agent_status_events=False))
    agent_b = Recorder(make_telephony(env, jordan, agent_status_events=False))
    for rec in (supervisor, agent_a, agent_b):
        await rec.connected()
    await listening(env, avery, jordan)

    call_id = await env.run(sim.ring(CALLER, call_center_id=SCHEDULING_ID))
    await env.run(sim.answer(call_id, avery))
    await agent_a.wait(lambda: agent_a.calls(CallState.CONNECTED))
    a_leg = agent_a.calls(CallState.CONNECTED)[-1].call_id

    await agent_a.telephony.transfer(
        call_id, TransferTarget(kind="user", id=jordan, name="Jordan Blake"), custom_data="pa-tui:handoff/H123"
    )

    def moved() -> bool:
        call = book_of(supervisor.calls()).calls.get(call_id)
        return bool(call and call.agent and call.agent.id == jordan and call.transfers)

    await supervisor.wait(moved)
    await agent_a.wait(lambda: book_of(agent_a.calls()).calls[call_id].is_ended)
    for rec in (supervisor, agent_a, agent_b):
        await rec.stop()

    book = book_of(supervisor.calls())
    assert list(book.calls) == [call_id]  # every leg folded onto the one customer call
    call = book.calls[call_id]
    assert call.state is CallState.CONNECTED and call.agent is not None and call.agent.id == jordan
    assert [(h.from_party.id, h.to_party.id) for h in call.transfers if h.from_party and h.to_party] == [(avery, jordan)]
    assert call.custom_data == "pa-tui:handoff/H123"
    # B's console received the hand-off reference on its transferred leg.
    handed = [e for e in agent_b.calls() if e.is_transferred]
    assert handed and {e.custom_data for e in handed} == {"pa-tui:handoff/H123"} and handed[0].key == call_id
    assert book_of(agent_b.calls()).calls[call_id].agent.id == jordan  # type: ignore[union-attr]
    # A's own leg was the one transferred, and it ended once B answered.
    request = next(r for r in sim.requests if r.path.endswith("/transfer"))
    assert request.path == f"/api/v2/call/{a_leg}/transfer"
    assert request.body == {"to": {"target_type": "user", "target_id": int(jordan)}, "custom_data": "pa-tui:handoff/H123"}
    assert sim.duty_status(avery) == "available" and sim.duty_status(jordan) == "occupied"


async def test_hangup_ends_every_leg(dialpad_env_factory) -> None:
    env = dialpad_env_factory(transfer_answer_delay=None)
    sim = env.sim
    avery, jordan = env.agent_ids[:2]
    rec = Recorder(make_telephony(env, avery, subscription_scope="company", agent_status_events=False))
    await rec.connected()
    await listening(env, avery)
    call_id = await env.run(sim.ring(CALLER, call_center_id=SCHEDULING_ID))
    await env.run(sim.answer(call_id, avery))
    await env.run(sim.transfer(call_id, user_id=jordan))  # jordan's phone is ringing when the call ends
    await rec.wait(lambda: any(e.is_transferred for e in rec.calls(CallState.RINGING)))

    await rec.telephony.hangup(call_id)
    await rec.wait(lambda: book_of(rec.calls()).calls[call_id].is_ended)
    await rec.stop()

    info = sim.call_info(call_id)
    assert info.ended and all(leg.state in ("hangup", "missed") for leg in info.legs)
    assert len(info.legs) == 6  # the entry, four operator offers, the transfer
    call = book_of(rec.calls()).calls[call_id]
    assert {leg for leg, state in call.leg_states if state.state.phase.value == "ended"} == set(call.legs)
    request = next(r for r in sim.requests if r.path.endswith("/actions/hangup"))
    assert request.method == "PUT" and request.body is None
    assert sim.duty_status(avery) == "available"


async def test_transfer_to_a_call_center_queues_it_and_to_a_number_opens_an_external_leg(dialpad_env_factory) -> None:
    env = dialpad_env_factory(outbound_answer_delay=0.05)
    sim = env.sim
    avery = env.agent_ids[0]
    billing = [a.id for a in sim.agents.values() if BILLING_ID in a.call_center_ids]
    for uid in billing:
        await env.run(sim.set_duty_status(uid, "unavailable"))
    telephony = make_telephony(env, avery)
    queued = await env.run(sim.ring(CALLER, user_id=avery))
    await env.run(sim.answer(queued, avery))
    await telephony.transfer(queued, TransferTarget(kind="callcenter", id=BILLING_ID, name="Billing"))
    info = sim.call_info(queued)
    assert info.call_center_id == BILLING_ID and not info.ended and info.answered_by is None
    async with env.client() as client:
        status = await client.call_center_status(BILLING_ID)
    assert status.pending == 1 and status.capacity == 0 and status.availability == "open"

    external = await env.run(sim.ring(OTHER_CALLER, user_id=avery))
    await env.run(sim.answer(external, avery))
    await telephony.transfer(external, TransferTarget(kind="number", id="(415) 555-0177", name="Pharmacy"))
    await asyncio.sleep(0.2)
    legs = sim.call_info(external).legs
    assert [(leg.kind, leg.state) for leg in legs] == [("entry", "hangup"), ("external", "connected")]
    body = next(r.body for r in sim.requests if r.path == f"/api/v2/call/{external}/transfer")
    assert body == {"to": {"number": "+14155550177"}}
    with pytest.raises(BadRequest):
        await telephony.transfer(external, TransferTarget(kind="planet", id="1", name="?"))
    await telephony.aclose()


# --------------------------------------------------------------------------- smaller actions
async def test_transfer_targets_show_status_and_queues_and_are_cached(dialpad_env_factory) -> None:
    env = dialpad_env_factory(ring_timeout=None)
    sim = env.sim
    avery, jordan = env.agent_ids[:2]
    await env.run(sim.set_duty_status(jordan, "unavailable", "Lunch"))
    billing = [a.id for a in sim.agents.values() if BILLING_ID in a.call_center_ids]
    for uid in billing:
        await env.run(sim.set_duty_status(uid, "unavailable"))
    for _ in range(2):
        await env.run(sim.ring(CALLER, call_center_id=BILLING_ID))
    telephony = make_telephony(env, avery)
    targets = await telephony.transfer_targets()
    users = [t for t in targets if t.kind == "user"]
    centers = {t.id: t for t in targets if t.kind == "callcenter"}
    assert avery not in {t.id for t in users}
    assert [t.status for t in users] == ["unavailable"] * 5
    assert {t.id: t.status for t in users}[jordan] == "unavailable"
    assert centers[BILLING_ID].waiting == 2 and centers[SCHEDULING_ID].waiting == 0
    assert centers[BILLING_ID].status == "open"
    await env.run(sim.set_duty_status(jordan, "available"))
    seen = len(sim.requests)
    assert await telephony.transfer_targets() == targets  # cached: no request
    assert len(sim.requests) == seen
    await telephony.aclose()


async def test_screen_pop_labels_callback_and_status_message(dialpad_env) -> None:
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    telephony = make_telephony(dialpad_env, avery)
    await telephony.screen_pop(avery, "https://ehr.example/chart?patient=p-123")
    assert sim.screen_pops[avery] == ["https://ehr.example/chart?patient=p-123"]
    with pytest.raises(BadRequest):
        await telephony.screen_pop(avery, "https://user:pw@ehr.example/chart")  # refused before sending

    call_id = await dialpad_env.run(sim.ring(CALLER, user_id=avery))
    await dialpad_env.run(sim.answer(call_id, avery))
    await telephony.set_wrapup_labels(call_id, ["scheduled", "new-patient", "scheduled"])
    assert sim.call_info(call_id).labels == ("scheduled", "new-patient")
    looked_up = await telephony.get_call(call_id)
    assert looked_up is not None and looked_up.labels == ("scheduled", "new-patient")
    assert looked_up.state is CallState.CONNECTED and looked_up.agent.type is PartyType.USER  # type: ignore[union-attr]
    assert await telephony.get_call("6399999999999999") is None

    assert await telephony.request_callback(SCHEDULING_ID, parse_phone("+14155550188")) == 1
    with pytest.raises(BadRequest) as duplicate:
        await telephony.request_callback(SCHEDULING_ID, parse_phone("+14155550188"))
    assert "already queued" in duplicate.value.title  # Dialpad's own message, quoted
    assert [(c.call_center_id, c.phone_number) for c in sim.callbacks] == [(SCHEDULING_ID, "+14155550188")]

    await telephony.set_status_message(avery, "Back at 2", expiration=1800)
    assert sim.user_statuses[avery] == ("Back at 2", 1800)
    assert [k for k, _ in sim.emitted][-1] == "agent_status"
    await telephony.aclose()


async def test_a_changed_user_reuses_the_websocket_and_drops_the_old_subscriptions(dialpad_env) -> None:
    avery, jordan = dialpad_env.agent_ids[:2]
    first = Recorder(make_telephony(dialpad_env, avery))
    await first.connected()
    saved = first.telephony.saved_state()
    await first.stop()
    assert saved["user_id"] == avery and saved["websocket_id"] and saved["key_id"]
    assert "sim-dialpad-key" not in repr(saved)

    second = Recorder(make_telephony(dialpad_env, jordan, saved_state=saved))
    await second.connected()
    await listening(dialpad_env, jordan)
    await second.stop()
    assert second.telephony.websocket_id == saved["websocket_id"]
    async with dialpad_env.client() as client:
        subs = await client.list_call_subscriptions()
        assert [(s.target_type, s.target_id) for s in subs] == [("user", jordan)]
        assert len(await client.list_agent_status_subscriptions()) == 1
        assert len(await client.list_websockets()) == 1


# --------------------------------------------------------------------------- webhook mode
async def test_webhook_mode_receives_events_through_the_listener_queue(dialpad_env) -> None:
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    loop = asyncio.get_running_loop()
    handed: asyncio.Queue[object] = asyncio.Queue()  # what the App feeds from the inbound listener
    secret = "webhook-secret-0123456789abcdef0123"

    async def receive(request: Request) -> PlainTextResponse:
        # A stand-in for the inbound listener: verify and parse, hand the domain event over.
        event = parse_frame(await request.body(), secret)
        loop.call_soon_threadsafe(handed.put_nowait, event)
        return PlainTextResponse("ok")

    listener = SimulatorHost()
    listener.add("inbound", Starlette(routes=[Route("/dialpad/events", receive, methods=["POST"])]))
    listener.start()
    try:
        url = listener.url("inbound") + "/dialpad/events"
        telephony = make_telephony(
            dialpad_env, avery, event_mode="webhook", webhook_url=url, webhook_secret=secret, webhook_events=handed
        )
        rec = Recorder(telephony)
        await rec.connected()
        assert telephony.webhook_id is not None and telephony.websocket_id is None
        assert await dialpad_env.run(sim.wait_for_listener(avery, timeout=2))
        call_id = await dialpad_env.run(sim.ring(CALLER, user_id=avery))
        await dialpad_env.run(sim.answer(call_id, avery))
        await dialpad_env.run(sim.hangup(call_id))
        await rec.wait(lambda: rec.calls(CallState.POSTCALL))
        duplicate = rec.calls()[0]
        handed.put_nowait(duplicate)  # the listener handing the same event over twice
        await asyncio.sleep(0.1)
        await rec.stop()
    finally:
        listener.stop()
    assert [e.state for e in rec.calls()] == [
        CallState.PREANSWER,
        CallState.RINGING,
        CallState.CONNECTED,
        CallState.HANGUP,
        CallState.POSTCALL,
    ]
    assert all(status == 200 for _, status in sim.webhook_deliveries)
    hook = next(r for r in sim.requests if r.method == "POST" and r.path == "/api/v2/webhooks")
    assert hook.body == {"hook_url": url, "secret": secret}
    subscription = next(r for r in sim.requests if r.method == "POST" and r.path == "/api/v2/subscriptions/call")
    assert subscription.body["endpoint_id"] == int(telephony.webhook_id)

    # The next start reuses the webhook (found by its stored id): no second one is created.
    again = make_telephony(
        dialpad_env, avery, event_mode="webhook", webhook_url=url, webhook_secret=secret,
        webhook_events=asyncio.Queue(), saved_state=telephony.saved_state(),
    )
    rec2 = Recorder(again)
    await rec2.connected()
    await rec2.stop()
    assert again.webhook_id == telephony.webhook_id
    assert [r.path for r in sim.requests if r.method == "POST"].count("/api/v2/webhooks") == 1


def test_webhook_mode_needs_its_url_and_queue(dialpad_env) -> None:
    client = DialpadClient("k" * 20, "http://127.0.0.1:9")
    with pytest.raises(ValueError):
        DialpadTelephony(client, user_id="1", event_mode="webhook", webhook_events=asyncio.Queue())
    with pytest.raises(ValueError):
        DialpadTelephony(client, user_id="1", event_mode="webhook", webhook_url="http://127.0.0.1:9/hook")
    telephony = DialpadTelephony(
        client, user_id="1", event_mode="webhook", webhook_url="http://127.0.0.1:9/hook", webhook_events=asyncio.Queue()
    )
    assert telephony.webhook_secret is not None and len(telephony.webhook_secret.get_secret_value()) >= 32
