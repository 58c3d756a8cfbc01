"""Outbound requests and simulator responses, validated against Dialpad's official OpenAPI document."""

from __future__ import annotations

import re

import httpx
import pytest

from pa_tui.backends.base import LinkStatus
from pa_tui.backends.dialpad.client import OPERATIONS
from pa_tui.backends.dialpad.telephony import DialpadTelephony
from pa_tui.demo.dialpad_sim import BILLING_ID, SCHEDULING_ID


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


# --------------------------------------------------------------------------- every request and response
def exchange_errors(spec, request) -> list[str]:
    """Everything wrong with one recorded exchange: operation, path parameters, query, body, response."""
    template = spec_path(spec, request.method, request.path)
    operation = spec.operation(template, request.method)
    where = f"{request.method} {template}"
    errors: list[str] = []
    if request.operation is not None and request.operation != operation["operationId"]:
        errors.append(f"{where}: the simulator routed it as {request.operation}, the spec says {operation['operationId']}")
    parameters = operation.get("parameters", [])
    for part, value in zip(template.split("/"), request.path.split("/"), strict=True):
        if part.startswith("{"):
            param = next(p for p in parameters if p["in"] == "path" and p["name"] == part[1:-1])
            typed: object = int(value) if param["schema"].get("type") == "integer" and value.isdigit() else value
            errors += [f"{where} path {part}: {e}" for e in spec.errors(typed, spec.convert(param["schema"]))]
    query = {p["name"]: p for p in parameters if p["in"] == "query"}
    for name, value in request.query.items():
        if name not in query:
            errors.append(f"{where}: unknown query parameter {name}")
            continue
        schema = query[name]["schema"]
        typed = int(value) if schema.get("type") == "integer" and value.lstrip("-").isdigit() else value
        errors += [f"{where} query {name}: {e}" for e in spec.errors(typed, spec.convert(schema))]
    if "requestBody" in operation:
        if request.body is None:
            if operation["requestBody"].get("required"):
                errors.append(f"{where}: the body is required")
        else:
            errors += [f"{where} body: {e}" for e in spec.errors(request.body, spec.request_schema(template, request.method))]
    elif request.body is not None:
        errors.append(f"{where}: takes no body, got one")
    if request.status == 200:
        content = operation["responses"]["200"].get("content")
        if content:
            schema = spec.response_schema(template, request.method)
            errors += [f"{where} response: {e}" for e in spec.errors(request.response, schema)]
        elif request.response is not None:
            errors.append(f"{where}: the spec gives no response body, the simulator sent one")
    return errors


def test_the_operation_table_matches_the_spec(dialpad_spec) -> None:
    """Each budget is the limit the operation's description states; only idempotent methods are retried."""
    for name, op in OPERATIONS.items():
        spec_op = dialpad_spec.operation(op.path, op.method)
        found = re.search(r"Rate limit: (\d+) per minute", spec_op["description"])
        assert found, name
        assert (op.limit.count, op.limit.period) == (int(found.group(1)), 60.0), name
        assert op.idempotent == (op.method in ("GET", "PUT", "PATCH", "DELETE")), name
    assert OPERATIONS["initiate_call"].limit.count == 5
    assert OPERATIONS["screen_pop"].limit.count == 5
    assert OPERATIONS["get_call"].limit.count == 10
    scope = re.search(r"Requires scope: ``(\w+)``", dialpad_spec.operation("/api/v2/users/{id}/screenpop", "POST")["description"])
    assert scope and scope.group(1) in (OPERATIONS["screen_pop"].needs or "")


def test_the_validator_bites_on_call_bodies(dialpad_spec) -> None:
    ring = dialpad_spec.request_schema("/api/v2/call", "POST")
    assert dialpad_spec.errors({"user_id": 1, "phone_number": "+14155550123"}, ring) == []
    assert dialpad_spec.errors({"user_id": 1}, ring)  # phone_number is required
    assert dialpad_spec.errors({"user_id": 1, "phone_number": "+1", "caller_id": "x"}, ring)
    transfer = dialpad_spec.request_schema("/api/v2/call/{id}/transfer", "POST")
    assert dialpad_spec.errors({"to": {"target_type": "user", "target_id": 2}}, transfer) == []
    assert dialpad_spec.errors({"to": {"number": "+14155550123"}, "transfer_state": "hold"}, transfer) == []
    assert dialpad_spec.errors({"to": {"target_type": "user"}}, transfer)  # target_id missing
    assert dialpad_spec.errors({"to": {"number": "+1", "target_id": 2}}, transfer)  # two destinations
    assert dialpad_spec.errors({"to": {"number": "+14155550123"}, "transfer_state": "ringing"}, transfer)


