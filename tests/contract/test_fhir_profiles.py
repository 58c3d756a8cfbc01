"""Vendor profiles obeyed on the wire: what each EHR allows is what pa-tui sends.

Against an in-memory server (httpx.MockTransport) that records every request, so the
tests prove what is *never* sent as well as what is.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from test_fhir_sections_support import (
    MiniFhir,
    capability_statement,
    fhir_response,
    outcome,
    patient,
)

from pa_tui.backends.base import BadRequest, NotSupported
from pa_tui.backends.fhir import FhirClient, TooManyMatches, vendor_profile
from pa_tui.domain.notes import Note
from pa_tui.domain.phones import PhoneNumber, parse_phone
from pa_tui.domain.records import Section, SectionUnavailable

CALLER = "(408) 555-1212"


def _num(text: str) -> PhoneNumber:
    n = parse_phone(text)
    assert isinstance(n, PhoneNumber)
    return n


def _family() -> list[dict]:
    return [
        patient("mom", "408-555-1212", family="Rivera", given="Ana", birth="1985-02-03", gender="female"),
        patient("kid", "4085551212", use="home", family="Rivera", given="Leo", birth="2015-06-07", gender="male"),
    ]


def _record(pid: str = "mom") -> list[dict]:
    ref = {"reference": f"Patient/{pid}"}
    return [
        {"resourceType": "Appointment", "id": "ap-1", "status": "booked", "start": "2026-02-01T09:00:00Z",
         "participant": [{"actor": ref, "status": "needs-action"}]},
        {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "order", "subject": ref,
         "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}]},
        {"resourceType": "MedicationRequest", "id": "mr-1", "status": "active", "intent": "order", "subject": ref,
         "medicationCodeableConcept": {"text": "Lisinopril 10 mg"}},
        {"resourceType": "CareTeam", "id": "ct-1", "status": "active", "subject": ref,
         "participant": [{"member": {"reference": "Practitioner/dr-1", "display": "Dr Who"}}]},
        {"resourceType": "Practitioner", "id": "dr-1", "name": [{"family": "Who", "prefix": ["Dr"]}],
         "telecom": [{"system": "phone", "value": "650-555-0000", "use": "work"}]},
        {"resourceType": "DocumentReference", "id": "doc-1", "status": "current", "subject": ref},
        {"resourceType": "Account", "id": "acct-1", "status": "active", "subject": [ref]},
        {"resourceType": "Coverage", "id": "cov-1", "status": "active", "beneficiary": ref},
        {"resourceType": "ExplanationOfBenefit", "id": "eob-1", "status": "active", "patient": ref},
    ]


def _note(pid: str = "mom") -> Note:
    now = datetime(2026, 1, 1, 12, 0)
    return Note(id="note-1", patient_id=pid, agent_id="agent-7", text="Called about refill", created_at=now, updated_at=now)


# --------------------------------------------------------------------------- the profiles themselves
def test_profiles_state_what_each_ehr_allows() -> None:
    epic, oracle, athena, generic = (vendor_profile(v) for v in ("epic", "oracle-health", "athena", "generic"))
    assert generic.phone_from_capabilities and generic.billing and generic.appointment_updates
    assert not epic.patient_search_allowed(["phone"])
    assert epic.patient_search_allowed(["_id"]) and epic.patient_search_allowed(["identifier", "_count"])
    assert epic.patient_search_allowed(["given", "family", "birthdate"])
    assert epic.patient_search_allowed(["given", "family", "gender", "phone"])
    assert epic.patient_search_allowed(["given", "family", "gender", "email"])
    assert not epic.patient_search_allowed(["given", "family", "phone"])  # legal sex missing
    assert not epic.patient_search_allowed(["family", "birthdate"])
    assert not epic.appointment_updates
    assert "date of birth" in epic.minimum_sets_text()
    assert oracle.phone_param == "phone" and oracle.too_many_status == 422
    assert not oracle.patient_search_allowed(["name", "family"])
    assert not oracle.patient_search_allowed(["name", "given", "birthdate"])
    assert oracle.patient_search_allowed(["name", "birthdate"]) and oracle.patient_search_allowed(["given", "family"])
    assert athena.phone_param is None and not athena.billing and not athena.appointment_search
    assert athena.practice_value("195900") == "Organization/a-1.Practice-195900"
    with pytest.raises(ValueError, match="unknown FHIR vendor"):
        vendor_profile("meditech")


# --------------------------------------------------------------------------- Epic
async def test_epic_never_sends_a_bare_phone_search() -> None:
    server = MiniFhir(*_family())
    ehr = server.ehr("epic")
    match = await ehr.find_by_phone(_num(CALLER))
    assert match.phone_search_supported is False and match.kind == "none"
    with pytest.raises(NotSupported) as exc:
        await ehr.search(CALLER)
    assert "phone" in exc.value.title and "date of birth" in exc.value.fix
    with pytest.raises(NotSupported):
        await ehr.client.search("Patient", [("phone", "4085551212")])
    with pytest.raises(NotSupported):
        await ehr.client.search("Patient", {"telecom": "phone|4085551212", "_count": "5"})
    await ehr.aclose()
    assert server.sent("GET", "Patient") == [], "no phone-only search ever left the machine"


async def test_epic_searches_use_a_minimum_set() -> None:
    server = MiniFhir(*_family())
    ehr = server.ehr("epic")
    match = await ehr.search_identify("Ana", "Rivera", date(1985, 2, 3))
    assert [c.id for c in match.candidates] == ["mom"]
    assert dict(server.sent("GET", "Patient")[-1].url.params) == {
        "given": "Ana", "family": "Rivera", "birthdate": "1985-02-03", "_count": "50"
    }
    # no date of birth: legal sex + phone is Epic's other set
    match = await ehr.search_identify("Leo", "Rivera", None, gender="M", phone=CALLER)
    params = dict(server.sent("GET", "Patient")[-1].url.params)
    assert params["gender"] == "male" and params["phone"] == "4085551212" and "birthdate" not in params
    assert [c.id for c in match.candidates] == ["kid"]
    before = len(server.requests)
    with pytest.raises(BadRequest) as exc:
        await ehr.search_identify("Leo", "Rivera", None, phone=CALLER)  # no legal sex
    assert "Epic needs" in exc.value.fix
    with pytest.raises(NotSupported):
        await ehr.search("Rivera")  # a name alone
    with pytest.raises(NotSupported):
        await ehr.search("02/03/1985")  # a date of birth alone
    assert len(server.requests) == before, "refused searches are not sent"
    results = await ehr.search("Ana Rivera 02/03/1985")
    assert [s.id for s in results] == ["mom"]
    await ehr.search("12345678")
    idents = [r.url.params.get("identifier") for r in server.sent("GET", "Patient") if "identifier" in r.url.params]
    assert idents == ["MRN|12345678"], "Epic identifier searches are type|value"
    await ehr.aclose()


async def test_epic_refuses_appointment_writes_but_takes_notes() -> None:
    server = MiniFhir(*_family(), *_record())
    ehr = server.ehr("epic")
    assert await ehr.confirm_appointment("ap-1") is False
    assert server.sent("PUT") == [] and server.sent("GET", "Appointment") == []
    doc_id = await ehr.write_note(_note())
    assert server.get("DocumentReference", doc_id) is not None
    await ehr.aclose()


# --------------------------------------------------------------------------- Oracle Health
async def test_oracle_searches_phone_and_never_mixes_name_with_family() -> None:
    server = MiniFhir(*_family())
    ehr = server.ehr("oracle-health")
    match = await ehr.find_by_phone(_num(CALLER))
    assert sorted(c.id for c in match.candidates) == ["kid", "mom"]
    assert server.sent("GET", "metadata") == [], "Oracle's phone parameter is known; no /metadata needed"
    assert [r.url.params.get("phone") for r in server.sent("GET", "Patient")] == ["4085551212"]
    await ehr.search("Rivera")
    await ehr.search("Ana Rivera")
    await ehr.search("Rivera, Ana 2/3/1985")
    for r in server.sent("GET", "Patient"):
        names = set(r.url.params.keys())
        assert not ("name" in names and names & {"family", "given"}), r.url.params
    with pytest.raises(BadRequest, match="together with"):
        await ehr.client.search("Patient", [("name", "Ana"), ("family", "Rivera")])
    await ehr.aclose()


async def test_oracle_more_than_a_thousand_matches_means_narrow_the_search() -> None:
    server = MiniFhir(*_family())
    server.hooks.append(
        lambda r: fhir_response(422, outcome("The search returned more than 1000 results", "too-costly"))
        if r.url.path.endswith("/Patient")
        else None
    )
    ehr = server.ehr("oracle-health")
    with pytest.raises(TooManyMatches) as exc:
        await ehr.search("Smith")
    assert isinstance(exc.value, BadRequest) and exc.value.status == 422
    assert "too many" in exc.value.title and "1,000" in exc.value.title
    assert exc.value.fix.startswith("Narrow the search")
    # a number on more than 1,000 records (a care home's main line): nobody popped, the form opens
    match = await ehr.find_by_phone(_num(CALLER))
    assert match.kind == "none" and match.phone_search_supported
    assert len(server.sent("GET", "Patient")) == 2, "422 is not retried"
    await ehr.aclose()


async def test_oracle_confirms_appointments_by_put() -> None:
    server = MiniFhir(*_family(), *_record())
    ehr = server.ehr("oracle-health")
    assert await ehr.confirm_appointment("ap-1") is True
    (put,) = server.sent("PUT", "Appointment")
    assert put.headers["if-match"] == 'W/"1"'
    assert server.get("Appointment", "ap-1")["participant"][0]["status"] == "accepted"
    await ehr.aclose()


# --------------------------------------------------------------------------- athenahealth
def test_athena_needs_a_practice_id() -> None:
    with pytest.raises(ValueError, match="practice"):
        FhirClient("https://api.platform.athenahealth.com/fhir/r4", vendor="athena")
    with pytest.raises(ValueError, match="practice"):
        FhirClient("https://api.platform.athenahealth.com/fhir/r4", vendor="athena", practice_id="1 OR 1=1")


async def test_every_athena_call_carries_ah_practice() -> None:
    server = MiniFhir(*_family(), *_record(), page_size=1, capabilities=capability_statement(["name"]))
    server.add({**_record()[2], "id": "mr-2", "medicationCodeableConcept": {"text": "Metformin"}})
    ehr = server.ehr("athena", client_kwargs={"practice_id": "195900"})
    match = await ehr.find_by_phone(_num(CALLER))
    assert match.phone_search_supported is False  # no phone parameter on athena's Patient search
    assert [c.id for c in (await ehr.search_identify("Ana", "Rivera", date(1985, 2, 3))).candidates] == ["mom"]
    await ehr.patient("mom")
    await ehr.search("Ana Rivera")
    for section in Section:
        await ehr.load_section("mom", section)
    await ehr.write_note(_note())
    await ehr.client.capabilities()
    assert len(await ehr.load_section("mom", Section.PRESCRIPTIONS)) == 2  # type: ignore[arg-type]
    await ehr.aclose()
    assert any("_page" in r.url.params for r in server.requests), "next pages were followed"
    assert len(server.requests) >= 10
    for request in server.requests:
        assert request.url.params.get_list("ah-practice") == ["Organization/a-1.Practice-195900"], request.url


async def test_athena_sections_it_does_not_expose() -> None:
    server = MiniFhir(*_family(), *_record())
    ehr = server.ehr("athena", client_kwargs={"practice_id": "195900"})
    billing = await ehr.load_section("mom", Section.BILLING)
    assert billing == SectionUnavailable(section=Section.BILLING, reason="not available from this EHR")
    appts = await ehr.load_section("mom", Section.APPOINTMENTS)
    assert isinstance(appts, SectionUnavailable) and "by id only" in appts.reason
    summary = await ehr.load_section("mom", Section.SUMMARY)
    assert not summary.billing_available and not summary.appointments_available  # type: ignore[attr-defined]
    assert server.sent("GET", "Account") == server.sent("GET", "Appointment") == []
    assert await ehr.confirm_appointment("ap-1") is False
    prescriptions = await ehr.load_section("mom", Section.PRESCRIPTIONS)
    assert [p.medication for p in prescriptions] == ["Lisinopril 10 mg"]  # type: ignore[attr-defined]
    await ehr.aclose()


# --------------------------------------------------------------------------- generic (US Core)
@pytest.mark.parametrize(
    ("advertised", "expected"),
    [
        (["phone", "telecom", "name"], ("phone", "4085551212")),
        (["telecom", "name", "birthdate"], ("telecom", "phone|4085551212")),
    ],
)
async def test_generic_picks_phone_or_telecom_from_the_capability_statement(
    advertised: list[str], expected: tuple[str, str]
) -> None:
    server = MiniFhir(*_family(), capabilities=capability_statement(advertised))
    ehr = server.ehr("generic")
    for _ in range(3):
        match = await ehr.find_by_phone(_num(CALLER))
        assert sorted(c.id for c in match.candidates) == ["kid", "mom"]
    await ehr.aclose()
    assert len(server.sent("GET", "metadata")) == 1, "/metadata is read once"
    searches = server.sent("GET", "Patient")
    assert len(searches) == 3
    for r in searches:
        keys = [k for k in r.url.params.keys() if k != "_count"]
        assert keys == [expected[0]] and r.url.params[expected[0]] == expected[1]


async def test_generic_without_a_phone_parameter_opens_the_form() -> None:
    server = MiniFhir(*_family(), capabilities=capability_statement(["name", "birthdate"]))
    ehr = server.ehr("generic")
    match = await ehr.find_by_phone(_num(CALLER))
    assert match.phone_search_supported is False and server.sent("GET", "Patient") == []
    match = await ehr.search_identify("Ana", "Rivera", date(1985, 2, 3), phone=CALLER)
    assert [c.id for c in match.candidates] == ["mom"]
    assert "phone" not in server.sent("GET", "Patient")[-1].url.params  # the date of birth is enough
    await ehr.aclose()


async def test_generic_without_metadata_tries_phone_then_telecom() -> None:
    server = MiniFhir(*_family())  # /metadata answers 404

    def refuse_phone(request):  # type: ignore[no-untyped-def]
        if request.url.path.endswith("/Patient") and "phone" in request.url.params:
            return fhir_response(400, outcome("Unknown parameter 'phone'", "not-supported"))
        return None

    server.hooks.append(refuse_phone)
    ehr = server.ehr("generic")
    match = await ehr.find_by_phone(_num(CALLER))
    assert sorted(c.id for c in match.candidates) == ["kid", "mom"]
    await ehr.find_by_phone(_num(CALLER))
    await ehr.aclose()
    assert len(server.sent("GET", "metadata")) == 1
    used = [next(k for k in r.url.params.keys() if k != "_count") for r in server.sent("GET", "Patient")]
    assert used == ["phone", "telecom", "phone", "telecom"]
