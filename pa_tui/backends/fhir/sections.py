"""FHIR R4 record resources → the section views the tabs render, tolerantly.

The same rules as :mod:`pa_tui.backends.fhir.parse`: every function here accepts
any JSON-shaped value and never raises; what cannot be read is left out, never
guessed. References are named from, in order: the reference's ``display``, a
contained resource (``#id``), then ``refs`` — resources the EHR read for the
references left over (see :func:`references_to_resolve`). A dangling reference
simply has no name.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from pa_tui.backends.fhir.parse import (
    CONFIDENTIALITY_SYSTEMS,
    _codes,
    _concept_text,
    _full_date,
    _name_parts,
    _obj,
    _objs,
    _period_state,
    _pick_name,
    _text,
    patient_phones,
)
from pa_tui.domain.patients import PatientPhone, PatientSummary, PhoneUse
from pa_tui.domain.phones import DEFAULT_REGION, PhoneNumber
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

__all__ = [
    "NOTE_IDENTIFIER_SYSTEM",
    "RecordSummary",
    "account_view",
    "appointment_view",
    "care_team_members",
    "claim_view",
    "clinical_note",
    "coverage_view",
    "guarantor_references",
    "is_referral",
    "note_identifier",
    "prescription_view",
    "reference_key",
    "references_to_resolve",
    "referral_view",
    "replaced_by",
    "replaces",
    "resource_name",
    "resource_phones",
]

Json = Mapping[str, Any]
Refs = Mapping[str, Json]

NOTE_IDENTIFIER_SYSTEM: Final = "urn:pa-tui:note"
SNOMED: Final = "http://snomed.info/sct"
_REFERRAL_CODES: Final = frozenset({"3457005", "306206005", "183444007"})  # patient referral, referral to service
_PERSON_TYPES: Final = ("Practitioner", "Patient", "RelatedPerson")
_NAMED_TYPES: Final = ("Organization", "Location", "HealthcareService", "CareTeam", "Device", "Group", "Endpoint")
_REF_RE: Final = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$")
_PATIENT_OWES: Final = ("memberliability", "patientpay", "patient")


class RecordSummary(BaseModel):
    """The Summary tab: the patient, the next appointment and the balance, each when known."""

    model_config = ConfigDict(frozen=True)

    patient: PatientSummary
    next_appointment: Appointment | None = None
    balance: Money | None = None
    appointments_available: bool = True  # False: this EHR does not list appointments by patient
    billing_available: bool = True  # False: this EHR does not expose billing


# --------------------------------------------------------------------------- references
def reference_key(ref: object) -> str | None:
    """ "Practitioner/123" for a literal reference (relative, absolute or versioned); None otherwise."""
    text = _text(_obj(ref).get("reference"))
    if not text or text.startswith("#"):
        return None
    m = _REF_RE.search(text)
    return f"{m.group(1)}/{m.group(2)}" if m else None


def _ref_type(ref: object) -> str | None:
    key = reference_key(ref)
    if key:
        return key.split("/", 1)[0]
    t = _text(_obj(ref).get("type"))
    return t


def _contained(container: Json, ref: object) -> Json | None:
    text = _text(_obj(ref).get("reference"))
    if not text or not text.startswith("#") or len(text) < 2:
        return None
    for res in _objs(container.get("contained")):
        if res.get("id") == text[1:]:
            return res
    return None


def _target(container: Json, ref: object, refs: Refs | None) -> Json | None:
    """The resource a reference points at, when contained or resolved."""
    found = _contained(container, ref)
    if found is not None:
        return found
    key = reference_key(ref)
    if key and refs:
        hit = refs.get(key)
        if isinstance(hit, Mapping):
            return hit
    return None


def resource_name(resource: object, *, today: date | None = None) -> str | None:
    """A display name for a Practitioner, Patient, RelatedPerson, Organization, Location, PractitionerRole,
    Medication… Never raises."""
    r = _obj(resource)
    try:
        rtype = r.get("resourceType")
        if rtype in _PERSON_TYPES or (rtype is None and "name" in r and not isinstance(r.get("name"), str)):
            name = _pick_name(_objs(r.get("name")), today or date.today())
            if name is None:
                return None
            given, family, display = _name_parts(name)
            prefix = " ".join(p for p in (_text(x) for x in _list(name.get("prefix"))) if p)
            if (given or family) and prefix and rtype == "Practitioner":
                return f"{prefix} {display}"
            return display
        if rtype == "PractitionerRole":
            return _text(_obj(r.get("practitioner")).get("display")) or _concept_text(r.get("code"))
        if rtype == "Medication":
            return _concept_text(r.get("code"))
        return _text(r.get("name")) or _text(r.get("alias")) or _concept_text(r.get("code"))
    except Exception:  # noqa: BLE001
        return None


def resource_phones(resource: object, *, today: date, region: str = DEFAULT_REGION) -> tuple[PatientPhone, ...]:
    """The phone numbers a resource carries (Practitioner, PractitionerRole, Organization, Location…)."""
    try:
        return patient_phones(_obj(resource), today=today, region=region)
    except Exception:  # noqa: BLE001
        return ()


def _best_phone(phones: Iterable[PatientPhone]) -> PhoneNumber | None:
    order = {PhoneUse.WORK: 0, PhoneUse.OTHER: 1, PhoneUse.MOBILE: 2, PhoneUse.HOME: 3, PhoneUse.TEMP: 4}
    current = [p for p in phones if p.current]
    if not current:
        return None
    best = min(enumerate(current), key=lambda ip: (order.get(ip[1].use, 5), ip[1].rank or 99, ip[0]))[1]
    return best.number


def _ref_name(container: Json, ref: object, refs: Refs | None, today: date | None = None) -> str | None:
    display = _text(_obj(ref).get("display"))
    if display:
        return display
    target = _target(container, ref, refs)
    return resource_name(target, today=today) if target is not None else None


def _refs_of(container: Json, refs: Iterable[object], types: Iterable[str]) -> list[str]:
    wanted = set(types)
    out = []
    for ref in refs:
        key = reference_key(ref)
        if key and key.split("/", 1)[0] in wanted and not _text(_obj(ref).get("display")):
            out.append(key)
    return out


def references_to_resolve(resource: object, *, patient_id: str | None = None) -> list[str]:
    """The references of a record resource that need reading to be named (or, for care-team
    members, to find their phone number). Never raises."""
    r = _obj(resource)
    try:
        rtype = r.get("resourceType")
        if rtype == "Appointment":
            actors = [_obj(p).get("actor") for p in _objs(r.get("participant"))]
            return _refs_of(r, actors, ("Practitioner", "PractitionerRole", "Location"))
        if rtype == "ServiceRequest":
            return _refs_of(r, [r.get("requester"), *_objs(r.get("performer"))[:1]], _PERSON_TYPES + _NAMED_TYPES)
        if rtype == "MedicationRequest":
            out = _refs_of(r, [r.get("requester")], ("Practitioner", "PractitionerRole", "Organization"))
            if not _concept_text(r.get("medicationCodeableConcept")):
                out += _refs_of(r, [r.get("medicationReference")], ("Medication",))
            return out
        if rtype == "CareTeam":
            out = []
            for p in _objs(r.get("participant")):
                member = _obj(p.get("member"))
                key = reference_key(member)
                if not key or key == f"Patient/{patient_id}":
                    continue
                if key.split("/", 1)[0] in ("Practitioner", "PractitionerRole", "Organization", "RelatedPerson"):
                    out.append(key)  # read even with a display: the phone number lives there
            return out
        if rtype == "DocumentReference":
            return _refs_of(r, _objs(r.get("author")), ("Practitioner", "PractitionerRole", "Organization"))
        if rtype == "ExplanationOfBenefit":
            return _refs_of(r, [r.get("provider")], ("Practitioner", "PractitionerRole", "Organization"))
        if rtype == "Coverage":
            return _refs_of(r, _objs(r.get("payor"))[:1], ("Organization",))
        if rtype == "Account":
            parties = [_obj(g).get("party") for g in _objs(r.get("guarantor"))]
            return _refs_of(r, parties[:1], ("Patient", "RelatedPerson", "Organization"))
    except Exception:  # noqa: BLE001
        return []
    return []


# --------------------------------------------------------------------------- small readers
def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _id(r: Json) -> str:
    rid = r.get("id")
    return rid if isinstance(rid, str) else ""


def _when(value: object) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware datetime (dates and zone-less times taken as UTC)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            dt = datetime.fromisoformat(text[:10])
        except ValueError:
            return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _money(value: object) -> Money | None:
    m = _obj(value)
    raw = m.get("value")
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        return None
    try:
        amount = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    currency = _text(m.get("currency"))
    currency = currency.upper() if currency and re.fullmatch(r"[A-Za-z]{3}", currency) else "USD"
    return Money(value=amount, currency=currency)


def _sum(moneys: list[Money]) -> Money | None:
    if not moneys:
        return None
    currency = moneys[0].currency
    same = [m for m in moneys if m.currency == currency]
    return Money(value=sum((m.value for m in same), Decimal(0)), currency=currency)


def _status(r: Json) -> str:
    return _text(r.get("status")) or "unknown"


def _restricted_labels(labels: object) -> bool:
    for cc in _objs(labels):
        for coding in _objs(cc.get("coding")) or [cc]:
            code = _text(coding.get("code"))
            system = _text(coding.get("system"))
            if code in ("R", "V") and (system is None or system in CONFIDENTIALITY_SYSTEMS):
                return True
    return False


# --------------------------------------------------------------------------- appointments
def appointment_view(
    resource: object, *, patient_id: str | None = None, refs: Refs | None = None, today: date | None = None
) -> Appointment:
    """An Appointment with its practitioners, location and the patient participant's status."""
    r = _obj(resource)
    try:
        practitioners: list[str] = []
        locations: list[str] = []
        patient_status: str | None = None
        for part in _objs(r.get("participant")):
            actor = _obj(part.get("actor"))
            kind = _ref_type(actor)
            if kind == "Patient":
                key = reference_key(actor)
                if patient_status is None and (patient_id is None or key == f"Patient/{patient_id}"):
                    patient_status = _text(part.get("status"))
                continue
            name = _ref_name(r, actor, refs, today)
            if not name:
                continue
            if kind in ("Practitioner", "PractitionerRole"):
                practitioners.append(name)
            elif kind == "Location":
                locations.append(name)
        service = (
            _concept_text(r.get("serviceType"))
            or _concept_text(r.get("specialty"))
            or _concept_text(r.get("appointmentType"))
            or _concept_text(r.get("serviceCategory"))
        )
        return Appointment(
            id=_id(r),
            status=_status(r),
            start=_when(r.get("start")),
            end=_when(r.get("end")),
            description=_text(r.get("description")),
            service=service,
            practitioner=", ".join(dict.fromkeys(practitioners)) or None,
            location=", ".join(dict.fromkeys(locations)) or None,
            patient_status=patient_status,
        )
    except Exception:  # noqa: BLE001 - a defect here must not lose the tab: show what is certain
        return Appointment(id=_id(r), status=_status(r) if isinstance(r.get("status"), str) else "unknown")


