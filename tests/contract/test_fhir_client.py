"""FhirClient: over real loopback HTTP against the sandbox, and against scripted failures
(httpx.MockTransport) for the status codes a sandbox is not there to fake."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pa_tui.backends.base import (
    AuthError,
    BadRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from pa_tui.backends.fhir import FhirClient, vendor_profile
from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population

BASE = "https://ehr.example.org/fhir/r4"
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "fhir-examples"


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(300, seed=7)


@pytest.fixture(scope="module")
def served(population: Population) -> Iterator[tuple[FhirSandbox, str]]:
    sb = FhirSandbox(population)
    host = SimulatorHost()
    host.add("fhir", sb.app)
    served_app = getattr(host, "_apps", {}).get("fhir")  # see test_fhir_sandbox.no_delay
    if served_app is not None:
        served_app.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    host.start()
    try:
        yield sb, sb.url(host.url("fhir"))
    finally:
        host.stop()


@pytest.fixture
def sandbox(served: tuple[FhirSandbox, str]) -> FhirSandbox:
    sb = served[0]
    sb.down, sb.latency, sb.fail_next = False, 0.0, 0
    sb.request_log.clear()
    return sb


@pytest.fixture
def base_url(served: tuple[FhirSandbox, str]) -> str:
    return served[1]


def _oo(diagnostics: str, code: str = "invalid", severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def _mock(handler: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> FhirClient:
    return FhirClient(BASE, transport=httpx.MockTransport(handler), backoff=0.0, max_backoff=0.0, **kwargs)  # type: ignore[arg-type]


def _fhir(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"Content-Type": "application/fhir+json", **(headers or {})}
    )


# --------------------------------------------------------------------------- against the sandbox
async def test_read_search_and_metadata(sandbox: FhirSandbox, base_url: str, population: Population) -> None:
    async with FhirClient(base_url) as client:
        p = population.patients[0]
        assert await client.read("Patient", p["id"]) == p
        caps = await client.capabilities()
        assert caps["fhirVersion"] == "4.0.1"
        number = population.household_numbers()[0]
        result = await client.search("Patient", {"phone": number[2:]})
        assert sorted(r["id"] for r in result.resources) == sorted(population.households[number])
        assert result.total == len(population.households[number]) and result.pages == 1 and not result.truncated
    assert all("_count=50" in line for line in sandbox.request_log if "Patient?" in line)


async def test_search_follows_next_links_up_to_the_cap(
    sandbox: FhirSandbox, base_url: str, population: Population
) -> None:
    async with FhirClient(base_url) as client:
        everyone = await client.search("Patient", [("birthdate", "ge1900")], count=40)
        assert [r["id"] for r in everyone.resources] == [p["id"] for p in population.patients]
        assert everyone.pages == 8 and not everyone.truncated and everyone.total == 300
        capped = await client.search("Patient", [("birthdate", "ge1900")], count=40, max_pages=3)
        assert len(capped.resources) == 120 and capped.pages == 3 and capped.truncated and capped.total == 300


async def test_sandbox_errors_become_backend_errors(sandbox: FhirSandbox, base_url: str) -> None:
    async with FhirClient(base_url, backoff=0.0, max_backoff=0.0) as client:
        with pytest.raises(NotFound) as nf:
            await client.read("Patient", "pt-999999")
        assert nf.value.status == 404 and "Patient/pt-999999" in nf.value.title
        with pytest.raises(BadRequest) as bad:
            await client.search("Patient", {"shoe-size": "12"})
        assert "shoe-size" in str(bad.value) and bad.value.status == 400
        with pytest.raises(NotFound) as wrong_type:
            await client.search("Spaceship", {})
        assert "fhir.base_url" in wrong_type.value.fix
        with pytest.raises(BadRequest):
            await client.read("Patient", "../../etc/passwd")
        with pytest.raises(BadRequest):
            await client.read("patient; drop", "1")


async def test_sandbox_down_is_unavailable_after_retries(sandbox: FhirSandbox, base_url: str) -> None:
    sandbox.down = True
    async with FhirClient(base_url, retries=2, backoff=0.0, max_backoff=0.0) as client:
        with pytest.raises(Unavailable) as exc:
            await client.read("Patient", "pt-000001")
    assert str(exc.value).startswith("EHR is not answering")
    assert exc.value.fix and exc.value.status == 503
    assert len(sandbox.request_log) == 3


async def test_a_blip_is_retried_away(sandbox: FhirSandbox, base_url: str, population: Population) -> None:
    sandbox.fail_next = 2
    async with FhirClient(base_url, retries=2, backoff=0.0, max_backoff=0.0) as client:
        assert (await client.read("Patient", "pt-000001"))["id"] == "pt-000001"
    assert len(sandbox.request_log) == 3


async def test_slow_sandbox_times_out(sandbox: FhirSandbox, base_url: str) -> None:
    sandbox.latency = 1.0
    async with FhirClient(base_url, timeout=0.2, retries=0) as client:
        with pytest.raises(Unavailable) as exc:
            await client.capabilities()
    assert "did not reply within 0.2 s" in exc.value.title and "fhir.timeout" in exc.value.fix


async def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with FhirClient(f"http://127.0.0.1:{port}/fhir", retries=1, backoff=0.0, max_backoff=0.0) as client:
        with pytest.raises(Unavailable) as exc:
            await client.read("Patient", "x")
    assert "cannot connect" in exc.value.title and "fhir.base_url" in exc.value.fix


# --------------------------------------------------------------------------- scripted responses
async def test_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _fhir(200, {"resourceType": "Bundle", "type": "searchset", "total": 0})

    client = _mock(handler, headers={"Authorization": "Bearer t0ken"})
    await client.search("Patient", [("phone", "4085551212"), ("birthdate", "ge1980"), ("birthdate", "le1990")])
    await client.aclose()
    (req,) = seen
    assert req.method == "GET"
    assert req.headers["accept"] == "application/fhir+json"
    assert req.headers["authorization"] == "Bearer t0ken"
    assert str(req.url).startswith(BASE + "/Patient?")
    assert req.url.params.get_list("birthdate") == ["ge1980", "le1990"]
    assert req.url.params["_count"] == "50"


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (401, _oo("token expired", "login"), AuthError, ["credentials", "token expired"]),
        (403, _oo("scope system/Patient.read missing", "forbidden"), PermissionDenied, ["refused access", "scope"]),
        (400, _oo("Unknown search parameter 'phone'"), BadRequest, ["rejected", "'phone'"]),
        (422, _oo("Invalid date"), BadRequest, ["422", "Invalid date"]),
        (418, {"oops": True}, BadRequest, ["418"]),
    ],
)
async def test_status_codes_map_to_errors(status: int, body: dict, error: type, words: list[str]) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return _fhir(status, body)

    client = _mock(handler)
    with pytest.raises(error) as exc:
        await client.search("Patient", {"name": "x"})
    await client.aclose()
    for w in words:
        assert w in str(exc.value)
    assert exc.value.status == status and exc.value.fix
    assert calls == 1, "4xx is never retried"


async def test_server_errors_are_retried_then_unavailable() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return _fhir(500, _oo("database on fire", "exception"))

    client = _mock(handler, retries=3)
    with pytest.raises(Unavailable) as exc:
        await client.read("Patient", "1")
    await client.aclose()
    assert calls == 4
    assert str(exc.value).startswith("EHR is not answering") and "database on fire" in str(exc.value)


async def test_timeouts_are_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ReadTimeout("slow", request=request)
        return _fhir(200, {"resourceType": "Patient", "id": "1"})

    client = _mock(handler, retries=2)
    assert (await client.read("Patient", "1"))["id"] == "1"
    await client.aclose()
    assert calls == 3


async def test_rate_limits_honour_retry_after() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return _fhir(429, _oo("slow down", "throttled"), {"Retry-After": "0"})
        return _fhir(200, {"resourceType": "Patient", "id": "1"})

    client = _mock(handler)
    assert (await client.read("Patient", "1"))["id"] == "1"
    assert calls == 2

    def long_wait(request: httpx.Request) -> httpx.Response:
        return _fhir(429, _oo("slow down", "throttled"), {"Retry-After": "120"})

    client2 = _mock(long_wait)
    with pytest.raises(RateLimited) as exc:
        await client2.read("Patient", "1")
    assert exc.value.retry_after == 120
    await client.aclose()
    await client2.aclose()


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"<html>Sign in</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, content=b"[1, 2]", headers={"Content-Type": "application/json"}),
        httpx.Response(
            200, content=b'{"resourceType": "Patient", "id": "1"}', headers={"Content-Type": "application/json"}
        ),
    ],
)
async def test_not_fhir_answers_point_at_the_base_url(response: httpx.Response) -> None:
    client = _mock(lambda request: response)
    with pytest.raises(NotFound) as exc:
        await client.search("Patient", {"name": "x"})
    await client.aclose()
    assert "FHIR JSON" in exc.value.title and "fhir.base_url" in exc.value.fix


async def test_search_page_with_only_an_outcome() -> None:
    example = EXAMPLES / "Bundle-bundle-search-warning.json"
    if not example.is_file():
        pytest.skip("shared/fhir-examples is not beside the repository")
    bundle = json.loads(example.read_text(encoding="utf-8"))
    client = _mock(lambda request: _fhir(200, bundle))
    result = await client.search("Observation", {"patient": "1"})
    await client.aclose()
    assert result.resources == [] and result.total == 0 and len(result.warnings) == 1
    client = _mock(lambda request: _fhir(200, _oo("too costly", "too-costly")))
    with pytest.raises(BadRequest) as exc:
        await client.search("Patient", {"name": "a"})
    await client.aclose()
    assert "too costly" in str(exc.value)


async def test_next_links_are_kept_on_the_configured_server() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        page = int(request.url.params.get("page", "1"))
        links = [{"relation": "self", "url": str(request.url)}]
        if page < 3:
            links.append(
                {"relation": "next", "url": f"http://internal-host:8080/fhir/r4/Patient?name=x&page={page + 1}"}
            )
        entry = [{"resource": {"resourceType": "Patient", "id": f"p{page}"}, "search": {"mode": "match"}}]
        return _fhir(200, {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entry})

    client = _mock(handler)
    result = await client.search("Patient", {"name": "x"})
    await client.aclose()
    assert [r["id"] for r in result.resources] == ["p1", "p2", "p3"]
    assert all(u.startswith(BASE) for u in urls)


async def test_a_next_link_loop_stops() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        loop = {"relation": "next", "url": f"{BASE}/Patient?name=x&page=2"}
        return _fhir(
            200,
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "link": [loop],
                "entry": [{"resource": {"resourceType": "Patient", "id": "p"}}],
            },
        )

    client = _mock(handler)
    result = await client.search("Patient", {"name": "x"})
    await client.aclose()
    assert result.pages == 2 and not result.truncated


async def test_includes_and_other_types_are_not_matches() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "a"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "Organization", "id": "o"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "RelatedPerson", "id": "r"}},
            {"search": {"mode": "match"}},
        ],
    }
    client = _mock(lambda request: _fhir(200, bundle))
    result = await client.search("Patient", {"name": "x"})
    await client.aclose()
    assert [r["id"] for r in result.resources] == ["a"]
    assert sorted(r["id"] for r in result.included) == ["o", "r"]


def test_profiles_and_construction() -> None:
    assert vendor_profile("generic").phone_param == "phone"
    for vendor in ("epic", "oracle-health", "athena"):
        assert vendor_profile(vendor).name == vendor
    with pytest.raises(ValueError, match="unknown FHIR vendor"):
        vendor_profile("meditech-magic")
    with pytest.raises(ValueError):
        FhirClient("ftp://ehr/fhir")


async def test_logs_carry_no_phi(
    sandbox: FhirSandbox, base_url: str, population: Population, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    number = population.household_numbers()[0]
    member = population.by_id[population.households[number][0]]
    async with FhirClient(base_url, backoff=0.0, max_backoff=0.0) as client:
        await client.search("Patient", {"phone": number[2:]})
        await client.search("Patient", {"family": member["name"][0]["family"], "birthdate": member["birthDate"]})
        sandbox.fail_next = 1
        await client.search("Patient", {"phone": number[2:]})
        with pytest.raises(BadRequest):
            await client.search("Patient", {"phone": "not-a-number"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Patient search" in text
    for secret in (number[2:], number[5:], member["name"][0]["family"], member["birthDate"], "not-a-number"):
        assert secret not in text


# --------------------------------------------------------------------------- writes, versions, capabilities
async def test_create_returns_id_and_version_and_is_never_retried() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        assert "id" not in body and body["resourceType"] == "DocumentReference"
        return httpx.Response(201, headers={"Location": f"{BASE}/DocumentReference/doc-9/_history/2"})

    client = _mock(handler)
    result = await client.create("DocumentReference", {"id": "ignored", "status": "current"}, if_none_exist="identifier=a|b")
    assert (result.id, result.version_id, result.created, result.resource) == ("doc-9", "2", True, None)
    (req,) = seen
    assert req.method == "POST" and req.headers["content-type"] == "application/fhir+json"
    assert req.headers["if-none-exist"] == "identifier=a|b" and req.headers["prefer"] == "return=representation"
    with pytest.raises(BadRequest):
        await client.create("DocumentReference", {"resourceType": "Patient"})
    await client.aclose()

    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if request.method == "POST":
            raise httpx.ReadTimeout("slow", request=request)
        return _fhir(503, _oo("busy", "transient"))

    client = _mock(flaky, retries=3)
    with pytest.raises(Unavailable):
        await client.create("DocumentReference", {"status": "current"})
    assert calls == 1, "a write that may have happened is not sent again"
    with pytest.raises(Unavailable):
        await client.update({"resourceType": "Appointment", "id": "a1", "status": "booked"})
    assert calls == 2, "a failed update is not sent again either"
    await client.aclose()


async def test_conditional_create_that_found_the_resource() -> None:
    existing = {"resourceType": "DocumentReference", "id": "doc-1", "meta": {"versionId": "4"}}
    client = _mock(lambda request: _fhir(200, existing))
    result = await client.create("DocumentReference", {"status": "current"}, if_none_exist="identifier=x|y")
    await client.aclose()
    assert (result.id, result.version_id, result.created) == ("doc-1", "4", False)


async def test_update_sends_if_match_and_maps_conflicts() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return _fhir(200, {"resourceType": "Appointment", "id": "a1"}, {"ETag": 'W/"7"'})
        if request.headers.get("if-match") == 'W/"7"':
            return _fhir(200, {**json.loads(request.content), "meta": {"versionId": "8"}})
        return _fhir(412, _oo("version conflict", "conflict"))

    client = _mock(handler)
    resource, version = await client.read_versioned("Appointment", "a1")
    assert version == "7"
    result = await client.update(resource, version_id=version)
    assert (result.id, result.version_id) == ("a1", "8") and seen[-1].url.path.endswith("/Appointment/a1")
    with pytest.raises(BadRequest) as exc:
        await client.update({"resourceType": "Appointment", "id": "a1", "meta": {"versionId": "6"}})
    assert exc.value.status == 412 and "changed" in exc.value.title and seen[-1].headers["if-match"] == 'W/"6"'
    with pytest.raises(BadRequest):
        await client.update({"resourceType": "Appointment", "id": "../x"})
    await client.aclose()
    client = _mock(lambda request: _fhir(405, _oo("read-only", "not-supported")))
    from pa_tui.backends.base import NotSupported

    with pytest.raises(NotSupported):
        await client.update({"resourceType": "Appointment", "id": "a1"})
    await client.aclose()


async def test_capabilities_are_read_once() -> None:
    calls = 0
    caps = {
        "resourceType": "CapabilityStatement",
        "rest": [{"resource": [{"type": "Patient", "searchParam": [{"name": "telecom"}, {"name": "name"}]},
                               {"type": "Observation"}]}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return _fhir(200, caps)

    client = _mock(handler)
    results = await asyncio.gather(*(client.search_params("Patient") for _ in range(5)))
    assert all(r == frozenset({"telecom", "name"}) for r in results)
    assert await client.search_params("Observation") is None and await client.search_params("Nope") is None
    assert calls == 1
    await client.aclose()
    failing = _mock(lambda request: _fhir(404, _oo("no metadata", "not-found")))
    assert await failing.search_params("Patient") is None and await failing.search_params("Patient") is None
    await failing.aclose()


async def test_sandbox_search_with_the_epic_profile_needs_a_minimum_set(
    sandbox: FhirSandbox, base_url: str, population: Population
) -> None:
    from pa_tui.backends.base import NotSupported

    p = population.patients[3]
    async with FhirClient(base_url, vendor="epic") as client:
        with pytest.raises(NotSupported):
            await client.search("Patient", {"phone": population.patient_phone(p["id"])[2:]})
        found = await client.search(
            "Patient", {"given": p["name"][0]["given"][0], "family": p["name"][0]["family"], "birthdate": p["birthDate"]}
        )
    assert p["id"] in [r["id"] for r in found.resources]
    assert not any("phone=" in line for line in sandbox.request_log)
