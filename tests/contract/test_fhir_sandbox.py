"""The FHIR R4 sandbox over real loopback HTTP: what a FHIR client may rely on.

Responses are validated with fhir.resources' R4B models (Bundle, CapabilityStatement,
OperationOutcome and Patient are unchanged in shape from R4 4.0.1).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.fhir_sandbox.store import phone_key
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import MRN_SYSTEM, PHONE_FORMATS, Population, format_phone


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(800, seed=7)


def no_delay(host: SimulatorHost, name: str) -> None:
    """Work around SimulatorHost creating its listening socket with proto=0: asyncio then never sets
    TCP_NODELAY on accepted connections and each response waits ~40 ms for a delayed ACK.
    Harmless once host.py sets the option itself."""
    served = getattr(host, "_apps", {}).get(name)
    if served is not None:
        served.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@pytest.fixture(scope="module")
def sandbox(population: Population) -> Iterator[FhirSandbox]:
    sb = FhirSandbox(population)
    host = SimulatorHost()
    host.add("fhir", sb.app)
    no_delay(host, "fhir")
    host.start()
    sb.base_url = sb.url(host.url("fhir"))  # type: ignore[attr-defined]
    try:
        yield sb
    finally:
        host.stop()


@pytest.fixture
def http(sandbox: FhirSandbox) -> Iterator[httpx.Client]:
    sandbox.down, sandbox.latency, sandbox.fail_next = False, 0.0, 0
    with httpx.Client(base_url=sandbox.base_url + "/", headers={"Accept": "application/fhir+json"}) as client:  # type: ignore[attr-defined]
        yield client


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _all_pages(http: httpx.Client, path: str, params: dict | list) -> tuple[list[str], dict]:
    r = http.get(path, params=params)
    assert r.status_code == 200, r.text
    first = r.json()
    ids = _ids(first)
    bundle = first
    for _ in range(1000):
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        bundle = http.get(nxt[0]).json()
        ids += _ids(bundle)
    return ids, first


def _assert_outcome(r: httpx.Response, status: int, *words: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    OperationOutcome.model_validate(body)
    text = " ".join(i.get("diagnostics", "") for i in body["issue"])
    for w in words:
        assert w in text, text
    return text


# --------------------------------------------------------------------------- metadata and reads
def test_capability_statement(http: httpx.Client) -> None:
    r = http.get("metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    CapabilityStatement.model_validate(body)
    assert body["fhirVersion"] == "4.0.1" and body["kind"] == "instance"
    resources = {res["type"]: res for res in body["rest"][0]["resource"]}
    patient_params = {p["name"]: p["type"] for p in resources["Patient"]["searchParam"]}
    for name, kind in {
        "phone": "token",
        "telecom": "token",
        "name": "string",
        "family": "string",
        "given": "string",
        "birthdate": "date",
        "identifier": "token",
        "_id": "token",
        "_count": "number",
    }.items():
        assert patient_params[name] == kind
    assert {p["name"] for p in resources["RelatedPerson"]["searchParam"]} >= {"patient", "_id"}
    assert {i["code"] for i in resources["Patient"]["interaction"]} == {"read", "vread", "search-type"}


def test_read_patient_and_related_person(http: httpx.Client, population: Population) -> None:
    p = population.patients[3]
    r = http.get(f"Patient/{p['id']}")
    assert r.status_code == 200 and r.json() == p
    Patient.model_validate(r.json())
    rp = population.related_persons[0]
    assert http.get(f"RelatedPerson/{rp['id']}").json() == rp


def test_unknown_id_type_and_bad_id(http: httpx.Client) -> None:
    _assert_outcome(http.get("Patient/pt-999999"), 404, "Patient/pt-999999")
    _assert_outcome(http.get("Patient/bad$id"), 400, "not a valid FHIR id")
    _assert_outcome(http.get("Spaceship/1"), 404, "Spaceship")
    _assert_outcome(http.get("Patient/1/2/3"), 404)


# --------------------------------------------------------------------------- phone search
def test_phone_search_matches_every_stored_format(http: httpx.Client, population: Population) -> None:
    """Whatever format a number was stored in, every query format finds exactly its holders."""
    stored_shapes: set[str] = set()
    checked = 0
    for p in population.patients[:200]:
        for t in p.get("telecom", []):
            if t["system"] != "phone":
                continue
            e164 = phone_key(t["value"])
            assert e164 is not None
            stored_shapes.add(re.sub(r"\d", "9", t["value"]))
            holders = population.holders(e164)
            national = e164[2:]
            queries = [format_phone(national, tpl) for tpl, _ in PHONE_FORMATS] + [e164, f"tel:{e164}", t["value"]]
            for q in queries:
                ids, bundle = _all_pages(http, "Patient", {"phone": q})
                assert sorted(ids) == sorted(holders), (q, t["value"])
                assert bundle["total"] == len(holders)
            checked += 1
            if checked >= 40:
                break
        if checked >= 40:
            break
    required = {"(999) 999-9999", "999-999-9999", "+19999999999".replace("1", "9", 1), "9999999999", "999.999.9999"}
    assert required <= stored_shapes or checked >= 40


def test_phone_search_covers_all_stored_shapes(http: httpx.Client, population: Population) -> None:
    by_shape: dict[str, tuple[str, str]] = {}
    for p in population.patients:
        for t in p.get("telecom", []):
            if t["system"] == "phone":
                by_shape.setdefault(re.sub(r"\d", "9", t["value"]), (p["id"], t["value"]))
    assert len(by_shape) >= 7
    for pid, value in by_shape.values():
        digits = phone_key(value)[2:]  # type: ignore[index]
        ids, _ = _all_pages(http, "Patient", {"phone": digits})
        assert pid in ids, value


def test_household_search_returns_all_members(http: httpx.Client, population: Population) -> None:
    numbers = population.household_numbers()
    assert numbers
    for number in numbers[:40]:
        ids, bundle = _all_pages(http, "Patient", [("phone", number[2:]), ("_count", "2")])
        assert sorted(ids) == sorted(population.households[number])
        assert bundle["total"] == len(population.households[number])


def test_telecom_token_forms(http: httpx.Client, population: Population) -> None:
    number = population.household_numbers()[0]
    members = sorted(population.households[number])
    for value in (f"phone|{number[2:]}", number[2:], f"phone|{number}", f"|{number}"):
        ids, _ = _all_pages(http, "Patient", {"telecom": value})
        assert sorted(ids) == members, value
    assert _all_pages(http, "Patient", {"telecom": f"email|{number[2:]}"})[0] == []
    emailer = next(p for p in population.patients if any(t["system"] == "email" for t in p.get("telecom", [])))
    email = next(t["value"] for t in emailer["telecom"] if t["system"] == "email")
    assert emailer["id"] in _all_pages(http, "Patient", {"telecom": f"email|{email.upper()}"})[0]
    assert emailer["id"] in _all_pages(http, "Patient", {"telecom": email})[0]


def test_unlisted_number_finds_no_one(http: httpx.Client, population: Population) -> None:
    for number in population.unlisted_numbers(5):
        r = http.get("Patient", params={"phone": number[2:]})
        assert r.status_code == 200 and r.json()["total"] == 0 and "entry" not in r.json()


# --------------------------------------------------------------------------- other parameters
def test_name_family_given(http: httpx.Client, population: Population) -> None:
    p = population.patients[10]
    family, given = p["name"][0]["family"], p["name"][0]["given"][0]
    ids, _ = _all_pages(http, "Patient", {"family": family, "given": given})
    assert p["id"] in ids
    for pid in ids:
        names = population.by_id[pid]["name"]
        assert any(family.lower() in (n.get("family") or "").lower() for n in names)
    prefix = family[:3].lower()
    assert p["id"] in _all_pages(http, "Patient", {"name": prefix})[0]
    assert p["id"] in _all_pages(http, "Patient", {"name": f"{given} {family}"})[0]
    assert p["id"] in _all_pages(http, "Patient", {"family:exact": family})[0]
    assert _all_pages(http, "Patient", {"family:exact": prefix + "zzz"})[0] == []
    assert p["id"] in _all_pages(http, "Patient", {"family:contains": family[1:-1]})[0]
    both = _all_pages(http, "Patient", {"family": f"{family},Zzyzx"})[0]
    assert p["id"] in both  # comma is OR


def test_name_search_folds_case_accents_and_punctuation() -> None:
    sb = FhirSandbox(
        [{"resourceType": "Patient", "id": "accent-1", "name": [{"family": "Peña-O'Brien", "given": ["José"]}]}]
    )

    def found(param: str, value: str) -> bool:
        return [p["id"] for p in sb.store.search("Patient", [(param, value)])[0]] == ["accent-1"]

    for q in ("pena", "PEÑA", "obrien", "o'brien", "peña-o'brien", "penaobrien"):
        assert found("family", q), q
    assert found("given", "jose") and found("name", "jos")
    assert not found("family", "brienpena")


def test_birthdate_prefixes(http: httpx.Client, population: Population) -> None:
    p = population.patients[20]
    dob = p["birthDate"]
    assert p["id"] in _all_pages(http, "Patient", {"birthdate": dob})[0]
    assert p["id"] in _all_pages(http, "Patient", {"birthdate": f"eq{dob}"})[0]
    assert p["id"] in _all_pages(http, "Patient", {"birthdate": dob[:4]})[0]
    assert p["id"] in _all_pages(http, "Patient", {"birthdate": dob[:7]})[0]
    ids, _ = _all_pages(http, "Patient", [("birthdate", f"ge{dob[:4]}-01-01"), ("birthdate", f"le{dob[:4]}-12-31")])
    year_ids, _ = _all_pages(http, "Patient", {"birthdate": dob[:4]})
    assert sorted(ids) == sorted(year_ids) and p["id"] in ids
    for pid in _all_pages(http, "Patient", {"birthdate": "lt1950-01-01"})[0]:
        assert population.by_id[pid]["birthDate"] < "1950-01-01"
    for pid in _all_pages(http, "Patient", {"birthdate": "gt2020-01-01"})[0]:
        assert population.by_id[pid]["birthDate"] > "2020-01-01"
    assert p["id"] not in _all_pages(http, "Patient", {"birthdate": f"ne{dob}"})[0]


def test_identifier_id_and_gender(http: httpx.Client, population: Population) -> None:
    p = population.patients[30]
    mrn = next(i["value"] for i in p["identifier"] if i["system"] == MRN_SYSTEM)
    assert _all_pages(http, "Patient", {"identifier": f"{MRN_SYSTEM}|{mrn}"})[0] == [p["id"]]
    assert _all_pages(http, "Patient", {"identifier": mrn})[0] == [p["id"]]
    assert _all_pages(http, "Patient", {"identifier": f"urn:other|{mrn}"})[0] == []
    assert _all_pages(http, "Patient", {"_id": p["id"]})[0] == [p["id"]]
    two = population.patients[31]["id"]
    assert sorted(_all_pages(http, "Patient", {"_id": f"{p['id']},{two}"})[0]) == sorted([p["id"], two])
    r = http.get("Patient", params={"gender": p["gender"], "_id": p["id"]})
    assert _ids(r.json()) == [p["id"]]


def test_related_person_by_patient(http: httpx.Client, population: Population) -> None:
    rp = population.related_persons[0]
    subject = rp["patient"]["reference"]
    expected = sorted(r["id"] for r in population.related_persons if r["patient"]["reference"] == subject)
    for value in (subject, subject.removeprefix("Patient/"), f"http://elsewhere/fhir/{subject}"):
        ids, bundle = _all_pages(http, "RelatedPerson", {"patient": value})
        assert sorted(ids) == expected
        Bundle.model_validate(bundle)
    other = population.related_persons[-1]["patient"]["reference"]
    ids, _ = _all_pages(http, "RelatedPerson", {"patient": f"{subject},{other}"})
    assert set(expected) < set(ids)


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"foo": "1"}, "foo"),
        ({"address-city": "Boston"}, "address-city"),
        ({"phone": "not a number"}, "phone"),
        ({"phone": ""}, "phone"),
        ({"birthdate": "19x0"}, "birthdate"),
        ({"birthdate": "xx1980"}, "birthdate"),
        ({"birthdate": "1980-13-01"}, "birthdate"),
        ({"_count": "many"}, "_count"),
        ({"_count": "-1"}, "_count"),
        ({"_page": "!!!"}, "_page"),
        ({"_id": "a b"}, "_id"),
        ({"gender": "robot"}, "gender"),
        ({"name": "..."}, "name"),
        ({"phone:exact": "4085551212"}, "exact"),
        ({"telecom": "phone|abc"}, "telecom"),
    ],
)
def test_bad_searches_are_400_naming_the_parameter(http: httpx.Client, params: dict, param: str) -> None:
    _assert_outcome(http.get("Patient", params=params), 400, f"'{param}" if param != "exact" else ":exact")


def test_unknown_related_person_parameter(http: httpx.Client) -> None:
    _assert_outcome(http.get("RelatedPerson", params={"name": "x"}), 400, "'name'")
    _assert_outcome(http.get("RelatedPerson", params={"patient": "Observation/1"}), 400, "'patient'")


def test_lenient_handling_turns_unknown_parameters_into_warnings(http: httpx.Client, population: Population) -> None:
    p = population.patients[0]
    r = http.get("Patient", params={"_id": p["id"], "foo": "1"}, headers={"Prefer": "handling=lenient"})
    assert r.status_code == 200
    body = r.json()
    Bundle.model_validate(body)
    assert _ids(body) == [p["id"]]
    outcomes = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert outcomes and "'foo'" in outcomes[0]["resource"]["issue"][0]["diagnostics"]


def test_xml_and_writes_are_refused(http: httpx.Client) -> None:
    _assert_outcome(http.get("Patient", headers={"Accept": "application/fhir+xml"}), 406, "JSON")
    _assert_outcome(http.get("Patient", params={"_format": "xml"}), 406, "JSON")
    _assert_outcome(http.post("Patient", json={"resourceType": "Patient"}), 405, "POST")


# --------------------------------------------------------------------------- paging
def test_paging_with_opaque_next_links(http: httpx.Client, population: Population) -> None:
    r = http.get("Patient", params={"birthdate": "ge1950", "_count": "7"})
    first = r.json()
    Bundle.model_validate(first)
    assert first["type"] == "searchset" and len(_ids(first)) == 7
    total = first["total"]
    assert total > 14
    relations = {link["relation"]: link["url"] for link in first["link"]}
    assert set(relations) == {"self", "next"}
    query = dict(parse_qsl(urlsplit(relations["next"]).query))
    assert query["birthdate"] == "ge1950" and query["_count"] == "7" and "_page" in query
    assert not query["_page"].isdigit(), "the offset is opaque"
    ids, _ = _all_pages(http, "Patient", {"birthdate": "ge1950", "_count": "7"})
    assert len(ids) == total == len(set(ids))
    assert ids == [p["id"] for p in population.patients if p["birthDate"] >= "1950-01-01"]
    second = http.get(relations["next"]).json()
    assert {link["relation"] for link in second["link"]} >= {"self", "previous"}
    for entry in second["entry"]:
        assert entry["fullUrl"].endswith("/Patient/" + entry["resource"]["id"])
        assert entry["fullUrl"].startswith("http://127.0.0.1:")


def test_count_zero_and_cap(http: httpx.Client, population: Population) -> None:
    r = http.get("Patient", params={"_count": "0"}).json()
    assert r["total"] == len(population.patients) and "entry" not in r
    big = http.get("Patient", params={"_count": "100000"}).json()
    assert len(big["entry"]) == 500


# --------------------------------------------------------------------------- fault knobs
def test_down_latency_and_fail_next(http: httpx.Client, sandbox: FhirSandbox) -> None:
    sandbox.down = True
    _assert_outcome(http.get("metadata"), 503, "unavailable")
    sandbox.down = False
    sandbox.fail_next = 2
    assert http.get("metadata").status_code == 503
    assert http.get("metadata").status_code == 503
    assert http.get("metadata").status_code == 200
    sandbox.latency = 0.3
    started = time.perf_counter()
    assert http.get("metadata").status_code == 200
    assert time.perf_counter() - started >= 0.3
    sandbox.latency = 0.0
    assert any(line.startswith("GET /fhir/metadata") for line in sandbox.request_log)


# --------------------------------------------------------------------------- scale
def test_index_scales_to_large_populations() -> None:
    big = Population.generate(5_000, seed=3)
    started = time.perf_counter()
    sb = FhirSandbox(big)
    load = time.perf_counter() - started
    assert load < 10, f"indexing 5,000 patients took {load:.1f} s"
    numbers = big.household_numbers()[:200]
    started = time.perf_counter()
    for number in numbers:
        found, _ = sb.store.search("Patient", [("phone", number[2:])])
        assert sorted(p["id"] for p in found) == sorted(big.households[number])
    per_lookup = (time.perf_counter() - started) / len(numbers)
    assert per_lookup < 0.005, f"a phone search took {per_lookup * 1000:.1f} ms"
