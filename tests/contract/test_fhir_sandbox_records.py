"""The FHIR sandbox serving each patient's record over loopback HTTP: every search parameter its
CapabilityStatement lists, lazily generated records that search exactly like eager ones, the
DocumentReference create and the versioned Appointment update. Resources are validated with
fhir.resources' R4B models (unchanged from R4 4.0.1 for these types)."""

from __future__ import annotations

import base64
import copy
import importlib
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import MRN_SYSTEM, RECORD_TYPES, Population

NOTE_SYSTEM = "urn:pa-tui:note"


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(200, seed=7)


def _serve(sb: FhirSandbox) -> Iterator[httpx.Client]:
    host = SimulatorHost()
    host.add("fhir", sb.app)
    host.start()
    try:
        with httpx.Client(base_url=sb.url(host.url("fhir")) + "/", headers={"Accept": "application/fhir+json"}) as c:
            yield c
    finally:
        host.stop()


@pytest.fixture(scope="module")
def http(population: Population) -> Iterator[httpx.Client]:
    """Read-only searches (writes go to their own sandbox)."""
    yield from _serve(FhirSandbox(population))


@pytest.fixture(scope="module")
def writable(population: Population) -> Iterator[httpx.Client]:
    yield from _serve(FhirSandbox(population))


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _all_pages(http: httpx.Client, path: str, params: Any) -> list[str]:
    r = http.get(path, params=params)
    assert r.status_code == 200, r.text
    bundle = r.json()
    ids = _ids(bundle)
    while nxt := [link["url"] for link in bundle["link"] if link["relation"] == "next"]:
        bundle = http.get(nxt[0]).json()
        ids += _ids(bundle)
    return ids


