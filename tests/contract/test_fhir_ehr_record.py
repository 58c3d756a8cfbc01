"""FhirEhr's record, notes, confirmations, chart links, households and masking, against an
in-memory FHIR server (httpx.MockTransport) that records every request."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from test_fhir_sections_support import MiniFhir, capability_statement, fhir_response, outcome, patient

from pa_tui.backends.base import BadRequest, PermissionDenied, Unavailable
from pa_tui.backends.fhir import RecordSummary
from pa_tui.domain.notes import Note
from pa_tui.domain.patients import PatientSummary
from pa_tui.domain.phones import PhoneNumber, parse_phone
from pa_tui.domain.records import Billing, Money, Section, SectionUnavailable

PID = "p1"
REF = {"reference": f"Patient/{PID}"}
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # the EHRs here run on 2026-01-01 (MiniFhir.ehr's today)
SOON = NOW + timedelta(days=3)
LATER = SOON + timedelta(days=30)
PAST = SOON - timedelta(days=90)
SNOMED_REFERRAL = {"coding": [{"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}]}


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _num(text: str) -> PhoneNumber:
    n = parse_phone(text)
    assert isinstance(n, PhoneNumber)
    return n


def _appointment(aid: str, start: datetime, status: str = "booked", patient_status: str = "needs-action") -> dict:
    return {
        "resourceType": "Appointment",
        "id": aid,
        "meta": {"versionId": "3"},
        "status": status,
        "start": _iso(start),
        "end": _iso(start + timedelta(minutes=20)),
        "serviceType": [{"text": "Follow-up"}],
        "participant": [
            {"actor": REF, "status": patient_status},
            {"actor": {"reference": "Practitioner/dr-1"}, "status": "accepted"},  # no display: read it
            {"actor": {"reference": "Location/loc-1"}, "status": "accepted"},
        ],
    }


def _record() -> list[dict]:
    note_text = "Patient asked about lab results.\nCall back Monday."
    return [
        patient(PID, "408-555-1212", family="Rivera", given="Ana", birth="1985-02-03"),
        {"resourceType": "Practitioner", "id": "dr-1", "name": [{"family": "Rao", "given": ["Priya"], "prefix": ["Dr"]}],
         "telecom": [{"system": "phone", "value": "408-555-0101", "use": "work"}]},
        {"resourceType": "Location", "id": "loc-1", "name": "Downtown Clinic"},
        _appointment("ap-past", PAST, "fulfilled", "accepted"),
        _appointment("ap-later", LATER),
        _appointment("ap-soon", SOON),
        {**_appointment("ap-oops", SOON), "status": "entered-in-error"},
        {"resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "order", "subject": REF,
         "category": [SNOMED_REFERRAL], "code": {"text": "Cardiology consult"}, "authoredOn": "2025-12-01",
         "requester": {"reference": "Practitioner/dr-1"}, "performer": [{"display": "Heart Clinic"}]},
        {"resourceType": "ServiceRequest", "id": "sr-lab", "status": "active", "intent": "order", "subject": REF,
         "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007"}]}], "code": {"text": "CBC"}},
        {"resourceType": "Account", "id": "acct-1", "status": "active", "subject": [REF], "name": "Patient account",
         "extension": [{"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Account.balance",
                        "extension": [{"url": "aggregate", "valueCodeableConcept": {"coding": [{"code": "patient"}]}},
                                      {"url": "amount", "valueMoney": {"value": 125.5, "currency": "USD"}}]}],
         "guarantor": [{"party": {"reference": f"Patient/{PID}"}}]},
        {"resourceType": "Coverage", "id": "cov-1", "status": "active", "beneficiary": REF,
         "payor": [{"display": "Acme Health"}], "subscriberId": "M123",
         "class": [{"type": {"coding": [{"code": "plan"}]}, "name": "Gold PPO"}]},
        {"resourceType": "ExplanationOfBenefit", "id": "eob-1", "status": "active", "patient": REF,
         "created": "2025-11-02", "provider": {"reference": "Practitioner/dr-1"},
         "total": [{"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 200}},
                   {"category": {"coding": [{"code": "memberliability"}]}, "amount": {"value": 40}}]},
        {"resourceType": "MedicationRequest", "id": "mr-old", "status": "stopped", "intent": "order", "subject": REF,
         "medicationCodeableConcept": {"text": "Atenolol 25 mg"}, "authoredOn": "2024-01-01"},
        {"resourceType": "MedicationRequest", "id": "mr-1", "status": "active", "intent": "order", "subject": REF,
         "medicationCodeableConcept": {"text": "Lisinopril 10 mg"}, "authoredOn": "2025-06-01",
         "requester": {"reference": "Practitioner/dr-1"},
         "dosageInstruction": [{"text": "1 tablet daily"}], "dispenseRequest": {"numberOfRepeatsAllowed": 3}},
        {"resourceType": "CareTeam", "id": "ct-1", "status": "active", "name": "Primary care", "subject": REF,
         "participant": [{"role": [{"text": "PCP"}], "member": {"reference": "Practitioner/dr-1", "display": "Dr Priya Rao"}},
                         {"member": REF, "role": [{"text": "patient"}]},
                         {"role": [{"text": "Pharmacist"}], "member": {"reference": "Practitioner/gone"}}]},
        {"resourceType": "CareTeam", "id": "ct-old", "status": "inactive", "subject": REF,
         "participant": [{"member": {"display": "Old Doc"}}]},
        {"resourceType": "DocumentReference", "id": "doc-1", "status": "current", "subject": REF,
         "date": "2025-12-02T10:00:00Z", "type": {"text": "Telephone encounter"},
         "author": [{"reference": "Practitioner/dr-1"}],
         "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(note_text.encode()).decode()}}]},
        {"resourceType": "DocumentReference", "id": "doc-0", "status": "superseded", "subject": REF},
    ]


def _note(note_id: str = "n-1", pid: str | None = PID) -> Note:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    return Note(id=note_id, patient_id=pid, agent_id="agent-7", text="Refill requested", created_at=now, updated_at=now)


# --------------------------------------------------------------------------- each section
async def test_appointments_upcoming_first_with_names() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    appts = await ehr.load_section(PID, Section.APPOINTMENTS)
    assert [a.id for a in appts] == ["ap-soon", "ap-later", "ap-past"]  # type: ignore[attr-defined]
    first = appts[0]  # type: ignore[index]
    assert (first.practitioner, first.location, first.patient_status) == ("Dr Priya Rao", "Downtown Clinic", "needs-action")
    assert first.service == "Follow-up" and first.start == SOON
    assert [r.url.params["patient"] for r in server.sent("GET", "Appointment")] == [PID]
    await ehr.load_section(PID, Section.APPOINTMENTS)
    assert len(server.sent("GET", "Practitioner")) == 1 and len(server.sent("GET", "Location")) == 1, "cached"
    await ehr.aclose()


async def test_upcoming_is_reckoned_on_the_ehrs_day() -> None:
    """A demo runs on its population's day: "tomorrow" there is upcoming, whatever the wall clock says."""
    day = date(2024, 3, 1)
    server = MiniFhir(
        patient(PID),
        _appointment("tomorrow", datetime(2024, 3, 2, 9, tzinfo=UTC)),
        _appointment("last-week", datetime(2024, 2, 23, 9, tzinfo=UTC), "fulfilled"),
    )
    ehr = server.ehr(today=day)
    assert ehr.now().date() == day
    assert [a.id for a in await ehr.load_section(PID, Section.APPOINTMENTS)] == ["tomorrow", "last-week"]  # type: ignore[attr-defined]
    summary = await ehr.load_section(PID, Section.SUMMARY)
    assert summary.next_appointment.id == "tomorrow"  # type: ignore[attr-defined]
    await ehr.aclose()


