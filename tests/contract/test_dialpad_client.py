"""DialpadClient against the simulator over real loopback HTTP: data, pagination, error mapping, retries."""

from __future__ import annotations

import socket

import pytest

from pa_tui.backends.base import (
    AuthError,
    BadRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from pa_tui.backends.dialpad.client import DialpadClient
from pa_tui.demo.dialpad_sim import BILLING_ID, SCHEDULING_ID
from pa_tui.domain.agents import DutyStatus

DIALPAD_KEY = "sim-dialpad-key-0123456789abcdef"  # the key the contract conftest's simulator accepts


async def test_list_users_follows_the_cursor_to_the_end(dialpad_env_factory) -> None:
    env = dialpad_env_factory(page_size=2)
    async with env.client() as client:
        users = await client.list_users()
    assert [u.id for u in users] == env.agent_ids
    pages = [r for r in env.sim.requests if r.path == "/api/v2/users"]
    assert len(pages) == 3
    assert "cursor" not in pages[0].query and pages[1].query["cursor"] and pages[2].query["cursor"]


async def test_get_user(dialpad_env) -> None:
    riley = dialpad_env.agent_ids[2]
    async with dialpad_env.client() as client:
        user = await client.get_user(int(riley))  # ids may be given as integers
    assert user.id == riley
    assert user.name == "Riley Morgan"
    assert user.emails == ("riley.morgan@clinic.example",)
    assert user.call_center_ids == (SCHEDULING_ID, BILLING_ID)
    assert user.on_duty_status == "available"


async def test_call_centers(dialpad_env) -> None:
    async with dialpad_env.client() as client:
        centers = await client.list_call_centers()
    assert [(c.id, c.name) for c in centers] == [(SCHEDULING_ID, "Scheduling"), (BILLING_ID, "Billing & Insurance")]


async def test_websocket_lifecycle(dialpad_env) -> None:
    async with dialpad_env.client() as client:
        created = await client.create_websocket("s3cret-value-that-is-long-enough-000")
        assert created.secret is not None and created.secret.get_secret_value().startswith("s3cret")
        assert created.websocket_url is not None
        again = await client.get_websocket(created.id)
        assert again.websocket_url is not None
        assert again.websocket_url.get_secret_value() != created.websocket_url.get_secret_value()  # fresh URL
        assert [w.id for w in await client.list_websockets()] == [created.id]
        assert "s3cret" not in repr(created) and "/events/" not in repr(created)
        await client.delete_websocket(created.id)
        with pytest.raises(NotFound) as info:
            await client.get_websocket(created.id)
        assert info.value.title == f"Dialpad has no websocket {created.id}"


async def test_subscriptions_round_trip(dialpad_env) -> None:
    agent = dialpad_env.agent_ids[0]
    async with dialpad_env.client() as client:
        ws = await client.create_websocket("another-secret-0123456789abcdef")
        calls = await client.subscribe_calls(ws.id, ["ringing", "hangup"], "user", agent)
        assert (calls.endpoint_id, calls.target_type, calls.target_id) == (ws.id, "user", agent)
        assert calls.call_states == ("ringing", "hangup") and calls.enabled
        status = await client.subscribe_agent_status(ws.id)
        assert status.endpoint_id == ws.id and status.agent_type == "callcenter"

        assert [s.id for s in await client.list_call_subscriptions()] == [calls.id]
        assert [s.id for s in await client.list_call_subscriptions(target_type="user", target_id=agent)] == [calls.id]
        other = dialpad_env.agent_ids[1]
        assert await client.list_call_subscriptions(target_type="user", target_id=other) == []
        assert [s.id for s in await client.list_agent_status_subscriptions()] == [status.id]

        await client.delete_call_subscription(calls.id)
        await client.delete_agent_status_subscription(status.id)
        assert await client.list_call_subscriptions() == []
        assert await client.list_agent_status_subscriptions() == []

    body = next(r.body for r in dialpad_env.sim.requests if r.path == "/api/v2/subscriptions/call" and r.method == "POST")
    assert body == {
        "endpoint_id": int(ws.id),
        "enabled": True,
        "call_states": ["ringing", "hangup"],
        "target_type": "user",
        "target_id": int(agent),
    }


async def test_duty_status(dialpad_env) -> None:
    agent = dialpad_env.agent_ids[0]
    async with dialpad_env.client() as client:
        before = await client.get_duty_status(agent)
        assert before.status is DutyStatus.AVAILABLE and before.on_duty
        after = await client.set_duty_status(agent, False, "Lunch\nbreak")
        assert after.status is DutyStatus.UNAVAILABLE and after.reason == "Lunch break" and after.on_duty is False
        assert (await client.get_duty_status(agent)).status is DutyStatus.UNAVAILABLE
        back = await client.set_duty_status(agent, True)
        assert back.status is DutyStatus.AVAILABLE
    kinds = [(k, p["on_duty_status"]) for k, p in dialpad_env.sim.emitted if k == "agent_status"]
    assert kinds == [("agent_status", "unavailable"), ("agent_status", "available")]


# --------------------------------------------------------------------------- errors
async def test_wrong_key_is_an_auth_error_without_the_key(dialpad_env) -> None:
    wrong = "wrong-key-abcdef-1234567890"
    client = dialpad_env.client(wrong)
    assert wrong not in repr(client)
    with pytest.raises(AuthError) as info:
        await client.get_user(dialpad_env.agent_ids[0])
    await client.aclose()
    error = info.value
    assert error.title == "Dialpad rejected the API key"
    assert "Dialpad Admin › My Company › Authentication › API Keys" in error.fix
    assert "pa-tui auth set dialpad" in error.fix
    assert error.status == 401
    assert wrong not in str(error) and DIALPAD_KEY not in str(error)
    # The key travelled in the Authorization header, never in the URL.
    assert all("apikey" not in r.query for r in dialpad_env.sim.requests)


def test_empty_key_is_refused_before_any_request() -> None:
    with pytest.raises(AuthError):
        DialpadClient("  ", "http://127.0.0.1:9")


async def test_bad_request_quotes_dialpads_message(dialpad_env) -> None:
    async with dialpad_env.client() as client:
        ws = await client.create_websocket("secret-0123456789abcdef0123456789")
        with pytest.raises(BadRequest) as info:
            await client.subscribe_calls(ws.id, ["ringing"], "user", "1234567890123456")
    assert info.value.status == 400
    assert "subscribing to call events" in info.value.title
    assert "Target user 1234567890123456 not found" in info.value.title


async def test_invalid_input_is_refused_locally(dialpad_env) -> None:
    async with dialpad_env.client() as client:
        with pytest.raises(BadRequest):
            await client.subscribe_calls("1", ["ringing", "exploded"])
        with pytest.raises(BadRequest):
            await client.subscribe_calls("not-a-number")
        with pytest.raises(BadRequest):
            await client.get_websocket("../users")
    assert not dialpad_env.sim.requests


async def test_404_on_a_collection_means_wrong_base_url(dialpad_env) -> None:
    client = DialpadClient(DIALPAD_KEY, dialpad_env.base_url + "/not-dialpad")
    with pytest.raises(NotFound) as info:
        await client.list_websockets()
    await client.aclose()
    assert "base URL" in info.value.fix and "sandbox.dialpad.com" in info.value.fix


async def test_403_names_the_operation(dialpad_env) -> None:
    await dialpad_env.run(dialpad_env.sim.inject_fault(403, path="/api/v2/subscriptions/agent_status"))
    async with dialpad_env.client() as client:
        ws = await client.create_websocket("secret-0123456789abcdef0123456789")
        with pytest.raises(PermissionDenied) as info:
            await client.subscribe_agent_status(ws.id)
    assert "subscribing to agent-status events" in info.value.title
    assert "company-admin" in info.value.fix


async def test_429_on_a_get_waits_for_retry_after_then_succeeds(dialpad_env) -> None:
    await dialpad_env.run(dialpad_env.sim.inject_fault(429, path="/api/v2/users", retry_after=0.05))
    async with dialpad_env.client() as client:
        users = await client.list_users()
    assert len(users) == 6
    assert [r.status for r in dialpad_env.sim.requests] == [429, 200]


async def test_429_with_a_long_retry_after_goes_back_to_the_caller(dialpad_env) -> None:
    await dialpad_env.run(dialpad_env.sim.inject_fault(429, path="/api/v2/users", retry_after=120))
    async with dialpad_env.client() as client:
        with pytest.raises(RateLimited) as info:
            await client.list_users()
    assert info.value.retry_after == 120
    assert "120 s" in info.value.fix
    assert len(dialpad_env.sim.requests) == 1


async def test_creating_writes_are_never_retried_setting_writes_are(dialpad_env) -> None:
    """A POST creates something (a websocket here; a call, a transfer…): never sent twice.
    A PATCH sets a state: repeating it is safe, so it is retried after Retry-After."""
    await dialpad_env.run(dialpad_env.sim.inject_fault(503, method="POST", times=3))
    await dialpad_env.run(dialpad_env.sim.inject_fault(429, method="PATCH", retry_after=0.01))
    async with dialpad_env.client() as client:
        with pytest.raises(Unavailable):
            await client.create_websocket("secret-0123456789abcdef0123456789")
        info = await client.set_duty_status(dialpad_env.agent_ids[0], False)
    assert info.on_duty is False
    assert [(r.method, r.status) for r in dialpad_env.sim.requests] == [("POST", 503), ("PATCH", 429), ("PATCH", 200)]


async def test_5xx_on_a_get_is_retried_with_backoff(dialpad_env) -> None:
    await dialpad_env.run(dialpad_env.sim.inject_fault(502, path="/api/v2/callcenters", times=2))
    async with dialpad_env.client() as client:
        centers = await client.list_call_centers()
    assert len(centers) == 2
    assert [r.status for r in dialpad_env.sim.requests] == [502, 502, 200]


async def test_persistent_5xx_becomes_unavailable(dialpad_env) -> None:
    await dialpad_env.run(dialpad_env.sim.inject_fault(500, times=10))
    async with dialpad_env.client(retries=3) as client:
        with pytest.raises(Unavailable) as info:
            await client.list_call_centers()
    assert info.value.status == 500 and "HTTP 500" in info.value.title
    assert len(dialpad_env.sim.requests) == 3


async def test_unreachable_host_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        client = DialpadClient(DIALPAD_KEY, f"http://127.0.0.1:{port}", retries=2, backoff_initial=0.01)
        with pytest.raises(Unavailable) as info:
            await client.get_user("1")
        await client.aclose()
    assert info.value.title.startswith("Can't reach Dialpad at 127.0.0.1")
    assert DIALPAD_KEY not in str(info.value)


async def test_403_names_the_call_and_the_scope(dialpad_env) -> None:
    sim = dialpad_env.sim
    avery = dialpad_env.agent_ids[0]
    call_id = await dialpad_env.run(sim.ring("+14155550199", user_id=avery))
    await dialpad_env.run(sim.answer(call_id, avery))
    await dialpad_env.run(sim.inject_fault(403, path=f"/api/v2/call/{call_id}/transfer"))
    await dialpad_env.run(sim.inject_fault(403, path=f"/api/v2/users/{avery}/screenpop"))
    async with dialpad_env.client() as client:
        with pytest.raises(PermissionDenied) as transfer:
            await client.transfer(call_id, user_id=dialpad_env.agent_ids[1])
        with pytest.raises(PermissionDenied) as pop:
            await client.screen_pop(avery, "https://ehr.example/chart/1")
    assert f"transferring call {call_id}" in transfer.value.title
    assert f"opening a screen pop for user {avery}" in pop.value.title
    assert 'the "screen_pop" scope' in pop.value.fix and "API Keys" in pop.value.fix


async def test_400_quotes_dialpads_message_for_call_actions(dialpad_env) -> None:
    async with dialpad_env.client() as client:
        with pytest.raises(NotFound) as missing:
            await client.get_call("6399999999999999")
        with pytest.raises(BadRequest) as refused:
            await client.request_callback(SCHEDULING_ID, "+442071234567")
    assert missing.value.title == "Dialpad has no call 6399999999999999"
    assert refused.value.title == "Dialpad rejected requesting a call back: International call backs are not supported"