def _outcome(r: httpx.Response, status: int, *words: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    OperationOutcome.model_validate(body)
    text = " ".join(i.get("diagnostics", "") for i in body["issue"])
    for w in words:
        assert w in text, text
    return text


def _model(rtype: str) -> Any:
    return getattr(importlib.import_module(f"fhir.resources.R4B.{rtype.lower()}"), rtype)


def _every(population: Population, rtype: str) -> list[dict]:
    return [r for pid in population.by_id for r in population.records(pid)[rtype]]


# --------------------------------------------------------------------------- the capability statement
def _sample_values(population: Population) -> dict[tuple[str, str], tuple[str, bool]]:
    """A value to search each parameter with, and whether it must find something."""
    p = population.patients[4]
    pid = p["id"]
    rec = population.records(pid)
    number = population.household_numbers()[0]
    appt = rec["Appointment"][0]
    practitioner = next(
        x["actor"]["reference"] for x in appt["participant"] if "Practitioner/" in x["actor"]["reference"]
    )
    location = next(x["actor"]["reference"] for x in appt["participant"] if "Location/" in x["actor"]["reference"])
    rp = population.related_persons[0]
    role = population.resources["PractitionerRole"][0]
    org = population.organizations[1]
    pr = population.practitioners[0]
    mrn = next(i["value"] for i in p["identifier"] if i["system"] == MRN_SYSTEM)
    out: dict[tuple[str, str], tuple[str, bool]] = {
        ("Patient", "_id"): (pid, True),
        ("Patient", "phone"): (number[2:], True),
        ("Patient", "telecom"): (f"phone|{number}", True),
        ("Patient", "name"): (p["name"][0]["family"], True),
        ("Patient", "family"): (p["name"][0]["family"], True),
        ("Patient", "given"): (p["name"][0]["given"][0], True),
        ("Patient", "birthdate"): (p["birthDate"], True),
        ("Patient", "identifier"): (f"{MRN_SYSTEM}|{mrn}", True),
        ("Patient", "gender"): (p["gender"], True),
        ("RelatedPerson", "_id"): (rp["id"], True),
        ("RelatedPerson", "patient"): (rp["patient"]["reference"], True),
        ("RelatedPerson", "identifier"): ("none-such", False),
        ("Appointment", "_id"): (appt["id"], True),
        ("Appointment", "patient"): (f"Patient/{pid}", True),
        ("Appointment", "date"): (f"ge{population.as_of.isoformat()}", True),
        ("Appointment", "status"): ("booked", True),
        ("Appointment", "practitioner"): (practitioner, True),
        ("Appointment", "location"): (location, True),
        ("ServiceRequest", "_id"): (_every(population, "ServiceRequest")[0]["id"], True),
        ("ServiceRequest", "patient"): (_every(population, "ServiceRequest")[0]["subject"]["reference"], True),
        ("ServiceRequest", "category"): ("http://snomed.info/sct|3457005", True),
        ("ServiceRequest", "status"): ("active", True),
        ("Account", "_id"): (rec["Account"][0]["id"], True),
        ("Account", "patient"): (pid, True),
        ("Account", "status"): ("active", True),
        ("Coverage", "_id"): (rec["Coverage"][0]["id"], True),
        ("Coverage", "patient"): (pid, True),
        ("Coverage", "beneficiary"): (f"Patient/{pid}", True),
        ("Coverage", "status"): ("active", True),
        ("ExplanationOfBenefit", "_id"): (_every(population, "ExplanationOfBenefit")[0]["id"], True),
        ("ExplanationOfBenefit", "patient"): (
            _every(population, "ExplanationOfBenefit")[0]["patient"]["reference"],
            True,
        ),
        ("ExplanationOfBenefit", "created"): ("ge2025-06-01", True),
        ("ExplanationOfBenefit", "status"): ("active", True),
        ("MedicationRequest", "_id"): (_every(population, "MedicationRequest")[0]["id"], True),
        ("MedicationRequest", "patient"): (_every(population, "MedicationRequest")[0]["subject"]["reference"], True),
        ("MedicationRequest", "status"): ("active", True),
        ("MedicationRequest", "intent"): ("order", True),
        ("CareTeam", "_id"): (rec["CareTeam"][0]["id"], True),
        ("CareTeam", "patient"): (pid, True),
        ("CareTeam", "status"): ("active", True),
        ("DocumentReference", "_id"): (_every(population, "DocumentReference")[0]["id"], True),
        ("DocumentReference", "patient"): (_every(population, "DocumentReference")[0]["subject"]["reference"], True),
        ("DocumentReference", "type"): ("http://loinc.org|34748-4", True),
        ("DocumentReference", "date"): ("ge2025-06-01", True),
        ("DocumentReference", "status"): ("current", True),
        ("DocumentReference", "identifier"): (f"{NOTE_SYSTEM}|none-such", False),
        ("Practitioner", "_id"): (pr["id"], True),
        ("Practitioner", "name"): (pr["name"][0]["family"], True),
        ("Practitioner", "identifier"): (pr["identifier"][0]["value"], True),
        ("PractitionerRole", "_id"): (role["id"], True),
        ("PractitionerRole", "practitioner"): (role["practitioner"]["reference"], True),
        ("PractitionerRole", "location"): (role["location"][0]["reference"], True),
        ("Location", "_id"): (population.locations[0]["id"], True),
        ("Location", "name"): (population.locations[0]["name"].split()[0], True),
        ("Organization", "_id"): (org["id"], True),
        ("Organization", "name"): ("Medicare", True),
        ("Organization", "identifier"): (org["identifier"][0]["value"], True),
    }
    return out


def test_every_capability_search_parameter_is_answered(http: httpx.Client, population: Population) -> None:
    body = http.get("metadata").json()
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert set(RECORD_TYPES) | {"Practitioner", "PractitionerRole", "Location", "Organization"} <= set(resources)
    assert {i["code"] for i in resources["DocumentReference"]["interaction"]} >= {"create", "search-type", "read"}
    assert {i["code"] for i in resources["Appointment"]["interaction"]} >= {"update", "vread"}
    assert resources["Appointment"]["versioning"] == "versioned-update"
    values = _sample_values(population)
    for rtype, res in resources.items():
        for param in res["searchParam"]:
            name = param["name"]
            if name == "_count":
                r = http.get(rtype, params={"_count": "1"})
                assert r.status_code == 200 and len(_ids(r.json())) <= 1
                continue
            assert (rtype, name) in values, f"no test value for {rtype}?{name}"
            value, must_find = values[(rtype, name)]
            r = http.get(rtype, params={name: value, "_count": "5"})
            assert r.status_code == 200, (rtype, name, r.text)
            bundle = r.json()
            Bundle.model_validate(bundle)
            assert all(e["resource"]["resourceType"] == rtype for e in bundle.get("entry", []))
            if must_find:
                assert bundle["total"] > 0, (rtype, name, value)


@pytest.mark.parametrize(
    ("rtype", "params", "words"),
    [
        ("Appointment", {"bogus": "1"}, ["'bogus'"]),
        ("Appointment", {"status": "maybe"}, ["'status'"]),
        ("Appointment", {"date": "tomorrow"}, ["'date'"]),
        ("Appointment", {"date": "ap2026-01-01"}, ["'date'"]),
        ("Appointment", {"patient": "Observation/1"}, ["'patient'"]),
        ("Appointment", {"_sort": "status"}, ["sort"]),
        ("ServiceRequest", {"category": "|"}, ["'category'"]),
        ("ServiceRequest", {"subject": "Patient/pt-000001"}, ["'subject'"]),
        ("Account", {"balance": "gt0"}, ["'balance'"]),
        ("Coverage", {"payor": "Organization/org-medicare"}, ["'payor'"]),
        ("ExplanationOfBenefit", {"created": "2025-13"}, ["'created'"]),
        ("MedicationRequest", {"intent": "wish"}, ["'intent'"]),
        ("CareTeam", {"status": "busy"}, ["'status'"]),
        ("DocumentReference", {"date": "yesterday"}, ["'date'"]),
        ("DocumentReference", {"author": "Practitioner/pr-0001"}, ["'author'"]),
        ("Practitioner", {"specialty": "cardiology"}, ["'specialty'"]),
        ("Location", {"address-city": "Boston"}, ["'address-city'"]),
        ("Organization", {"type": "pay"}, ["'type'"]),
    ],
)
def test_unknown_parameters_and_bad_values_are_400(http: httpx.Client, rtype: str, params: dict, words: list) -> None:
    _outcome(http.get(rtype, params=params), 400, *words)


# --------------------------------------------------------------------------- lazily generated records
def test_patient_searches_return_the_whole_record(http: httpx.Client, population: Population) -> None:
    for pid in ("pt-000010", "pt-000150", "pt-000199"):
        record = population.records(pid)
        for rtype in RECORD_TYPES:
            ids = _all_pages(http, rtype, {"patient": pid, "_count": "3"})
            assert ids == sorted(r["id"] for r in record[rtype]), (pid, rtype)
        one = record["Appointment"][0]
        r = http.get(f"Appointment/{one['id']}")
        assert r.status_code == 200 and r.json() == one and r.headers["etag"] == 'W/"1"'


def test_reads_generate_the_patient_on_demand(population: Population) -> None:
    sb = FhirSandbox(population)
    assert sb.store.read("Account", "acct-000123") == population.records("pt-000123")["Account"][0]
    assert sb.store.read("Appointment", "ap-000123-99") is None
    assert sb.store.read("Appointment", "ap-999999-01") is None
    assert sb.store.read("Practitioner", "pr-0001") is not None
    assert sb.store.read("Organization", "org-medicare")["name"] == "Medicare"


def _expected_appointments(population: Population, test: Any) -> list[str]:
    return sorted(a["id"] for a in _every(population, "Appointment") if test(a))


def test_cross_patient_searches_match_an_eager_build(population: Population) -> None:
    sb = FhirSandbox(population)
    tomorrow = (population.as_of + timedelta(days=1)).isoformat()
    # some patients first, so the store is part-filled in an arbitrary order
    for pid in ("pt-000190", "pt-000003", "pt-000120"):
        sb.store.search("Appointment", [("patient", pid)])
    found, _ = sb.store.search("Appointment", [("date", tomorrow), ("status", "booked")])
    expected = _expected_appointments(population, lambda a: a["start"][:10] == tomorrow and a["status"] == "booked")
    assert [a["id"] for a in found] == expected and len(expected) >= 5
    lo, hi = population.as_of.isoformat(), (population.as_of + timedelta(days=14)).isoformat()
    found, _ = sb.store.search("Appointment", [("date", f"ge{lo}"), ("date", f"lt{hi}")])
    assert [a["id"] for a in found] == _expected_appointments(population, lambda a: lo <= a["start"][:10] < hi)
    assert len(sb.store._materialised) < population.size, "date searches generate only the patients they need"
    found, _ = sb.store.search("DocumentReference", [("type", "34748-4")])  # everyone, then
    assert [d["id"] for d in found] == sorted(
        d["id"] for d in _every(population, "DocumentReference") if d["type"]["coding"][0]["code"] == "34748-4"
    )


def test_date_prefixes_on_instants(http: httpx.Client, population: Population) -> None:
    pid = "pt-000042"
    appts = population.records(pid)["Appointment"]
    pivot = appts[len(appts) // 2]["start"]
    day = pivot[:10]
    cases = {
        f"ge{day}": lambda s: s[:10] >= day,
        f"gt{day}": lambda s: s[:10] > day,
        f"le{day}": lambda s: s[:10] <= day,
        f"lt{day}": lambda s: s[:10] < day,
        day: lambda s: s[:10] == day,
        f"ne{day}": lambda s: s[:10] != day,
        f"ge{pivot}": lambda s: _utc(s) >= _utc(pivot),
        f"gt{pivot}": lambda s: _utc(s) > _utc(pivot),
        f"lt{pivot}": lambda s: _utc(s) < _utc(pivot),
        f"sa{day}": lambda s: s[:10] > day,
        f"eb{day}": lambda s: s[:10] < day,
    }
    for value, test in cases.items():
        ids = _all_pages(http, "Appointment", {"patient": pid, "date": value})
        assert ids == sorted(a["id"] for a in appts if test(a["start"])), value


def _utc(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def test_paging_and_sorting_records(http: httpx.Client, population: Population) -> None:
    lo = (population.as_of + timedelta(days=1)).isoformat()
    hi = (population.as_of + timedelta(days=5)).isoformat()
    params = [("date", f"ge{lo}"), ("date", f"le{hi}"), ("_count", "4")]
    ids = _all_pages(http, "Appointment", params)
    assert ids == _expected_appointments(population, lambda a: lo <= a["start"][:10] <= hi)
    r = http.get("Appointment", params=[*params, ("_sort", "-date")]).json()
    starts = [_utc(e["resource"]["start"]) for e in r["entry"]]
    assert starts == sorted(starts, reverse=True)
    nxt = next(link["url"] for link in r["link"] if link["relation"] == "next")
    assert "_sort=-date" in nxt
    r = http.get("DocumentReference", params={"patient": "pt-000042", "_sort": "date"}).json()
    dates = [_utc(e["resource"]["date"]) for e in r["entry"]]
    assert dates == sorted(dates)


def test_referral_category_and_document_type_tokens(http: httpx.Client, population: Population) -> None:
    pid = next(r["subject"]["reference"] for r in _every(population, "ServiceRequest"))
    every = _all_pages(http, "ServiceRequest", {"patient": pid})
    for category in ("http://snomed.info/sct|3457005", "3457005", "http://snomed.info/sct|"):
        assert _all_pages(http, "ServiceRequest", {"patient": pid, "category": category}) == every
    assert _all_pages(http, "ServiceRequest", {"patient": pid, "category": "http://loinc.org|3457005"}) == []
    docs = population.records("pt-000042")["DocumentReference"]
    for code in ("11506-3", "34748-4"):
        ids = _all_pages(http, "DocumentReference", {"patient": "pt-000042", "type": f"http://loinc.org|{code}"})
        assert ids == sorted(d["id"] for d in docs if d["type"]["coding"][0]["code"] == code)
    active = _all_pages(http, "MedicationRequest", {"patient": "pt-000042", "status": "active"})
    not_active = _all_pages(http, "MedicationRequest", {"patient": "pt-000042", "status:not": "active"})
    assert sorted(active + not_active) == sorted(m["id"] for m in population.records("pt-000042")["MedicationRequest"])


# --------------------------------------------------------------------------- DocumentReference create
def _note(pid: str, note_id: str, text: str = "Caller asked to move Tuesday's visit.") -> dict:
    return {
        "resourceType": "DocumentReference",
        "identifier": [{"system": NOTE_SYSTEM, "value": note_id}],
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "34748-4", "display": "Telephone encounter Note"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "date": "2026-01-02T15:04:05Z",
        "author": [{"display": "agent-7"}],
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}],
    }


def test_document_reference_create(writable: httpx.Client, population: Population) -> None:
    pid = next(
        pid
        for pid in list(population.by_id)[70:]
        if any(d["type"]["coding"][0]["code"] == "34748-4" for d in population.records(pid)["DocumentReference"])
    )
    r = writable.post("DocumentReference", json=_note(pid, "n-1"), headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    created = r.json()
    _model("DocumentReference").model_validate(created)
    rid = created["id"]
    assert created["meta"]["versionId"] == "1" and r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/fhir/DocumentReference/{rid}/_history/1")
    assert writable.get(r.headers["location"]).json() == created
    assert writable.get(f"DocumentReference/{rid}").json() == created
    found = _all_pages(writable, "DocumentReference", {"patient": pid, "type": "http://loinc.org|34748-4"})
    assert rid in found and len(found) >= 2, "beside the generated telephone notes"
    assert _all_pages(writable, "DocumentReference", {"patient": pid, "identifier": f"{NOTE_SYSTEM}|n-1"}) == [rid]
    # conditional create: the same note again is not a second document
    again = writable.post(
        "DocumentReference",
        json=_note(pid, "n-1"),
        headers={"Content-Type": "application/fhir+json", "If-None-Exist": f"identifier={NOTE_SYSTEM}|n-1"},
    )
    assert again.status_code == 200 and again.json()["id"] == rid
    minimal = writable.post(
        "DocumentReference",
        json=_note(pid, "n-2"),
        headers={"Content-Type": "application/fhir+json", "Prefer": "return=minimal"},
    )
    assert minimal.status_code == 201 and minimal.content == b"" and minimal.headers["location"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.pop("status"), ["status", "required"]),
        (lambda d: d.update(status="final"), ["status"]),
        (lambda d: d.update(subjet=d["subject"]), ["subjet", "unknown element"]),
        (lambda d: d["content"][0]["attachment"].update(data="not base64!"), ["base64"]),
        (lambda d: d["content"][0]["attachment"].pop("contentType"), ["contentType"]),
        (lambda d: d.update(content=[]), ["content"]),
        (lambda d: d.update(date="2026-01-02T15:04"), ["date"]),
        (lambda d: d.update(subject={"reference": "Patient/pt-999999"}), ["not known"]),
        (lambda d: d.update(subject={"reference": "Group/1"}), ["Patient"]),
        (lambda d: d.pop("subject"), ["subject"]),
        (lambda d: d.update(resourceType="Patient"), ["resourceType"]),
        (lambda d: d.update(type={"coding": "34748-4"}), ["type"]),
    ],
)
def test_invalid_document_reference_is_400(writable: httpx.Client, change: Any, words: list) -> None:
    doc = _note("pt-000078", "bad")
    change(doc)
    _outcome(
        writable.post("DocumentReference", json=doc, headers={"Content-Type": "application/fhir+json"}), 400, *words
    )


