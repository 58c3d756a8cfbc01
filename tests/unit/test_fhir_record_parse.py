"""FHIR record resources → section views, on HL7's official R4 examples and on hostile input."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pa_tui.backends.fhir.sections import (
    account_view,
    appointment_view,
    billing,
    care_team_members,
    claim_view,
    clinical_note,
    coverage_view,
    guarantor_references,
    is_referral,
    note_identifier,
    prescription_view,
    reference_key,
    references_to_resolve,
    referral_view,
    replaced_by,
    replaces,
    resource_name,
    resource_phones,
)
from pa_tui.domain.records import (
    AccountView,
    Appointment,
    Billing,
    CareTeamMember,
    ClaimView,
    ClinicalNote,
    CoverageView,
    Money,
    Prescription,
    Referral,
)

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "fhir-examples"
TODAY = date(2026, 1, 1)

pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/fhir-examples is not beside the repository")


def _load(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def _files(pattern: str) -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob(pattern)) if EXAMPLES.is_dir() else []


def _all_parsers(raw: object) -> list[object]:
    return [
        appointment_view(raw, patient_id="example", today=TODAY),
        referral_view(raw, today=TODAY),
        account_view(raw, today=TODAY),
        coverage_view(raw, today=TODAY),
        claim_view(raw, today=TODAY),
        prescription_view(raw, today=TODAY),
        care_team_members(raw, patient_id="example", today=TODAY),
        clinical_note(raw, today=TODAY),
        billing([raw], [raw], [raw], today=TODAY),
        references_to_resolve(raw, patient_id="example"),
        is_referral(raw),
        guarantor_references(raw, today=TODAY),
        replaced_by(raw),
        replaces(raw),
        note_identifier(raw),
        resource_name(raw, today=TODAY),
        resource_phones(raw, today=TODAY),
    ]


# --------------------------------------------------------------------------- official examples, every type read
READ_TYPES = (
    "Appointment",
    "ServiceRequest",
    "Account",
    "Coverage",
    "ExplanationOfBenefit",
    "MedicationRequest",
    "CareTeam",
    "DocumentReference",
    "RelatedPerson",
    "Bundle",
    "Patient",
)


def test_there_is_an_example_of_every_type_the_console_reads() -> None:
    for rtype in READ_TYPES:
        assert _files(f"{rtype}-*.json"), rtype


@pytest.mark.parametrize("name", _files("*.json"))
def test_every_parser_takes_every_official_example(name: str) -> None:
    raw = _load(name)
    _all_parsers(raw)
    for entry in raw.get("entry", []):  # and what a Bundle holds
        _all_parsers(entry.get("resource"))


@pytest.mark.parametrize("name", _files("Appointment-*.json"))
def test_official_appointments(name: str) -> None:
    a = appointment_view(_load(name), patient_id="example", today=TODAY)
    assert isinstance(a, Appointment) and a.status == "booked" and a.patient_status == "accepted"
    assert a.start is not None and a.start.tzinfo is not None and a.end is not None and a.end > a.start
    assert a.service == "General Discussion"
    assert a.practitioner is not None and a.practitioner.startswith("Dr Adam Careful")


def test_appointment_participants_and_references() -> None:
    two = appointment_view(_load("Appointment-2docs.json"), patient_id="example")
    assert two.practitioner == "Dr Adam Careful, Luigi Maas" and two.location is None  # "Phone Call" has no type
    one = appointment_view(_load("Appointment-example.json"), patient_id="example")
    assert one.location == "South Wing, second floor" and one.description.startswith("Discussion on the results")
    assert appointment_view(_load("Appointment-example.json"), patient_id="someone-else").patient_status is None
    # no displays: named from the resources the EHR read
    raw = _load("Appointment-example.json")
    for part in raw["participant"]:
        part["actor"].pop("display", None)
    assert references_to_resolve(raw) == ["Practitioner/example", "Location/1"]
    refs = {
        "Practitioner/example": {"resourceType": "Practitioner", "name": [{"family": "Careful", "given": ["Adam"], "prefix": ["Dr"]}]},
        "Location/1": {"resourceType": "Location", "name": "South Wing"},
    }
    named = appointment_view(raw, patient_id="example", refs=refs)
    assert (named.practitioner, named.location) == ("Dr Adam Careful", "South Wing")
    dangling = appointment_view(raw, patient_id="example", refs={})
    assert dangling.practitioner is None and dangling.location is None and dangling.patient_status == "accepted"


def test_official_service_requests() -> None:
    ct = _load("ServiceRequest-example.json")
    r = referral_view(ct)
    assert isinstance(r, Referral) and (r.status, r.intent) == ("completed", "order")
    assert r.category == "Diagnostics Procedure" and r.code == "Computed tomography of head"
    assert not is_referral(ct), "a CT order is not a referral"
    ft4 = referral_view(_load("ServiceRequest-ft4.json"))
    assert ft4.code == "Free T4" and ft4.authored == datetime(2015, 8, 27, 9, 33, 27, tzinfo=timezone(timedelta(hours=7)))
    assert ft4.requester is None  # Practitioner/example: dangling, no display
    assert references_to_resolve(_load("ServiceRequest-ft4.json")) == ["Practitioner/example"]


def test_referral_category_is_recognised() -> None:
    snomed = {"coding": [{"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}]}
    assert is_referral({"resourceType": "ServiceRequest", "category": [snomed]})
    assert is_referral({"category": [{"text": "Referral to cardiology"}]})
    assert is_referral({"category": [{"coding": [{"code": "3457005"}]}]})
    assert not is_referral({"category": [{"coding": [{"system": "http://loinc.org", "code": "3457005"}]}]})
    r = referral_view(
        {
            "resourceType": "ServiceRequest",
            "id": "r1",
            "status": "active",
            "category": [snomed],
            "code": {"text": "Cardiology consult"},
            "performer": [{"reference": "#org"}],
            "contained": [{"resourceType": "Organization", "id": "org", "name": "Heart Clinic"}],
            "reasonReference": [{"display": "Chest pain"}],
            "authoredOn": "2025-12-01",
        }
    )
    assert (r.performer, r.reason, r.category) == ("Heart Clinic", "Chest pain", "Patient referral")


def test_official_account_coverage_and_claim() -> None:
    acct = account_view(_load("Account-example.json"), today=TODAY)
    assert isinstance(acct, AccountView) and acct.name.startswith("HACC Funded Billing")
    assert acct.status == "active" and acct.balance is None and acct.guarantor is None
    cov = coverage_view(_load("Coverage-9876B1.json"))
    assert isinstance(cov, CoverageView)
    assert cov.plan == "Full Coverage: Medical, Dental, Pharmacy, Vision, EHC"
    assert (cov.subscriber_id, cov.relationship, cov.period_end) == ("12345", "self", date(2012, 5, 23))
    assert cov.payor is None  # Organization/2 is dangling
    claim = claim_view(_load("ExplanationOfBenefit-EB3500.json"))
    assert isinstance(claim, ClaimView) and claim.outcome == "complete"
    assert claim.total == Money(value=Decimal("135.57")) and claim.patient_owes is None
    assert claim.created == datetime(2014, 8, 16, tzinfo=UTC)
    b = billing([_load("Account-example.json")], [_load("Coverage-9876B1.json")], [_load("ExplanationOfBenefit-EB3500.json")])
    assert isinstance(b, Billing) and len(b.accounts) == len(b.coverages) == len(b.claims) == 1 and b.balance is None


def test_account_balances_r5_element_and_cross_version_extension() -> None:
    ext = {
        "url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Account.balance",
        "extension": [
            {"url": "aggregate", "valueCodeableConcept": {"coding": [{"code": "patient"}]}},
            {"url": "term", "valueCodeableConcept": {"coding": [{"code": "current"}]}},
            {"url": "estimate", "valueBoolean": False},
            {"url": "amount", "valueMoney": {"value": 42.5, "currency": "USD"}},
        ],
    }
    insurer = {
        "url": ext["url"],
        "extension": [
            {"url": "aggregate", "valueCodeableConcept": {"coding": [{"code": "insurance"}]}},
            {"url": "amount", "valueMoney": {"value": 900}},
        ],
    }
    a = account_view({"resourceType": "Account", "id": "a", "extension": [insurer, ext]})
    assert a.balance == Money(value=Decimal("42.5"))
    r5 = account_view(
        {"id": "b", "balance": [{"aggregate": {"coding": [{"code": "patient"}]}, "amount": {"value": "10.10"}},
                                {"aggregate": {"coding": [{"code": "insurance"}]}, "amount": {"value": 5}}]}
    )
    assert r5.balance == Money(value=Decimal("10.10"))
    simple = account_view({"id": "c", "extension": [{"url": "http://x/balance", "valueMoney": {"value": -3, "currency": "eur"}}]})
    assert simple.balance == Money(value=Decimal(-3), currency="EUR")
    assert account_view({"id": "d", "extension": [{"url": "http://x/balance", "valueMoney": {"value": "NaN"}}]}).balance is None
    total = Billing(accounts=(a, r5)).balance
    assert total == Money(value=Decimal("52.60"))


def test_account_guarantors() -> None:
    acct = {
        "resourceType": "Account",
        "id": "a",
        "subject": [{"reference": "Patient/kid"}],
        "guarantor": [
            {"party": {"reference": "RelatedPerson/old"}, "period": {"end": "2020-01-01"}},
            {"party": {"reference": "Patient/dad"}, "onHold": True},
            {"party": {"reference": "RelatedPerson/rp-mom", "display": "Ana Rivera"}},
        ],
    }
    assert guarantor_references(acct, today=TODAY) == ["RelatedPerson/rp-mom"]
    assert account_view(acct, today=TODAY).guarantor == "Ana Rivera"


def test_claims_patient_share() -> None:
    def eob(*totals: tuple[str, float]) -> dict[str, Any]:
        return {
            "resourceType": "ExplanationOfBenefit",
            "id": "e",
            "total": [{"category": {"coding": [{"code": c}]}, "amount": {"value": v, "currency": "USD"}} for c, v in totals],
        }

    c = claim_view(eob(("submitted", 200), ("benefit", 150), ("memberliability", 50), ("paidbypatient", 20)))
    assert c.total == Money(value=Decimal(200)) and c.patient_owes == Money(value=Decimal(30))
    assert claim_view(eob(("memberliability", 50), ("paidbypatient", 80))).patient_owes == Money(value=Decimal(0))
    assert claim_view(eob(("benefit", 150))).total == Money(value=Decimal(150))  # no "submitted": the first total


@pytest.mark.parametrize("name", _files("MedicationRequest-*.json"))
def test_official_medication_requests(name: str) -> None:
    p = prescription_view(_load(name))
    assert isinstance(p, Prescription) and p.prescriber == "Patrick Pump"
    assert p.authored == datetime(2015, 1, 15, tzinfo=UTC)


def test_medication_from_contained_and_refills() -> None:
    contained = prescription_view(_load("MedicationRequest-medrx0302.json"))
    assert contained.medication == "Azithromycin 250mg capsule (product)" and contained.is_active
    assert contained.dosage == "Two tablets at once; One tablet daily for 4 days" and contained.refills == 1
    coded = prescription_view(_load("MedicationRequest-medrx0308.json"))
    assert coded.medication == "Vicodin 5/500 Oral Tablet" and coded.refills is None and coded.status == "completed"
    by_ref = {"resourceType": "MedicationRequest", "id": "m", "status": "active", "medicationReference": {"reference": "Medication/7"}}
    assert references_to_resolve(by_ref) == ["Medication/7"]
    assert prescription_view(by_ref).medication == "(medication not named)"
    refs = {"Medication/7": {"resourceType": "Medication", "code": {"text": "Metformin 500 mg"}}}
    assert prescription_view(by_ref, refs=refs).medication == "Metformin 500 mg"
    odd = {"id": "x", "status": "active", "dispenseRequest": {"numberOfRepeatsAllowed": True}}
    assert prescription_view(odd).refills is None


def test_official_care_team() -> None:
    raw = _load("CareTeam-example.json")
    while_current = care_team_members(raw, patient_id="example", today=date(2012, 6, 1))
    assert while_current == [
        CareTeamMember(
            name="Dorothy Dietition", role="adviser", phone=None, team="Peter James Charlmers Care Plan for Inpatient Encounter"
        )
    ]
    assert care_team_members(raw, patient_id="example", today=TODAY) == []  # the member's period ended in 2013
    assert references_to_resolve(raw, patient_id="example") == []  # the patient is not read as a member


def test_care_team_phone_numbers_from_the_members_own_records() -> None:
    team = {
        "resourceType": "CareTeam",
        "id": "t",
        "name": "Primary care",
        "participant": [
            {"role": [{"text": "Primary care physician"}], "member": {"reference": "Practitioner/dr", "display": "Dr Rao"}},
            {"role": [{"coding": [{"display": "Nurse"}]}], "member": {"reference": "PractitionerRole/rn"}},
            {"role": [{"text": "Caregiver"}], "member": {"reference": "RelatedPerson/rp", "display": "Ana"}},
            {"member": {"reference": "Practitioner/ghost"}},  # dangling, no display, no role: left out
        ],
    }
    assert references_to_resolve(team, patient_id="p") == [
        "Practitioner/dr",
        "PractitionerRole/rn",
        "RelatedPerson/rp",
        "Practitioner/ghost",
    ]
    refs = {
        "Practitioner/dr": {
            "resourceType": "Practitioner",
            "telecom": [
                {"system": "phone", "value": "408-555-0001", "use": "home"},
                {"system": "phone", "value": "408-555-0002", "use": "work"},
                {"system": "email", "value": "dr@example.org"},
            ],
        },
        "PractitionerRole/rn": {
            "resourceType": "PractitionerRole",
            "practitioner": {"display": "Kim Lee, RN"},
            "telecom": [{"system": "phone", "value": "(408) 555-0003"}],
        },
        "RelatedPerson/rp": {"resourceType": "RelatedPerson", "telecom": [{"system": "phone", "value": "4085550004", "use": "old"}]},
    }
    members = care_team_members(team, patient_id="p", refs=refs, today=TODAY)
    got = [(m.name, m.role, m.phone.e164 if m.phone else None, m.team) for m in members]
    assert got == [
        ("Dr Rao", "Primary care physician", "+14085550002", "Primary care"),
        ("Kim Lee, RN", "Nurse", "+14085550003", "Primary care"),
        ("Ana", "Caregiver", None, "Primary care"),  # only an old number
    ]


def test_a_team_line_is_listed_after_the_members() -> None:
    team = {
        "resourceType": "CareTeam",
        "name": "Primary care team",
        "telecom": [{"system": "phone", "value": "(689) 555-1422", "use": "work"}],
        "participant": [{"role": [{"text": "PCP"}], "member": {"display": "Dr Rao"}}],
    }
    members = care_team_members(team, today=TODAY)
    assert [(m.name, m.role, m.phone.e164 if m.phone else None) for m in members] == [
        ("Dr Rao", "PCP", None),
        ("Primary care team", "Team line", "+16895551422"),
    ]


def test_official_document_reference() -> None:
    n = clinical_note(_load("DocumentReference-example.json"))
    assert isinstance(n, ClinicalNote) and n.type == "Outpatient Note" and n.status == "preliminary"
    assert n.author == "Gerald Smitty"  # from the contained Practitioner; Practitioner/xcda1 is unresolved
    assert n.text is None  # an XML document by URL, and labelled very restricted
    assert n.date == datetime(2005, 12, 24, 9, 43, 41, tzinfo=timezone(timedelta(hours=11)))


def _doc(data: str | None, content_type: str | None = "text/plain", **extra: Any) -> dict[str, Any]:
    att: dict[str, Any] = {}
    if data is not None:
        att["data"] = data
    if content_type:
        att["contentType"] = content_type
    return {"resourceType": "DocumentReference", "id": "d", "status": "current", "content": [{"attachment": att}], **extra}


def test_note_text_from_base64_plain_text() -> None:
    text = "Patient called about refill.\nCallback tomorrow — café"
    b64 = base64.b64encode(text.encode()).decode()
    assert clinical_note(_doc(b64)).text == text
    assert clinical_note(_doc(b64, None)).text == text  # no contentType: taken as text
    assert clinical_note(_doc(b64[:10] + "\n" + b64[10:], "text/plain; charset=utf-8")).text == text
    latin = base64.b64encode("café".encode("latin-1")).decode()
    assert clinical_note(_doc(latin, "text/plain; charset=iso-8859-1")).text == "café"
    assert clinical_note(_doc(latin, "text/plain; charset=klingon")).text  # unknown charset: decoded as UTF-8
    assert clinical_note(_doc("%%% not base64 %%%")).text is None
    assert clinical_note(_doc(b64, "application/pdf")).text is None
    assert clinical_note(_doc(None)).text is None
    assert clinical_note(_doc(base64.b64encode(b"   ").decode())).text is None
    restricted = _doc(b64, meta={"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]})
    assert clinical_note(restricted).text is None
    tagged = _doc(b64, identifier=[{"system": "urn:pa-tui:note", "value": "n-1"}, {"system": "x", "value": "y"}])
    assert note_identifier(tagged) == "n-1" and note_identifier(_doc(b64)) is None


def test_patient_links_merges_are_followed_not_family() -> None:
    old = {"resourceType": "Patient", "id": "old", "link": [{"other": {"reference": "Patient/new"}, "type": "replaced-by"}]}
    new = {"resourceType": "Patient", "id": "new", "link": [{"other": {"reference": "Patient/old"}, "type": "replaces"},
                                                             {"other": {"reference": "Patient/sister"}, "type": "seealso"},
                                                             {"other": {"reference": "RelatedPerson/rp"}, "type": "seealso"}]}
    assert replaced_by(old) == "new" and replaced_by(new) is None
    assert replaces(new) == ["old"] and replaces(old) == []
    assert replaced_by(_load("Patient-pat2.json")) is None


def test_reference_keys() -> None:
    assert reference_key({"reference": "Practitioner/123"}) == "Practitioner/123"
    assert reference_key({"reference": "https://h/fhir/Practitioner/123/_history/2"}) == "Practitioner/123"
    assert reference_key({"reference": "#pr1"}) is None
    assert reference_key({"reference": "urn:uuid:1234"}) is None
    assert reference_key({"display": "x"}) is None and reference_key("Practitioner/1") is None


def test_dates_are_aware() -> None:
    a = appointment_view({"id": "a", "status": "booked", "start": "2026-01-02", "end": "2026-01-02T10:00:00"})
    assert a.start == datetime(2026, 1, 2, tzinfo=UTC) and a.end == datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert appointment_view({"id": "a", "start": "tomorrow", "end": 12}).start is None


# --------------------------------------------------------------------------- never raises
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=12,
)
_KEYS = [
    "resourceType", "id", "status", "start", "end", "participant", "actor", "reference", "display", "contained",
    "category", "code", "coding", "system", "text", "performer", "requester", "reasonCode", "reasonReference",
    "authoredOn", "balance", "extension", "url", "valueMoney", "value", "currency", "amount", "guarantor", "party",
    "period", "payor", "class", "type", "name", "subscriberId", "identifier", "relationship", "total",
    "medicationCodeableConcept", "medicationReference", "dosageInstruction", "dispenseRequest",
    "numberOfRepeatsAllowed", "member", "role", "telecom", "content", "attachment", "data", "contentType",
    "securityLabel", "meta", "security", "link", "other", "date", "author", "subject", "aggregate",
]
_element = st.dictionaries(st.sampled_from(_KEYS), _json | st.lists(_json, max_size=2), max_size=5)
_nested = st.recursive(
    _element,
    lambda children: st.dictionaries(st.sampled_from(_KEYS), children | st.lists(children, max_size=3), max_size=5),
    max_leaves=20,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json, _nested))
def test_section_parsers_never_raise(data: Any) -> None:
    out = _all_parsers(data)
    assert isinstance(out[0], Appointment) and isinstance(out[8], Billing)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_files("*.json")), st.data())
def test_damaged_official_examples_never_raise(name: str, data: st.DataObject) -> None:
    """An official example with one element replaced by junk."""
    raw = _load(name)
    key = data.draw(st.sampled_from(sorted(raw)))
    raw[key] = data.draw(_json | _nested)
    _all_parsers(raw)
