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
