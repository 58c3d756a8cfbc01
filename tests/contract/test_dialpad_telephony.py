"""DialpadTelephony end to end: the real client and event stream against the simulator on loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from pa_tui.backends.base import ConnectionState, LinkStatus, Telephony
from pa_tui.backends.dialpad.telephony import DialpadTelephony
from pa_tui.demo.dialpad_sim import SCHEDULING_ID
from pa_tui.domain.agents import AgentStatusEvent, DutyStatus
from pa_tui.domain.calls import CallBook, CallEvent, CallState
from pa_tui.domain.phones import PhoneNumber, parse_phone

CALLER = "+14155550199"


class Recorder:
    """Consumes ``telephony.events()`` in the background and keeps everything it yields."""

    def __init__(self, telephony: DialpadTelephony) -> None:
        self.telephony = telephony
        self.items: list[Any] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in self.telephony.events():
            self.items.append(item)

    @property
    def states(self) -> list[ConnectionState]:
        return [i for i in self.items if isinstance(i, ConnectionState)]

    @property
    def statuses(self) -> list[LinkStatus]:
        return [s.status for s in self.states]

    def calls(self, state: CallState | None = None) -> list[CallEvent]:
        return [i for i in self.items if isinstance(i, CallEvent) and (state is None or i.state is state)]

    @property
    def agent_events(self) -> list[AgentStatusEvent]:
        return [i for i in self.items if isinstance(i, AgentStatusEvent)]

    async def wait(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            if self.task.done():
                self.task.result()
                raise AssertionError(f"event stream ended early: {self.statuses}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; got {self.statuses} and {[c.state for c in self.calls()]}")
            await asyncio.sleep(0.02)

    async def connected(self, count: int = 1) -> None:
        await self.wait(lambda: self.statuses.count(LinkStatus.CONNECTED) >= count)

    async def stop(self) -> None:
        await self.telephony.aclose()
        await asyncio.wait_for(self.task, 5)


def make_telephony(env, agent: str | None = None, **kwargs: Any) -> DialpadTelephony:
    kwargs.setdefault("backoff_initial", 0.05)
    kwargs.setdefault("backoff_max", 0.2)
    client_kwargs = {k: kwargs.pop(k) for k in ("key",) if k in kwargs}
    return DialpadTelephony(env.client(**client_kwargs), user_id=agent or env.agent_ids[0], **kwargs)


async def test_is_a_telephony_and_answers_requests(dialpad_env) -> None:
    telephony = make_telephony(dialpad_env, mini_dialer_client_id="abc123")
    assert isinstance(telephony, Telephony)
    me = await telephony.me()
    assert me.id == dialpad_env.agent_ids[0] and me.name == "Avery Quinn"
    assert isinstance(me.phone, PhoneNumber) and me.call_center_ids == (SCHEDULING_ID,)
    status = await telephony.agent_status(me.id)
    assert status.status is DutyStatus.AVAILABLE and status.call_center_ids == (SCHEDULING_ID,)
    await telephony.set_status(me.id, on_duty=False, reason="Lunch")
    status = await telephony.agent_status(me.id)
    assert status.status is DutyStatus.UNAVAILABLE and status.reason == "Lunch"
    assert [c.name for c in await telephony.call_centers()] == ["Scheduling", "Billing & Insurance"]
    assert telephony.mini_dialer_url() == "https://dialpad.com/apps/abc123"
    call_id = await telephony.dial(me.id, parse_phone("+14155550123"))
    assert dialpad_env.sim.call_info(call_id).direction == "outbound"
    await telephony.aclose()
    sandbox = make_telephony(dialpad_env, mini_dialer_client_id="abc123", sandbox=True)
    assert sandbox.mini_dialer_url() == "https://sandbox.dialpad.com/apps/abc123"
    assert make_telephony(dialpad_env).mini_dialer_url() is None


async def test_ring_answer_hangup_reach_the_agent(dialpad_env) -> None:
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    rec = Recorder(make_telephony(dialpad_env, avery))
    await rec.connected()
    assert await dialpad_env.run(sim.wait_for_listener(avery, timeout=2))

    call_id = await dialpad_env.run(sim.ring(CALLER, call_center_id=SCHEDULING_ID))
    await rec.wait(lambda: rec.calls(CallState.RINGING))
    await dialpad_env.run(sim.answer(call_id, avery))
    await rec.wait(lambda: rec.calls(CallState.CONNECTED))
    await dialpad_env.run(sim.hangup(call_id))
    await rec.wait(lambda: rec.calls(CallState.POSTCALL) and len(rec.agent_events) >= 2)
    await rec.stop()

    events = rec.calls()
    assert [e.state for e in events] == [CallState.RINGING, CallState.CONNECTED, CallState.HANGUP, CallState.POSTCALL]
    assert {e.key for e in events} == {call_id}  # every leg folds onto the entry-point call
    assert {e.target.id for e in events if e.target} == {avery}  # only this agent's leg
    assert all(isinstance(e.external_number, PhoneNumber) and e.external_number.e164 == CALLER for e in events)
    assert [(a.agent_id, a.status) for a in rec.agent_events] == [
        (avery, DutyStatus.OCCUPIED),
        (avery, DutyStatus.AVAILABLE),
    ]
    book = CallBook()
    for event in events:
        book.apply(event)
    call = book.calls[call_id]
    assert call.is_ended and call.connected_at is not None
    assert call.agent is not None and call.agent.id == avery  # who handled it
    assert rec.statuses[0] is LinkStatus.CONNECTING and rec.statuses[-1] is LinkStatus.STOPPED


async def test_expiring_url_is_refreshed_without_losing_events(dialpad_env_factory) -> None:
    env = dialpad_env_factory(websocket_lifetime=1.5)
    avery = env.agent_ids[0]
    telephony = make_telephony(env, avery)
    rec = Recorder(telephony)
    await rec.connected()
    await env.run(env.sim.wait_for_listener(avery, timeout=2))

    # A steady trickle of calls across more than two URL lifetimes: every event must arrive exactly once.
    calls = []
    for _ in range(32):
        calls.append(await env.run(env.sim.ring(CALLER, user_id=avery)))
        await asyncio.sleep(0.1)
    await rec.wait(lambda: len(rec.calls()) >= 2 * len(calls))
    await asyncio.sleep(0.2)
    await rec.stop()

    received = [(e.call_id, e.state) for e in rec.calls()]
    expected = [(c, s) for c in calls for s in (CallState.PREANSWER, CallState.RINGING)]
    assert sorted(received) == sorted(expected)  # none lost, none duplicated
    assert LinkStatus.RECONNECTING not in rec.statuses  # seamless: refreshed before expiry
    assert telephony.reconnects >= 2 and env.sim.connections_opened >= 3
    refreshes = [r for r in env.sim.requests if r.method == "GET" and r.path.startswith("/api/v2/websockets/")]
    assert len(refreshes) >= 2


async def test_dropped_connection_reconnects_and_continues(dialpad_env) -> None:
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    rec = Recorder(make_telephony(dialpad_env, avery))
    await rec.connected()
    await dialpad_env.run(sim.wait_for_listener(avery, timeout=2))
    call_id = await dialpad_env.run(sim.ring(CALLER, user_id=avery))
    await rec.wait(lambda: rec.calls(CallState.RINGING))

    assert await dialpad_env.run(sim.drop_websockets()) == 1
    await rec.wait(lambda: LinkStatus.RECONNECTING in rec.statuses)
    reconnecting = next(s for s in rec.states if s.status is LinkStatus.RECONNECTING)
    assert reconnecting.retry_in is not None and 0 < reconnecting.retry_in <= 0.2
    assert reconnecting.detail
    await rec.connected(2)
    await dialpad_env.run(sim.wait_for_listener(avery, timeout=2))

    await dialpad_env.run(sim.answer(call_id))
    await dialpad_env.run(sim.hangup(call_id))
    await rec.wait(lambda: rec.calls(CallState.POSTCALL))
    await rec.stop()
    assert [e.state for e in rec.calls()] == [
        CallState.PREANSWER,
        CallState.RINGING,
        CallState.CONNECTED,
        CallState.HANGUP,
        CallState.POSTCALL,
    ]
    # Resubscribing after the drop found the existing subscriptions: nothing duplicated.
    async with dialpad_env.client() as client:
        assert len(await client.list_call_subscriptions()) == 1
        assert len(await client.list_agent_status_subscriptions()) == 1
        assert len(await client.list_websockets()) == 1


async def test_wrong_key_stops_with_auth_failed(dialpad_env) -> None:
    wrong = "wrong-key-0123456789abcdef"
    rec = Recorder(make_telephony(dialpad_env, key=wrong))
    await asyncio.wait_for(rec.task, 5)
    assert rec.statuses == [LinkStatus.CONNECTING, LinkStatus.AUTH_FAILED]
    detail = rec.states[-1].detail
    assert "Dialpad rejected the API key" in detail and "pa-tui auth set dialpad" in detail
    assert wrong not in detail
    assert [r.status for r in dialpad_env.sim.requests] == [401]  # no retry loop against a bad key
    await rec.telephony.aclose()


async def test_server_errors_during_setup_back_off_and_recover(dialpad_env) -> None:
    await dialpad_env.run(dialpad_env.sim.inject_fault(503, path="/api/v2/websockets", method="POST", times=2))
    rec = Recorder(make_telephony(dialpad_env))
    await rec.connected()
    await rec.stop()
    assert rec.statuses[:4] == [
        LinkStatus.CONNECTING,
        LinkStatus.RECONNECTING,
        LinkStatus.RECONNECTING,
        LinkStatus.CONNECTED,
    ]
    assert all(s.retry_in and "HTTP 503" in s.detail for s in rec.states[1:3])


async def test_bad_frames_are_skipped_and_duplicates_dropped(dialpad_env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pa_tui")
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    rec = Recorder(make_telephony(dialpad_env, avery))
    await rec.connected()
    await dialpad_env.run(sim.wait_for_listener(avery, timeout=2))

    await dialpad_env.run(sim.inject_frame("Jane Example, (415) 555-0199, is calling"))
    await dialpad_env.run(sim.inject_frame('{"call_id": 1, "state": "ringing", "external_number": "+14155550177"}'))
    forged = __import__("jwt").encode({"call_id": 2, "state": "ringing"}, "not-the-secret-0123456789abcdef0123")
    await dialpad_env.run(sim.inject_frame(forged))
    duplicate = {
        "call_id": 6399999999999999,
        "entry_point_call_id": 6399999999999999,
        "state": "voicemail",
        "direction": "inbound",
        "event_timestamp": 1767225600000,
        "external_number": CALLER,
    }
    await dialpad_env.run(sim.inject_frame(duplicate))
    await dialpad_env.run(sim.inject_frame(duplicate))
    await dialpad_env.run(sim.ring(CALLER, user_id=avery))
    await rec.wait(lambda: rec.calls(CallState.RINGING))
    await rec.stop()

    assert [e.state for e in rec.calls()] == [CallState.VOICEMAIL, CallState.PREANSWER, CallState.RINGING]
    assert rec.statuses.count(LinkStatus.CONNECTED) == 1  # bad frames never cost the connection
    skipped = [r.getMessage() for r in caplog.records if "skipped a Dialpad event frame" in r.getMessage()]
    assert skipped == [
        "skipped a Dialpad event frame: not-jwt",
        "skipped a Dialpad event frame: unsigned",
        "skipped a Dialpad event frame: bad-signature",
    ]
    for phi in ("Jane", "555-0199", "4155550199", "4155550177"):
        assert phi not in caplog.text


async def test_stored_websocket_is_reused(dialpad_env) -> None:
    avery = dialpad_env.agent_ids[0]
    first = Recorder(make_telephony(dialpad_env, avery))
    await first.connected()
    websocket_id = first.telephony.websocket_id
    await first.stop()

    second_telephony = make_telephony(dialpad_env, avery, websocket_id=websocket_id)
    second = Recorder(second_telephony)
    await second.connected()
    await dialpad_env.run(dialpad_env.sim.wait_for_listener(avery, timeout=2))
    await dialpad_env.run(dialpad_env.sim.ring(CALLER, user_id=avery))
    await second.wait(lambda: second.calls(CallState.RINGING))  # frames verify with the stored secret
    await second.stop()
    assert second_telephony.websocket_id == websocket_id
    posts = [r.path for r in dialpad_env.sim.requests if r.method == "POST"]
    assert posts == ["/api/v2/websockets", "/api/v2/subscriptions/call", "/api/v2/subscriptions/agent_status"]


async def test_deleted_websocket_is_recreated(dialpad_env) -> None:
    avery = dialpad_env.agent_ids[0]
    telephony = make_telephony(dialpad_env, avery)
    rec = Recorder(telephony)
    await rec.connected()
    old_id = telephony.websocket_id
    async with dialpad_env.client() as admin:
        await admin.delete_websocket(old_id)
    await rec.connected(2)
    assert telephony.websocket_id != old_id
    await dialpad_env.run(dialpad_env.sim.wait_for_listener(avery, timeout=2))
    await dialpad_env.run(dialpad_env.sim.ring(CALLER, user_id=avery))
    await rec.wait(lambda: rec.calls(CallState.RINGING))
    await rec.stop()


async def test_agent_status_refused_still_delivers_calls(dialpad_env) -> None:
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    await dialpad_env.run(sim.inject_fault(403, path="/api/v2/subscriptions/agent_status", method="POST"))
    rec = Recorder(make_telephony(dialpad_env, avery))
    await rec.connected()
    assert "company-admin" in rec.states[-1].detail
    await dialpad_env.run(sim.wait_for_listener(avery, timeout=2))
    await dialpad_env.run(sim.ring(CALLER, user_id=avery))
    await rec.wait(lambda: rec.calls(CallState.RINGING))
    await rec.stop()


async def test_company_scope_sees_other_agents_calls(dialpad_env) -> None:
    jordan = dialpad_env.agent_ids[1]
    rec = Recorder(make_telephony(dialpad_env, dialpad_env.agent_ids[0], subscription_scope="company"))
    await rec.connected()
    await dialpad_env.run(dialpad_env.sim.wait_for_listener(jordan, timeout=2))
    await dialpad_env.run(dialpad_env.sim.ring(CALLER, user_id=jordan))
    await rec.wait(lambda: rec.calls(CallState.RINGING))
    await rec.stop()
    assert rec.calls()[-1].target is not None and rec.calls()[-1].target.id == jordan
    body = next(r.body for r in dialpad_env.sim.requests if r.path == "/api/v2/subscriptions/call" and r.method == "POST")
    assert "target_type" not in body and "target_id" not in body


async def test_keep_websocket_false_cleans_up_on_close(dialpad_env) -> None:
    rec = Recorder(make_telephony(dialpad_env, keep_websocket=False))
    await rec.connected()
    await rec.stop()
    async with dialpad_env.client() as client:
        assert await client.list_websockets() == []
        assert await client.list_call_subscriptions() == []
        assert await client.list_agent_status_subscriptions() == []


async def test_wrong_base_url_is_reported_not_mistaken_for_a_lost_websocket(dialpad_env) -> None:
    from pa_tui.backends.dialpad.client import DialpadClient

    client = DialpadClient("sim-dialpad-key-0123456789abcdef", dialpad_env.base_url + "/not-dialpad", retries=1)
    telephony = DialpadTelephony(client, user_id=dialpad_env.agent_ids[0], backoff_initial=0.05, backoff_max=0.1)
    rec = Recorder(telephony)
    await rec.wait(lambda: rec.statuses.count(LinkStatus.RECONNECTING) >= 2)
    await rec.stop()
    assert all(s.status is LinkStatus.RECONNECTING for s in rec.states[1:-1])
    for state in rec.states[1:-1]:
        assert "Dialpad has no such API" in state.detail and "base URL" in state.detail and state.retry_in
    assert telephony.websocket_id is None


async def test_debug_logs_hold_no_key_token_or_phi(dialpad_env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    avery = dialpad_env.agent_ids[0]
    telephony = make_telephony(dialpad_env, avery)
    rec = Recorder(telephony)
    await rec.connected()
    token = telephony._url.get_secret_value().rsplit("/", 1)[1]  # noqa: SLF001 - the secret under test
    secret = telephony._secret.get_secret_value()  # noqa: SLF001
    await dialpad_env.run(dialpad_env.sim.wait_for_listener(avery, timeout=2))
    await dialpad_env.run(dialpad_env.sim.ring(CALLER, user_id=avery))
    await rec.wait(lambda: rec.calls(CallState.RINGING))
    await rec.stop()
    assert "/events/" in caplog.text  # the websockets library did log its request line…
    for leaked in ("sim-dialpad-key-0123456789abcdef", token, token[:40], secret, "4155550199"):
        assert leaked not in caplog.text  # …with the token redacted
    assert "sim-dialpad-key" not in repr(telephony) and token not in repr(rec.states)