def patient_participant(resource: object, patient_id: str) -> Json | None:
    """The Appointment participant that is this patient."""
    for part in _objs(_obj(resource).get("participant")):
        if reference_key(part.get("actor")) == f"Patient/{patient_id}":
            return part
    return None


# --------------------------------------------------------------------------- referrals
def is_referral(resource: object) -> bool:
    """Whether a ServiceRequest is a referral: SNOMED "Patient referral" category, or "referral" in
    its category or code. Never raises."""
    r = _obj(resource)
    for field_name in ("category", "code"):
        for system, code in _codes(r.get(field_name)):
            if code in _REFERRAL_CODES and system in (None, SNOMED):
                return True
        for cc in _objs(r.get(field_name)):
            texts = [_text(cc.get("text"))] + [_text(c.get("display")) for c in _objs(cc.get("coding"))]
            texts += [_text(c.get("code")) for c in _objs(cc.get("coding"))]
            if any(t and "referral" in t.lower() for t in texts):
                return True
    return False


def referral_view(resource: object, *, refs: Refs | None = None, today: date | None = None) -> Referral:
    r = _obj(resource)
    try:
        performer = None
        for perf in _objs(r.get("performer")):
            performer = _ref_name(r, perf, refs, today)
            if performer:
                break
        performer = performer or _concept_text(r.get("performerType"))
        reason = _concept_text(r.get("reasonCode"))
        if not reason:
            for ref in _objs(r.get("reasonReference")):
                reason = _text(ref.get("display"))
                if reason:
                    break
        occurrence = r.get("occurrenceDateTime") or _obj(r.get("occurrencePeriod")).get("start")
        return Referral(
            id=_id(r),
            status=_status(r),
            intent=_text(r.get("intent")),
            category=_concept_text(r.get("category")),
            code=_concept_text(r.get("code")),
            authored=_when(r.get("authoredOn")) or _when(occurrence),
            requester=_ref_name(r, r.get("requester"), refs, today),
            performer=performer,
            reason=reason,
        )
    except Exception:  # noqa: BLE001
        return Referral(id=_id(r), status="unknown")