async def test_referrals_by_category() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    refs = await ehr.load_section(PID, Section.REFERRALS)
    assert [(r.id, r.code, r.requester, r.performer) for r in refs] == [  # type: ignore[attr-defined]
        ("sr-1", "Cardiology consult", "Dr Priya Rao", "Heart Clinic")
    ]
    (req,) = server.sent("GET", "ServiceRequest")
    assert req.url.params["category"] == "http://snomed.info/sct|3457005"
    # a server that does not search by category: everything is fetched and referrals picked here
    server.hooks.append(
        lambda r: fhir_response(400, outcome("Unknown parameter 'category'"))
        if "category" in r.url.params
        else None
    )
    assert [r.id for r in await ehr.load_section(PID, Section.REFERRALS)] == ["sr-1"]  # type: ignore[attr-defined]
    await ehr.aclose()


async def test_billing_accounts_coverage_claims() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    b = await ehr.load_section(PID, Section.BILLING)
    assert isinstance(b, Billing)
    assert b.balance == Money(value=Decimal("125.5")) and b.accounts[0].guarantor == "Ana Rivera"
    assert (b.coverages[0].payor, b.coverages[0].plan, b.coverages[0].subscriber_id) == ("Acme Health", "Gold PPO", "M123")
    assert b.claims[0].provider == "Dr Priya Rao" and b.claims[0].patient_owes == Money(value=Decimal(40))
    # no scope for claims: the tab shows the rest
    server.fail[("GET", "ExplanationOfBenefit")] = 403
    partial = await ehr.load_section(PID, Section.BILLING)
    assert isinstance(partial, Billing) and partial.claims == () and partial.accounts
    # the EHR failing is the tab's error
    server.fail[("GET", "Account")] = 503
    with pytest.raises(Unavailable):
        await ehr.load_section(PID, Section.BILLING)
    del server.fail[("GET", "Account")]
    server.fail[("GET", "Coverage")] = 403
    server.fail[("GET", "Account")] = 403
    with pytest.raises(PermissionDenied):
        await ehr.load_section(PID, Section.BILLING)
    await ehr.aclose()


