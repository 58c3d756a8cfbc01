"""Outbound requests and simulator responses, validated against Dialpad's official OpenAPI document."""

from __future__ import annotations

import re

import httpx
import pytest

from pa_tui.backends.base import LinkStatus
from pa_tui.backends.dialpad.telephony import DialpadTelephony
from pa_tui.demo.dialpad_sim import SCHEDULING_ID


def spec_path(spec, method: str, path: str) -> str:
    """The spec's path template for a concrete request path (most literal segments wins)."""
    candidates = []
    for template, operations in spec.document["paths"].items():
        if method.lower() not in operations:
            continue
        pattern = "^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            candidates.append((sum(1 for seg in template.split("/") if "{" not in seg), template))
    assert candidates, f"{method} {path} is not an operation of Dialpad's API"
    return max(candidates)[1]


def validate_recorded_requests(spec, requests) -> int:
    """Every body the simulator received validates against its operation's request schema."""
    checked = 0
    for request in requests:
        template = spec_path(spec, request.method, request.path)
        operation = spec.operation(template, request.method)
        if request.method in ("POST", "PATCH", "PUT"):
            assert "requestBody" in operation, f"{request.method} {template} takes no body"
            schema = spec.request_schema(template, request.method)
            errors = spec.errors(request.body, schema)
            assert not errors, f"{request.method} {template}: {errors}"
            checked += 1
        known = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert set(request.query) <= known, f"{request.method} {template}: unknown query {set(request.query) - known}"
    return checked


def test_the_validator_bites(dialpad_spec) -> None:
    """A sanity check of the schema conversion: wrong field names and types are caught."""
    schema = dialpad_spec.request_schema("/api/v2/subscriptions/call", "POST")
    assert dialpad_spec.errors({"endpoint_id": 12, "call_states": ["ringing"]}, schema) == []
    assert dialpad_spec.errors({"endpoint_id": "12"}, schema) == []  # int64 as a string of digits
    assert dialpad_spec.errors({"websocket_id": 12}, schema)  # the field is endpoint_id
    assert dialpad_spec.errors({"endpoint_id": 12, "call_states": ["exploded"]}, schema)
    assert dialpad_spec.errors({"endpoint_id": 12, "target_type": "planet"}, schema)
    agent_schema = dialpad_spec.request_schema("/api/v2/subscriptions/agent_status", "POST")
    assert dialpad_spec.errors({"endpoint_id": 12}, agent_schema)  # agent_type is required


async def test_client_requests_validate_against_the_spec(dialpad_env, dialpad_spec) -> None:
    agent = dialpad_env.agent_ids[0]
    async with dialpad_env.client() as client:
        ws = await client.create_websocket("spec-secret-0123456789abcdef01234")
        await client.create_websocket()
        await client.update_websocket(ws.id, "rotated-secret-0123456789abcdef012")
        await client.subscribe_calls(ws.id, ["ringing", "connected", "hangup"], "user", agent)
        await client.subscribe_calls(ws.id, None, "callcenter", SCHEDULING_ID, group_calls_only=True)
        await client.subscribe_calls(ws.id)
        await client.subscribe_agent_status(ws.id)
        await client.set_duty_status(agent, False, "Lunch")
        await client.set_duty_status(agent, True)
        await client.list_call_subscriptions(target_type="user", target_id=agent)
        await client.list_users(email="avery.quinn@clinic.example")
    assert all(r.status == 200 for r in dialpad_env.sim.requests), [(r.path, r.status) for r in dialpad_env.sim.requests]
    assert validate_recorded_requests(dialpad_spec, dialpad_env.sim.requests) == 9


async def test_telephony_setup_requests_validate_against_the_spec(dialpad_env, dialpad_spec) -> None:
    telephony = DialpadTelephony(dialpad_env.client(), user_id=dialpad_env.agent_ids[0])
    stream = telephony.events()
    async for state in stream:
        if getattr(state, "status", None) is LinkStatus.CONNECTED:
            break
    await stream.aclose()
    await telephony.aclose()
    assert validate_recorded_requests(dialpad_spec, dialpad_env.sim.requests) == 3  # websocket + 2 subscriptions


# --------------------------------------------------------------------------- responses
async def _setup_objects(api: httpx.AsyncClient, agent: str) -> dict[str, str]:
    ws = (await api.post("/api/v2/websockets", json={"secret": "resp-secret-0123456789abcdef0123"})).json()
    call_sub = (
        await api.post(
            "/api/v2/subscriptions/call",
            json={"endpoint_id": ws["id"], "call_states": ["ringing"], "target_type": "user", "target_id": agent},
        )
    ).json()
    agent_sub = (
        await api.post("/api/v2/subscriptions/agent_status", json={"endpoint_id": ws["id"], "agent_type": "callcenter"})
    ).json()
    return {"ws": ws["id"], "call_sub": call_sub["id"], "agent_sub": agent_sub["id"]}


RESPONSE_CASES = [
    ("GET", "/api/v2/users", None, None),
    ("GET", "/api/v2/users/{agent}", None, "/api/v2/users/{id}"),
    ("GET", "/api/v2/callcenters", None, None),
    ("GET", "/api/v2/callcenters/operators/{agent}/dutystatus", None, "/api/v2/callcenters/operators/{id}/dutystatus"),
    (
        "PATCH",
        "/api/v2/callcenters/operators/{agent}/dutystatus",
        {"on_duty": False, "duty_status_reason": "Lunch"},
        "/api/v2/callcenters/operators/{id}/dutystatus",
    ),
    ("POST", "/api/v2/websockets", {"secret": "another-secret-0123456789abcdef01"}, None),
    ("POST", "/api/v2/websockets", {}, None),
    ("GET", "/api/v2/websockets", None, None),
    ("GET", "/api/v2/websockets/{ws}", None, "/api/v2/websockets/{id}"),
    ("PATCH", "/api/v2/websockets/{ws}", {"secret": "patched-secret-0123456789abcdef0"}, "/api/v2/websockets/{id}"),
    ("GET", "/api/v2/subscriptions/call", None, None),
    ("GET", "/api/v2/subscriptions/call/{call_sub}", None, "/api/v2/subscriptions/call/{id}"),
    ("PATCH", "/api/v2/subscriptions/call/{call_sub}", {"enabled": False}, "/api/v2/subscriptions/call/{id}"),
    ("POST", "/api/v2/subscriptions/call", {"endpoint_id": "{ws}"}, None),
    ("GET", "/api/v2/subscriptions/agent_status", None, None),
    ("GET", "/api/v2/subscriptions/agent_status/{agent_sub}", None, "/api/v2/subscriptions/agent_status/{id}"),
    (
        "PATCH",
        "/api/v2/subscriptions/agent_status/{agent_sub}",
        {"enabled": True},
        "/api/v2/subscriptions/agent_status/{id}",
    ),
    ("DELETE", "/api/v2/subscriptions/call/{call_sub}", None, "/api/v2/subscriptions/call/{id}"),
    ("DELETE", "/api/v2/subscriptions/agent_status/{agent_sub}", None, "/api/v2/subscriptions/agent_status/{id}"),
    ("DELETE", "/api/v2/websockets/{ws}", None, "/api/v2/websockets/{id}"),
]


async def test_simulator_responses_validate_against_the_spec(dialpad_env, dialpad_key, dialpad_spec) -> None:
    agent = dialpad_env.agent_ids[2]
    async with httpx.AsyncClient(
        base_url=dialpad_env.base_url, headers={"Authorization": f"Bearer {dialpad_key}"}
    ) as api:
        ids = await _setup_objects(api, agent)
        ids["agent"] = agent
        await dialpad_env.run(dialpad_env.sim.ring("+14155550199", call_center_id=SCHEDULING_ID))  # busy state
        failures = []
        for method, path, body, template in RESPONSE_CASES:
            url = path.format(**ids)
            payload = {k: (v.format(**ids) if isinstance(v, str) and v.startswith("{") else v) for k, v in (body or {}).items()}
            response = await api.request(method, url, json=payload if body is not None else None)
            assert response.status_code == 200, (method, url, response.text)
            schema = dialpad_spec.response_schema(template or path, method)
            errors = dialpad_spec.errors(response.json(), schema)
            if errors:
                failures.append((method, template or path, errors))
            if body is not None:
                request_schema = dialpad_spec.request_schema(template or path, method)
                assert not dialpad_spec.errors(payload, request_schema), (method, path)
    assert not failures, failures


@pytest.mark.parametrize("fault", [400, 401, 404, 429, 500])
async def test_error_bodies_share_one_envelope(dialpad_env, dialpad_key, fault) -> None:
    await dialpad_env.run(dialpad_env.sim.inject_fault(fault, retry_after=1 if fault == 429 else None))
    async with httpx.AsyncClient(
        base_url=dialpad_env.base_url, headers={"Authorization": f"Bearer {dialpad_key}"}
    ) as api:
        response = await api.get("/api/v2/users")
    assert response.status_code == fault
    error = response.json()["error"]
    assert error["code"] == fault and isinstance(error["message"], str) and error["errors"][0]["message"]
    if fault == 429:
        assert response.headers["Retry-After"] == "1"