# --------------------------------------------------------------------------- billing
def _account_balance(r: Json) -> Money | None:
    # R5-style Account.balance (several EHRs send it on R4 too): the patient's share when aggregated
    entries = _objs(r.get("balance"))
    if entries:
        patient = [e for e in entries if any(code == "patient" for _, code in _codes(e.get("aggregate")))]
        plain = [e for e in entries if not _codes(e.get("aggregate"))]
        chosen = patient or plain or entries
        return _sum([m for m in (_money(e.get("amount")) for e in chosen) if m is not None])
    # R4: the R5 element as a cross-version extension (complex: aggregate, term, estimate, amount),
    # or a simple extension whose url names a balance and carries valueMoney
    patient_share: list[Money] = []
    other: list[Money] = []
    for ext in _objs(r.get("extension")):
        url = _text(ext.get("url")) or ""
        if "balance" not in url.lower():
            continue
        simple = _money(ext.get("valueMoney"))
        if simple is not None:
            other.append(simple)
            continue
        parts = {(_text(e.get("url")) or ""): e for e in _objs(ext.get("extension"))}
        amount = _money(_obj(parts.get("amount")).get("valueMoney"))
        if amount is None:
            continue
        aggregate = [code for _, code in _codes(_obj(parts.get("aggregate")).get("valueCodeableConcept"))]
        (patient_share if "patient" in aggregate else other).append(amount)
    return _sum(patient_share) or _sum(other)