def test_create_refusals(writable: httpx.Client) -> None:
    _outcome(
        writable.post("DocumentReference", content=b"{not json", headers={"Content-Type": "application/fhir+json"}),
        400,
        "JSON",
    )
    _outcome(writable.post("DocumentReference", content=b"hello", headers={"Content-Type": "text/plain"}), 415)
    _outcome(writable.post("Appointment", json={"resourceType": "Appointment"}), 405, "DocumentReference")
    _outcome(writable.delete("Appointment/ap-000001-01"), 405)


# --------------------------------------------------------------------------- Appointment update
def _booked(population: Population) -> dict:
    return next(
        a
        for pid in list(population.by_id)[150:]
        for a in population.records(pid)["Appointment"]
        if a["status"] == "booked" and any(p["status"] == "needs-action" for p in a["participant"])
    )


def test_appointment_participant_update_is_versioned(writable: httpx.Client, population: Population) -> None:
    original = _booked(population)
    aid = original["id"]
    current = writable.get(f"Appointment/{aid}")
    assert current.headers["etag"] == 'W/"1"'
    appt = current.json()
    for p in appt["participant"]:
        if p["actor"]["reference"].startswith("Patient/"):
            p["status"] = "accepted"
    r = writable.put(
        f"Appointment/{aid}", json=appt, headers={"Content-Type": "application/fhir+json", "If-Match": 'W/"1"'}
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    _model("Appointment").model_validate(updated)
    assert updated["meta"]["versionId"] == "2" and r.headers["etag"] == 'W/"2"'
    assert r.headers["location"].endswith(f"/Appointment/{aid}/_history/2")
    assert writable.get(f"Appointment/{aid}").json() == updated
    old = writable.get(f"Appointment/{aid}/_history/1").json()
    assert any(p["status"] == "needs-action" for p in old["participant"])
    assert writable.get(f"Appointment/{aid}/_history/3").status_code == 404
    assert original["meta"]["versionId"] == "1", "the population's own copy is untouched"
    # a stale version is refused
    _outcome(
        writable.put(
            f"Appointment/{aid}", json=appt, headers={"Content-Type": "application/fhir+json", "If-Match": 'W/"1"'}
        ),
        412,
        "version 2",
    )
    stale = {**appt, "meta": {"versionId": "1"}}
    _outcome(writable.put(f"Appointment/{aid}", json=stale, headers={"Content-Type": "application/fhir+json"}), 409)
    # searches see the new state
    patient = next(
        p["actor"]["reference"] for p in appt["participant"] if p["actor"]["reference"].startswith("Patient/")
    )
    cancelled = {**updated, "status": "cancelled"}
    r = writable.put(
        f"Appointment/{aid}", json=cancelled, headers={"Content-Type": "application/fhir+json", "If-Match": 'W/"2"'}
    )
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "3"
    assert aid not in _all_pages(writable, "Appointment", {"patient": patient, "status": "booked"})
    assert aid in _all_pages(writable, "Appointment", {"patient": patient, "status": "cancelled"})


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        (lambda a: a["participant"][0].update(status="maybe"), 400, ["participant[0].status"]),
        (lambda a: a.pop("participant"), 400, ["participant"]),
        (lambda a: a.update(id="ap-000001-01"), 400, ["id"]),
        (lambda a: a.update(end=a["start"], start=a["end"]), 400, ["end"]),
        (lambda a: a.pop("end"), 400, ["app-2"]),
        (lambda a: a.update(start="tomorrow at nine"), 400, ["start"]),
        (lambda a: a.update(status="sort-of"), 400, ["status"]),
    ],
)
def test_invalid_appointment_update_is_refused(
    writable: httpx.Client, population: Population, change: Any, status: int, words: list
) -> None:
    original = next(a for pid in list(population.by_id)[170:] for a in population.records(pid)["Appointment"])
    appt = copy.deepcopy(original)
    change(appt)
    _outcome(
        writable.put(
            f"Appointment/{original['id']}",
            json=appt,
            headers={"Content-Type": "application/fhir+json"},
        ),
        status,
        *words,
    )


