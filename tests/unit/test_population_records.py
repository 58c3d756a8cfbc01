"""Each synthetic patient's record (appointments, referrals, coverage, claims, account, prescriptions,
care team, notes) and the directory: deterministic, consistent, valid FHIR R4 (checked with
fhir.resources' R4B models, whose shapes for these types are those of R4 4.0.1), and cached on disk."""

from __future__ import annotations

import base64
import importlib
import itertools
import json
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from pa_tui.demo.population import ACCOUNT_BALANCE_URL, RECORD_TYPES, REFERENCE_DATE, Population, _cache
from pa_tui.demo.population.records import epoch_seconds, utc_offset

DIRECTORY_TYPES = ("Organization", "Location", "Practitioner", "PractitionerRole")


@pytest.fixture(scope="module")
def pop() -> Population:
    return Population.generate(300, seed=7)


@pytest.fixture(scope="module")
def records(pop: Population) -> dict[str, dict[str, list[dict]]]:
    return {p["id"]: pop.records(p["id"]) for p in pop.patients}


def _all(records: dict[str, dict[str, list[dict]]], rtype: str) -> list[dict]:
    return [r for rec in records.values() for r in rec[rtype]]


def _model(rtype: str) -> Any:
    return getattr(importlib.import_module(f"fhir.resources.R4B.{rtype.lower()}"), rtype)


def _balance(account: dict) -> float:
    (ext,) = [e for e in account["extension"] if e["url"] == ACCOUNT_BALANCE_URL]
    parts = {e["url"]: e for e in ext["extension"]}
    assert parts["aggregate"]["valueCodeableConcept"]["coding"][0]["code"] == "patient"
    assert parts["estimate"]["valueBoolean"] is False
    assert parts["amount"]["valueMoney"]["currency"] == "USD"
    return parts["amount"]["valueMoney"]["value"]


def _total(eob: dict, code: str) -> float:
    return sum(t["amount"]["value"] for t in eob["total"] if t["category"]["coding"][0]["code"] == code)


def _text(doc: dict) -> str:
    return base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()


# --------------------------------------------------------------------------- determinism
def test_records_are_deterministic_and_independent_of_access_order() -> None:
    a = Population.generate(150, seed=11)
    b = Population.generate(150, seed=11)
    ids = [p["id"] for p in a.patients]
    first = {pid: a.records(pid) for pid in ids}
    second = {pid: b.records(pid) for pid in reversed(ids)}  # the other way round
    differ = [pid for pid in ids if json.dumps(first[pid]) != json.dumps(second[pid])]
    assert not differ, f"records depend on access order: {differ[:5]}"
    for rtype in DIRECTORY_TYPES:
        assert json.dumps(a.resources[rtype]) == json.dumps(b.resources[rtype]), rtype
    other = Population.generate(150, seed=12)
    assert json.dumps(other.records(ids[0])) != json.dumps(first[ids[0]])


def test_record_ids_name_their_patient_and_are_unique(pop: Population, records: dict) -> None:
    seen: set[tuple[str, str]] = set()
    for pid, rec in list(records.items())[:200]:
        assert set(rec) == set(RECORD_TYPES)
        for rtype, items in rec.items():
            for r in items:
                assert (rtype, r["id"]) not in seen
                seen.add((rtype, r["id"]))
                assert pop.patient_for(rtype, r["id"]) == pid
                assert pop.resource(rtype, r["id"]) is r
    assert pop.patient_for("Appointment", "ap-999999-01") is None
    assert pop.patient_for("Appointment", "sr-000001-01") is None


def test_generation_stays_fast() -> None:
    started = time.perf_counter()
    Population.generate(500, seed=3)
    assert time.perf_counter() - started < 3.0  # typically ~0.1 s; records are built on demand


def test_progress_is_reported() -> None:
    calls: list[tuple[int, int]] = []
    Population.generate(1000, seed=2, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 1000) and calls[-1] == (1000, 1000)
    assert len(calls) > 10 and all(a[0] <= b[0] for a, b in itertools.pairwise(calls))


# --------------------------------------------------------------------------- FHIR validity
def test_every_resource_type_is_valid_fhir(pop: Population, records: dict) -> None:
    counts: Counter[str] = Counter()
    for rtype in DIRECTORY_TYPES:
        model = _model(rtype)
        for r in pop.resources[rtype][::7]:
            model.model_validate(r)
            counts[rtype] += 1
    for rtype in RECORD_TYPES:
        model = _model(rtype)
        for r in _all(dict(list(records.items())[:120]), rtype):
            model.model_validate(r)
            counts[rtype] += 1
    for rtype in (*DIRECTORY_TYPES, *RECORD_TYPES):
        assert counts[rtype] > 0, rtype


