"""FhirEhr: caller identification and patient search, against the sandbox over loopback HTTP,
and against servers that answer loosely (httpx.MockTransport)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import date
from urllib.parse import parse_qsl

import httpx
import pytest

from pa_tui.backends.base import EHR, BadRequest, NotFound
from pa_tui.backends.fhir import FhirClient, FhirEhr
from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import MRN_SYSTEM, PHONE_FORMATS, Population, format_phone
from pa_tui.domain.patients import MatchSource
from pa_tui.domain.phones import NO_CALLER_ID, PhoneNumber, parse_phone
from pa_tui.domain.records import Section


def _num(text: str) -> PhoneNumber:
    n = parse_phone(text)
    assert isinstance(n, PhoneNumber)
    return n


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(1200, seed=7)


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
async def ehr(served: tuple[FhirSandbox, str], population: Population) -> FhirEhr:
    sb, url = served
    sb.down, sb.latency, sb.fail_next = False, 0.0, 0
    sb.request_log.clear()
    e = FhirEhr(FhirClient(url, backoff=0.0, max_backoff=0.0), today=population.as_of)
    yield e  # type: ignore[misc]
    await e.aclose()


def test_fhir_ehr_is_an_ehr(population: Population) -> None:
    assert isinstance(FhirEhr(FhirClient("http://127.0.0.1:9/fhir")), EHR)


# --------------------------------------------------------------------------- find_by_phone
async def test_single_caller(ehr: FhirEhr, population: Population, served: tuple[FhirSandbox, str]) -> None:
    for number in population.single_caller_numbers()[:25]:
        match = await ehr.find_by_phone(_num(number))
        assert match.kind == "single" and match.source is MatchSource.PHONE_SEARCH
        (c,) = match.candidates
        assert c.id == population.holders(number)[0]
        assert c.household_id is None and c.relationship is None
    sent = [line for line in served[0].request_log if line.startswith("GET /fhir/Patient?")]
    assert sent and all(dict(parse_qsl(line.split("?", 1)[1]))["phone"].isdigit() for line in sent)
    assert f"phone={population.single_caller_numbers()[0][2:]}&" in sent[0], "searched by national digits"


async def test_every_stored_and_dialled_format_finds_the_holders(ehr: FhirEhr, population: Population) -> None:
    checked = 0
    for p in population.patients[:25]:
        for t in p.get("telecom", []):
            if t["system"] != "phone":
                continue
            number = _num(t["value"])
            expected = sorted(population.holders(number.e164))
            for template, _ in PHONE_FORMATS[1:3]:
                dialled = _num(format_phone(number.national_digits, template))
                match = await ehr.find_by_phone(dialled)
                assert sorted(c.id for c in match.candidates) == expected, t["value"]
            checked += 1
    assert checked > 20


async def test_household_members_are_all_returned_with_relationships(ehr: FhirEhr, population: Population) -> None:
    labelled = 0
    for number in population.household_numbers()[:40]:
        match = await ehr.find_by_phone(_num(number))
        assert match.kind == "household"
        assert sorted(c.id for c in match.candidates) == sorted(population.households[number])
        assert all(c.household_id == number for c in match.candidates)
        labels = [c.relationship for c in match.candidates]
        labelled += sum(1 for label in labels if label)
        # at most one member (the number's owner) is unlabelled when relationships are known
        if any(labels):
            assert labels.count(None) <= len(labels) - 1
    assert labelled > 20


async def test_family_relationships_read_from_the_owner(ehr: FhirEhr, population: Population) -> None:
    """A parent's mobile on the children's records: the children are "son"/"daughter"."""
    seen = 0
    for number in population.household_numbers():
        ids = population.households[number]
        ages = {i: _age(population.by_id[i]["birthDate"], population.as_of) for i in ids}
        if sum(a < 13 for a in ages.values()) < 2 or sum(a >= 18 for a in ages.values()) != 1:
            continue
        match = await ehr.find_by_phone(_num(number))
        for c in match.candidates:
            if ages[c.id] < 18:
                assert c.relationship in ("son", "daughter", "child")
            else:
                assert c.relationship is None  # the owner
        seen += 1
        if seen >= 8:
            break
    assert seen >= 3


def _age(dob: str, today: date) -> int:
    b = date.fromisoformat(dob)
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


async def test_recycled_number_ranks_the_current_holder_first(ehr: FhirEhr, population: Population) -> None:
    for number in population.recycled_numbers()[:10]:
        match = await ehr.find_by_phone(_num(number))
        first = match.candidates[0]
        assert any(p.current and p.number.e164 == number for p in first.phones)
        last = match.candidates[-1]
        assert not any(p.current and p.number.e164 == number for p in last.phones)
        assert last.household_id is None


async def test_unknown_and_withheld_numbers(ehr: FhirEhr, population: Population) -> None:
    match = await ehr.find_by_phone(_num(population.unlisted_numbers(1)[0]))
    assert match.kind == "none" and match.phone_search_supported
    assert (await ehr.find_by_phone(NO_CALLER_ID)).kind == "none"


async def test_ehr_down_is_unavailable(ehr: FhirEhr, served: tuple[FhirSandbox, str], population: Population) -> None:
    from pa_tui.backends.base import Unavailable

    served[0].down = True
    with pytest.raises(Unavailable, match="EHR is not answering"):
        await ehr.find_by_phone(_num(population.single_caller_numbers()[0]))


# --------------------------------------------------------------------------- loose servers
def _patient(
    pid: str, phone: str, *, use: str = "mobile", family: str = "Doe", given: str = "Jo", **extra: object
) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": [given]}],
        "telecom": [{"system": "phone", "value": phone, "use": use}],
        **extra,
    }


def _bundle(*resources: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def _mock_ehr(handler: Callable[[httpx.Request], httpx.Response]) -> FhirEhr:
    """A server without a CapabilityStatement (so both phone forms are tried) and no Accounts."""

    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metadata"):
            return _json(404, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]})
        if request.url.path.endswith("/Account"):
            return _json(200, _bundle())
        return handler(request)

    client = FhirClient(
        "https://ehr.example.org/fhir", transport=httpx.MockTransport(serve), backoff=0, max_backoff=0
    )
    return FhirEhr(client, today=date(2026, 1, 1))


def _json(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": "application/fhir+json"})


async def test_false_matches_from_a_loose_server_are_dropped() -> None:
    """A server matching on the last seven digits, or ignoring the area code, returns strangers."""
    caller = _num("(408) 555-1212")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Patient"):
            assert request.url.params["phone"] == "4085551212"
            return _json(
                200,
                _bundle(
                    _patient("right", "408-555-1212"),
                    _patient("other-area", "(650) 555-1212", family="Stranger"),
                    _patient("longer", "+1 408 555 12120", family="Typo"),
                    _patient("uk", "+44 408 555 1212", family="Abroad"),
                    _patient("no-phone", "call the office", family="Nobody"),
                    _patient("ext", "408.555.1212 x77", use="work", family="Office"),
                ),
            )
        return _json(200, _bundle())

    ehr = _mock_ehr(handler)
    match = await ehr.find_by_phone(caller)
    await ehr.aclose()
    assert [c.id for c in match.candidates] == ["right", "ext"]  # a current mobile before a work number
    assert match.kind == "household" and all(c.household_id == caller.e164 for c in match.candidates)


async def test_ranking_current_home_mobile_then_active_then_name() -> None:
    number = "4085551212"
    patients = [
        _patient("old-only", number, use="old", family="Aaron"),
        _patient("work", number, use="work", family="Abbot"),
        _patient("inactive", number, use="home", family="Adams", active=False),
        _patient("zed", number, use="mobile", family="Zed"),
        _patient("amy", number, use="home", family="Baker", given="Amy"),
        _patient("ended", number, use="mobile", family="Able"),
        _patient("deceased", number, use="home", family="Aardvark", deceasedBoolean=True),
    ]
    patients[5]["telecom"][0]["period"] = {"end": "2020-01-01"}

    def handler(request: httpx.Request) -> httpx.Response:
        return _json(200, _bundle(*patients)) if request.url.path.endswith("/Patient") else _json(200, _bundle())

    ehr = _mock_ehr(handler)
    match = await ehr.find_by_phone(_num(number))
    await ehr.aclose()
    assert [c.id for c in match.candidates] == ["amy", "zed", "deceased", "inactive", "work", "old-only", "ended"]
    holders = {c.id for c in match.candidates if c.household_id}
    assert holders == {"amy", "zed", "deceased", "inactive", "work"}


async def test_relationships_without_patient_links_are_matched_by_name_and_birth_date() -> None:
    number = "+14085551212"
    mom = _patient("mom", number, family="Rivera", given="Ana", birthDate="1985-02-03")
    kid = _patient("kid", number, use="home", family="Rivera", given="Leo", birthDate="2015-06-07", gender="male")
    dad = _patient("dad", number, use="home", family="Rivera", given="Luis", birthDate="1983-01-01")
    rps = [
        {
            "resourceType": "RelatedPerson",
            "id": "r1",
            "patient": {"reference": "Patient/kid"},
            "relationship": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}
            ],
            "name": [{"family": "Rivera", "given": ["Ana"]}],
            "birthDate": "1985-02-03",
        },
        {
            "resourceType": "RelatedPerson",
            "id": "r2",
            "patient": {"reference": "Patient/mom"},
            "relationship": [{"coding": [{"code": "HUSB"}]}],
            "name": [{"family": "Rivera", "given": ["Luis"]}],
            "telecom": [{"system": "phone", "value": "408 555 1212"}],
        },
        {
            "resourceType": "RelatedPerson",
            "id": "r3",
            "patient": {"reference": "Patient/kid"},
            "relationship": [{"text": "Aunt"}],
            "name": [{"family": "Someone", "given": ["Else"]}],
        },
    ]
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Patient"):
            return _json(200, _bundle(mom, kid, dad))
        queries.append(request.url.params["patient"])
        return _json(200, _bundle(*rps))

    ehr = _mock_ehr(handler)
    match = await ehr.find_by_phone(_num(number))
    await ehr.aclose()
    labels = {c.id: c.relationship for c in match.candidates}
    assert labels == {"mom": None, "kid": "son", "dad": "husband"}
    assert sorted(queries[0].split(",")) == ["dad", "kid", "mom"]


async def test_related_person_failure_still_pops_the_household() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Patient"):
            return _json(200, _bundle(_patient("a", "4085551212"), _patient("b", "408-555-1212", use="home")))
        return _json(403, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "forbidden"}]})

    ehr = _mock_ehr(handler)
    match = await ehr.find_by_phone(_num("4085551212"))
    await ehr.aclose()
    assert match.kind == "household" and all(c.relationship is None and c.household_id for c in match.candidates)


async def test_phone_search_falls_back_to_telecom_then_reports_unsupported() -> None:
    seen: list[str] = []

    def telecom_only(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.params))
        if "phone" in request.url.params:
            return _json(
                400,
                {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "error", "code": "not-supported", "diagnostics": "Unknown parameter 'phone'"}
                    ],
                },
            )
        assert request.url.params["telecom"] == "phone|4085551212"
        return _json(200, _bundle(_patient("a", "(408) 555-1212")))

    ehr = _mock_ehr(telecom_only)
    match = await ehr.find_by_phone(_num("4085551212"))
    await ehr.aclose()
    assert [c.id for c in match.candidates] == ["a"] and match.phone_search_supported

    def neither(request: httpx.Request) -> httpx.Response:
        return _json(
            400, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-supported"}]}
        )

    ehr = _mock_ehr(neither)
    match = await ehr.find_by_phone(_num("4085551212"))
    await ehr.aclose()
    assert match.kind == "none" and match.phone_search_supported is False


# --------------------------------------------------------------------------- patient and search
async def test_patient_read(ehr: FhirEhr, population: Population) -> None:
    raw = population.patients[7]
    s = await ehr.patient(raw["id"])
    assert s.id == raw["id"] and s.family == raw["name"][0]["family"]
    assert s.birth_date == date.fromisoformat(raw["birthDate"])
    with pytest.raises(NotFound):
        await ehr.patient("pt-999999")
    with pytest.raises(BadRequest):
        await ehr.patient("no spaces allowed")


async def test_search_decides_from_what_was_typed(ehr: FhirEhr, population: Population) -> None:
    p = population.patients[42]
    family, given = p["name"][0]["family"], p["name"][0]["given"][0]
    dob = date.fromisoformat(p["birthDate"])
    mrn = next(i["value"] for i in p["identifier"] if i["system"] == MRN_SYSTEM)
    queries = [
        f"{given} {family}",
        f"{family}, {given}",
        f"{family.lower()} {given.lower()}",
        f"{given} {family} {dob:%m/%d/%Y}",
        dob.strftime("%m/%d/%Y"),
        dob.isoformat(),
        mrn,
        p["id"],
    ]
    for q in queries:
        results = await ehr.search(q)
        assert p["id"] in [s.id for s in results], q
    phone = population.patient_phone(p["id"])
    by_phone = await ehr.search(format_phone(phone[2:], "({a}) {b}-{c}"))
    assert p["id"] in [s.id for s in by_phone]
    assert await ehr.search("   ") == []
    with pytest.raises(BadRequest, match="Cannot tell"):
        await ehr.search("#$%")
    assert await ehr.search("Zzyzx Qwerty") == []


async def test_search_results_are_sorted_and_capped(ehr: FhirEhr) -> None:
    results = await ehr.search("s")
    assert 0 < len(results) <= 50
    active = [r for r in results if r.active and not r.deceased]
    keys = [((r.family or "").casefold(), (r.given or "").casefold()) for r in active]
    assert keys == sorted(keys)


async def test_every_section_answers_and_no_chart_without_a_template(ehr: FhirEhr) -> None:
    for section in Section:
        view = await ehr.load_section("pt-000001", section)
        assert view is not None
    assert ehr.chart_url(await ehr.patient("pt-000001")) is None
    with pytest.raises(BadRequest):
        await ehr.load_section("../etc", Section.NOTES)