async def test_coverage_falls_back_to_beneficiary() -> None:
    server = MiniFhir(*_record())
    server.hooks.append(
        lambda r: fhir_response(400, outcome("Unknown parameter 'patient'"))
        if r.url.path.endswith("/Coverage") and "patient" in r.url.params
        else None
    )
    ehr = server.ehr()
    b = await ehr.load_section(PID, Section.BILLING)
    assert [c.id for c in b.coverages] == ["cov-1"]  # type: ignore[attr-defined]
    assert server.sent("GET", "Coverage")[-1].url.params["beneficiary"] == PID
    await ehr.aclose()


async def test_prescriptions_active_first() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    rx = await ehr.load_section(PID, Section.PRESCRIPTIONS)
    assert [(p.id, p.status, p.refills, p.dosage, p.prescriber) for p in rx] == [  # type: ignore[attr-defined]
        ("mr-1", "active", 3, "1 tablet daily", "Dr Priya Rao"),
        ("mr-old", "stopped", None, None, None),
    ]
    await ehr.aclose()


async def test_care_team_members_with_phone_numbers() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    team = await ehr.load_section(PID, Section.CARE_TEAM)
    got = [(m.name, m.role, m.phone.e164 if m.phone else None, m.team) for m in team]  # type: ignore[attr-defined]
    assert got == [("Dr Priya Rao", "PCP", "+14085550101", "Primary care")]  # "gone" is dangling and unnamed
    await ehr.load_section(PID, Section.CARE_TEAM)
    assert len(server.sent("GET", "Practitioner")) == 2, "dr-1 and the dangling one, each read once"
    await ehr.aclose()


async def test_notes_with_text() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    notes = await ehr.load_section(PID, Section.NOTES)
    (n,) = notes  # type: ignore[misc]
    assert (n.id, n.type, n.author) == ("doc-1", "Telephone encounter", "Dr Priya Rao")
    assert n.text == "Patient asked about lab results.\nCall back Monday."
    await ehr.aclose()


