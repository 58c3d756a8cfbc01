"""Each synthetic patient's record, generated on first access and the same every time.

A patient's record is a function of ``(seed, as_of, patient id)`` and the
population around them (their household's relations, the clinic in their city),
never of which records were generated before or in which order: every part
draws from its own random stream seeded by ``seed``, the patient id and the
part's name. So a sandbox may materialise patients lazily, in any order, and
still serve exactly what an eager build would.

What a record holds (ids carry the patient's number, ``ap-000123-01`` …):

- ``Appointment`` — past visits of the last 18 months (fulfilled, some
  cancelled or no-show) and future ones (mostly booked, some cancelled), with
  the patient, the practitioner and the clinic as participants. About one
  patient in twenty has one *tomorrow* (``as_of`` + 1) and more in the next week,
  so reminder demos always have work.
- ``ServiceRequest`` — referrals (category *Patient referral*) from the primary
  care clinician to a specialist at the same clinic, with the reason.
- ``Coverage`` — the plan the patient is on (as subscriber, spouse or child of
  the subscriber, Medicare with a supplement, Medicaid/CHIP, self-pay), and
  sometimes the plan that ended before it.
- ``ExplanationOfBenefit`` — an adjudicated claim for each fulfilled visit of
  the last year whose claim has settled, with deductible, copay and coinsurance
  worked out against the plan.
- ``Account`` — the patient billing account, its guarantor, and its balance in
  the R5 ``Account.balance`` cross-version extension (see :data:`ACCOUNT_BALANCE_URL`).
- ``MedicationRequest`` — active prescriptions for chronic conditions, stopped
  ones that were switched, completed courses for acute illnesses.
- ``CareTeam`` — the primary care team (with relatives where they take part) and
  sometimes an ended episode team.
- ``DocumentReference`` — progress notes, telephone encounter notes and referral
  notes as plain text (base64 attachment).
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

from pa_tui.demo.population import _clinical as C
from pa_tui.demo.population import _tables as T
from pa_tui.demo.population._directory import PROVIDER_ORG_ID, PROVIDER_ORG_NAME, city_key

if TYPE_CHECKING:  # pragma: no cover
    from pa_tui.demo.population import Population

FhirJson = dict[str, Any]

#: The R5 ``Account.balance`` element carried in R4 as a cross-version extension
#: (HL7's "Extensions for Using Data Elements from FHIR R5 in FHIR R4"). It is a
#: complex extension whose sub-extensions are ``aggregate`` (valueCodeableConcept,
#: ``http://hl7.org/fhir/account-aggregate`` ``patient``), ``term`` (valueCodeableConcept,
#: ``http://hl7.org/fhir/account-balance-term`` ``current``), ``estimate`` (valueBoolean)
#: and ``amount`` (valueMoney). The amount is what the patient owes: over the patient's
#: ExplanationOfBenefit resources, the sum of ``total`` ``memberliability`` minus the sum
#: of ``total`` ``paidbypatient`` (CARIN Blue Button adjudication codes).
ACCOUNT_BALANCE_URL: Final = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Account.balance"
ACCOUNT_AGGREGATE_SYSTEM: Final = "http://hl7.org/fhir/account-aggregate"
ACCOUNT_BALANCE_TERM_SYSTEM: Final = "http://hl7.org/fhir/account-balance-term"
MEMBER_ID_SYSTEM: Final = "urn:oid:2.16.840.1.113883.19.5.99.4"
ACCOUNT_ID_SYSTEM: Final = "urn:oid:2.16.840.1.113883.19.5.99.5"
CLAIM_ID_SYSTEM: Final = "urn:oid:2.16.840.1.113883.19.5.99.7"
REFERRAL_ID_SYSTEM: Final = "urn:oid:2.16.840.1.113883.19.5.99.8"

#: Resource types generated per patient (lazily).
RECORD_TYPES: Final = (
    "Appointment",
    "ServiceRequest",
    "Coverage",
    "ExplanationOfBenefit",
    "Account",
    "MedicationRequest",
    "CareTeam",
    "DocumentReference",
)
#: Id prefix of each record type: ``{prefix}-{patient number}-{nn}``.
ID_PREFIX: Final = {
    "Appointment": "ap",
    "ServiceRequest": "sr",
    "Coverage": "cov",
    "ExplanationOfBenefit": "eob",
    "Account": "acct",
    "MedicationRequest": "mr",
    "CareTeam": "ct",
    "DocumentReference": "doc",
}
PREFIX_TYPE: Final = {v: k for k, v in ID_PREFIX.items()}

_PAST_WINDOW: Final = 540  # days of history
_HORIZON: Final = 180  # days of future bookings
_GUARDIAN_CODES: Final = frozenset({"MTH", "FTH", "PRN"})
_SPOUSE_CODES: Final = frozenset({"HUSB", "WIFE", "SPS", "DOMPART"})
_CHILD_CODES: Final = frozenset({"DAU", "SON", "CHILD"})
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_HOLIDAYS: Final = frozenset({(1, 1), (7, 4), (12, 25)})


class _Rng(random.Random):
    """Integer draws from one ``random()`` each (fast and platform-independent)."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if stop is None:
            start, stop = 0, start
        return start + step * int(self.random() * ((stop - start + step - 1) // step))

    def choice(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]

    def chance(self, p: float) -> bool:
        return self.random() < p


# --------------------------------------------------------------------------- time
def utc_offset(day: date, tz: tuple[int, bool]) -> int:
    """Hours from UTC on ``day`` for a US zone (standard offset, observes DST?)."""
    std, dst = tz
    if not dst:
        return std
    march = date(day.year, 3, 8)
    start = march + timedelta(days=(6 - march.weekday()) % 7)  # second Sunday of March
    november = date(day.year, 11, 1)
    end = november + timedelta(days=(6 - november.weekday()) % 7)  # first Sunday of November
    return std + 1 if start <= day < end else std


def _stamp(day: date, minute: int, offset: int) -> str:
    sign = "-" if offset < 0 else "+"
    return f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00{sign}{abs(offset):02d}:00"


def epoch_seconds(day: date, minute: int, offset: int) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * 86_400 + minute * 60 - offset * 3600


def _money(cents: int) -> FhirJson:
    return {"value": cents / 100, "currency": "USD"}


def _cc(system: str, code: str, display: str, text: str | None = None) -> FhirJson:
    out: FhirJson = {"coding": [{"system": system, "code": code, "display": display}]}
    if text:
        out["text"] = text
    return out


# --------------------------------------------------------------------------- context and plan
@dataclass(slots=True)
class Person:
    pid: str
    number: str  # the digits of the id
    name: str  # display
    given: str
    sex: str
    dob: date
    age: int
    city: T.City
    tz: tuple[int, bool]
    active: bool
    deceased: date | None
    guardians: list[tuple[str, str, str]]  # (RelatedPerson id, patient id, code)
    spouses: list[tuple[str, str, str]]
    children: list[tuple[str, str, str]]
    location: str
    location_name: str
    location_phone: str | None
    staff: dict[str, list[str]]


@dataclass(slots=True)
class Visit:
    day: date
    minute: int
    minutes: int
    kind: str  # physical | followup | acute | specialist | specialist_followup
    specialty: str
    practitioner: str
    status: str = "booked"
    reason: str | None = None  # condition or acute key
    referral: int | None = None  # index into Plan.referrals
    soon: bool = False
    offset: int = 0
    id: str = ""


@dataclass(slots=True)
class Referral:
    specialty: str
    reason: str
    authored: date
    status: str
    visit: str | None  # "past" | "future" | None
    practitioner: str = ""
    id: str = ""


@dataclass(slots=True)
class Plan:
    pcp: str
    pcp_specialty: str
    conditions: list[str] = field(default_factory=list)
    acute: list[tuple[str, date]] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)


def _name_of(patient: FhirJson) -> tuple[str, str]:
    names = patient.get("name") or [{}]
    official = next((n for n in names if n.get("use") == "official"), names[0])
    given = (official.get("given") or [""])[0]
    family = official.get("family") or ""
    return f"{given} {family}".strip() or (official.get("text") or "Unnamed patient"), given


def _age(dob: date, today: date) -> int:
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def _band(age: int) -> int:
    return 0 if age < 18 else 1 if age < 40 else 2 if age < 65 else 3


_CITIES: Final = {city_key(c): c for c in T.CITIES}


class RecordFactory:
    """Builds patients' records for one population. Pure given the population."""

    def __init__(self, population: Population) -> None:
        self.pop = population
        self.seed = population.seed
        self.today = population.as_of
        self.directory = population.directory_index
        self._practitioners: dict[str, tuple[str, str | None]] = {}
        for pr in population.resources.get("Practitioner", []):
            name = pr.get("name", [{}])[0].get("text") or pr["id"]
            phone = next((t["value"] for t in pr.get("telecom", []) if t.get("system") == "phone"), None)
            self._practitioners[pr["id"]] = (name, phone)
        self._locations = {loc["id"]: loc for loc in population.resources.get("Location", [])}
        self._coverage_memo: dict[str, tuple[str, str, str, date]] = {}

    # ---------------------------------------------------------------- helpers
    def rng(self, pid: str, stream: str) -> _Rng:
        return _Rng(f"pa-tui/{self.seed}/{pid}/{stream}")

    def practitioner(self, pr_id: str) -> FhirJson:
        return {"reference": f"Practitioner/{pr_id}", "display": self._practitioners.get(pr_id, (pr_id, None))[0]}

    def person(self, pid: str) -> Person | None:
        patient = self.pop.by_id.get(pid)
        if patient is None:
            return None
        name, given = _name_of(patient)
        try:
            dob = date.fromisoformat(patient.get("birthDate", ""))
        except ValueError:
            dob = date(self.today.year - 40, 1, 1)
        address = (patient.get("address") or [{}])[0]
        city = _CITIES.get(f"{address.get('city')}|{address.get('state')}", T.CITIES[0])
        entry = self.directory.get(city_key(city)) or next(iter(self.directory.values()))
        location = self._locations.get(entry["location"], {})
        deceased = patient.get("deceasedDateTime")
        relations = self.pop.relations_of(pid)
        return Person(
            pid=pid,
            number=pid.removeprefix("pt-"),
            name=name,
            given=given,
            sex=patient.get("gender", "unknown"),
            dob=dob,
            age=_age(dob, self.today),
            city=city,
            tz=C.CITY_TZ.get(city.name) or C.STATE_TZ.get(city.state, (-5, True)),
            active=bool(patient.get("active", True)),
            deceased=date.fromisoformat(deceased[:10]) if isinstance(deceased, str) else None,
            guardians=[r for r in relations if r[2] in _GUARDIAN_CODES],
            spouses=[r for r in relations if r[2] in _SPOUSE_CODES],
            children=[r for r in relations if r[2] in _CHILD_CODES],
            location=entry["location"],
            location_name=location.get("name", entry["location"]),
            location_phone=next((t["value"] for t in location.get("telecom", []) if t.get("system") == "phone"), None),
            staff=entry["staff"],
        )

    def _patient_ref(self, p: Person) -> FhirJson:
        return {"reference": f"Patient/{p.pid}", "display": p.name}

    def _location_ref(self, p: Person) -> FhirJson:
        return {"reference": f"Location/{p.location}", "display": p.location_name}

    # ---------------------------------------------------------------- the plan
    def plan(self, p: Person) -> Plan:
        """Cheap draws that fix conditions, referrals and every visit's time and status."""
        rng = self.rng(p.pid, "plan")
        today = self.today
        band = _band(p.age)
        female = p.sex == "female"
        if p.age < 18:
            pcp_spec = "pediatrics"
        else:
            pcp_spec = rng.choice(("family", "family", "internal", "np"))
        pcp = rng.choice(p.staff[pcp_spec])
        plan = Plan(pcp=pcp, pcp_specialty=pcp_spec)
        for cond in C.CONDITIONS.values():
            prev = cond.prevalence[band][0 if female else 1]
            if rng.chance(prev):
                plan.conditions.append(cond.key)
        alive_until = p.deceased or (today + timedelta(days=_HORIZON))
        can_book = p.active and p.deceased is None
        start = today - timedelta(days=_PAST_WINDOW)

        def day_in(lo: int, hi: int) -> date:
            return today + timedelta(days=rng.randint(lo, hi))

        def weekday(d: date) -> date:
            """The clinic is closed at weekends and on fixed-date holidays: move to a working day."""
            while d.weekday() >= 5 or (d.month, d.day) in _HOLIDAYS:
                d += timedelta(days=1)
            return d

        def slot(minutes: int) -> int:
            return 480 + 20 * rng.randint(0, (510 - minutes) // 20)

        def add(d: date, kind: str, spec: str, prac: str, minutes: int, **kw: Any) -> Visit | None:
            if d < start or d > alive_until or (d >= today and not can_book):
                return None
            v = Visit(day=d, minute=slot(minutes), minutes=minutes, kind=kind, specialty=spec, practitioner=prac, **kw)
            plan.visits.append(v)
            return v

        # acute illnesses of the last 18 months
        n_acute = rng.choice((0, 0, 0, 1, 1, 2)) if p.age >= 5 else rng.choice((0, 1, 1, 2, 3))
        for _ in range(n_acute):
            choices = [a for a in C.ACUTE if a.min_age <= p.age <= a.max_age]
            acute = rng.choice(choices)
            d = weekday(day_in(-_PAST_WINDOW + 5, -3))
            plan.acute.append((acute.key, d))
            add(d, "acute", pcp_spec, rng.choice(p.staff[pcp_spec] + p.staff.get("np", [])), 20, reason=acute.key)

        # physicals: yearly, last one some months ago, next one booked for some
        if p.age < 18 or rng.chance(0.72):
            last = weekday(day_in(-420, -20))
            add(last, "physical", pcp_spec, pcp, 40)
            if last - timedelta(days=365) >= start and rng.chance(0.6):
                add(weekday(last - timedelta(days=rng.randint(350, 380))), "physical", pcp_spec, pcp, 40)
            nxt = weekday(last + timedelta(days=rng.randint(355, 380)))
            if nxt >= today and rng.chance(0.55):
                add(nxt, "physical", pcp_spec, pcp, 40)

        # chronic follow-ups every few months
        chronic = [c for c in plan.conditions if C.CONDITIONS[c].medicines]
        if chronic:
            interval = rng.choice((90, 120, 180))
            d = weekday(day_in(-interval, -7))
            while d >= start:
                add(d, "followup", pcp_spec, pcp, 20, reason=rng.choice(chronic))
                d = weekday(d - timedelta(days=interval + rng.randint(-14, 14)))
            nxt = weekday(day_in(1, interval))
            if rng.chance(0.75):
                add(nxt, "followup", pcp_spec, pcp, 20, reason=rng.choice(chronic))

        # referrals to specialists at the same clinic
        for key in plan.conditions:
            cond = C.CONDITIONS[key]
            if not cond.referral or not rng.chance(cond.refer_p) or len(plan.referrals) >= 3:
                continue
            spec = cond.referral[0] if len(cond.referral) == 1 or rng.chance(0.7) else cond.referral[1]
            authored = today - timedelta(days=rng.randint(5, 500))
            age_days = (today - authored).days
            r = rng.random()
            if age_days > 60:
                status = "completed" if r < 0.75 else "revoked" if r < 0.85 else "active"
            else:
                status = "active" if r < 0.82 else "on-hold" if r < 0.9 else "completed" if age_days >= 20 else "active"
            visit = "past" if status == "completed" else ("future" if status == "active" and rng.chance(0.5) else None)
            ref = Referral(spec, key, authored, status, visit, practitioner=rng.choice(p.staff[spec]))
            plan.referrals.append(ref)
            idx = len(plan.referrals) - 1
            minutes = 40
            if visit == "past":
                d = weekday(authored + timedelta(days=rng.randint(10, min(50, max(10, age_days - 2)))))
                if d >= today:
                    d = weekday(today - timedelta(days=3))
                add(d, "specialist", spec, ref.practitioner, minutes, reason=key, referral=idx)
                if rng.chance(0.35):
                    d2 = weekday(d + timedelta(days=rng.randint(42, 120)))
                    if d2 < today or rng.chance(0.5):
                        add(d2, "specialist_followup", spec, ref.practitioner, 20, reason=key, referral=idx)
            elif visit == "future":
                add(weekday(day_in(3, 60)), "specialist", spec, ref.practitioner, minutes, reason=key, referral=idx)

        # the next few days: some patients are booked tomorrow, more during the week
        r = rng.random()
        if r < 0.05:
            v = add(today + timedelta(days=1), "followup", pcp_spec, pcp, 20, reason=rng.choice(chronic or [None]))
            if v is not None:
                v.soon = True
        elif r < 0.13:
            v = add(day_in(2, 7), "followup", pcp_spec, pcp, 20, reason=rng.choice(chronic or [None]))
            if v is not None:
                v.soon = True

        # statuses, then order and ids
        for v in plan.visits:
            v.offset = utc_offset(v.day, p.tz)
            if v.day < today:
                s = rng.random()
                v.status = "fulfilled" if s < 0.82 else "noshow" if s < 0.89 else "cancelled"
            else:
                v.status = "booked" if v.soon or rng.random() < 0.9 else "cancelled"
        plan.visits.sort(key=lambda v: (v.day, v.minute, v.kind))
        for k, v in enumerate(plan.visits, start=1):
            v.id = f"ap-{p.number}-{k:02d}"
        for k, ref in enumerate(plan.referrals, start=1):
            ref.id = f"sr-{p.number}-{k:02d}"
        return plan

    def schedule(self, pid: str) -> list[tuple[int, int]]:
        """(local date ordinal, UTC epoch seconds) of each appointment's start, cheaply."""
        p = self.person(pid)
        if p is None:
            return []
        return [(v.day.toordinal(), epoch_seconds(v.day, v.minute, v.offset)) for v in self.plan(p).visits]

    # ---------------------------------------------------------------- the record
    def records(self, pid: str) -> dict[str, list[FhirJson]]:
        p = self.person(pid)
        if p is None:
            raise KeyError(pid)
        plan = self.plan(p)
        coverages, coverage_plans = self.coverages(p)
        claims = self.claims(p, plan, coverage_plans)
        out: dict[str, list[FhirJson]] = {
            "Appointment": self.appointments(p, plan),
            "ServiceRequest": self.referrals(p, plan),
            "Coverage": coverages,
            "ExplanationOfBenefit": claims,
            "Account": [self.account(p, coverage_plans, claims)],
            "MedicationRequest": self.medications(p, plan),
            "CareTeam": self.care_teams(p, plan),
            "DocumentReference": self.notes(p, plan),
        }
        return out

    # ---------------------------------------------------------------- appointments
    def _visit_text(self, v: Visit) -> tuple[str, str]:
        spec = C.SPECIALTIES[v.specialty]
        if v.kind == "physical":
            return ("Well-child visit" if v.specialty == "pediatrics" else "Annual physical"), "CHECKUP"
        if v.kind == "acute":
            acute = next(a for a in C.ACUTE if a.key == v.reason)
            return f"Sick visit: {acute.short}", "WALKIN" if v.minute < 600 else "ROUTINE"
        if v.kind == "followup":
            what = C.CONDITIONS[v.reason].short if v.reason in C.CONDITIONS else "general health"
            return f"Follow-up: {what}", "FOLLOWUP"
        if v.kind == "specialist":
            return f"New patient consult: {spec.display.lower()}", "ROUTINE"
        return f"{spec.display} follow-up", "FOLLOWUP"

    def appointments(self, p: Person, plan: Plan) -> list[FhirJson]:
        rng = self.rng(p.pid, "appointments")
        out = []
        for v in plan.visits:
            spec = C.SPECIALTIES[v.specialty]
            description, appt_type = self._visit_text(v)
            primary = spec.primary
            created = v.day - timedelta(days=rng.randint(1, 3) if v.kind == "acute" else rng.randint(7, 120))
            if v.soon:
                created = min(created, self.today - timedelta(days=rng.randint(2, 40)))
            if v.status == "booked":
                patient_status = "accepted" if rng.chance(0.3) else "needs-action"
            elif v.status == "cancelled":
                patient_status = "declined"
            else:
                patient_status = "accepted"
            res: FhirJson = {
                "resourceType": "Appointment",
                "id": v.id,
                "meta": {"versionId": "1", "lastUpdated": _stamp(min(created, self.today), 540, v.offset)},
                "status": v.status,
            }
            if v.status == "cancelled":
                code, display = (
                    C.PROVIDER_CANCEL if rng.chance(0.15) else C.CANCEL_REASONS[rng.randrange(len(C.CANCEL_REASONS))]
                )
                if code == "prov":
                    patient_status = "accepted"
                res["cancelationReason"] = _cc(C.CANCEL_REASON, code, display)
            res["serviceCategory"] = [
                _cc(C.SERVICE_CATEGORY, "17", "General Practice")
                if primary
                else _cc(C.SERVICE_CATEGORY, "27", "Specialist Medical")
            ]
            res["serviceType"] = [{"text": description.split(":")[0]}]
            specialty: FhirJson = {"text": spec.display}
            if spec.practice:
                specialty["coding"] = [{"system": C.SCT, "code": spec.practice[0], "display": spec.practice[1]}]
            res["specialty"] = [specialty]
            res["appointmentType"] = _cc(
                C.V2_0276,
                appt_type,
                {
                    "CHECKUP": "A routine check-up, such as an annual physical",
                    "FOLLOWUP": "A follow up visit from a previous appointment",
                    "ROUTINE": "Routine appointment - default if not valued",
                    "WALKIN": "A previously unscheduled walk-in visit",
                }[appt_type],
            )
            reason = C.CONDITIONS.get(v.reason or "") or next((a for a in C.ACUTE if a.key == v.reason), None)
            if reason is not None:
                res["reasonCode"] = [
                    {
                        "coding": [{"system": C.ICD10, "code": reason.icd10, "display": reason.display}],
                        "text": reason.short,
                    }
                ]
            res["description"] = description
            res["start"] = _stamp(v.day, v.minute, v.offset)
            res["end"] = _stamp(v.day, v.minute + v.minutes, v.offset)
            res["minutesDuration"] = v.minutes
            res["created"] = created.isoformat()
            if v.kind == "physical":
                res["patientInstruction"] = (
                    "Please arrive 15 minutes early and bring your insurance card, a photo ID and a list of "
                    "the medicines you take."
                    + (" Fasting for 8 hours before the visit is recommended for blood work." if p.age >= 18 else "")
                )
            elif v.kind in ("specialist", "specialist_followup"):
                res["patientInstruction"] = "Please bring your referral paperwork and any recent test results."
            if v.referral is not None:
                res["basedOn"] = [{"reference": f"ServiceRequest/{plan.referrals[v.referral].id}"}]
            res["participant"] = [
                {
                    "type": [_cc(C.V3_PARTICIPATION, "SBJ", "subject")],
                    "actor": self._patient_ref(p),
                    "required": "required",
                    "status": patient_status,
                },
                {
                    "type": [_cc(C.V3_PARTICIPATION, "PPRF", "primary performer")],
                    "actor": self.practitioner(v.practitioner),
                    "required": "required",
                    "status": "accepted",
                },
                {
                    "type": [_cc(C.V3_PARTICIPATION, "LOC", "location")],
                    "actor": self._location_ref(p),
                    "required": "required",
                    "status": "accepted",
                },
            ]
            out.append(res)
        return out

    # ---------------------------------------------------------------- referrals
    def referrals(self, p: Person, plan: Plan) -> list[FhirJson]:
        rng = self.rng(p.pid, "referrals")
        out = []
        for ref in plan.referrals:
            spec = C.SPECIALTIES[ref.specialty]
            cond = C.CONDITIONS[ref.reason]
            performer_type: FhirJson = {"text": spec.role_text}
            if spec.occupation:
                performer_type["coding"] = [
                    {"system": C.SCT, "code": spec.occupation[0], "display": spec.occupation[1]}
                ]
            urgent = rng.chance(0.1)
            res: FhirJson = {
                "resourceType": "ServiceRequest",
                "id": ref.id,
                "meta": {"versionId": "1", "lastUpdated": _stamp(ref.authored, 600, utc_offset(ref.authored, p.tz))},
                "identifier": [{"system": REFERRAL_ID_SYSTEM, "value": f"R{rng.randint(1000000, 9999999)}"}],
                "status": ref.status,
                "intent": "order",
                "category": [_cc(C.SCT, "3457005", "Patient referral", "Referral")],
                "priority": "urgent" if urgent else "routine",
                "code": {"text": f"Referral to {spec.display.lower()}"},
                "subject": self._patient_ref(p),
                "authoredOn": _stamp(ref.authored, rng.randint(8, 16) * 60, utc_offset(ref.authored, p.tz)),
                "requester": self.practitioner(plan.pcp),
                "performerType": performer_type,
                "performer": [self.practitioner(ref.practitioner)],
                "locationReference": [self._location_ref(p)],
                "reasonCode": [
                    {"coding": [{"system": C.ICD10, "code": cond.icd10, "display": cond.display}], "text": cond.short}
                ],
            }
            if ref.status in ("active", "on-hold"):
                res["occurrencePeriod"] = {
                    "start": ref.authored.isoformat(),
                    "end": (ref.authored + timedelta(days=180)).isoformat(),
                }
            notes = {
                "completed": "Seen by specialist; consult note received.",
                "revoked": "Referral withdrawn: patient chose to manage with primary care for now.",
                "on-hold": "On hold pending prior authorization from the health plan.",
                "active": (
                    "Appointment booked with the specialist."
                    if ref.visit == "future"
                    else "Patient to call the clinic to schedule; referral valid for 180 days."
                ),
            }
            res["note"] = [{"text": notes[ref.status]}]
            out.append(res)
        return out

    # ---------------------------------------------------------------- coverage
    def _own_plan(self, pid: str) -> tuple[str, str, date] | None:
        """The plan a person would hold in their own name: (plan key, member id, start)."""
        patient = self.pop.by_id.get(pid)
        if patient is None:
            return None
        try:
            dob = date.fromisoformat(patient.get("birthDate", ""))
        except ValueError:
            return None
        age = _age(dob, self.today)
        rng = self.rng(pid, "own-plan")
        r = rng.random()
        if age >= 65:
            key = "medicare" if r < 0.68 else rng.choice(C.ADVANTAGE_PLANS)
            start = date(dob.year + 65, dob.month, 1)
        elif age < 18:
            key = "chip" if r < 0.85 else "selfpay"
            start = date(max(dob.year, self.today.year - rng.randint(0, 6)), 1, 1)
        else:
            key = (
                rng.choice(C.COMMERCIAL_PLANS)
                if r < 0.64
                else "medicaid"
                if r < 0.84
                else rng.choice(C.COMMERCIAL_PLANS[:4])
                if r < 0.93
                else "selfpay"
            )
            start = date(self.today.year - rng.randint(0, 7), rng.choice((1, 1, 1, 4, 7, 10)), 1)
            if start > self.today:
                start = date(self.today.year, 1, 1)
        plan = C.PLANS[key]
        if plan.kind == "medicare":
            letters = "ACDEFGHJKMNPQRTUVWXY"
            alnum = letters + "0123456789"
            member = (
                f"{rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(alnum)}{rng.randint(0, 9)}"
                f"{rng.choice(letters)}{rng.choice(alnum)}{rng.randint(0, 9)}{rng.choice(letters)}"
                f"{rng.choice(letters)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
            )
        elif plan.kind == "medicaid":
            member = f"{rng.randint(10_000_000, 99_999_999)}{rng.choice('ABCDEFGHJK')}"
        elif plan.kind == "selfpay":
            member = ""
        else:
            member = f"{plan.plan_code[:2]}{rng.choice('HJKMNPRWXZ')}{rng.randint(100_000_000, 999_999_999)}"
        return key, member, start

    def coverage_of(self, pid: str, depth: int = 0) -> tuple[str, str, str, date]:
        """(plan key, subscriber patient id, member id, start) of the plan ``pid`` is covered by now.

        The same answer for a patient whoever asks: a child (or a young adult at home) is on a
        parent's employer plan when that parent has one; of a couple, the partner with the
        higher id may join the other's employer plan, never the other way round.
        """
        memo = self._coverage_memo.get(pid)
        if memo is not None:
            return memo
        own = self._own_plan(pid)
        if own is None:
            return "selfpay", pid, "", self.today
        key, member, start = own
        result = (key, pid, member, start)
        relations = self.pop.relations_of(pid)
        rng = self.rng(pid, "coverage-choice")
        patient = self.pop.by_id[pid]
        age = _age(date.fromisoformat(patient["birthDate"]), self.today)
        if age < 26 and depth < 3:
            for _, gpid, code in relations:
                if code in _GUARDIAN_CODES:
                    g = self.coverage_of(gpid, depth + 1)
                    if C.PLANS[g[0]].kind == "commercial":
                        result = g
                        break
                    if age < 18 and C.PLANS[g[0]].kind == "medicaid":
                        result = ("medicaid", pid, member or g[2], start)
                        break
        if result[1] == pid and 18 <= age < 65 and rng.chance(0.3):
            for _, spid, code in relations:
                if code in _SPOUSE_CODES and spid < pid:
                    s = self._own_plan(spid)
                    if s is not None and C.PLANS[s[0]].kind == "commercial":
                        result = (s[0], spid, s[1], s[2])
                        break
        if len(self._coverage_memo) > 4096:
            self._coverage_memo.clear()
        self._coverage_memo[pid] = result
        return result

    def coverages(self, p: Person) -> tuple[list[FhirJson], list[tuple[FhirJson, C.Plan, date, date | None]]]:
        """Coverage resources, and (resource, plan, start, end) for billing."""
        rng = self.rng(p.pid, "coverage")
        key, subscriber, member, start = self.coverage_of(p.pid)
        plan = C.PLANS[key]
        out: list[FhirJson] = []
        billing: list[tuple[FhirJson, C.Plan, date, date | None]] = []
        n = 0

        def relation_to(subscriber_pid: str) -> tuple[str, FhirJson]:
            if subscriber_pid == p.pid:
                return "self", self._patient_ref(p)
            for rp_id, other, code in p.guardians + p.spouses:
                if other == subscriber_pid:
                    other_name = _name_of(self.pop.by_id[other])[0]
                    rel = "spouse" if code in _SPOUSE_CODES else "child"
                    return rel, {"reference": f"RelatedPerson/{rp_id}", "display": other_name}
            other_name = _name_of(self.pop.by_id[subscriber_pid])[0]
            guardian = any(other == subscriber_pid for _, other, _ in p.guardians)
            return ("child" if guardian or p.age < 26 else "other"), {
                "reference": f"Patient/{subscriber_pid}",
                "display": other_name,
            }

        def make(plan: C.Plan, subscriber_pid: str, member: str, start: date, end: date | None, order: int) -> FhirJson:
            nonlocal n
            n += 1
            relationship, subscriber_ref = relation_to(subscriber_pid)
            ended = end is not None and end < self.today
            res: FhirJson = {
                "resourceType": "Coverage",
                "id": f"cov-{p.number}-{n:02d}",
                "meta": {"versionId": "1", "lastUpdated": _stamp(min(start, self.today), 600, -5)},
            }
            dependent = {"self": "01", "spouse": "02"}.get(relationship, "03")
            if plan.kind != "selfpay":
                value = f"{member}-{dependent}" if plan.kind == "commercial" else member
                res["identifier"] = [
                    {"type": _cc(C.V2_0203, "MB", "Member Number"), "system": MEMBER_ID_SYSTEM, "value": value}
                ]
            res["status"] = "cancelled" if ended else "active"
            if plan.kind == "selfpay":
                res["type"] = _cc(C.COVERAGE_SELFPAY, "pay", "Pay", "Self-pay")
                payor = (
                    {
                        "reference": f"RelatedPerson/{p.guardians[0][0]}",
                        "display": _name_of(self.pop.by_id[p.guardians[0][1]])[0],
                    }
                    if p.age < 18 and p.guardians
                    else self._patient_ref(p)
                )
                res["policyHolder"] = payor
                res["beneficiary"] = self._patient_ref(p)
                res["relationship"] = _cc(C.SUBSCRIBER_RELATIONSHIP, "self", "Self")
                res["period"] = {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})}
                res["payor"] = [payor]
                return res
            public = plan.kind in ("medicare", "medicaid")
            res["type"] = (
                _cc(C.V3_ACTCODE, "PUBLICPOL", "public healthcare")
                if public
                else _cc(C.V3_ACTCODE, "HIP", "health insurance plan policy")
            )
            res["subscriber"] = subscriber_ref
            res["subscriberId"] = member
            res["beneficiary"] = self._patient_ref(p)
            if plan.kind == "commercial":
                res["dependent"] = dependent
            res["relationship"] = _cc(C.SUBSCRIBER_RELATIONSHIP, relationship, relationship.capitalize())
            res["period"] = {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})}
            payor_name = next(name for oid, name, _ in C.PAYORS if oid == plan.payor)
            res["payor"] = [{"reference": f"Organization/{plan.payor}", "display": payor_name}]
            classes = [
                {
                    "type": _cc(C.COVERAGE_CLASS, "plan", "Plan"),
                    "value": plan.plan_code,
                    "name": plan.name,
                }
            ]
            if plan.kind == "commercial":
                employer_rng = self.rng(subscriber_pid, "employer")
                employer = employer_rng.choice(C.EMPLOYERS)
                classes.insert(
                    0,
                    {
                        "type": _cc(C.COVERAGE_CLASS, "group", "Group"),
                        "value": f"GRP-{employer_rng.randint(10000, 99999)}",
                        "name": employer,
                    },
                )
            res["class"] = classes
            res["order"] = order
            costs = []
            if plan.pcp_copay:
                costs.append(
                    {"type": _cc(C.COVERAGE_COPAY, "gpvisit", "GP Office Visit"), "valueMoney": _money(plan.pcp_copay)}
                )
            if plan.specialist_copay:
                costs.append(
                    {
                        "type": _cc(C.COVERAGE_COPAY, "spvisit", "Specialist Office Visit"),
                        "valueMoney": _money(plan.specialist_copay),
                    }
                )
            if plan.deductible:
                costs.append(
                    {"type": _cc(C.COVERAGE_COPAY, "deductible", "Deductible"), "valueMoney": _money(plan.deductible)}
                )
            if costs:
                res["costToBeneficiary"] = costs
            return res

        # an earlier plan that ended (a job change, ageing into Medicare …)
        if rng.chance(0.12) and (self.today - start).days < 420 and p.age >= 18:
            prev_key = rng.choice(C.COMMERCIAL_PLANS) if p.age < 66 else "bw_gold"
            if prev_key == key:
                prev_key = "medicaid" if plan.kind == "commercial" else C.COMMERCIAL_PLANS[0]
            prev_plan = C.PLANS[prev_key]
            prev_start = start - timedelta(days=rng.randint(365, 2000))
            prev_end = start - timedelta(days=1)
            prev_member = f"{prev_plan.plan_code[:2]}{rng.choice('HJKMNPRWXZ')}{rng.randint(100_000_000, 999_999_999)}"
            if prev_plan.kind == "medicaid":
                prev_member = f"{rng.randint(10_000_000, 99_999_999)}{rng.choice('ABCDEFGHJK')}"
            prev = make(prev_plan, p.pid, prev_member, prev_start, prev_end, 1)
            out.append(prev)
            billing.append((prev, prev_plan, prev_start, prev_end))
        end = None
        if p.deceased is not None:
            end = p.deceased
        current = make(plan, subscriber, member, start, end, 1)
        out.append(current)
        billing.append((current, plan, start, end))
        if plan.kind == "medicare" and rng.chance(0.5):
            gap = C.PLANS["bw_medigap"]
            gap_member = f"BWG{rng.randint(100_000_000, 999_999_999)}"
            out.append(make(gap, p.pid, gap_member, start, end, 2))
        return out, billing

    # ---------------------------------------------------------------- claims
    def _charges(self, p: Person, v: Visit, plan: Plan, rng: _Rng) -> list[str]:
        if v.kind == "physical":
            code = (
                "99392"
                if p.age < 5
                else "99393"
                if p.age < 12
                else "99394"
                if p.age < 18
                else "99395"
                if p.age < 40
                else "99396"
                if p.age < 65
                else "99397"
            )
            codes = [code]
            if p.age >= 18 and rng.chance(0.6):
                codes += ["80053", "85025", "80061", "36415"]
            if v.day.month in (9, 10, 11, 12) and rng.chance(0.5):
                codes += ["90686", "90471"]
            return codes
        if v.kind == "acute":
            return ["99213", "87880"] if v.reason == "strep" else ["99213"]
        if v.kind == "followup":
            codes = ["99214" if rng.chance(0.4) else "99213"]
            if v.reason == "diabetes":
                codes += ["83036", "36415"]
            return codes
        if v.specialty == "physical_therapy":
            return ["97161", "97110"] if v.kind == "specialist" else ["97110", "97110"]
        if v.specialty == "behavioral" and v.kind == "specialist_followup":
            return ["90834"]
        if v.specialty == "ophthalmology":
            return ["92014"]
        if v.kind == "specialist":
            codes = ["99204" if rng.chance(0.5) else "99203"]
            if v.specialty == "cardiology":
                codes.append("93000")
            return codes
        return ["99213"]

    def claims(
        self, p: Person, plan: Plan, coverages: list[tuple[FhirJson, C.Plan, date, date | None]]
    ) -> list[FhirJson]:
        rng = self.rng(p.pid, "claims")
        out: list[FhirJson] = []
        deductible_left: dict[tuple[str, int], int] = {}
        year_ago = self.today - timedelta(days=365)
        for v in plan.visits:
            if v.status != "fulfilled" or v.day < year_ago:
                continue
            lag = rng.randint(12, 35)
            created = v.day + timedelta(days=lag)
            if created > self.today:
                continue
            cov = next(
                (c for c in coverages if c[2] <= v.day and (c[3] is None or v.day <= c[3])),
                coverages[-1],
            )
            cov_res, cplan, _, _ = cov
            specialist = not C.SPECIALTIES[v.specialty].primary
            denied = cplan.kind != "selfpay" and rng.chance(0.03)
            copay_left = cplan.specialist_copay if specialist else cplan.pcp_copay
            ded_key = (cplan.key, v.day.year)
            ded = deductible_left.setdefault(ded_key, max(0, cplan.deductible - rng.randint(0, cplan.deductible // 2)))
            items = []
            tot_billed = tot_allowed = tot_benefit = tot_member = 0
            for seq, code in enumerate(self._charges(p, v, plan, rng), start=1):
                charge = C.CHARGES[code]
                billed = charge.billed_cents
                allowed = billed * cplan.allowed_pct // 100
                member = 0
                adjudication = [
                    {"category": _cc(C.ADJUDICATION, "submitted", "Submitted Amount"), "amount": _money(billed)},
                    {"category": _cc(C.ADJUDICATION, "eligible", "Eligible Amount"), "amount": _money(allowed)},
                ]
                if denied or cplan.kind == "selfpay":
                    member = allowed
                elif charge.preventive and cplan.kind != "supplement":
                    member = 0
                else:
                    if copay_left and code.startswith("99"):
                        take = min(copay_left, allowed)
                        member += take
                        copay_left -= take
                        adjudication.append({"category": _cc(C.ADJUDICATION, "copay", "CoPay"), "amount": _money(take)})
                    else:
                        take = min(ded, allowed)
                        if take:
                            ded -= take
                            member += take
                            adjudication.append(
                                {"category": _cc(C.ADJUDICATION, "deductible", "Deductible"), "amount": _money(take)}
                            )
                        rest = allowed - take
                        coins = rest * cplan.coinsurance // 100
                        if coins:
                            member += coins
                            adjudication.append(
                                {
                                    "category": _cc(C.C4BB_ADJUDICATION, "coinsurance", "Co-insurance"),
                                    "amount": _money(coins),
                                }
                            )
                benefit = allowed - member
                adjudication.append(
                    {"category": _cc(C.ADJUDICATION, "benefit", "Benefit Amount"), "amount": _money(benefit)}
                )
                adjudication.append(
                    {
                        "category": _cc(C.C4BB_ADJUDICATION, "memberliability", "Member liability"),
                        "amount": _money(member),
                    }
                )
                tot_billed += billed
                tot_allowed += allowed
                tot_benefit += benefit
                tot_member += member
                items.append(
                    {
                        "sequence": seq,
                        "careTeamSequence": [1],
                        "productOrService": {
                            "coding": [{"system": C.CPT, "code": code, "display": charge.display}],
                            "text": charge.display,
                        },
                        "servicedDate": v.day.isoformat(),
                        "locationReference": self._location_ref(p),
                        "net": _money(billed),
                        "adjudication": adjudication,
                    }
                )
            ded_key_value = ded
            deductible_left[ded_key] = ded_key_value
            age_days = (self.today - created).days
            r = rng.random()
            if tot_member == 0:
                paid = 0
            elif age_days > 60:
                paid = tot_member if r < 0.72 else (tot_member // 2 // 100 * 100) if r < 0.82 else 0
            elif age_days > 25:
                paid = tot_member if r < 0.35 else 0
            else:
                paid = tot_member if r < 0.08 else 0
            payor_display = cov_res.get("payor", [{}])[0].get("display", PROVIDER_ORG_NAME)
            insurer = (
                {"reference": f"Organization/{cplan.payor}", "display": payor_display}
                if cplan.kind != "selfpay"
                else {"reference": f"Organization/{PROVIDER_ORG_ID}", "display": PROVIDER_ORG_NAME}
            )
            offset = utc_offset(created, p.tz)
            totals = [
                {"category": _cc(C.ADJUDICATION, "submitted", "Submitted Amount"), "amount": _money(tot_billed)},
                {"category": _cc(C.ADJUDICATION, "eligible", "Eligible Amount"), "amount": _money(tot_allowed)},
                {"category": _cc(C.ADJUDICATION, "benefit", "Benefit Amount"), "amount": _money(tot_benefit)},
                {
                    "category": _cc(C.C4BB_ADJUDICATION, "memberliability", "Member liability"),
                    "amount": _money(tot_member),
                },
            ]
            if paid:
                totals.append(
                    {
                        "category": _cc(C.C4BB_ADJUDICATION, "paidbypatient", "Paid by patient"),
                        "amount": _money(paid),
                    }
                )
            res: FhirJson = {
                "resourceType": "ExplanationOfBenefit",
                "id": f"eob-{p.number}-{len(out) + 1:02d}",
                "meta": {"versionId": "1", "lastUpdated": _stamp(created, 600, offset)},
                "identifier": [{"system": CLAIM_ID_SYSTEM, "value": f"C{rng.randint(10**9, 10**10 - 1)}"}],
                "status": "active",
                "type": _cc(C.CLAIM_TYPE, "professional", "Professional"),
                "use": "claim",
                "patient": self._patient_ref(p),
                "billablePeriod": {"start": v.day.isoformat(), "end": v.day.isoformat()},
                "created": _stamp(created, rng.randint(7, 18) * 60, offset),
                "insurer": insurer,
                "provider": self.practitioner(v.practitioner),
                "facility": self._location_ref(p),
                "outcome": "complete",
                "disposition": rng.choice(C.DENIAL_REASONS) if denied else "Claim settled as per contract.",
                "careTeam": [
                    {
                        "sequence": 1,
                        "provider": self.practitioner(v.practitioner),
                        "role": _cc(
                            "http://terminology.hl7.org/CodeSystem/claimcareteamrole", "primary", "Primary provider"
                        ),
                    }
                ],
                "insurance": [
                    {
                        "focal": True,
                        "coverage": {
                            "reference": f"Coverage/{cov_res['id']}",
                            "display": cplan.name,
                        },
                    }
                ],
                "item": items,
                "total": totals,
            }
            if tot_benefit and cplan.kind != "selfpay":
                res["payment"] = {
                    "type": _cc(C.PAYMENT_TYPE, "complete", "Complete"),
                    "date": created.isoformat(),
                    "amount": _money(tot_benefit),
                }
            out.append(res)
        return out

    # ---------------------------------------------------------------- account
    def account(
        self, p: Person, coverages: list[tuple[FhirJson, C.Plan, date, date | None]], claims: list[FhirJson]
    ) -> FhirJson:
        rng = self.rng(p.pid, "account")
        owed = 0
        for eob in claims:
            for total in eob["total"]:
                code = total["category"]["coding"][0]["code"]
                cents = round(total["amount"]["value"] * 100)
                if code == "memberliability":
                    owed += cents
                elif code == "paidbypatient":
                    owed -= cents
        if p.age < 18 and p.guardians:
            rp_id, gpid, _ = p.guardians[0]
            guarantor = {"reference": f"RelatedPerson/{rp_id}", "display": _name_of(self.pop.by_id[gpid])[0]}
        elif p.age >= 80 and p.children and rng.chance(0.5):
            rp_id, cpid, _ = p.children[0]
            guarantor = {"reference": f"RelatedPerson/{rp_id}", "display": _name_of(self.pop.by_id[cpid])[0]}
        else:
            guarantor = self._patient_ref(p)
        opened = min((c[2] for c in coverages), default=self.today)
        active = [c for c in coverages if c[3] is None or c[3] >= self.today]
        res: FhirJson = {
            "resourceType": "Account",
            "id": f"acct-{p.number}",
            "meta": {"versionId": "1", "lastUpdated": _stamp(self.today, 360, utc_offset(self.today, p.tz))},
            "extension": [
                {
                    "url": ACCOUNT_BALANCE_URL,
                    "extension": [
                        {
                            "url": "aggregate",
                            "valueCodeableConcept": _cc(ACCOUNT_AGGREGATE_SYSTEM, "patient", "Patient"),
                        },
                        {
                            "url": "term",
                            "valueCodeableConcept": _cc(ACCOUNT_BALANCE_TERM_SYSTEM, "current", "Current"),
                        },
                        {"url": "estimate", "valueBoolean": False},
                        {"url": "amount", "valueMoney": _money(owed)},
                    ],
                }
            ],
            "identifier": [{"system": ACCOUNT_ID_SYSTEM, "value": f"A{rng.randint(10_000_000, 99_999_999)}"}],
            "status": "active",
            "type": _cc(C.V3_ACTCODE, "PBILLACCT", "patient billing account", "Patient billing account"),
            "name": f"Patient account: {p.name}",
            "subject": [self._patient_ref(p)],
            "servicePeriod": {"start": opened.isoformat()},
        }
        if active:
            res["coverage"] = [
                {
                    "coverage": {"reference": f"Coverage/{c[0]['id']}", "display": c[1].name},
                    "priority": k,
                }
                for k, c in enumerate(active, start=1)
            ]
        res["owner"] = {"reference": f"Organization/{PROVIDER_ORG_ID}", "display": PROVIDER_ORG_NAME}
        res["description"] = "Professional charges at " + p.location_name
        res["guarantor"] = [{"party": guarantor, "onHold": False, "period": {"start": opened.isoformat()}}]
        return res

    # ---------------------------------------------------------------- medications
    def medications(self, p: Person, plan: Plan) -> list[FhirJson]:
        rng = self.rng(p.pid, "medications")
        pharmacy = rng.choice(C.PHARMACIES)
        items: list[tuple[date, FhirJson]] = []

        def request(
            med_key: str,
            authored: date,
            status: str,
            requester: str,
            reason: tuple[str, str, str] | None,
            *,
            refills: int,
            supply: int,
            status_reason: str | None = None,
        ) -> None:
            med = C.MEDICINES[med_key]
            offset = utc_offset(authored, p.tz)
            if med.per_day and med.chronic:
                quantity = int(med.per_day * supply)
            elif med.per_day:
                quantity = int(med.per_day * supply) + (1 if med_key == "azithromycin" else 0)
            else:
                quantity = 1
            if med_key == "amoxicillin_susp":
                quantity = 1
            dosage: FhirJson = {"sequence": 1, "text": med.sig}
            if med.per_day and med_key not in ("amoxicillin_susp",):
                dosage["timing"] = {"repeat": {"frequency": int(med.per_day), "period": 1, "periodUnit": "d"}}
            if med.per_day == 0 or "as needed" in med.sig:
                dosage["asNeededBoolean"] = True
            route = (
                ("6064005", "Topical route")
                if med.unit == "tube"
                else ("46713006", "Nasal route")
                if med_key == "fluticasone"
                else ("447694001", "Respiratory tract route")
                if med.unit == "inhaler"
                else ("26643006", "Oral route")
            )
            dosage["route"] = _cc(C.SCT, route[0], route[1])
            res: FhirJson = {
                "resourceType": "MedicationRequest",
                "meta": {"versionId": "1", "lastUpdated": _stamp(authored, 600, offset)},
                "status": status,
            }
            if status_reason:
                res["statusReason"] = {"text": status_reason}
            res.update(
                {
                    "intent": "order",
                    "category": [_cc(C.MED_CATEGORY, "community", "Community", "Discharge/community pharmacy")],
                    "medicationCodeableConcept": {
                        "coding": [{"system": C.RXNORM, "code": med.rxcui, "display": med.ingredient}],
                        "text": med.text,
                    },
                    "subject": self._patient_ref(p),
                    "authoredOn": _stamp(authored, rng.randint(8, 17) * 60 + rng.choice((0, 15, 30, 45)), offset),
                    "requester": self.practitioner(requester),
                }
            )
            if reason:
                res["reasonCode"] = [
                    {"coding": [{"system": C.ICD10, "code": reason[0], "display": reason[1]}], "text": reason[2]}
                ]
            res["courseOfTherapyType"] = (
                _cc(C.MED_COURSE, "continuous", "Continuous long term therapy")
                if med.chronic
                else _cc(C.MED_COURSE, "acute", "Short course (acute) therapy")
            )
            res["note"] = [{"text": f"Preferred pharmacy: {pharmacy}."}]
            res["dosageInstruction"] = [dosage]
            res["dispenseRequest"] = {
                "validityPeriod": {
                    "start": authored.isoformat(),
                    "end": (authored + timedelta(days=365 if med.chronic else 30)).isoformat(),
                },
                "numberOfRepeatsAllowed": refills,
                "quantity": {"value": quantity, "unit": med.unit, "system": C.UCUM, "code": med.ucum},
                "expectedSupplyDuration": {"value": supply, "unit": "days", "system": C.UCUM, "code": "d"},
            }
            res["substitution"] = {"allowedBoolean": True}
            items.append((authored, res))

        specialists = {r.specialty: r.practitioner for r in plan.referrals if r.status == "completed"}
        for key in plan.conditions:
            cond = C.CONDITIONS[key]
            if not cond.medicines:
                continue
            prescriber = plan.pcp
            for spec in cond.referral:
                if spec in specialists and rng.chance(0.5):
                    prescriber = specialists[spec]
            reason = (cond.icd10, cond.display, cond.short)
            supply = 90 if rng.chance(0.45) else 30
            refills = (3 if supply == 90 else 11) if rng.chance(0.85) else 0
            authored = self.today - timedelta(days=rng.randint(20, 330))
            first = cond.medicines[0]
            if len(cond.medicines) > 1 and rng.chance(0.18):
                switched = authored - timedelta(days=rng.randint(30, 400))
                why = {
                    "lisinopril": "Dry cough; switched to an ARB.",
                    "albuterol": "Symptoms not controlled with rescue inhaler alone.",
                }.get(first, rng.choice(("Side effects reported by patient.", "Not effective at current dose.")))
                request(first, switched, "stopped", plan.pcp, reason, refills=refills, supply=supply, status_reason=why)
                request(cond.medicines[1], authored, "active", prescriber, reason, refills=refills, supply=supply)
            else:
                request(first, authored, "active", prescriber, reason, refills=refills, supply=supply)
                if key == "asthma" and rng.chance(0.3):
                    request("montelukast", authored, "active", prescriber, reason, refills=refills, supply=supply)
                if key == "afib":
                    request("metoprolol", authored, "active", prescriber, reason, refills=refills, supply=supply)
        for acute_key, day in plan.acute:
            acute = next(a for a in C.ACUTE if a.key == acute_key)
            if acute.medicine is None:
                continue
            prescriber = next((v.practitioner for v in plan.visits if v.day == day and v.kind == "acute"), plan.pcp)
            supply = 10 if acute.medicine in ("amoxicillin", "amoxicillin_susp") else 5
            request(
                acute.medicine,
                day,
                "completed",
                prescriber,
                (acute.icd10, acute.display, acute.short),
                refills=0,
                supply=supply,
            )
        items.sort(key=lambda t: (t[0], t[1]["medicationCodeableConcept"]["text"]))
        out = []
        for k, (_, res) in enumerate(items, start=1):
            if p.deceased is not None and res["status"] == "active":
                res["status"] = "stopped"
                res["statusReason"] = {"text": "Patient deceased."}
            out.append({"resourceType": "MedicationRequest", "id": f"mr-{p.number}-{k:02d}", **res})
        return out

    # ---------------------------------------------------------------- care team
    def care_teams(self, p: Person, plan: Plan) -> list[FhirJson]:
        rng = self.rng(p.pid, "careteam")
        pcp_spec = C.SPECIALTIES[plan.pcp_specialty]

        def role(spec_key: str) -> FhirJson:
            spec = C.SPECIALTIES[spec_key]
            out: FhirJson = {"text": spec.role_text}
            if spec.occupation:
                out["coding"] = [{"system": C.SCT, "code": spec.occupation[0], "display": spec.occupation[1]}]
            return out

        org = {"reference": f"Organization/{PROVIDER_ORG_ID}", "display": PROVIDER_ORG_NAME}
        since = max((self.today - timedelta(days=rng.randint(60, 3000))).isoformat(), p.dob.isoformat())
        participants: list[FhirJson] = [
            {"role": [role(plan.pcp_specialty)], "member": self.practitioner(plan.pcp), "onBehalfOf": org},
            {"role": [role("nursing")], "member": self.practitioner(rng.choice(p.staff["nursing"])), "onBehalfOf": org},
        ]
        active_meds = sum(1 for c in plan.conditions if C.CONDITIONS[c].medicines)
        if active_meds >= 3:
            participants.append(
                {"role": [role("pharmacy")], "member": self.practitioner(p.staff["pharmacy"][0]), "onBehalfOf": org}
            )
        if {"depression", "anxiety"} & set(plan.conditions) or p.age >= 80:
            participants.append(
                {
                    "role": [role("social_work")],
                    "member": self.practitioner(p.staff["social_work"][0]),
                    "onBehalfOf": org,
                }
            )
        seen = set()
        for ref in plan.referrals:
            if ref.status == "completed" and ref.specialty not in seen and ref.specialty != "physical_therapy":
                seen.add(ref.specialty)
                participants.append(
                    {"role": [role(ref.specialty)], "member": self.practitioner(ref.practitioner), "onBehalfOf": org}
                )
        if p.age < 18:
            for rp_id, gpid, code in p.guardians[:2]:
                participants.append(
                    {
                        "role": [{"text": "Parent/guardian"}],
                        "member": {"reference": f"RelatedPerson/{rp_id}", "display": _name_of(self.pop.by_id[gpid])[0]},
                    }
                )
        elif p.age >= 75 and p.children:
            rp_id, cpid, _ = p.children[0]
            participants.append(
                {
                    "role": [_cc(C.SCT, "133932002", "Caregiver", "Family caregiver")],
                    "member": {"reference": f"RelatedPerson/{rp_id}", "display": _name_of(self.pop.by_id[cpid])[0]},
                }
            )
        team_status = "inactive" if p.deceased is not None or not p.active else "active"
        primary: FhirJson = {
            "resourceType": "CareTeam",
            "id": f"ct-{p.number}-01",
            "meta": {"versionId": "1", "lastUpdated": _stamp(self.today - timedelta(days=rng.randint(1, 60)), 600, -5)},
            "status": team_status,
            "category": [_cc(C.LOINC, "LA28865-6", "Longitudinal care-coordination focused care team")],
            "name": ("Pediatric care team" if plan.pcp_specialty == "pediatrics" else "Primary care team")
            + f", {p.location_name}",
            "subject": self._patient_ref(p),
            "period": {"start": since, **({"end": p.deceased.isoformat()} if p.deceased else {})},
            "participant": participants,
            "managingOrganization": [org],
        }
        if p.location_phone:
            primary["telecom"] = [{"system": "phone", "value": p.location_phone, "use": "work"}]
        primary["note"] = [
            {"text": f"Primary care with {self._practitioners.get(plan.pcp, ('', None))[0]} ({pcp_spec.display})."}
        ]
        out = [primary]
        pt = next((r for r in plan.referrals if r.specialty == "physical_therapy" and r.status == "completed"), None)
        if pt is not None:
            end = min(self.today - timedelta(days=1), pt.authored + timedelta(days=rng.randint(50, 120)))
            out.append(
                {
                    "resourceType": "CareTeam",
                    "id": f"ct-{p.number}-02",
                    "meta": {"versionId": "1", "lastUpdated": _stamp(end, 600, -5)},
                    "status": "inactive",
                    "category": [_cc(C.LOINC, "LA27975-4", "Event-focused care team")],
                    "name": "Physical therapy episode",
                    "subject": self._patient_ref(p),
                    "period": {"start": pt.authored.isoformat(), "end": end.isoformat()},
                    "participant": [
                        {
                            "role": [role("physical_therapy")],
                            "member": self.practitioner(pt.practitioner),
                            "onBehalfOf": org,
                        },
                        {"role": [role(plan.pcp_specialty)], "member": self.practitioner(plan.pcp), "onBehalfOf": org},
                    ],
                    "managingOrganization": [org],
                    "reasonCode": [
                        {
                            "coding": [
                                {
                                    "system": C.ICD10,
                                    "code": C.CONDITIONS[pt.reason].icd10,
                                    "display": C.CONDITIONS[pt.reason].display,
                                }
                            ],
                            "text": C.CONDITIONS[pt.reason].short,
                        }
                    ],
                }
            )
        return out

    # ---------------------------------------------------------------- notes
    def notes(self, p: Person, plan: Plan) -> list[FhirJson]:
        rng = self.rng(p.pid, "notes")
        nurse = rng.choice(p.staff["nursing"])
        items: list[tuple[int, FhirJson]] = []
        he = {"female": "She", "male": "He"}.get(p.sex, "They")
        who = "Parent" if p.age < 18 else "Patient"

        def doc(kind: str, day: date, minute: int, author: str, title: str, text: str, **extra: Any) -> None:
            code, display = C.NOTE_TYPES[kind]
            offset = utc_offset(day, p.tz)
            data = text.encode()
            stamp = _stamp(day, minute, offset)
            res: FhirJson = {
                "resourceType": "DocumentReference",
                "meta": {"versionId": "1", "lastUpdated": stamp},
                "status": "current",
                "docStatus": "final",
                "type": {"coding": [{"system": C.LOINC, "code": code, "display": display}], "text": display},
                "category": [_cc(C.DOC_CATEGORY, "clinical-note", "Clinical Note")],
                "subject": self._patient_ref(p),
                "date": stamp,
                "author": [self.practitioner(author)],
                "custodian": {"reference": f"Organization/{PROVIDER_ORG_ID}", "display": PROVIDER_ORG_NAME},
                "description": title,
                "content": [
                    {
                        "attachment": {
                            "contentType": "text/plain",
                            "language": "en-US",
                            "data": base64.b64encode(data).decode(),
                            "size": len(data),
                            "hash": base64.b64encode(
                                hashlib.sha1(data).digest()
                            ).decode(),  # FHIR Attachment.hash is SHA-1
                            "title": title,
                            "creation": stamp,
                        }
                    }
                ],
            }
            res.update(extra)
            items.append((epoch_seconds(day, minute, offset), res))

        # progress notes for visits that happened
        for v in plan.visits:
            if v.status != "fulfilled" or not rng.chance(0.7):
                continue
            description, _ = self._visit_text(v)
            minute = min(v.minute + v.minutes + rng.randint(10, 180), 23 * 60)
            doc(
                "progress",
                v.day,
                minute,
                v.practitioner,
                description,
                self._progress_text(p, plan, v, rng, he),
                context={
                    "period": {
                        "start": _stamp(v.day, v.minute, v.offset),
                        "end": _stamp(v.day, v.minute + v.minutes, v.offset),
                    }
                },
            )
        # referral notes
        for ref in plan.referrals:
            if not rng.chance(0.6):
                continue
            spec = C.SPECIALTIES[ref.specialty]
            cond = C.CONDITIONS[ref.reason]
            text = (
                f"Referral to {spec.display.lower()} ({self._practitioners.get(ref.practitioner, ('', None))[0]}).\n"
                f"Reason: {cond.short} ({cond.icd10}).\n"
                f"History: {p.given} has {cond.short}; "
                + rng.choice(
                    (
                        "symptoms persist despite first-line treatment.",
                        "requesting specialist evaluation and management recommendations.",
                        "due for specialist review per guideline.",
                    )
                )
                + "\nRecent notes and medication list sent with the referral.\n"
                f"Please call the referring clinic at {p.location_phone or 'the main number'} with questions."
            )
            doc(
                "referral", ref.authored, rng.randint(9, 16) * 60, plan.pcp, f"Referral to {spec.display.lower()}", text
            )
        # telephone encounters
        calls = rng.choice((0, 0, 1, 1, 1, 2, 2, 3))
        meds = [C.MEDICINES[C.CONDITIONS[c].medicines[0]] for c in plan.conditions if C.CONDITIONS[c].medicines]
        for _ in range(calls):
            day = self.today - timedelta(days=rng.randint(1, 360))
            minute = rng.randint(8 * 60, 17 * 60)
            title, text = self._phone_text(p, plan, rng, who, meds)
            doc("telephone", day, minute, nurse, title, text)
        for v in plan.visits:
            if v.status == "cancelled" and rng.chance(0.4):
                day = v.day - timedelta(days=rng.randint(0, 3))
                if day > self.today:
                    continue
                description, _ = self._visit_text(v)
                text = (
                    f"{who} called to cancel the {v.day.strftime('%b %d')} appointment ({description.lower()}).\n"
                    + rng.choice(
                        (
                            "Reason given: work conflict. Offered next available; will call back to reschedule.",
                            "Reason given: feeling better. Advised to call if symptoms return.",
                            "Reason given: no transportation. Shared ride-assistance information.",
                            "Reason given: childcare. Rescheduling via the patient portal.",
                        )
                    )
                )
                doc("telephone", day, rng.randint(8 * 60, 17 * 60), nurse, "Appointment cancellation", text)
        items.sort(key=lambda t: t[0])
        return [
            {"resourceType": "DocumentReference", "id": f"doc-{p.number}-{k:02d}", **res}
            for k, (_, res) in enumerate(items, start=1)
        ]

    def _progress_text(self, p: Person, plan: Plan, v: Visit, rng: _Rng, he: str) -> str:
        conditions = [C.CONDITIONS[c] for c in plan.conditions]
        if v.kind == "physical":
            subjective = (
                f"{'Well-child check' if p.age < 18 else 'Annual preventive visit'}. {he} reports no new concerns."
            )
            if conditions:
                subjective += " Chronic problems reviewed: " + ", ".join(c.short for c in conditions) + "."
            assessment = "Healthy " + ("child" if p.age < 18 else "adult") + "; chronic problems stable."
            plan_text = "Age-appropriate screening discussed; " + (
                "vaccines up to date." if p.age < 18 else "fasting labs ordered; follow up in one year."
            )
        elif v.kind == "acute":
            acute = next(a for a in C.ACUTE if a.key == v.reason)
            subjective = f"{rng.randint(2, 7)} days of symptoms consistent with {acute.short}."
            assessment = f"{acute.display} ({acute.icd10})."
            plan_text = (
                f"{C.MEDICINES[acute.medicine].text}; return if not improving in 3 days."
                if acute.medicine
                else "Supportive care, fluids and rest; return if not improving in 7 days."
            )
        elif v.reason in C.CONDITIONS:
            cond = C.CONDITIONS[v.reason]
            spec = C.SPECIALTIES[v.specialty]
            subjective = (
                f"Referred for {cond.short}. " if v.kind == "specialist" else f"Follow-up for {cond.short}. "
            ) + rng.choice(
                (
                    "Reports good adherence.",
                    "Missed a few doses last month.",
                    "Doing well overall.",
                    "Some side effects, tolerable.",
                )
            )
            assessment = f"{cond.display} ({cond.icd10}), " + rng.choice(("stable.", "improving.", "not at goal."))
            plan_text = (
                f"{spec.display} recommendations sent to the primary care clinician; follow up as needed."
                if not spec.primary
                else "Continue current treatment; labs before the next visit."
            )
        else:
            subjective, assessment, plan_text = "Routine follow-up.", "Stable.", "Follow up as scheduled."
        if p.age >= 18:
            sys_bp = rng.randint(108, 148) + (8 if "hypertension" in plan.conditions else 0)
            objective = f"BP {sys_bp}/{rng.randint(64, 92)}, HR {rng.randint(58, 96)}, SpO2 {rng.randint(95, 99)}%."
        else:
            objective = (
                f"Growth tracking along the {rng.choice((25, 50, 75))}th percentile. "
                f"Temp {rng.randint(976, 991) / 10}°F."
            )
        return f"Subjective: {subjective}\nObjective: {objective}\nAssessment: {assessment}\nPlan: {plan_text}"

    def _phone_text(self, p: Person, plan: Plan, rng: _Rng, who: str, meds: list[C.Medicine]) -> tuple[str, str]:
        pcp = self._practitioners.get(plan.pcp, ("the primary care clinician", None))[0]
        verified = "Identity verified with name and date of birth."
        options = ["billing", "results", "portal"]
        if meds:
            options += ["refill", "refill"]
        if plan.referrals:
            options.append("referral")
        if any(v.day >= self.today for v in plan.visits):
            options.append("reschedule")
        kind = rng.choice(options)
        if kind == "refill":
            med = rng.choice(meds)
            return "Refill request", (
                f"{who} called requesting a refill of {med.text.lower()}. {verified}\n"
                f"Routed to {pcp} for approval; pharmacy on file confirmed. "
                "Advised refills are usually processed within 2 business days."
            )
        if kind == "billing":
            return "Billing question", (
                f"{who} called about a recent statement. {verified}\n"
                "Explained the explanation of benefits and the amount applied to the deductible. "
                "Offered a payment plan; caller will pay through the portal."
            )
        if kind == "results":
            return "Test results", (
                f"{who} called asking for recent lab results. {verified}\n"
                f"Results reviewed by {pcp}; within normal limits. Caller informed and results released to the portal."
            )
        if kind == "referral":
            ref = rng.choice(plan.referrals)
            spec = C.SPECIALTIES[ref.specialty]
            return "Referral status", (
                f"{who} called to ask about the {spec.display.lower()} referral. {verified}\n"
                f"Referral status: {ref.status}. Gave the specialist's scheduling line and hours."
            )
        if kind == "reschedule":
            return "Appointment question", (
                f"{who} called to confirm an upcoming appointment. {verified}\n"
                "Confirmed date, time and location; reminded to bring insurance card and medication list."
            )
        return "Patient portal access", (
            f"{who} called unable to log in to the patient portal. {verified}\n"
            "Sent a password reset link to the e-mail on file; caller logged in successfully while on the line."
        )
