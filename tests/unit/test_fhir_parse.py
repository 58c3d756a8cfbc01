"""FHIR JSON → domain views, on HL7's official R4 examples and on hostile input."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pa_tui.backends.fhir.ehr import classify_query
from pa_tui.backends.fhir.parse import (
    bundle_page,
    inverse_relationship,
    linked_related_person_ids,
    operation_outcome_message,
    patient_summary,
    related_person,
    relationship_kind,
    scrub,
)
from pa_tui.domain.patients import PatientSummary, PhoneUse
from pa_tui.domain.phones import PhoneNumber

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "fhir-examples"
TODAY = date(2026, 1, 1)


def _load(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def _files(pattern: str) -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob(pattern))


pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared/fhir-examples is not beside the repository")


# --------------------------------------------------------------------------- official examples
def test_the_examples_are_there() -> None:
    assert len(_files("Patient-*.json")) == 8
    assert len(_files("RelatedPerson-*.json")) == 2
    assert len(_files("Bundle-*.json")) == 2


@pytest.mark.parametrize("name", _files("Patient-*.json") if EXAMPLES.is_dir() else [])
def test_every_official_patient_parses(name: str) -> None:
    raw = _load(name)
    s = patient_summary(raw, today=TODAY)
    assert isinstance(s, PatientSummary)
    assert s.id == raw["id"]
    assert s.display_name
    for phone in s.phones:
        assert phone.number.e164.startswith("+")


def test_patient_example_official_name_mrn_dob_and_foreign_numbers() -> None:
    s = patient_summary(_load("Patient-example.json"), today=TODAY)
    # official name, not the usual "Jim" nor the maiden name
    assert (s.given, s.family, s.display_name) == ("Peter James", "Chalmers", "Peter James Chalmers")
    assert s.mrn == "12345"  # identifier typed MR
    assert s.birth_date == date(1974, 12, 25)  # birthDate with a _birthDate birthTime extension
    assert s.sex == "male" and s.active and not s.deceased
    assert s.address is not None and s.address.city == "PleasantVille" and s.address.postal_code == "3999"
    # "(03) 5555 6473" is an Australian number without its country code: not a NANP number, skipped
    # (as is the telecom with a use but no value).
    assert s.phones == ()
    assert s.restricted_reason is None


def test_patient_f001_region_from_address_and_fallback_identifier() -> None:
    s = patient_summary(_load("Patient-f001.json"), today=TODAY)
    assert s.mrn == "738472983"  # no MR-typed identifier: the first one with a value
    assert (s.given, s.family) == ("Pieter", "van de Heuvel")
    # address country NLD: "0648352638" is a Dutch mobile; the e-mail telecom is not a phone
    assert [(p.number.e164, p.use, p.current) for p in s.phones] == [("+31648352638", PhoneUse.MOBILE, True)]


@pytest.mark.parametrize("name", ["Patient-mom.json", "Patient-genetics-example1.json"])
def test_an_ssn_is_never_shown_as_the_mrn(name: str) -> None:
    s = patient_summary(_load(name), today=TODAY)
    assert s.mrn is None
    assert s.display_name == "Eve Everywoman" and s.birth_date == date(1973, 5, 31)
    (phone,) = s.phones
    assert phone.number.e164 == "+15555552003" and phone.use is PhoneUse.WORK and phone.current


def test_patient_mom_links_to_the_related_person_she_is() -> None:
    assert linked_related_person_ids(_load("Patient-mom.json")) == ("newborn-mom",)
    assert linked_related_person_ids(_load("Patient-pat1.json")) == ()  # a link to a Patient


def test_newborn_without_name_or_identifier() -> None:
    s = patient_summary(_load("Patient-newborn.json"), today=TODAY)
    assert s.display_name == "(no name)" and s.given is None and s.family is None
    assert s.mrn is None and s.phones == () and s.address is None
    assert s.birth_date == date(2017, 9, 5)


def test_pat_examples_without_birth_date() -> None:
    s1 = patient_summary(_load("Patient-pat1.json"), today=TODAY)
    s2 = patient_summary(_load("Patient-pat2.json"), today=TODAY)
    assert s1.birth_date is None and s1.mrn == "654321" and s1.display_name == "Duck Donald"
    assert s2.sex == "other" and s2.given == "Duck D"  # gender with an extension on _gender


def test_xcda_name_without_use() -> None:
    s = patient_summary(_load("Patient-xcda.json"), today=TODAY)
    assert s.display_name == "Henry Levin" and s.mrn == "12345" and s.birth_date == date(1932, 9, 24)


def test_related_person_examples() -> None:
    mom = related_person(_load("RelatedPerson-newborn-mom.json"), today=TODAY)
    assert mom.patient_id == "newborn" and mom.relationship == "mother" and mom.codes == ("NMTH",)
    assert mom.birth_date == date(1973, 5, 31) and mom.family == "Everywoman"
    assert inverse_relationship(mom.codes, "male") == "son"
    assert relationship_kind(mom.codes) == "parent"
    wife = related_person(_load("RelatedPerson-benedicte.json"), today=TODAY)
    # v2-0131 "N" (next of kin) and v3 "WIFE": the family relationship wins
    assert wife.patient_id == "example" and wife.relationship == "wife"
    assert [p.number.e164 for p in wife.phones] == ["+33237998327"]


def test_bundle_examples() -> None:
    page = bundle_page(_load("Bundle-bundle-example.json"))
    assert page.total == 3 and len(page.matches) == 1 and len(page.included) == 1 and page.outcomes == ()
    assert page.next_url and "page=2" in page.next_url
    warning = bundle_page(_load("Bundle-bundle-search-warning.json"))
    assert warning.matches == () and warning.total == 0 and len(warning.outcomes) == 1
    message = operation_outcome_message(warning.outcomes[0], severities=("warning",))
    assert message and "no matching patient" in message.lower()
    assert not re.search(r"\d{3}", message), "the MRN the server echoed is masked"
    assert operation_outcome_message(warning.outcomes[0]) is None  # no error-level issue


@pytest.mark.parametrize("name", _files("*.json") if EXAMPLES.is_dir() else [])
def test_no_example_of_any_type_breaks_the_parsers(name: str) -> None:
    raw = _load(name)
    patient_summary(raw, today=TODAY)
    related_person(raw, today=TODAY)
    bundle_page(raw)
    operation_outcome_message(raw)


# --------------------------------------------------------------------------- shapes seen in the wild
def _patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", **fields}


def test_birth_date_only_as_extension_or_partial_is_unknown() -> None:
    ext_only = _patient(
        _birthDate={
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]
        }
    )
    assert patient_summary(ext_only).birth_date is None
    assert patient_summary(_patient(birthDate="1980")).birth_date is None
    assert patient_summary(_patient(birthDate="1980-02")).birth_date is None
    assert patient_summary(_patient(birthDate="1980-02-30")).birth_date is None
    assert patient_summary(_patient(birthDate="1981-02-29")).birth_date is None
    assert patient_summary(_patient(birthDate="1984-02-29")).birth_date == date(1984, 2, 29)


def test_phone_currency_use_old_periods_rank_and_formats() -> None:
    s = patient_summary(
        _patient(
            telecom=[
                {"system": "phone", "value": "(408) 555-1212", "use": "home", "rank": 2},
                {"system": "phone", "value": "408.555.3434", "use": "old"},
                {"system": "phone", "value": "+14085555656", "use": "mobile", "period": {"end": "2019-03-01"}},
                {"system": "phone", "value": "4085557878", "use": "mobile", "period": {"end": "2030"}},
                {"system": "phone", "value": "1-408-555-9090", "use": "work", "period": {"end": "2025"}},
                {"system": "phone", "value": "408-555-2323 x123", "use": "work", "rank": 1},
                {"system": "phone", "value": "408-555-0000", "period": {"start": "2027-01-01"}},
                {"system": "sms", "value": "+1 408 555 4545"},
                {"system": "email", "value": "a@example.com"},
                {"system": "phone", "value": "call my daughter"},
                {"system": "phone", "value": "anonymous"},
                {"system": "phone", "value": 4085556767},
                {"system": "phone", "value": True},
                {"system": "phone", "value": "555-1212", "rank": "1"},
            ]
        ),
        today=TODAY,
    )
    got = [(p.number.e164, p.use.value, p.current, p.rank) for p in s.phones]
    assert got == [
        ("+14085551212", "home", True, 2),
        ("+14085553434", "old", False, None),
        ("+14085555656", "mobile", False, None),  # ended period
        ("+14085557878", "mobile", True, None),  # ends in the future
        ("+14085559090", "work", False, None),  # "2025" ended before 2026-01-01
        ("+14085552323", "work", True, 1),
        ("+14085550000", "other", False, None),  # not started yet
        ("+14085554545", "mobile", True, None),  # sms
        ("+14085556767", "other", True, None),  # an integer value
    ]
    assert s.phones[5].number.extension == "123"


def test_name_choice_official_then_usual_then_first_then_text() -> None:
    names = [
        {"use": "usual", "given": ["Jim"]},
        {"use": "official", "family": "Chalmers", "given": ["Peter"], "period": {"end": "2001"}},
        {"use": "official", "family": "Chalmers-Smith", "given": ["Peter"]},
    ]
    assert patient_summary(_patient(name=names), today=TODAY).family == "Chalmers-Smith"
    assert patient_summary(_patient(name=names[:2]), today=TODAY).given == "Jim"  # the official one ended
    assert (
        patient_summary(_patient(name=[{"use": "nickname", "given": ["Pete"]}, {"use": "maiden", "family": "X"}])).given
        == "Pete"
    )
    text_only = patient_summary(_patient(name=[{"text": "  Mr.  Peter   Chalmers "}]))
    assert text_only.display_name == "Mr. Peter Chalmers" and text_only.family is None
    assert patient_summary(_patient(name=[{}])).display_name == "(no name)"
    assert patient_summary(_patient(name={"family": "Single", "given": "Object"})).display_name == "Object Single"


def test_identifiers_mr_preferred_current_before_old() -> None:
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    s = patient_summary(
        _patient(
            identifier=[
                {"system": "urn:x", "value": "OTHER"},
                {"use": "old", "type": mr, "value": "OLD-MRN"},
                {"type": mr, "value": "MRN-1", "period": {"end": "2020-01-01"}},
                {"type": mr, "value": "MRN-2"},
                {"type": {"coding": [{"code": "SS"}]}, "value": "123-45-6789"},
            ]
        ),
        today=TODAY,
    )
    assert s.mrn == "MRN-2"
    only_ssn = _patient(identifier=[{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123456789"}])
    assert patient_summary(only_ssn).mrn is None
    assert patient_summary(_patient(identifier=[{"system": "urn:x"}, {"value": ""}, {"value": "X1"}])).mrn == "X1"


def test_security_labels_deceased_active_address() -> None:
    conf = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    assert (
        patient_summary(_patient(meta={"security": [{"system": conf, "code": "R"}]})).restricted_reason
        == "restricted record"
    )
    assert patient_summary(_patient(meta={"security": [{"code": "V"}]})).restricted_reason == "very restricted record"
    assert patient_summary(_patient(meta={"security": [{"system": conf, "code": "N"}]})).restricted_reason is None
    assert (
        patient_summary(_patient(meta={"security": [{"system": "urn:other", "code": "R"}]})).restricted_reason is None
    )
    assert patient_summary(_patient(deceasedBoolean=True)).deceased
    assert patient_summary(_patient(deceasedDateTime="2020-01-01")).deceased
    assert not patient_summary(_patient(deceasedBoolean=False)).deceased
    assert not patient_summary(_patient(active=False)).active
    assert patient_summary(_patient(active="no")).active  # only an explicit false deactivates
    addr = patient_summary(
        _patient(
            address=[
                {"use": "old", "line": ["1 Old Rd"], "city": "Was"},
                {"use": "work", "line": ["2 Work St"], "city": "Job"},
                {"use": "home", "line": ["3 Home Ave"], "city": "Now", "period": {"end": "2001"}},
            ]
        ),
        today=TODAY,
    ).address
    assert addr is not None and addr.city == "Job"
    assert patient_summary(_patient(address=[{"text": "somewhere"}])).address.line == ("somewhere",)  # type: ignore[union-attr]


def test_contained_resources_and_extensions_are_ignored() -> None:
    s = patient_summary(
        _patient(
            contained=[{"resourceType": "Patient", "id": "x", "name": [{"family": "Wrong"}]}],
            extension=[{"url": "http://example.org/x", "valueString": "y"}],
            name=[{"family": "Right", "given": ["A"]}],
        )
    )
    assert s.family == "Right"


def test_operation_outcome_messages_are_scrubbed() -> None:
    oo = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "Invalid phone 408-555-1212 for john@example.com born 1980-01-02",
            },
            {"severity": "error", "code": "not-supported", "details": {"text": "Unknown parameter 'foo'"}},
            {"severity": "error", "code": "processing"},
            {"severity": "warning", "code": "informational", "diagnostics": "ignored"},
        ],
    }
    line = operation_outcome_message(oo)
    assert line is not None
    assert "555" not in line and "john" not in line and "1980" not in line
    assert "Unknown parameter 'foo'" in line and "processing" in line and "ignored" not in line
    assert scrub("x" * 500).endswith("…") and len(scrub("x" * 500)) == 200


def test_classify_query() -> None:
    assert classify_query("  ") == ("empty", None)
    kind, number = classify_query("(408) 555-1212")
    assert kind == "phone" and isinstance(number, PhoneNumber) and number.e164 == "+14085551212"
    assert classify_query("+44 20 7946 0018")[0] == "phone"
    assert classify_query("03/04/1980") == ("date", date(1980, 3, 4))
    assert classify_query("1980-03-04") == ("date", date(1980, 3, 4))
    assert classify_query("12345678") == ("id", "12345678")
    assert classify_query("pt-000123") == ("id", "pt-000123")
    assert classify_query("Garcia, Maria") == ("name", ("Garcia, Maria", None))
    assert classify_query("maria garcia 3/4/1980") == ("name", ("maria garcia", date(1980, 3, 4)))
    assert classify_query("O'Brien")[0] == "name"
    assert classify_query("Peña")[0] == "name"
    assert classify_query("@@!")[0] == "unknown"
    assert classify_query("13/45/1980")[0] == "unknown"


# --------------------------------------------------------------------------- never raises
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=15,
)
_PATIENT_KEYS = [
    "id",
    "name",
    "telecom",
    "birthDate",
    "_birthDate",
    "identifier",
    "address",
    "gender",
    "active",
    "deceasedBoolean",
    "deceasedDateTime",
    "meta",
    "link",
    "contained",
    "relationship",
    "patient",
]
_fieldish = st.dictionaries(st.sampled_from(_PATIENT_KEYS), _json, max_size=8)
_element = st.dictionaries(
    st.sampled_from(
        [
            "use",
            "value",
            "system",
            "period",
            "rank",
            "family",
            "given",
            "text",
            "type",
            "code",
            "coding",
            "end",
            "start",
            "line",
            "city",
            "security",
            "reference",
            "other",
        ]
    ),
    _json,
    max_size=5,
)
_shaped = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=10) | _json,
        "name": st.lists(_element | _json, max_size=3) | _json,
        "telecom": st.lists(_element, max_size=4) | _json,
        "identifier": st.lists(_element, max_size=3),
        "address": st.lists(_element, max_size=2),
        "birthDate": st.text(max_size=12) | st.dates().map(str) | _json,
        "meta": st.fixed_dictionaries({}, optional={"security": st.lists(_element, max_size=2) | _json}),
        "link": st.lists(st.fixed_dictionaries({}, optional={"other": _element | _json}), max_size=2),
        "relationship": st.lists(_element, max_size=2) | _json,
        "patient": _element | _json,
        "entry": st.lists(
            st.fixed_dictionaries({}, optional={"resource": _fieldish | _json, "search": _element | _json}), max_size=3
        ),
        "issue": st.lists(_element | _json, max_size=3),
        "link_": _json,
    },
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json, _fieldish, _shaped))
def test_parsers_never_raise_on_dict_shaped_input(data: Any) -> None:
    s = patient_summary(data, today=TODAY)
    assert isinstance(s, PatientSummary)
    related_person(data, today=TODAY)
    bundle_page(data)
    operation_outcome_message(data)
    linked_related_person_ids(data)