async def test_summary_reuses_fresh_sections_or_searches_little() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    summary = await ehr.load_section(PID, Section.SUMMARY)
    assert isinstance(summary, RecordSummary)
    assert summary.patient.id == PID and summary.next_appointment is not None
    assert summary.next_appointment.id == "ap-soon" and summary.balance == Money(value=Decimal("125.5"))
    assert server.sent("GET", "Coverage") == [] and server.sent("GET", "ExplanationOfBenefit") == []
    await ehr.load_section(PID, Section.APPOINTMENTS)
    await ehr.load_section(PID, Section.BILLING)
    before = len(server.requests)
    again = await ehr.load_section(PID, Section.SUMMARY)
    assert again.next_appointment.practitioner == "Dr Priya Rao"  # type: ignore[union-attr]
    assert [r.url.path.rsplit("/", 2)[-2] for r in server.requests[before:]] == ["Patient"], "only the patient read"
    server.fail[("GET", "Account")] = 503
    server.fail[("GET", "Appointment")] = 503
    ehr2 = server.ehr()
    degraded = await ehr2.load_section(PID, Section.SUMMARY)
    assert degraded.patient.id == PID and degraded.next_appointment is None and degraded.balance is None
    await ehr.aclose()
    await ehr2.aclose()


async def test_a_server_without_a_resource_type_says_so() -> None:
    server = MiniFhir(*_record())
    server.hooks.append(
        lambda r: fhir_response(404, outcome("resource type 'CareTeam' is not supported", "not-supported"))
        if r.url.path.endswith("/CareTeam")
        else None
    )
    ehr = server.ehr()
    view = await ehr.load_section(PID, Section.CARE_TEAM)
    assert isinstance(view, SectionUnavailable) and view.section is Section.CARE_TEAM
    assert "not available from this EHR" in view.reason
    await ehr.aclose()


# --------------------------------------------------------------------------- independence
async def test_a_section_that_times_out_shows_its_error_while_the_others_render() -> None:
    server = MiniFhir(*_record())
    server.delay["MedicationRequest"] = 60.0
    ehr = server.ehr(section_timeout=2.0)
    started = time.monotonic()
    finished: dict[Section, float] = {}

    async def load(section: Section) -> object:
        try:
            return await ehr.load_section(PID, section)
        finally:
            finished[section] = time.monotonic() - started

    sections = [s for s in Section]
    results = await asyncio.gather(*(load(s) for s in sections), return_exceptions=True)
    elapsed = time.monotonic() - started
    await ehr.aclose()
    assert finished[Section.PRESCRIPTIONS] >= 2.0
    assert max(t for s, t in finished.items() if s is not Section.PRESCRIPTIONS) < 1.5, "the others did not wait"
    by_section = dict(zip(sections, results, strict=True))
    slow = by_section.pop(Section.PRESCRIPTIONS)
    assert isinstance(slow, Unavailable)
    assert "Prescriptions" in slow.title and "2 s" in slow.title and "retry" in slow.fix
    for section, result in by_section.items():
        assert not isinstance(result, BaseException), (section, result)
    assert len(by_section[Section.APPOINTMENTS]) == 3  # type: ignore[arg-type]
    assert elapsed < 6.0, "the slow section gave up on time and held nothing back"


async def test_a_slow_referenced_resource_does_not_fail_the_section() -> None:
    server = MiniFhir(*_record())
    server.delay["Location"] = 30.0
    ehr = server.ehr(section_timeout=4.0)  # references get half of it
    appts = await ehr.load_section(PID, Section.APPOINTMENTS)
    assert appts[0].practitioner == "Dr Priya Rao" and appts[0].location is None  # type: ignore[index]
    await ehr.aclose()


