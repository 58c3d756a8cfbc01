"""The synthetic population: deterministic, realistic in the ways caller identification cares about,
and valid FHIR R4 (checked with fhir.resources' R4B models, whose Patient, RelatedPerson and
Bundle are unchanged from R4 4.0.1)."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import date

import phonenumbers
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.relatedperson import RelatedPerson

from pa_tui.demo.population import (
    MRN_SYSTEM,
    PHONE_FORMATS,
    REFERENCE_DATE,
    Population,
    format_phone,
)
from pa_tui.domain.phones import PhoneNumber, parse_phone


@pytest.fixture(scope="module")
def pop() -> Population:
    return Population.generate(1500, seed=7)


def _phones(patient: dict) -> list[dict]:
    return [t for t in patient.get("telecom", []) if t.get("system") == "phone"]


def _e164(value: str) -> str:
    parsed = parse_phone(value)
    assert isinstance(parsed, PhoneNumber)
    return parsed.e164


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_byte_identical_resources() -> None:
    a = Population.generate(400, seed=11)
    b = Population.generate(400, seed=11)
    assert json.dumps(a.resources, sort_keys=False) == json.dumps(b.resources, sort_keys=False)
    assert a.households == b.households
    assert a.single_caller_numbers() == b.single_caller_numbers()


def test_different_seeds_differ() -> None:
    a = Population.generate(200, seed=1)
    b = Population.generate(200, seed=2)
    assert json.dumps(a.resources) != json.dumps(b.resources)
    assert [p["name"] for p in a.patients] != [p["name"] for p in b.patients]


def test_as_of_moves_ages_not_identity() -> None:
    a = Population.generate(50, seed=3)
    b = Population.generate(50, seed=3, as_of=date(2030, 6, 1))
    assert a.as_of == REFERENCE_DATE
    assert [p["id"] for p in a.patients] == [p["id"] for p in b.patients]
    assert a.patients[0]["birthDate"] != b.patients[0]["birthDate"]


@pytest.mark.parametrize("size", [0, 1, 2, 7, 101])
def test_exact_size_and_consistent_references(size: int) -> None:
    p = Population.generate(size, seed=5)
    assert p.size == len(p.patients) == size
    ids = set(p.by_id)
    for rp in p.related_persons:
        assert rp["patient"]["reference"].removeprefix("Patient/") in ids
    for patient in p.patients:
        for link in patient.get("link", []):
            assert link["other"]["reference"].startswith("RelatedPerson/")


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_size_must_be_a_count(bad: object) -> None:
    with pytest.raises(ValueError):
        Population.generate(bad, seed=1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- identity
def test_ids_and_mrns_are_unique(pop: Population) -> None:
    ids = [p["id"] for p in pop.patients]
    assert len(ids) == len(set(ids))
    mrns = [
        i["value"]
        for p in pop.patients
        for i in p["identifier"]
        if i["system"] == MRN_SYSTEM and i["type"]["coding"][0]["code"] == "MR"
    ]
    assert len(mrns) == len(pop.patients) == len(set(mrns))
    assert all(re.fullmatch(r"\d{8}", m) for m in mrns)
    rp_ids = [r["id"] for r in pop.related_persons]
    assert len(rp_ids) == len(set(rp_ids))


def test_names_sexes_and_ages_are_realistic(pop: Population) -> None:
    ages = [_age(p["birthDate"], pop.as_of) for p in pop.patients]
    assert min(ages) == 0, "infants are patients too"
    assert sum(a < 18 for a in ages) / len(ages) > 0.15
    assert sum(a >= 65 for a in ages) / len(ages) > 0.08
    assert max(ages) >= 90
    sexes = Counter(p["gender"] for p in pop.patients)
    assert sexes["female"] > 0.4 * len(ages) and sexes["male"] > 0.4 * len(ages)
    families = Counter(p["name"][0]["family"] for p in pop.patients)
    assert len(families) > 150 and families.most_common(1)[0][1] < 0.05 * len(ages)
    assert all(p["name"][0]["use"] == "official" and p["name"][0]["given"] for p in pop.patients)
    # children carry a parent's family name (or both, hyphenated)
    parents: dict[str, set[str]] = {}
    for rp in pop.related_persons:
        if rp["relationship"][0]["coding"][0]["code"] in ("MTH", "FTH", "PRN"):
            parents.setdefault(rp["patient"]["reference"].removeprefix("Patient/"), set()).add(rp["name"][0]["family"])
    assert len(parents) > 200
    for child_id, families in parents.items():
        child_family = pop.by_id[child_id]["name"][0]["family"]
        assert any(f in child_family for f in families)


def _age(dob: str, today: date) -> int:
    b = date.fromisoformat(dob)
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


def test_addresses_are_us_and_agree_with_home_numbers(pop: Population) -> None:
    for p in pop.patients[:300]:
        home = p["address"][0]
        assert home["use"] == "home" and home["country"] == "US"
        assert re.fullmatch(r"\d{5}", home["postalCode"])
        assert home["line"] and home["city"] and re.fullmatch(r"[A-Z]{2}", home["state"])


# --------------------------------------------------------------------------- phones
def test_numbers_are_possible_valid_and_synthetic(pop: Population) -> None:
    for number in pop.numbers():
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_possible_number(parsed) and phonenumbers.is_valid_number(parsed), number
        assert number[5:8] == "555", "every number is in the 555 exchange"
        line = int(number[8:])
        assert not 100 <= line <= 199 and line not in (1212, 4334)


def test_every_stored_value_parses_to_an_indexed_number(pop: Population) -> None:
    for p in pop.patients:
        for t in _phones(p):
            e164 = _e164(t["value"])
            assert p["id"] in pop.holders(e164)


def test_numbers_are_stored_in_mixed_formats(pop: Population) -> None:
    shapes = Counter(re.sub(r"\d", "9", t["value"]) for p in pop.patients for t in _phones(p))
    required = ["(999) 999-9999", "999-999-9999", "+19999999999", "9999999999", "999.999.9999"]
    for shape in required:
        assert shapes[shape.replace("+1", "+9")] > 20, shape
    assert any("x" in s or "ext." in s for s in shapes), "some work numbers carry an extension"
    # every format the generator knows appears
    for template, _ in PHONE_FORMATS:
        shape = re.sub(r"\d", "9", format_phone("4085550000", template))
        assert shapes[shape] > 0, template


def test_households_share_numbers(pop: Population) -> None:
    assert pop.shared_fraction() >= 0.15
    sizes = Counter(len(v) for v in pop.households.values())
    assert sizes[2] and sizes[3] and max(sizes) >= 4
    for number, ids in pop.households.items():
        assert len(ids) >= 2 and len(set(ids)) == len(ids)
        for pid in ids:
            assert number in {_e164(t["value"]) for t in _phones(pop.by_id[pid]) if t["use"] != "old"}


def test_households_include_parents_and_children(pop: Population) -> None:
    with_kids = 0
    for ids in pop.households.values():
        ages = [_age(pop.by_id[i]["birthDate"], pop.as_of) for i in ids]
        if min(ages) < 18 and max(ages) >= 18:
            with_kids += 1
    assert with_kids > 50


def test_adults_have_mobiles_and_old_numbers_have_ended(pop: Population) -> None:
    adults = [p for p in pop.patients if _age(p["birthDate"], pop.as_of) >= 18]
    assert sum(any(t["use"] == "mobile" for t in _phones(p)) for p in adults) / len(adults) > 0.7
    olds = [t for p in pop.patients for t in _phones(p) if t["use"] == "old"]
    assert len(olds) > 50
    for t in olds:
        end = t["period"]["end"]
        assert end < pop.as_of.isoformat()
    assert any(len(t["period"]["end"]) == 4 for t in olds), "some periods are partial dates"


def test_recycled_numbers_are_current_for_one_and_old_for_another(pop: Population) -> None:
    recycled = pop.recycled_numbers()
    assert recycled
    for number in recycled[:20]:
        uses = {}
        for pid in pop.holders(number):
            uses[pid] = {t["use"] for t in _phones(pop.by_id[pid]) if _e164(t["value"]) == number}
        assert any("old" in u for u in uses.values()) and any(u - {"old"} for u in uses.values())


def test_demo_caller_helpers(pop: Population) -> None:
    singles = pop.single_caller_numbers()
    households = pop.household_numbers()
    assert len(singles) > 300 and len(households) > 100
    assert not set(singles) & set(households)
    for number in singles[:200]:
        (pid,) = pop.holders(number)
        assert pop.patient_phone(pid) == number
        assert pop.by_id[pid]["active"] and "deceasedDateTime" not in pop.by_id[pid]
    for number in households[:200]:
        assert pop.holders(number) == pop.households[number]
    # patient_phone is one of the patient's current numbers
    for p in pop.patients[:300]:
        try:
            number = pop.patient_phone(p["id"])
        except LookupError:
            assert not [t for t in _phones(p) if t["use"] != "old"]
            continue
        assert number in {_e164(t["value"]) for t in _phones(p) if t["use"] != "old"}
    with pytest.raises(KeyError):
        pop.patient_phone("pt-nope")


def test_unlisted_numbers_match_no_one(pop: Population) -> None:
    unlisted = pop.unlisted_numbers(300)
    assert len(unlisted) == 300
    known = set(pop.numbers())
    for number in unlisted:
        assert number not in known
        assert phonenumbers.is_valid_number(phonenumbers.parse(number))
    # the Dialpad scenario's "unknown caller" numbers (202-555-01xx) are among them
    assert "+12025550150" in set(pop.unlisted_numbers(10_000))


def test_restricted_deceased_and_inactive_records_exist(pop: Population) -> None:
    big = Population.generate(4000, seed=7)
    assert any(p["meta"].get("security") for p in big.patients)
    assert any("deceasedDateTime" in p for p in big.patients)
    assert any(p["active"] is False for p in big.patients)
    assert any(len(p["name"]) > 1 for p in big.patients), "nicknames and maiden names"
    assert any(i["use"] == "old" for p in big.patients for i in p["identifier"])


# --------------------------------------------------------------------------- FHIR validity
def test_every_resource_is_valid_fhir(pop: Population) -> None:
    for p in pop.patients:
        Patient.model_validate(p)
    for r in pop.related_persons:
        RelatedPerson.model_validate(r)


def test_export_bundle_is_valid_fhir() -> None:
    small = Population.generate(12, seed=9)
    bundle = small.to_bundle()
    Bundle.model_validate({**bundle, "entry": bundle["entry"][::9]})  # a sample: the directory alone is ~2,400
    up_front = sum(len(items) for items in small.resources.values())
    records = sum(len(items) for p in small.patients for items in small.records(p["id"]).values())
    assert len(bundle["entry"]) == up_front + records
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} >= {"Patient", "Appointment", "Account"}
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])


# --------------------------------------------------------------------------- scale
def test_generation_scales() -> None:
    # 100,000 patients take ~10 s on a 2-core CI machine; 10,000 keep the suite fast.
    started = time.perf_counter()
    big = Population.generate(10_000, seed=7)
    elapsed = time.perf_counter() - started
    assert big.size == 10_000
    assert elapsed < 15, f"10,000 patients took {elapsed:.1f} s"
    assert big.shared_fraction() >= 0.15