def test_references_resolve_and_carry_displays(pop: Population, records: dict) -> None:
    def refs(node: Any) -> list[dict]:
        if isinstance(node, dict):
            out = [node] if isinstance(node.get("reference"), str) else []
            return out + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    checked = 0
    for pid, rec in list(records.items())[:150]:
        for items in rec.values():
            for r in refs(items):
                rtype, _, rid = r["reference"].partition("/")
                target = pop.resource(rtype, rid)
                assert target is not None, r
                if rtype in ("Patient", "Practitioner", "Location", "Organization", "RelatedPerson"):
                    assert r.get("display"), r
                if rtype == "RelatedPerson":
                    assert target["patient"]["reference"] == f"Patient/{pid}"
                checked += 1
    assert checked > 5000


# --------------------------------------------------------------------------- appointments
def test_appointments_past_and_future(pop: Population, records: dict) -> None:
    today = pop.as_of.isoformat()
    appts = _all(records, "Appointment")
    past = [a for a in appts if a["start"][:10] < today]
    future = [a for a in appts if a["start"][:10] >= today]
    assert len(past) > 1000 and len(future) > 100
    assert {a["status"] for a in past} == {"fulfilled", "cancelled", "noshow"}
    assert Counter(a["status"] for a in past).most_common(1)[0][0] == "fulfilled"
    assert {a["status"] for a in future} == {"booked", "cancelled"}
    assert sum(a["status"] == "booked" for a in future) > 0.8 * len(future)
    for a in appts[:500]:
        kinds = {p["actor"]["reference"].split("/")[0] for p in a["participant"]}
        assert kinds == {"Patient", "Practitioner", "Location"}
        assert a["end"] > a["start"] and a["minutesDuration"] in (20, 40)
        patient = next(p for p in a["participant"] if p["actor"]["reference"].startswith("Patient/"))
        if a["status"] == "booked":
            assert patient["status"] in ("needs-action", "accepted")
    # some patients are booked tomorrow, more during the week
    tomorrow = pop.as_of + timedelta(days=1)
    assert len(pop.appointments_on(tomorrow)) >= 5
    week = [
        a for a in future if a["status"] == "booked" and a["start"][:10] <= (pop.as_of + timedelta(days=7)).isoformat()
    ]
    assert len(week) > len(pop.appointments_on(tomorrow))
    # times are clinic-local with the right UTC offset (standard time in January, daylight in July)
    ny = (-5, True)
    assert utc_offset(date(2026, 1, 15), ny) == -5 and utc_offset(date(2026, 7, 15), ny) == -4
    assert utc_offset(date(2026, 3, 8), ny) == -4 and utc_offset(date(2026, 3, 7), ny) == -5
    assert utc_offset(date(2026, 11, 1), ny) == -5 and utc_offset(date(2026, 7, 1), (-7, False)) == -7


def test_as_of_today_books_appointments_tomorrow() -> None:
    today = date.today()
    pop = Population.generate(200, seed=7, as_of=today)
    assert pop.as_of == today
    tomorrow = pop.appointments_on(today + timedelta(days=1))
    assert len(tomorrow) >= 3
    assert all(a["start"].startswith((today + timedelta(days=1)).isoformat()) for a in tomorrow)
    assert sum(a["status"] == "booked" for a in tomorrow) >= 3


def test_appointment_schedule_index_matches_the_records(pop: Population, records: dict) -> None:
    day = pop.as_of.toordinal()
    for lo, hi in ((day + 1, day + 1), (day - 30, day), (day, day + 200)):
        expected = {
            pid
            for pid, rec in records.items()
            for a in rec["Appointment"]
            if lo <= date.fromisoformat(a["start"][:10]).toordinal() <= hi
        }
        assert pop.appointment_patients(days=(lo, hi)) == expected
    a = records["pt-000001"]["Appointment"][0]
    when = date.fromisoformat(a["start"][:10])
    minute = int(a["start"][11:13]) * 60 + int(a["start"][14:16])
    secs = epoch_seconds(when, minute, int(a["start"][19:22]))
    assert "pt-000001" in pop.appointment_patients(seconds=(secs, secs))