# --------------------------------------------------------------------------- notes back to the EHR
async def test_write_note_creates_a_document_reference_once() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    doc_id = await ehr.write_note(_note(), encounter_id="enc-9")
    doc = server.get("DocumentReference", doc_id)
    assert doc is not None
    assert doc["status"] == "current" and doc["subject"] == REF
    assert doc["identifier"] == [{"system": "urn:pa-tui:note", "value": "n-1"}]
    assert doc["type"]["coding"][0]["code"] == "34109-9" and doc["type"]["coding"][0]["system"] == "http://loinc.org"
    assert doc["author"] == [{"display": "agent-7"}] and doc["date"] == "2026-01-01T12:00:00Z"
    assert doc["context"] == {"encounter": [{"reference": "Encounter/enc-9"}]}
    att = doc["content"][0]["attachment"]
    assert att["contentType"] == "text/plain" and base64.b64decode(att["data"]).decode() == "Refill requested"
    (post,) = server.sent("POST", "DocumentReference")
    assert post.headers["if-none-exist"] == "identifier=urn:pa-tui:note|n-1"
    assert post.headers["content-type"] == "application/fhir+json"
    search = server.sent("GET", "DocumentReference")[0]
    assert search.url.params["identifier"] == "urn:pa-tui:note|n-1" and search.url.params["patient"] == PID
    # the outbox retries (the first answer was lost): found, not written again
    assert await ehr.write_note(_note()) == doc_id
    assert len(server.sent("POST", "DocumentReference")) == 1
    # and the note reads back in the Notes tab
    notes = await ehr.load_section(PID, Section.NOTES)
    assert any(n.text == "Refill requested" for n in notes)  # type: ignore[attr-defined]
    await ehr.aclose()


async def test_write_note_without_identifier_search_still_writes_once() -> None:
    server = MiniFhir(*_record())
    server.conditional_create = False  # and no conditional create either
    server.hooks.append(
        lambda r: fhir_response(400, outcome("Unknown parameter 'identifier'"))
        if r.url.path.endswith("/DocumentReference") and "identifier" in r.url.params
        else None
    )
    ehr = server.ehr()
    first = await ehr.write_note(_note("n-2"))
    second = await ehr.write_note(_note("n-2"))
    assert first == second and len(server.sent("POST", "DocumentReference")) == 1
    await ehr.aclose()


async def test_write_note_failures() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    with pytest.raises(BadRequest, match="not attached to a patient"):
        await ehr.write_note(_note(pid=None))
    server.fail[("POST", "DocumentReference")] = 500
    with pytest.raises(Unavailable) as exc:
        await ehr.write_note(_note("n-3"))
    assert "Nothing was retried" in exc.value.fix
    assert len(server.sent("POST", "DocumentReference")) == 1, "a write is never retried"
    server.fail[("POST", "DocumentReference")] = 403
    with pytest.raises(PermissionDenied, match="refused access"):
        await ehr.write_note(_note("n-3"))
    await ehr.aclose()


# --------------------------------------------------------------------------- confirmations
async def test_confirm_appointment_generic() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()
    assert await ehr.confirm_appointment("ap-soon") is True
    (put,) = server.sent("PUT", "Appointment")
    assert put.headers["if-match"] == 'W/"3"' and put.url.path.endswith("/Appointment/ap-soon")
    body = json.loads(put.content)
    assert body["participant"][0]["status"] == "accepted" and body["participant"][1] == _appointment("x", SOON)["participant"][1]
    assert await ehr.confirm_appointment("ap-past") is False  # fulfilled
    assert await ehr.confirm_appointment("ap-soon") is True  # already accepted: nothing to write
    assert len(server.sent("PUT")) == 1
    server.hooks.append(lambda r: fhir_response(405, outcome("read-only", "not-supported")) if r.method == "PUT" else None)
    assert await ehr.confirm_appointment("ap-later") is False
    await ehr.aclose()


async def test_confirm_appointment_conflict_is_not_a_lost_update() -> None:
    server = MiniFhir(*_record())
    ehr = server.ehr()

    def changed_meanwhile(request):  # type: ignore[no-untyped-def]
        if request.method == "PUT":
            server.get("Appointment", "ap-later")["meta"]["versionId"] = "4"  # type: ignore[index]
        return None

    server.hooks.append(changed_meanwhile)
    with pytest.raises(BadRequest) as exc:
        await ehr.confirm_appointment("ap-later")
    assert exc.value.status == 412 and "changed" in exc.value.title
    await ehr.aclose()


