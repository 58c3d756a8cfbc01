"""The Dialpad simulator on its own: auth, validation, call legs, subscription routing, websocket tokens."""

from __future__ import annotations

import asyncio
import json

import httpx
import jwt
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pa_tui.demo.dialpad_sim import BILLING_ID, SCHEDULING_ID, DialpadSimulator, default_roster

CALLER = "+14155550199"


def http(env, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=env.base_url, headers=headers)


async def open_socket(env, key: str, *, secret: str | None = None, **sub: object):
    """A websocket with one call subscription (``sub``; none given: company-wide), connected."""
    async with http(env, key) as api:
        ws = (await api.post("/api/v2/websockets", json={"secret": secret} if secret else {})).json()
        r = await api.post("/api/v2/subscriptions/call", json={"endpoint_id": ws["id"], **sub})
        assert r.status_code == 200, r.text
    conn = await websockets.connect(ws["websocket_url"], proxy=None)
    return ws["id"], conn


async def frames(conn, *, secret: str | None = None, quiet: float = 0.3) -> list[dict]:
    """Everything that arrives until the connection is quiet for ``quiet`` seconds."""
    out = []
    while True:
        try:
            data = await asyncio.wait_for(conn.recv(), quiet)
        except TimeoutError:
            return out
        out.append(jwt.decode(data, secret, algorithms=["HS256"]) if secret else json.loads(data))


# --------------------------------------------------------------------------- REST basics
@pytest.mark.parametrize("key", [None, "not-the-key"])
async def test_requests_need_the_bearer_key(dialpad_env, key) -> None:
    async with http(dialpad_env, key) as api:
        r = await api.get("/api/v2/users")
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["code"] == 401 and error["message"] and error["errors"][0]["reason"] == "required"


