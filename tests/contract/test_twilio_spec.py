"""TwilioClient and the Twilio simulator against Twilio's official OpenAPI document (openapi-core).

- every request the client can send is one the spec accepts (path, method, auth, form body with its
  required fields, and no field the spec does not define);
- every simulator answer validates against the spec's response schema, with every documented property;
- requests the spec rejects, the simulator rejects too (400 with Twilio's error body).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from twilio_fixtures import (
    AC,
    KEY_SECRET,
    LANDLINE,
    MG,
    OURS,
    PATIENT,
    SK,
    TOKEN,
    Recorder,
    TwilioSpec,
    load_spec,
    make_simulator,
)

from pa_tui.backends.twilio import TwilioBadRequest, TwilioClient
from pa_tui.demo.twilio_sim import CALL_FIELDS, MESSAGE_FIELDS, TwilioSimulator
from pa_tui.domain.phones import parse_phone

MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
CALLS_PATH = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
MESSAGE_SCHEMA = "api.v2010.account.message"
CALL_SCHEMA = "api.v2010.account.call"


@pytest.fixture(scope="module")
def spec() -> TwilioSpec:
    return load_spec()


def no_webhooks(request: httpx.Request) -> httpx.Response:
    """Status callbacks stay in-process here (the loopback tests cover them for real)."""
    return httpx.Response(204)


@pytest.fixture
async def sim() -> AsyncIterator[TwilioSimulator]:
    simulator = make_simulator(webhook_transport=httpx.MockTransport(no_webhooks), callback_delay=0.0)
    yield simulator
    await simulator.aclose()


def recorded_client(sim: TwilioSimulator, **kwargs: Any) -> tuple[TwilioClient, Recorder]:
    recorder = Recorder(httpx.ASGITransport(app=sim.app))
    if "api_key" not in kwargs:
        kwargs.setdefault("auth_token", TOKEN)
    client = TwilioClient(account_sid=AC, base_url="http://twilio.sim", transport=recorder, **kwargs)
    return client, recorder


async def every_client_request(sim: TwilioSimulator, client: TwilioClient) -> None:
    """Everything TwilioClient can send, once each (plus the follow-up fetches)."""
    patient = parse_phone(PATIENT)
    a = await client.send_sms(patient, "Reminder: Tue 9:30 with Dr Lee. Reply C to confirm.", from_=OURS)
    b = await client.send_sms(patient, "Via the service", messaging_service_sid=MG,
                              status_callback="https://pa.example.org/twilio/status")
    c = await client.send_sms(parse_phone(LANDLINE), "Both sender forms", from_=OURS, messaging_service_sid=MG,
                              status_callback="https://pa.example.org/twilio/status?site=north")
    d = await client.start_confirmation_call(patient, from_=OURS, twiml_url="https://pa.example.org/twilio/confirm")
    e = await client.start_confirmation_call(
        patient, from_=OURS, twiml="<Response><Say>Press 1 to confirm.</Say><Gather numDigits=\"1\"/></Response>",
        status_callback="https://pa.example.org/twilio/call-status",
        status_callback_events=("initiated", "ringing", "answered", "completed"), timeout=20,
    )
    await sim.drain()
    for sid in (a.sid, b.sid, c.sid):
        await client.get_message(sid)
    for sid in (d.sid, e.sid):
        await client.get_call(sid)
    await client.check()


def operation_for(spec: TwilioSpec, request: httpx.Request) -> tuple[str, str]:
    path = request.url.path.replace(AC, "{AccountSid}", 1)
    if path.endswith("{AccountSid}.json"):
        path = path.replace("{AccountSid}", "{Sid}")
    for template in spec.document["paths"]:
        pattern = template.replace("{Sid}", "X").replace("{AccountSid}", "{AccountSid}")
        head, _, tail = pattern.partition("X")
        if template == path or (tail and path.startswith(head) and path.endswith(tail) and "/" not in path[len(head) : -len(tail)]):
            return template, request.method.lower()
    raise AssertionError(f"no operation in the spec for {request.method} {path}")


# --------------------------------------------------------------------------- client requests
@pytest.mark.parametrize("auth", ["token", "api_key"])
async def test_every_client_request_is_valid_per_spec(spec: TwilioSpec, sim: TwilioSimulator, auth: str) -> None:
    kwargs = {"api_key": SK, "api_secret": KEY_SECRET} if auth == "api_key" else {}
    client, recorder = recorded_client(sim, **kwargs)
    async with client:
        await every_client_request(sim, client)
    assert len(recorder.exchanges) == 11
    methods = {(operation_for(spec, x.request)) for x in recorder.exchanges}
    assert methods == {
        (MESSAGES_PATH, "post"),
        ("/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json", "get"),
        (CALLS_PATH, "post"),
        ("/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json", "get"),
        ("/2010-04-01/Accounts/{Sid}.json", "get"),
    }
    for exchange in recorder.exchanges:
        request = exchange.request
        errors = spec.request_errors(request)
        assert errors == [], f"{request.method} {request.url.path}: {[str(e) for e in errors]}"
        assert request.headers["authorization"].startswith("Basic ")
        if request.method == "POST":
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            template, _ = operation_for(spec, request)
            schema = spec.form_schema(template)
            form = parse_qs(request.content.decode(), keep_blank_values=True)
            assert set(form) <= set(schema["properties"]), set(form) - set(schema["properties"])
            assert set(schema["required"]) <= set(form)
            for name, values in form.items():
                if name in ("To", "From"):
                    assert all(v.startswith("+") and v[1:].isdigit() for v in values), f"{name} is not E.164"
        assert exchange.response.status_code in (200, 201), exchange.response.text


async def test_client_rejects_locally_what_the_spec_rejects(spec: TwilioSpec, sim: TwilioSimulator) -> None:
    """A malformed Messaging Service SID never leaves the client (the spec's pattern would refuse it)."""
    client, recorder = recorded_client(sim)
    async with client:
        with pytest.raises(TwilioBadRequest):
            await client.send_sms(parse_phone(PATIENT), "hi", messaging_service_sid="MG-not-a-sid")
    assert recorder.exchanges == []


# --------------------------------------------------------------------------- simulator responses
async def test_every_simulator_answer_matches_the_response_schema(spec: TwilioSpec, sim: TwilioSimulator) -> None:
    client, recorder = recorded_client(sim)
    async with client:
        await every_client_request(sim, client)
        await sim.reply(PATIENT, "C", None)
        await sim.reply(PATIENT, "STOP", None)
        http = client._http
        list_url = f"/2010-04-01/Accounts/{AC}/Messages.json"
        first = await http.get(list_url, params={"PageSize": 2})
        await http.get(first.json()["next_page_uri"])
        await http.get(list_url, params={"To": PATIENT, "DateSent>": "2020-01-01", "PageSize": 50})
        await http.get(list_url, params={"From": "+19995550000"})
    successes = [x for x in recorder.exchanges if x.response.is_success]
    assert len(successes) == 15
    for exchange in successes:
        errors = spec.response_errors(exchange.request, exchange.response)
        assert errors == [], f"{exchange.request.method} {exchange.request.url.path}: {[str(e) for e in errors]}"
        body = exchange.response.json()
        template, method = operation_for(spec, exchange.request)
        response_spec = spec.operation(template, method)["responses"]
        assert str(exchange.response.status_code) in response_spec
        schema = spec.resolve(response_spec[str(exchange.response.status_code)]["content"]["application/json"]["schema"])
        assert set(body) == set(schema["properties"]), set(body) ^ set(schema["properties"])
    messages = [m for x in successes if "messages" in x.response.json() for m in x.response.json()["messages"]]
    assert {m["direction"] for m in messages} >= {"outbound-api", "inbound", "outbound-reply"}
    message_props = set(spec.component(MESSAGE_SCHEMA)["properties"])
    assert all(set(m) == message_props for m in messages)


async def test_error_answers_have_twilio_error_shape(sim: TwilioSimulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://twilio.sim") as http:
        answers = [
            await http.get(f"/2010-04-01/Accounts/{AC}/Messages.json"),  # no auth
            await http.post(f"/2010-04-01/Accounts/{AC}/Messages.json", data={"To": PATIENT}, auth=(AC, TOKEN)),
            await http.get(f"/2010-04-01/Accounts/{AC}/Calls/CA{'0' * 32}.json", auth=(AC, TOKEN)),
        ]
        sim.down = True
        answers.append(await http.get(f"/2010-04-01/Accounts/{AC}.json", auth=(AC, TOKEN)))
        sim.down = False
        sim.rate_limit = 0
        answers.append(await http.get(f"/2010-04-01/Accounts/{AC}.json", auth=(AC, TOKEN)))
    assert [a.status_code for a in answers] == [401, 400, 404, 503, 429]
    for answer in answers:
        body = answer.json()
        assert {"code", "message", "more_info", "status"} <= set(body)
        assert body["status"] == answer.status_code and isinstance(body["code"], int)
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
    assert [a.json()["code"] for a in answers] == [20003, 21603, 20404, 20503, 20429]


# --------------------------------------------------------------------------- what the spec rejects
def mutations(spec: TwilioSpec, path: str, base: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """Form bodies that break one rule of the spec's request schema each."""
    schema = spec.form_schema(path)
    out: list[tuple[str, dict[str, str]]] = []
    for name in schema["required"]:
        out.append((f"missing {name}", {k: v for k, v in base.items() if k != name}))
    for name, prop in schema["properties"].items():
        prop = spec.resolve(prop)
        if prop.get("type") == "array":
            continue
        bad: str | None = None
        if "enum" in prop:
            bad = "not-in-enum"
        elif prop.get("type") == "boolean":
            bad = "maybe"
        elif prop.get("type") == "integer":
            bad = "1.5"
        elif prop.get("type") == "number":
            bad = "cheap"
        elif "pattern" in prop:
            bad = "ZZ" + "0" * 32
        if bad is not None:
            out.append((f"{name}={bad}", {**base, name: bad}))
    return out


def form_request(path: str, form: dict[str, str]) -> httpx.Request:
    credentials = base64.b64encode(f"{AC}:{TOKEN}".encode()).decode()
    return httpx.Request(
        "POST",
        f"http://twilio.sim{path.replace('{AccountSid}', AC)}",
        data=form,
        headers={"Authorization": f"Basic {credentials}"},
    )


@pytest.mark.parametrize(
    ("path", "base", "expected"),
    [
        (
            MESSAGES_PATH,
            {"To": PATIENT, "From": OURS, "Body": "hi"},
            {"missing To", "ProvideFeedback=maybe", "Attempt=1.5", "MaxPrice=cheap", "ContentRetention=not-in-enum",
             "MessagingServiceSid=ZZ00000000000000000000000000000000", "ContentSid=ZZ00000000000000000000000000000000"},
        ),
        (
            CALLS_PATH,
            {"To": PATIENT, "From": OURS, "Url": "https://pa.example.org/twilio/confirm"},
            {"missing To", "missing From", "Method=not-in-enum", "Timeout=1.5", "Record=maybe",
             "Byoc=ZZ00000000000000000000000000000000"},
        ),
    ],
)
async def test_simulator_rejects_what_the_spec_rejects(
    spec: TwilioSpec, sim: TwilioSimulator, path: str, base: dict[str, str], expected: set[str]
) -> None:
    assert spec.request_errors(form_request(path, base)) == []  # the base request is valid
    rejected: list[str] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://twilio.sim") as http:
        for label, form in mutations(spec, path, base):
            request = form_request(path, form)
            if not spec.request_errors(request):
                continue  # the spec itself does not reject this one
            rejected.append(label)
            answer = await http.send(request)
            assert answer.status_code == 400, f"{label}: simulator answered {answer.status_code}"
            body = answer.json()
            assert body["status"] == 400 and isinstance(body["code"], int), label
    assert expected <= set(rejected), expected - set(rejected)
    assert len(sim.messages) == 0 and len(sim.calls) == 0


async def test_spec_accepts_what_the_simulator_accepts_for_every_spec_field(spec: TwilioSpec, sim: TwilioSimulator) -> None:
    """Valid values of every typed field pass both the spec and the simulator."""
    good = {"boolean": "true", "integer": "3", "number": "0.5"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://twilio.sim") as http:
        for path, base in (
            (MESSAGES_PATH, {"To": PATIENT, "From": OURS, "Body": "hi"}),
            (CALLS_PATH, {"To": PATIENT, "From": OURS, "Url": "https://pa.example.org/twilio/confirm"}),
        ):
            for name, prop in spec.form_schema(path)["properties"].items():
                prop = spec.resolve(prop)
                value = prop["enum"][0] if "enum" in prop else good.get(prop.get("type", ""))
                if value is None:
                    continue
                form = {**base, name: value}
                request = form_request(path, form)
                assert spec.request_errors(request) == [], name
                answer = await http.send(request)
                assert answer.status_code == 201, f"{name}={value}: {answer.text}"
    await sim.drain()


@pytest.mark.parametrize(("path", "fields"), [(MESSAGES_PATH, MESSAGE_FIELDS), (CALLS_PATH, CALL_FIELDS)])
def test_simulator_field_table_matches_the_spec(spec: TwilioSpec, path: str, fields: dict[str, Any]) -> None:
    properties = spec.form_schema(path)["properties"]
    assert set(fields) == set(properties)
    for name, prop in properties.items():
        prop = spec.resolve(prop)
        mine = fields[name]
        if prop.get("type") == "array":
            assert mine.array, name
            continue
        assert mine.kind == prop["type"], name
        assert mine.pattern == prop.get("pattern"), name
        assert mine.enum == (tuple(prop["enum"]) if "enum" in prop else None), name
        assert mine.min_length == prop.get("minLength") and mine.max_length == prop.get("maxLength"), name