def guarantor_references(resource: object, *, today: date | None = None) -> list[str]:
    """ "Patient/…" / "RelatedPerson/…" keys of an Account's current guarantors (not on hold, period
    not ended). Never raises."""
    r = _obj(resource)
    today = today or date.today()
    out = []
    for g in _objs(r.get("guarantor")):
        if g.get("onHold") is True or _period_state(g.get("period"), today)[0]:
            continue
        key = reference_key(g.get("party"))
        if key:
            out.append(key)
    return out


def account_view(resource: object, *, refs: Refs | None = None, today: date | None = None) -> AccountView:
    r = _obj(resource)
    try:
        today = today or date.today()
        guarantor = None
        for g in _objs(r.get("guarantor")):
            if g.get("onHold") is True or _period_state(g.get("period"), today)[0]:
                continue
            guarantor = _ref_name(r, g.get("party"), refs, today)
            if guarantor:
                break
        return AccountView(
            id=_id(r),
            name=_text(r.get("name")) or _concept_text(r.get("type")),
            status=_text(r.get("status")),
            balance=_account_balance(r),
            guarantor=guarantor,
        )
    except Exception:  # noqa: BLE001
        return AccountView(id=_id(r))


def coverage_view(resource: object, *, refs: Refs | None = None, today: date | None = None) -> CoverageView:
    r = _obj(resource)
    try:
        payor = None
        for p in _objs(r.get("payor")):
            payor = _ref_name(r, p, refs, today)
            if payor:
                break
        plan = None
        by_type: dict[str, str] = {}
        for cls in _objs(r.get("class")):
            label = _text(cls.get("name")) or _text(cls.get("value"))
            for _, code in _codes(cls.get("type")):
                if label and code not in by_type:
                    by_type[code] = label
        plan = by_type.get("plan") or by_type.get("group") or _concept_text(r.get("type"))
        member_id = _text(r.get("subscriberId"))
        if not member_id:
            idents = _objs(r.get("identifier"))
            member = [i for i in idents if any(c == "MB" for _, c in _codes(i.get("type")))]
            for ident in member or idents:
                member_id = _text(ident.get("value"))
                if member_id:
                    break
        relationship = None
        for cc in _objs(r.get("relationship")):
            relationship = _text(cc.get("text"))
            for coding in _objs(cc.get("coding")):
                relationship = relationship or _text(coding.get("display")) or _text(coding.get("code"))
        return CoverageView(
            id=_id(r),
            status=_text(r.get("status")),
            payor=payor,
            plan=plan,
            subscriber_id=member_id,
            relationship=relationship,
            period_end=_full_date(_obj(r.get("period")).get("end")),
        )
    except Exception:  # noqa: BLE001
        return CoverageView(id=_id(r))