# --------------------------------------------------------------------------- the chart
def test_chart_url_from_the_site_template() -> None:
    server = MiniFhir()
    ehr = server.ehr(chart_url_template="https://ehr.example.org/chart?mrn={mrn}&id={fhir_id}&p={patient_id}")
    p = PatientSummary(id="a-1.E-5", mrn="12 34/5&x")
    assert ehr.chart_url(p) == "https://ehr.example.org/chart?mrn=12%2034%2F5%26x&id=a-1.E-5&p=a-1.E-5"
    assert ehr.chart_url(PatientSummary(id="x")) is None  # the template needs an MRN
    assert server.ehr(chart_url_template="epic://chart/{fhir_id}").chart_url(p) == "epic://chart/a-1.E-5"
    for bad in ("https://x/{name}", "javascript:alert({mrn})", "https://x/{mrn!r}", "https://x/{mrn", "/chart/{mrn}"):
        with pytest.raises(ValueError):
            server.ehr(chart_url_template=bad)


# --------------------------------------------------------------------------- households and masking
async def test_household_owner_from_account_guarantors() -> None:
    """Three on one number, no RelatedPersons naming anyone: the guarantor of the others' accounts is the
    owner; labels come from the RelatedPerson the kid's record holds for the guarantor."""
    number = "4085551212"
    dad = patient("dad", number, family="Nguyen", given="Minh", birth="1980-01-01", gender="male",
                  link=[{"other": {"reference": "RelatedPerson/rp-dad"}, "type": "seealso"}])
    kid = patient("kid", number, use="home", family="Nguyen", given="An", birth="2014-05-05", gender="female")
    grandma = patient("gma", number, use="home", family="Tran", given="Lan", birth="1950-03-03", gender="female")
    rp = {"resourceType": "RelatedPerson", "id": "rp-dad", "patient": {"reference": "Patient/kid"},
          "relationship": [{"coding": [{"code": "FTH"}]}], "name": [{"family": "Nguyen", "given": ["Minh"]}]}
    accounts = [
        {"resourceType": "Account", "id": f"acct-{p}", "status": "active", "subject": [{"reference": f"Patient/{p}"}],
         "guarantor": [{"party": {"reference": g}}]}
        for p, g in (("kid", "RelatedPerson/rp-dad"), ("gma", "Patient/dad"), ("dad", "Patient/dad"))
    ]
    server = MiniFhir(dad, kid, grandma, rp, *accounts)
    ehr = server.ehr()
    match = await ehr.find_by_phone(_num(number))
    labels = {c.id: c.relationship for c in match.candidates}
    assert labels == {"dad": None, "kid": "daughter", "gma": None}
    assert all(c.household_id == "+14085551212" for c in match.candidates)
    acct_search = server.sent("GET", "Account")[0]
    assert sorted(acct_search.url.params["patient"].split(",")) == ["dad", "gma", "kid"]
    await ehr.aclose()