# --------------------------------------------------------------------------- referrals, coverage, billing
def test_referrals(records: dict) -> None:
    referrals = _all(records, "ServiceRequest")
    assert len(referrals) > 50
    assert {r["status"] for r in referrals} >= {"active", "completed", "revoked"}
    for r in referrals:
        assert r["category"][0]["coding"][0] == {
            "system": "http://snomed.info/sct",
            "code": "3457005",
            "display": "Patient referral",
        }
        assert r["requester"]["reference"].startswith("Practitioner/") and r["requester"]["display"]
        assert r["performer"][0]["reference"].startswith("Practitioner/")
        assert r["reasonCode"][0]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    # a specialist visit follows a completed referral
    linked = [a for a in _all(records, "Appointment") if a.get("basedOn")]
    assert linked and all(b["reference"].startswith("ServiceRequest/") for a in linked for b in a["basedOn"])


def test_coverage_follows_the_household(pop: Population, records: dict) -> None:
    coverages = _all(records, "Coverage")
    relationships = Counter(c["relationship"]["coding"][0]["code"] for c in coverages)
    assert relationships["self"] and relationships["child"] and relationships["spouse"]
    seniors = 0
    for pid, rec in records.items():
        age = _age(pop.by_id[pid]["birthDate"], pop.as_of)
        current = [c for c in rec["Coverage"] if c["status"] == "active"]
        if "deceasedDateTime" in pop.by_id[pid]:
            assert not current and all(c["period"]["end"] for c in rec["Coverage"])
            continue
        assert current, pid
        for c in rec["Coverage"]:
            assert c["beneficiary"]["reference"] == f"Patient/{pid}"
            assert c["payor"] and c["period"]["start"]
        if age >= 65:
            seniors += 1
            plans = {
                cls["name"] for c in current for cls in c.get("class", []) if cls["type"]["coding"][0]["code"] == "plan"
            }
            assert plans & {
                "Original Medicare (Parts A and B)",
                "Bluewater Medicare Advantage HMO",
                "Pinnacle Senior Advantage PPO",
            }, plans
        for c in current:
            if c["relationship"]["coding"][0]["code"] in ("child", "spouse"):
                subscriber = c["subscriber"]["reference"]
                rtype, _, rid = subscriber.partition("/")
                holder = pop.resource(rtype, rid)
                assert holder is not None
                # the subscriber's own coverage carries the same member number
                holder_id = (
                    holder["id"]
                    if rtype == "Patient"
                    else next(other for rp, other, _ in pop.relations_of(pid) if rp == rid)
                )
                theirs = [x for x in pop.records(holder_id)["Coverage"] if x["status"] == "active"]
                assert any(x.get("subscriberId") == c["subscriberId"] for x in theirs)
    assert seniors > 20


def test_account_balance_equals_claims(records: dict) -> None:
    owing = 0
    for pid, rec in records.items():
        (account,) = rec["Account"]
        expected = sum(_total(e, "memberliability") - _total(e, "paidbypatient") for e in rec["ExplanationOfBenefit"])
        assert _balance(account) == pytest.approx(expected, abs=0.005), pid
        assert account["subject"][0]["reference"] == f"Patient/{pid}"
        assert account["guarantor"][0]["party"]["reference"].split("/")[0] in ("Patient", "RelatedPerson")
        owing += _balance(account) > 0
    assert 0.2 * len(records) < owing < 0.9 * len(records)


def test_claims_add_up(records: dict) -> None:
    eobs = _all(records, "ExplanationOfBenefit")
    assert len(eobs) > 300
    for e in eobs:
        submitted, eligible = _total(e, "submitted"), _total(e, "eligible")
        benefit, member = _total(e, "benefit"), _total(e, "memberliability")
        assert submitted >= eligible >= 0
        assert benefit + member == pytest.approx(eligible, abs=0.005)
        assert 0 <= _total(e, "paidbypatient") <= member + 0.005
        assert e["insurance"][0]["coverage"]["reference"].startswith("Coverage/")
        assert e["created"][:10] <= REFERENCE_DATE.isoformat()
    assert any(_total(e, "memberliability") == 0 for e in eobs), "preventive visits cost the patient nothing"