def claim_view(resource: object, *, refs: Refs | None = None, today: date | None = None) -> ClaimView:
    """A recent ExplanationOfBenefit: what was billed and, when the EOB says so, what the patient owes."""
    r = _obj(resource)
    try:
        totals: dict[str, Money] = {}
        first: Money | None = None
        for t in _objs(r.get("total")):
            money = _money(t.get("amount"))
            if money is None:
                continue
            first = first or money
            for _, code in _codes(t.get("category")):
                totals.setdefault(code.lower(), money)
        owes = next((totals[c] for c in _PATIENT_OWES if c in totals), None)
        paid = totals.get("paidbypatient")
        if owes is not None and paid is not None and "memberliability" in totals and paid.currency == owes.currency:
            owes = Money(value=max(Decimal(0), owes.value - paid.value), currency=owes.currency)
        provider = _ref_name(r, r.get("provider"), refs, today) or _ref_name(r, r.get("facility"), refs, today)
        return ClaimView(
            id=_id(r),
            status=_text(r.get("status")),
            outcome=_text(r.get("outcome")),
            created=_when(r.get("created")),
            provider=provider,
            total=totals.get("submitted") or first,
            patient_owes=owes,
        )
    except Exception:  # noqa: BLE001
        return ClaimView(id=_id(r))


def billing(
    accounts: Iterable[object] = (),
    coverages: Iterable[object] = (),
    claims: Iterable[object] = (),
    *,
    refs: Refs | None = None,
    today: date | None = None,
    recent_claims: int = 10,
) -> Billing:
    """The Billing tab from Account, Coverage and ExplanationOfBenefit resources (entered-in-error dropped;
    active accounts and coverages first; the most recent claims)."""
    today = today or date.today()
    acc = [account_view(a, refs=refs, today=today) for a in accounts if _status_ok(a)]
    cov = [coverage_view(c, refs=refs, today=today) for c in coverages if _status_ok(c)]
    eob = [claim_view(c, refs=refs, today=today) for c in claims if _status_ok(c)]
    acc.sort(key=lambda a: (a.status != "active", a.id))
    cov.sort(key=lambda c: (c.status != "active", -(c.period_end or date.max).toordinal(), c.id))
    eob.sort(key=lambda c: (c.created is None, -(c.created.timestamp() if c.created else 0), c.id))
    return Billing(accounts=tuple(acc), coverages=tuple(cov), claims=tuple(eob[:recent_claims]))


def _status_ok(resource: object) -> bool:
    r = _obj(resource)
    return isinstance(resource, Mapping) and r.get("status") != "entered-in-error"


# --------------------------------------------------------------------------- prescriptions
def _medication(r: Json, refs: Refs | None) -> str | None:
    text = _concept_text(r.get("medicationCodeableConcept"))
    if text:
        return text
    ref = r.get("medicationReference")
    display = _text(_obj(ref).get("display"))
    if display:
        return display
    target = _target(r, ref, refs)
    return _concept_text(target.get("code")) if target is not None else None


def _dosage(r: Json) -> str | None:
    texts = []
    for d in _objs(r.get("dosageInstruction")):
        text = _text(d.get("text")) or _text(d.get("patientInstruction"))
        if text:
            texts.append(text)
    return "; ".join(dict.fromkeys(texts)) or None


def prescription_view(resource: object, *, refs: Refs | None = None, today: date | None = None) -> Prescription:
    r = _obj(resource)
    try:
        repeats = _obj(r.get("dispenseRequest")).get("numberOfRepeatsAllowed")
        refills = repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats >= 0 else None
        return Prescription(
            id=_id(r),
            status=_status(r),
            medication=_medication(r, refs) or "(medication not named)",
            authored=_when(r.get("authoredOn")),
            dosage=_dosage(r),
            refills=refills,
            prescriber=_ref_name(r, r.get("requester"), refs, today),
        )
    except Exception:  # noqa: BLE001
        return Prescription(id=_id(r), status="unknown", medication="(medication not named)")