def test_update_refusals(writable: httpx.Client, population: Population) -> None:
    some = next(a for pid in list(population.by_id)[170:] for a in population.records(pid)["Appointment"])
    ghost = {**copy.deepcopy(some), "id": some["id"][:-2] + "99"}
    _outcome(
        writable.put(f"Appointment/{ghost['id']}", json=ghost, headers={"Content-Type": "application/fhir+json"}), 404
    )
    patient = population.by_id["pt-000181"]
    _outcome(
        writable.put("Patient/pt-000181", json=patient, headers={"Content-Type": "application/fhir+json"}),
        405,
        "Appointment",
    )


def test_today_as_of_appointments_tomorrow_over_http() -> None:
    today = date.today()
    population = Population.generate(120, seed=7, as_of=today)
    for client in _serve(FhirSandbox(population)):
        tomorrow = (today + timedelta(days=1)).isoformat()
        ids = _all_pages(client, "Appointment", {"date": tomorrow, "status": "booked"})
        assert ids and ids == sorted(
            a["id"] for a in population.appointments_on(today + timedelta(days=1)) if a["status"] == "booked"
        )


def test_update_of_the_only_resource_with_a_key() -> None:
    """Re-indexing empties index buckets (the one booked appointment becomes cancelled) and refills them."""
    appt = {
        "resourceType": "Appointment",
        "id": "only",
        "status": "booked",
        "start": "2026-03-02T09:00:00-05:00",
        "end": "2026-03-02T09:20:00-05:00",
        "participant": [{"actor": {"reference": "Patient/p1", "display": "P One"}, "status": "needs-action"}],
    }
    for client in _serve(FhirSandbox([appt])):
        assert _all_pages(client, "Appointment", {"status": "booked", "patient": "p1", "date": "2026-03-02"}) == [
            "only"
        ]
        headers = {"Content-Type": "application/fhir+json", "If-Match": 'W/"1"'}
        moved = {
            **appt,
            "status": "cancelled",
            "participant": [{**appt["participant"][0], "actor": {"reference": "Patient/p2"}}],
        }
        assert client.put("Appointment/only", json=moved, headers=headers).status_code == 200
        assert _all_pages(client, "Appointment", {"status": "booked"}) == []
        assert _all_pages(client, "Appointment", {"patient": "p1"}) == []
        back = {**appt, "start": "2026-03-03T09:00:00-05:00", "end": "2026-03-03T09:20:00-05:00"}
        assert client.put("Appointment/only", json=back, headers={**headers, "If-Match": 'W/"2"'}).status_code == 200
        assert _all_pages(client, "Appointment", {"status": "booked", "patient": "p1"}) == ["only"]
        assert _all_pages(client, "Appointment", {"date": "2026-03-02"}) == []
        assert _all_pages(client, "Appointment", {"date": "2026-03-03"}) == ["only"]