async def test_merged_records_are_followed_not_treated_as_family() -> None:
    number = "4085551212"
    old = patient("old", number, family="Kim", given="Jo", active=False,
                  link=[{"other": {"reference": "Patient/new"}, "type": "replaced-by"}])
    new = patient("new", None, family="Kim", given="Jo",
                  link=[{"other": {"reference": "Patient/old"}, "type": "replaces"}])
    new["telecom"] = [{"system": "phone", "value": "+1 408 555 1212", "use": "mobile"}]
    server = MiniFhir(old, new)
    server.hooks.append(  # the server's phone index still only knows the old record
        lambda r: fhir_response(200, {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": old}]})
        if r.url.path.endswith("/Patient")
        else None
    )
    ehr = server.ehr()
    match = await ehr.find_by_phone(_num(number))
    assert [c.id for c in match.candidates] == ["new"] and match.kind == "single"
    assert (await ehr.patient("old")).id == "new"
    await ehr.aclose()
    both = MiniFhir(old, new)
    ehr = both.ehr()
    match = await ehr.find_by_phone(_num(number))
    assert [c.id for c in match.candidates] == ["new"], "the replaced record and its survivor appear once"
    await ehr.aclose()
    family = MiniFhir(
        patient("a", number, family="Lee", given="Al", link=[{"other": {"reference": "Patient/b"}, "type": "seealso"}]),
        patient("b", number, use="home", family="Lee", given="Bo"),
    )
    ehr = family.ehr()
    assert sorted(c.id for c in (await ehr.find_by_phone(_num(number))).candidates) == ["a", "b"]
    await ehr.aclose()


async def test_restricted_records_and_minors_carry_their_reason() -> None:
    conf = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    number = "4085551212"
    server = MiniFhir(
        patient("adult", number, birth="1980-01-01"),
        patient("teen", number, use="home", given="Teen", birth="2010-06-01"),
        patient("child-r", number, use="home", given="Kid", birth="2018-01-01", meta={"security": [{"system": conf, "code": "R"}]}),
        patient("vip", number, use="home", given="Vip", birth="1970-01-01", meta={"security": [{"system": conf, "code": "V"}]}),
        capabilities=capability_statement(["phone"]),
    )
    ehr = server.ehr(minor_age=18)
    reasons = {c.id: c.restricted_reason for c in (await ehr.find_by_phone(_num(number))).candidates}
    assert reasons == {"adult": None, "teen": "minor", "child-r": "restricted record", "vip": "very restricted record"}
    assert (await ehr.patient("teen")).restricted_reason == "minor"
    assert {s.id: s.restricted_reason for s in await ehr.search("Doe")}["teen"] == "minor"
    await ehr.aclose()
    ehr = server.ehr(minor_age=13)
    assert (await ehr.patient("teen")).restricted_reason is None
    await ehr.aclose()
    ehr = server.ehr(minor_age=None)
    assert (await ehr.patient("teen")).restricted_reason is None
    await ehr.aclose()


async def test_search_identify_generic() -> None:
    number = "4085551212"
    server = MiniFhir(
        patient("a", "650-555-0000", family="Diaz", given="Eva", birth="1990-09-09", gender="female"),
        patient("b", number, family="Diaz", given="Eva", birth="1990-09-09", gender="female"),
        capabilities=capability_statement(["phone", "given", "family", "birthdate", "gender"]),
    )
    ehr = server.ehr()
    match = await ehr.search_identify(" Eva ", "Diaz", date(1990, 9, 9), gender="F", phone="(408) 555-1212")
    assert [c.id for c in match.candidates] == ["b", "a"], "the caller's number ranks first"
    assert match.source.value == "search"
    params = dict(server.sent("GET", "Patient")[-1].url.params)
    assert params == {"given": "Eva", "family": "Diaz", "birthdate": "1990-09-09", "gender": "female", "_count": "50"}
    match = await ehr.search_identify("Eva", "Diaz", None, phone="(408) 555-1212")
    assert [c.id for c in match.candidates] == ["b"]
    with pytest.raises(BadRequest):
        await ehr.search_identify("", "Diaz", date(1990, 9, 9))
    with pytest.raises(BadRequest):
        await ehr.search_identify("Eva", "Diaz", None)
    with pytest.raises(BadRequest, match="date of birth"):
        await ehr.search_identify("Eva", "Diaz", None, gender="female")  # a name and a sex are not enough
    with pytest.raises(BadRequest, match="Legal sex"):
        await ehr.search_identify("Eva", "Diaz", date(1990, 9, 9), gender="robot")
    await ehr.aclose()


async def test_no_phi_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    server = MiniFhir(*_record(), capabilities=capability_statement(["phone", "given", "family", "birthdate"]))
    server.delay["Location"] = 2.0
    ehr = server.ehr(section_timeout=1.0)
    for section in Section:
        await ehr.load_section(PID, section)
    await ehr.find_by_phone(_num("(408) 555-1212"))
    await ehr.search_identify("Ana", "Rivera", date(1985, 2, 3), phone="408-555-1212")
    await ehr.write_note(_note())
    await ehr.confirm_appointment("ap-soon")
    await ehr.aclose()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "FHIR" in text
    for phi in ("Rivera", "Ana", "555", "1985", "Refill requested", "lab results", "Lisinopril", "Cardiology"):
        assert phi not in text, phi