# --------------------------------------------------------------------------- prescriptions, care team, notes
def test_prescriptions(records: dict) -> None:
    meds = _all(records, "MedicationRequest")
    statuses = Counter(m["status"] for m in meds)
    assert statuses["active"] > 100 and statuses["stopped"] > 5 and statuses["completed"] > 20
    for m in meds:
        assert m["intent"] == "order"
        assert m["dosageInstruction"][0]["text"]
        assert isinstance(m["dispenseRequest"]["numberOfRepeatsAllowed"], int)
        assert m["requester"]["reference"].startswith("Practitioner/") and m["requester"]["display"]
        assert m["medicationCodeableConcept"]["coding"][0]["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert any(m["dispenseRequest"]["numberOfRepeatsAllowed"] == 0 and m["status"] == "active" for m in meds)
    assert all(m.get("statusReason") for m in meds if m["status"] == "stopped")


def test_care_teams(pop: Population, records: dict) -> None:
    for pid, rec in list(records.items())[:200]:
        primary = rec["CareTeam"][0]
        assert primary["subject"]["reference"] == f"Patient/{pid}"
        practitioners = [p for p in primary["participant"] if p["member"]["reference"].startswith("Practitioner/")]
        assert len(practitioners) >= 2 and all(p["role"][0]["text"] for p in primary["participant"])
        for p in practitioners:
            pr = pop.resource("Practitioner", p["member"]["reference"].split("/")[1])
            assert any(t["system"] == "phone" for t in pr["telecom"])
        if _age(pop.by_id[pid]["birthDate"], pop.as_of) < 18 and pop.relations_of(pid):
            assert any(p["member"]["reference"].startswith("RelatedPerson/") for p in primary["participant"])


def test_notes_are_plain_text(records: dict) -> None:
    notes = _all(records, "DocumentReference")
    kinds = Counter(n["type"]["coding"][0]["code"] for n in notes)
    assert kinds["11506-3"] and kinds["34748-4"] and kinds["57133-1"]
    for n in notes[:400]:
        attachment = n["content"][0]["attachment"]
        text = _text(n)
        assert attachment["contentType"] == "text/plain" and attachment["size"] == len(text.encode())
        assert len(text) > 40 and "lorem" not in text.lower()
        assert n["type"]["coding"][0]["system"] == "http://loinc.org"
        assert n["author"][0]["reference"].startswith("Practitioner/")
        assert n["date"][10] == "T" and n["date"][-6] in "+-"
    assert any("refill" in _text(n).lower() for n in notes)


def test_directory(pop: Population) -> None:
    assert len(pop.locations) > 40 and len(pop.practitioners) > 500
    patient_numbers = set(pop.numbers())
    from pa_tui.demo.fhir_sandbox.store import phone_key

    for pr in pop.practitioners + pop.locations:
        for t in pr["telecom"]:
            if t["system"] == "phone":
                assert phone_key(t["value"]) not in patient_numbers, "a clinic line is never a patient's number"
    payors = {o["name"] for o in pop.organizations}
    assert {"Synthetic Health System", "Medicare"} <= payors


def _age(dob: str, today: date) -> int:
    b = date.fromisoformat(dob)
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


# --------------------------------------------------------------------------- cache
def test_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Population.cached(300, seed=5, cache_dir=tmp_path)
    files = list(tmp_path.glob("population-300-5-*.marshal"))
    assert len(files) == 1

    def refuse(*args: Any, **kwargs: Any) -> Population:
        raise AssertionError("the second start must come from the cache")

    monkeypatch.setattr(Population, "generate", classmethod(refuse))
    second = Population.cached(300, seed=5, cache_dir=tmp_path)
    assert json.dumps(second.resources) == json.dumps(first.resources), "cache changed the resources"
    assert second.households == first.households and second.as_of == first.as_of
    assert second.single_caller_numbers() == first.single_caller_numbers()
    pid = first.patients[10]["id"]
    assert json.dumps(second.records(pid)) == json.dumps(first.records(pid)), "cache changed a record"
    monkeypatch.undo()
    # another key is another file; a damaged file is rebuilt
    Population.cached(300, seed=6, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.marshal"))) == 2
    files[0].write_bytes(files[0].read_bytes()[:5000])
    again = Population.cached(300, seed=5, cache_dir=tmp_path)
    assert json.dumps(again.resources) == json.dumps(first.resources), "a rebuilt cache differs"


def test_cache_defaults_to_the_user_cache_dir(tmp_path: Path) -> None:
    # tests/conftest.py points XDG_CACHE_HOME at a throwaway home
    pop = Population.cached(40, seed=1)
    path = _cache.cache_file(40, 1, REFERENCE_DATE)
    assert path.is_file() and "pa-tui" in str(path) and pop.size == 40