async def test_every_client_request_and_response_matches_the_spec(dialpad_env_factory, dialpad_spec) -> None:
    """Each of DialpadClient's methods, against the simulator: every request it sends and every answer
    it reads validate against the official document (strictly: no field the spec does not list)."""
    env = dialpad_env_factory(transfer_answer_delay=None, outbound_answer_delay=None)
    sim = env.sim
    avery, jordan, riley = env.agent_ids[:3]
    connected = []
    for _ in range(3):
        call_id = await env.run(sim.ring("+14155550199", user_id=avery))
        await env.run(sim.answer(call_id, avery))
        connected.append(call_id)
    async with env.client() as client:
        await client.get_user(avery)
        await client.list_users(email="avery.quinn@clinic.example", state="active")
        await client.set_user_status(avery, "Back at 2", expiration=3600)
        await client.set_user_status(avery, "")
        await client.screen_pop(avery, "https://ehr.example/chart?patient=123")
        await client.list_call_centers()
        await client.list_operators(SCHEDULING_ID)
        await client.call_center_status(SCHEDULING_ID)
        await client.get_duty_status(avery)
        await client.set_duty_status(avery, False, "Lunch")
        await client.set_duty_status(avery, True)
        dialled = await client.initiate_call(avery, "+14155550123")
        await client.initiate_call(
            avery, "+14155550124", outbound_caller_id="+14155550110", group_id=SCHEDULING_ID,
            group_type="callcenter", custom_data="ref=abc", is_consult=False,
        )
        await client.get_call(dialled)
        await client.get_call(connected[0])
        await client.transfer(connected[0], user_id=jordan, custom_data="handoff:H1", transfer_state="hold")
        await client.transfer(connected[1], call_center_id=BILLING_ID)
        await client.transfer(connected[2], number="+14155550177", transfer_state="preanswer")
        await client.set_call_labels(connected[0], ["billing", "follow-up"])
        await client.hangup(dialled)
        await client.request_callback(SCHEDULING_ID, "+14155550188")
        ws = await client.create_websocket("spec-secret-0123456789abcdef01234")
        await client.get_websocket(ws.id)
        await client.update_websocket(ws.id, "rotated-secret-0123456789abcdef012")
        await client.list_websockets()
        hook = await client.create_webhook("http://127.0.0.1:9/dialpad/events", "hook-secret-0123456789abcdef0123")
        await client.get_webhook(hook.id)
        await client.update_webhook(hook.id, hook_url="http://127.0.0.1:9/dialpad/events2")
        await client.list_webhooks()
        call_sub = await client.subscribe_calls(ws.id, ["ringing", "hangup"], "user", riley)
        await client.subscribe_calls(hook.id, None, "callcenter", SCHEDULING_ID, group_calls_only=True)
        await client.subscribe_agent_status(ws.id)
        subs = await client.list_subscriptions(endpoint_id=ws.id)
        await client.list_call_subscriptions(target_type="user", target_id=riley)
        await client.delete_subscription(next(s for s in subs if s.id == call_sub.id))
        await client.delete_subscription(next(s for s in subs if s.id != call_sub.id))
        await client.delete_webhook(hook.id)
        await client.delete_websocket(ws.id)
    recorded = list(sim.requests)
    assert all(r.status == 200 for r in recorded), [(r.method, r.path, r.status, r.response) for r in recorded if r.status != 200]
    problems = [e for r in recorded for e in exchange_errors(dialpad_spec, r)]
    assert not problems, problems
    covered = {(r.method, spec_path(dialpad_spec, r.method, r.path)) for r in recorded}
    assert {(op.method, op.path) for op in OPERATIONS.values()} <= covered  # every operation the client has