# --------------------------------------------------------------------------- care team
def care_team_members(
    resource: object,
    *,
    patient_id: str | None = None,
    refs: Refs | None = None,
    today: date | None = None,
    region: str = DEFAULT_REGION,
) -> list[CareTeamMember]:
    """A CareTeam's current members (not the patient themself), with role and a phone number from the
    member's own resource (contained or read)."""
    r = _obj(resource)
    today = today or date.today()
    out: list[CareTeamMember] = []
    try:
        team = _text(r.get("name")) or _concept_text(r.get("category"))
        for part in _objs(r.get("participant")):
            member = _obj(part.get("member"))
            key = reference_key(member)
            if key and patient_id and key == f"Patient/{patient_id}":
                continue
            if _period_state(part.get("period"), today)[0]:
                continue
            target = _target(r, member, refs)
            name = _text(member.get("display")) or (resource_name(target, today=today) if target else None)
            role = _concept_text(part.get("role"))
            phone = _best_phone(resource_phones(target, today=today, region=region)) if target else None
            if not name and phone is None:
                continue  # neither a name nor a number: nothing an agent could use
            out.append(CareTeamMember(name=name or "(name not recorded)", role=role, phone=phone, team=team))
        team_phone = _best_phone(resource_phones(r, today=today, region=region))
        if team_phone is not None and (team or out):
            out.append(CareTeamMember(name=team or "Care team", role="Team line", phone=team_phone, team=team))
    except Exception:  # noqa: BLE001
        return out
    return out


# --------------------------------------------------------------------------- notes
def _attachment_text(content: object) -> str | None:
    for c in _objs(content):
        att = _obj(c.get("attachment"))
        data = att.get("data")
        if not isinstance(data, str) or not data.strip():
            continue
        ctype = (_text(att.get("contentType")) or "text/plain").lower()
        if not ctype.startswith("text/plain") and ctype not in ("text/markdown",):
            continue
        charset = "utf-8"
        m = re.search(r"charset=([\w\-]+)", ctype)
        if m:
            charset = m.group(1)
        try:
            raw = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        try:
            text = raw.decode(charset, errors="replace")
        except LookupError:
            text = raw.decode("utf-8", errors="replace")
        text = text.replace("\r\n", "\n").strip()
        if text:
            return text
    return None


def note_identifier(resource: object) -> str | None:
    """The pa-tui note id a DocumentReference carries (``identifier`` system ``urn:pa-tui:note``)."""
    for ident in _objs(_obj(resource).get("identifier")):
        if _text(ident.get("system")) == NOTE_IDENTIFIER_SYSTEM:
            return _text(ident.get("value"))
    return None


def clinical_note(resource: object, *, refs: Refs | None = None, today: date | None = None) -> ClinicalNote:
    """A DocumentReference, with its text when it carries a plain-text attachment. Restricted documents
    (confidentiality R or V) are listed without their text."""
    r = _obj(resource)
    try:
        authors = [n for n in (_ref_name(r, a, refs, today) for a in _objs(r.get("author"))) if n]
        created = None
        for c in _objs(r.get("content")):
            created = created or _when(_obj(c.get("attachment")).get("creation"))
        restricted = _restricted_labels(r.get("securityLabel")) or _restricted_labels(
            _obj(r.get("meta")).get("security")
        )
        return ClinicalNote(
            id=_id(r),
            date=_when(r.get("date")) or created or _when(_obj(_obj(r.get("context")).get("period")).get("start")),
            type=_concept_text(r.get("type")) or _concept_text(r.get("category")),
            author=", ".join(dict.fromkeys(authors)) or None,
            text=None if restricted else _attachment_text(r.get("content")),
            status=_text(r.get("docStatus")) or _text(r.get("status")),
        )
    except Exception:  # noqa: BLE001
        return ClinicalNote(id=_id(r))


# --------------------------------------------------------------------------- patient links
def _links(patient: object, link_type: str) -> list[str]:
    out = []
    for link in _objs(_obj(patient).get("link")):
        if _text(link.get("type")) != link_type:
            continue
        key = reference_key(link.get("other"))
        if key and key.startswith("Patient/"):
            out.append(key.split("/", 1)[1])
    return out


def replaced_by(patient: object) -> str | None:
    """The id of the Patient that replaced this one (a merge: ``link.type = replaced-by``)."""
    ids = _links(patient, "replaced-by")
    return ids[0] if ids else None


def replaces(patient: object) -> list[str]:
    """Ids of the Patients this one replaced (``link.type = replaces``)."""
    return _links(patient, "replaces")