async def test_bad_bodies_get_400_with_a_message(dialpad_env, dialpad_key) -> None:
    async with http(dialpad_env, dialpad_key) as api:
        ws = (await api.post("/api/v2/websockets", json={})).json()
        cases = [
            (b"{not json", "not valid JSON"),
            (b"[1,2]", "must be a JSON object"),
            (json.dumps({"websocket_id": ws["id"]}).encode(), "Unknown field(s): websocket_id"),
            (json.dumps({"endpoint_id": "abc"}).encode(), "endpoint_id must be an integer id"),
            (json.dumps({"endpoint_id": 1}).encode(), "does not match any webhook or websocket"),
            (json.dumps({"endpoint_id": ws["id"], "call_states": ["ringing", "exploded"]}).encode(), "exploded"),
            (json.dumps({"endpoint_id": ws["id"], "target_type": "user"}).encode(), "given together"),
        ]
        for body, message in cases:
            r = await api.post(
                "/api/v2/subscriptions/call", content=body, headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 400, body
            assert message in r.json()["error"]["message"]
        r = await api.get("/api/v2/websockets/not-a-number")
        assert r.status_code == 400
        r = await api.get("/api/v2/no-such-thing")
        assert r.status_code == 404 and r.json()["error"]["code"] == 404


async def test_ids_may_be_strings_or_integers(dialpad_env, dialpad_key) -> None:
    agent = dialpad_env.agent_ids[0]
    async with http(dialpad_env, dialpad_key) as api:
        ws = (await api.post("/api/v2/websockets", json={})).json()
        as_str = await api.post(
            "/api/v2/subscriptions/call", json={"endpoint_id": ws["id"], "target_type": "user", "target_id": agent}
        )
        as_int = await api.post(
            "/api/v2/subscriptions/call",
            json={"endpoint_id": int(ws["id"]), "target_type": "user", "target_id": int(agent)},
        )
    assert as_str.status_code == as_int.status_code == 200
    assert as_str.json()["target_id"] == as_int.json()["target_id"] == agent


async def test_users_paginate_with_a_cursor(dialpad_env_factory, dialpad_key) -> None:
    env = dialpad_env_factory(page_size=4)
    async with http(env, dialpad_key) as api:
        first = (await api.get("/api/v2/users")).json()
        second = (await api.get("/api/v2/users", params={"cursor": first["cursor"]})).json()
        bad = await api.get("/api/v2/users", params={"cursor": "garbage!"})
    assert len(first["items"]) == 4 and len(second["items"]) == 2 and "cursor" not in second
    assert bad.status_code == 400


# --------------------------------------------------------------------------- calls
async def test_call_center_call_rings_available_operators_on_legs_sharing_the_entry_point(dialpad_env) -> None:
    sim: DialpadSimulator = dialpad_env.sim
    scheduling = [a.id for a in sim.agents.values() if SCHEDULING_ID in a.call_center_ids]
    await dialpad_env.run(sim.set_duty_status(scheduling[1], "unavailable", "Lunch"))

    call_id = await dialpad_env.run(sim.ring(CALLER, call_center_id=SCHEDULING_ID))
    info = sim.call_info(call_id)
    rung = {leg.user_id for leg in info.legs if leg.user_id}
    assert rung == set(scheduling) - {scheduling[1]}
    assert info.state == "queued"

    operator_legs = [p for k, p in sim.emitted if k == "call" and p["state"] == "ringing"]
    assert {p["entry_point_call_id"] for p in operator_legs} == {int(call_id)}
    assert {p["master_call_id"] for p in operator_legs} == {int(call_id)}
    assert len({p["call_id"] for p in operator_legs}) == len(rung)

    leg_id = await dialpad_env.run(sim.answer(call_id, scheduling[0]))
    info = sim.call_info(call_id)
    states = {leg.user_id: leg.state for leg in info.legs if leg.user_id}
    assert states[scheduling[0]] == "connected"
    assert all(s == "hangup" for u, s in states.items() if u != scheduling[0])
    assert info.answered_by == scheduling[0] and sim.duty_status(scheduling[0]) == "occupied"
    entry_connected = [p for k, p in sim.emitted if k == "call" and p["call_id"] == int(call_id)][-1]
    assert entry_connected["state"] == "connected" and entry_connected["operator_call_id"] == int(leg_id)

    assert [c.call_id for c in sim.active_calls()] == [call_id]
    await dialpad_env.run(sim.hangup(call_id))
    assert sim.active_calls() == []
    assert sim.duty_status(scheduling[0]) == "available"  # occupied-end: back on duty
    ended = [p for k, p in sim.emitted if k == "call" and p["state"] in ("hangup", "missed")]
    assert all(p["date_ended"] >= p["date_started"] for p in ended)


async def test_queued_call_is_offered_when_an_operator_becomes_available(dialpad_env) -> None:
    sim = dialpad_env.sim
    billing = [a.id for a in sim.agents.values() if BILLING_ID in a.call_center_ids]
    for uid in billing:
        await dialpad_env.run(sim.set_duty_status(uid, "unavailable"))
    call_id = await dialpad_env.run(sim.ring(CALLER, call_center_id=BILLING_ID))
    assert [leg.user_id for leg in sim.call_info(call_id).legs] == [None]
    await dialpad_env.run(sim.set_duty_status(billing[2], "available"))
    assert [leg.user_id for leg in sim.call_info(call_id).legs] == [None, billing[2]]


async def test_direct_call_and_abandoned_ring(dialpad_env) -> None:
    sim = dialpad_env.sim
    agent = dialpad_env.agent_ids[4]
    call_id = await dialpad_env.run(sim.ring("anonymous", user_id=agent))
    assert [p["state"] for k, p in sim.emitted if k == "call"] == ["preanswer", "ringing"]
    await dialpad_env.run(sim.hangup(call_id))
    last = [p for k, p in sim.emitted if k == "call"][-1]
    assert last["state"] == "missed" and last["external_number"] == "anonymous"
    with pytest.raises(ValueError):
        await dialpad_env.run(sim.answer(call_id))


def test_control_api_rejects_nonsense() -> None:
    agents, centers = default_roster()
    sim = DialpadSimulator("k", agents, centers)
    with pytest.raises(ValueError):
        asyncio.run(sim.ring(CALLER, user_id=agents[0].id, call_center_id=centers[0].id))
    with pytest.raises(ValueError):
        asyncio.run(sim.set_duty_status(agents[0].id, "napping"))
    with pytest.raises(ValueError):
        asyncio.run(sim.answer("42"))


# --------------------------------------------------------------------------- routing & delivery
async def test_events_reach_only_matching_subscriptions(dialpad_env, dialpad_key) -> None:
    sim = dialpad_env.sim
    avery, jordan = dialpad_env.agent_ids[0], dialpad_env.agent_ids[1]
    _, avery_ws = await open_socket(dialpad_env, dialpad_key, target_type="user", target_id=avery)
    _, jordan_ws = await open_socket(dialpad_env, dialpad_key, target_type="user", target_id=jordan)
    _, hangups = await open_socket(dialpad_env, dialpad_key, call_states=["hangup"])
    _, billing_ws = await open_socket(dialpad_env, dialpad_key, target_type="callcenter", target_id=BILLING_ID)
    await dialpad_env.run(sim.wait_for_listener(avery, timeout=2))

    call_id = await dialpad_env.run(sim.ring(CALLER, call_center_id=SCHEDULING_ID))
    await dialpad_env.run(sim.answer(call_id, avery))
    await dialpad_env.run(sim.hangup(call_id))

    got_avery = await frames(avery_ws)
    assert [p["state"] for p in got_avery] == ["ringing", "connected", "hangup", "postcall"]
    assert {p["target"]["id"] for p in got_avery} == {int(avery)}
    assert [p["state"] for p in await frames(jordan_ws)] == ["ringing", "hangup"]  # offered, then withdrawn
    got_hangups = await frames(hangups)
    assert got_hangups and {p["state"] for p in got_hangups} == {"hangup"}
    assert await frames(billing_ws, quiet=0.1) == []
    for conn in (avery_ws, jordan_ws, hangups, billing_ws):
        await conn.close()


async def test_signed_frames_and_agent_status_events(dialpad_env, dialpad_key) -> None:
    sim = dialpad_env.sim
    secret = "sim-test-secret-0123456789abcdef0123"
    ws_id, conn = await open_socket(dialpad_env, dialpad_key, secret=secret, target_type="user", target_id=dialpad_env.agent_ids[5])
    async with http(dialpad_env, dialpad_key) as api:
        r = await api.post("/api/v2/subscriptions/agent_status", json={"endpoint_id": ws_id, "agent_type": "callcenter"})
        assert r.status_code == 200
    await dialpad_env.run(sim.set_duty_status(dialpad_env.agent_ids[0], "busy", "Training"))
    raw = await asyncio.wait_for(conn.recv(), 2)
    assert raw.count(".") == 2  # a compact JWT
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(raw, "wrong-secret-0123456789abcdef0123456", algorithms=["HS256"])
    payload = jwt.decode(raw, secret, algorithms=["HS256"])
    assert payload["on_duty_status"] == "busy" and payload["on_duty_status_reason"] == "Training"
    assert payload["target"]["id"] == int(dialpad_env.agent_ids[0])
    await conn.close()


# --------------------------------------------------------------------------- websocket URLs
async def test_token_expiry_closes_the_connection_and_get_gives_a_fresh_url(dialpad_env_factory, dialpad_key) -> None:
    env = dialpad_env_factory(websocket_lifetime=0.6)
    async with http(env, dialpad_key) as api:
        created = (await api.post("/api/v2/websockets", json={})).json()
        conn = await websockets.connect(created["websocket_url"], proxy=None)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(conn.recv(), 3)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(created["websocket_url"], proxy=None)
        assert refused.value.response.status_code == 401

        fresh = (await api.get(f"/api/v2/websockets/{created['id']}")).json()
        assert fresh["websocket_url"] != created["websocket_url"]
        conn = await websockets.connect(fresh["websocket_url"], proxy=None)
        assert env.sim.open_connections() == 1
        await conn.close()

        forged = created["websocket_url"].rsplit("/", 1)[0] + "/" + jwt.encode({"sub": "x"}, "k" * 32)
        with pytest.raises(InvalidStatus):
            await websockets.connect(forged, proxy=None)


async def test_drop_websockets_cuts_connections_abruptly(dialpad_env, dialpad_key) -> None:
    _, conn = await open_socket(dialpad_env, dialpad_key)
    await asyncio.sleep(0.05)
    assert await dialpad_env.run(dialpad_env.sim.drop_websockets()) == 1
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(conn.recv(), 2)
    assert closed.value.rcvd is None  # no close frame: the TCP connection just went away


async def test_deleting_a_websocket_removes_its_subscriptions(dialpad_env, dialpad_key) -> None:
    ws_id, conn = await open_socket(dialpad_env, dialpad_key)
    async with http(dialpad_env, dialpad_key) as api:
        assert (await api.delete(f"/api/v2/websockets/{ws_id}")).status_code == 200
        assert (await api.get("/api/v2/subscriptions/call")).json()["items"] == []
        assert (await api.get(f"/api/v2/websockets/{ws_id}")).status_code == 404
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(conn.recv(), 2)


# --------------------------------------------------------------------------- call state machine
def call_states(sim, call_id: str) -> list[tuple[int, str]]:
    return [(p["call_id"], p["state"]) for k, p in sim.emitted if k == "call" and p["entry_point_call_id"] == int(call_id)]


async def test_an_unanswered_offer_is_missed_and_an_unanswered_call_goes_to_voicemail(dialpad_env_factory) -> None:
    env = dialpad_env_factory(ring_timeout=0.15)
    sim = env.sim
    direct = await env.run(sim.ring(CALLER, user_id=env.agent_ids[0]))
    queued = await env.run(sim.ring(CALLER, call_center_id=BILLING_ID))
    offered = [leg.call_id for leg in sim.call_info(queued).legs if leg.kind == "offer"]
    assert len(offered) == 4
    await asyncio.sleep(0.4)
    assert [s for _, s in call_states(sim, direct)] == ["preanswer", "ringing", "missed", "voicemail"]
    states = call_states(sim, queued)
    assert {s for c, s in states if str(c) in offered} == {"ringing", "missed"}
    assert states[-1] == (int(queued), "voicemail")
    assert sim.active_calls() == []


async def test_a_transfer_rings_the_target_and_moves_the_call_when_answered(dialpad_env_factory, dialpad_key) -> None:
    env = dialpad_env_factory(transfer_answer_delay=None)
    sim = env.sim
    avery, jordan = env.agent_ids[:2]
    call_id = await env.run(sim.ring(CALLER, user_id=avery))
    await env.run(sim.answer(call_id, avery))
    answer = await env.run(sim.transfer(call_id, user_id=jordan, transfer_state="hold", custom_data="ref-1"))
    assert answer == {"call_id": call_id, "transferred_to_number": sim.agents[jordan].phone, "transferred_to_state": "hold"}
    legs = {leg.kind: leg for leg in sim.call_info(call_id).legs}
    assert (legs["entry"].state, legs["transfer"].state, legs["transfer"].is_transferred) == ("hold", "ringing", True)
    new_leg = await env.run(sim.answer(call_id, jordan))
    info = sim.call_info(call_id)
    assert info.answered_by == jordan and not info.ended and info.custom_data == "ref-1"
    assert [(leg.user_id, leg.state) for leg in info.legs] == [(avery, "hangup"), (jordan, "connected")]
    transferred = [p for k, p in sim.emitted if k == "call" and p["call_id"] == int(new_leg)]
    assert all(p["is_transferred"] and p["master_call_id"] == int(call_id) for p in transferred)
    assert call_states(sim, call_id)[-2:] == [(int(call_id), "hangup"), (int(call_id), "postcall")]
    async with http(env, dialpad_key) as api:  # the customer call is still up, whatever the first leg did
        assert (await api.get(f"/api/v2/call/{call_id}")).json()["state"] == "connected"
    with pytest.raises(ValueError):
        await env.run(sim.transfer(call_id, user_id=avery, call_center_id=BILLING_ID))


async def test_an_unanswered_transfer_leaves_the_call_with_the_first_agent(dialpad_env_factory) -> None:
    env = dialpad_env_factory(ring_timeout=0.1, transfer_answer_delay=None)
    sim = env.sim
    avery, jordan = env.agent_ids[:2]
    call_id = await env.run(sim.ring(CALLER, user_id=avery))
    await env.run(sim.answer(call_id, avery))
    await env.run(sim.transfer(call_id, user_id=jordan, transfer_state="hold"))
    await asyncio.sleep(0.3)
    assert [(leg.user_id, leg.state) for leg in sim.call_info(call_id).legs] == [(avery, "connected"), (jordan, "missed")]


async def test_auto_answer_skips_controlled_agents(dialpad_env_factory) -> None:
    env = dialpad_env_factory(transfer_answer_delay=0.05, controlled_agents=[default_roster().agents[1].id])
    sim = env.sim
    avery, jordan, riley = env.agent_ids[:3]
    first = await env.run(sim.ring(CALLER, user_id=avery))
    await env.run(sim.answer(first, avery))
    await env.run(sim.transfer(first, user_id=jordan))  # controlled: keeps ringing
    second = await env.run(sim.ring(CALLER, user_id=riley))
    await env.run(sim.answer(second, riley))
    await env.run(sim.transfer(second, user_id=avery))  # simulated: answers by itself
    await asyncio.sleep(0.2)
    assert sim.call_info(first).answered_by == avery
    assert sim.call_info(second).answered_by == avery


async def test_rest_faults_latency_rate_limits_and_key_rotation(dialpad_env_factory, dialpad_key) -> None:
    env = dialpad_env_factory(latency=0.1)
    sim = env.sim
    async with http(env, dialpad_key) as api:
        started = asyncio.get_running_loop().time()
        assert (await api.get("/api/v2/callcenters")).status_code == 200
        assert asyncio.get_running_loop().time() - started >= 0.1
        await env.run(sim.set_latency(0))
        avery = env.agent_ids[0]
        for n in range(5):
            r = await api.post(f"/api/v2/users/{avery}/screenpop", json={"screen_pop_uri": f"https://ehr.example/{n}"})
            assert r.status_code == 200
        limited = await api.post(f"/api/v2/users/{avery}/screenpop", json={"screen_pop_uri": "https://ehr.example/6"})
        assert limited.status_code == 429 and 50 <= int(limited.headers["Retry-After"]) <= 60
        assert len(sim.screen_pops[avery]) == 5

        await env.run(sim.inject_fault(502, times=3, path="/api/v2/callcenters"))
        assert [(await api.get("/api/v2/callcenters")).status_code for _ in range(4)] == [502, 502, 502, 200]

        await env.run(sim.expire_key_at(sim._clock() + 0.1))  # noqa: SLF001 - the simulator's own clock
        assert (await api.get("/api/v2/users")).status_code == 200
        await asyncio.sleep(0.15)
        expired = await api.get("/api/v2/users")
        assert expired.status_code == 401 and expired.json()["error"]["message"] == "API key expired"
        await env.run(sim.rotate_key("fresh-key-0123456789abcdef01234"))
        assert (await api.get("/api/v2/users")).status_code == 401  # the old key stays dead
    async with http(env, "fresh-key-0123456789abcdef01234") as api:
        assert (await api.get("/api/v2/users")).status_code == 200


async def test_webhook_crud_and_subscriptions(dialpad_env, dialpad_key) -> None:
    async with http(dialpad_env, dialpad_key) as api:
        hook = (await api.post("/api/v2/webhooks", json={"hook_url": "https://hooks.example/dialpad", "secret": "s" * 32})).json()
        assert hook["signature"] == {"algo": "HS256", "secret": "s" * 32, "type": "jwt"}
        sub = await api.post("/api/v2/subscriptions/call", json={"endpoint_id": hook["id"], "call_states": ["ringing"]})
        assert sub.status_code == 200 and sub.json()["webhook"]["id"] == hook["id"]
        assert (await api.post("/api/v2/webhooks", json={"secret": "x"})).status_code == 400
        patched = (await api.patch(f"/api/v2/webhooks/{hook['id']}", json={"hook_url": "https://hooks.example/v2"})).json()
        assert patched["hook_url"] == "https://hooks.example/v2"
        await dialpad_env.run(dialpad_env.sim.ring(CALLER, user_id=dialpad_env.agent_ids[0]))
        await asyncio.sleep(0.05)
        assert list(dialpad_env.sim.webhook_deliveries) == [(hook["id"], "not delivered: the simulator only calls loopback")]
        assert (await api.delete(f"/api/v2/webhooks/{hook['id']}")).status_code == 200
        assert (await api.get("/api/v2/subscriptions/call")).json()["items"] == []
