"""FHIR R4 JSON → pa-tui's domain views, tolerantly.

Real EHRs send resources pa-tui did not write: names missing or only in
``text``, several telecoms with ``use: old`` and ended periods, numbers in any
format or from other countries, a ``birthDate`` that is only an extension,
contained resources, Bundles whose only entry is an OperationOutcome. The
functions here never raise on dict-shaped input: what cannot be read is left
out (``None`` / empty), never guessed. They read just the elements the console
shows; there are no whole-resource models on this path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.patients import Address, PatientPhone, PatientSummary, PhoneUse
from pa_tui.domain.phones import DEFAULT_REGION, PhoneNumber, try_parse_phone

__all__ = [
    "BundlePage",
    "RelatedPersonView",
    "bundle_page",
    "inverse_relationship",
    "operation_outcome_message",
    "parse_fhir_date",
    "patient_summary",
    "related_person",
    "relationship_label",
]

Json = Mapping[str, Any]

V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONFIDENTIALITY_SYSTEMS: Final = frozenset(
    {
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "http://hl7.org/fhir/v3/Confidentiality",
        "urn:oid:2.16.840.1.113883.5.25",
    }
)
_RESTRICTED: Final = {"R": "restricted record", "V": "very restricted record"}
# Identifier types and systems that are government ids, never shown as a record number.
_GOVERNMENT_ID_TYPES: Final = frozenset({"SS", "SB", "DL", "PPN", "NI", "NH", "TAX", "CZ"})
_GOVERNMENT_ID_SYSTEMS: Final = (
    "http://hl7.org/fhir/sid/us-ssn",
    "urn:oid:2.16.840.1.113883.4.1",
    "http://hl7.org/fhir/sid/us-mbi",
)

# ISO 3166 alpha-3 → alpha-2 for the countries an address most often names (phone region hint).
_ALPHA3: Final = {
    "USA": "US",
    "CAN": "CA",
    "MEX": "MX",
    "GBR": "GB",
    "IRL": "IE",
    "FRA": "FR",
    "DEU": "DE",
    "NLD": "NL",
    "BEL": "BE",
    "ESP": "ES",
    "PRT": "PT",
    "ITA": "IT",
    "CHE": "CH",
    "AUT": "AT",
    "SWE": "SE",
    "NOR": "NO",
    "DNK": "DK",
    "FIN": "FI",
    "POL": "PL",
    "AUS": "AU",
    "NZL": "NZ",
    "IND": "IN",
    "CHN": "CN",
    "JPN": "JP",
    "KOR": "KR",
    "PHL": "PH",
    "VNM": "VN",
    "BRA": "BR",
    "ARG": "AR",
    "COL": "CO",
    "PRI": "PR",
    "DOM": "DO",
    "SLV": "SV",
    "GTM": "GT",
    "HND": "HN",
    "CUB": "CU",
    "JAM": "JM",
    "HTI": "HT",
    "NGA": "NG",
    "ZAF": "ZA",
    "ISR": "IL",
}

# v3-RoleCode / v2-0131 codes: label of the related person, and of the patient seen from them.
_ROLE_LABELS: Final[dict[str, str]] = {
    "MTH": "mother",
    "NMTH": "mother",
    "STPMTH": "stepmother",
    "ADOPTMTH": "mother",
    "GESTM": "mother",
    "FTH": "father",
    "NFTH": "father",
    "STPFTH": "stepfather",
    "ADOPTFTH": "father",
    "PRN": "parent",
    "NPRN": "parent",
    "STPPRN": "step-parent",
    "ADOPTP": "parent",
    "FTHFOST": "foster parent",
    "MTHFOST": "foster parent",
    "GUARD": "guardian",
    "GUADLTM": "guardian",
    "CHILD": "child",
    "NCHILD": "child",
    "DAU": "daughter",
    "DAUC": "daughter",
    "SON": "son",
    "SONC": "son",
    "STPCHLD": "stepchild",
    "STPDAU": "stepdaughter",
    "STPSON": "stepson",
    "CHLDADOPT": "child",
    "CHLDFOST": "foster child",
    "SPS": "spouse",
    "HUSB": "husband",
    "WIFE": "wife",
    "DOMPART": "domestic partner",
    "SIGOTHR": "partner",
    "FMRSPS": "former spouse",
    "GRMTH": "grandmother",
    "GRFTH": "grandfather",
    "GRPRN": "grandparent",
    "GRNDCHILD": "grandchild",
    "GRNDDAU": "granddaughter",
    "GRNDSON": "grandson",
    "SIB": "sibling",
    "BRO": "brother",
    "SIS": "sister",
    "TWIN": "twin",
    "AUNT": "aunt",
    "UNCLE": "uncle",
    "NIECE": "niece",
    "NEPHEW": "nephew",
    "COUSN": "cousin",
    "FRND": "friend",
    "NBOR": "neighbour",
    "ROOM": "roommate",
    # v2-0131 contact roles
    "N": "next of kin",
    "C": "emergency contact",
    "E": "employer",
    "F": "federal agency",
    "I": "insurer",
    "S": "state agency",
    "U": "unknown",
    "BP": "billing contact",
    "EP": "employee",
    "PR": "person preparing referral",
    "CP": "contact person",
    "O": "other",
}
# How the patient relates to the related person: (for a female patient, male, anyone).
_PARENT: Final = ("daughter", "son", "child")
_CHILD: Final = ("mother", "father", "parent")
_INVERSE: Final[dict[str, tuple[str, str, str]]] = {
    **{
        code: _PARENT
        for code in ("MTH", "NMTH", "ADOPTMTH", "GESTM", "FTH", "NFTH", "ADOPTFTH", "PRN", "NPRN", "ADOPTP")
    },
    **{code: ("stepdaughter", "stepson", "stepchild") for code in ("STPMTH", "STPFTH", "STPPRN")},
    **{code: ("foster child", "foster child", "foster child") for code in ("FTHFOST", "MTHFOST")},
    **{code: ("ward", "ward", "ward") for code in ("GUARD", "GUADLTM")},
    **{code: _CHILD for code in ("CHILD", "NCHILD", "DAU", "DAUC", "SON", "SONC", "CHLDADOPT")},
    **{code: ("stepmother", "stepfather", "step-parent") for code in ("STPCHLD", "STPDAU", "STPSON")},
    **{code: ("foster parent", "foster parent", "foster parent") for code in ("CHLDFOST",)},
    "SPS": ("wife", "husband", "spouse"),
    "HUSB": ("wife", "husband", "spouse"),
    "WIFE": ("wife", "husband", "spouse"),
    "DOMPART": ("domestic partner", "domestic partner", "domestic partner"),
    "SIGOTHR": ("partner", "partner", "partner"),
    **{code: ("granddaughter", "grandson", "grandchild") for code in ("GRMTH", "GRFTH", "GRPRN")},
    **{code: ("grandmother", "grandfather", "grandparent") for code in ("GRNDCHILD", "GRNDDAU", "GRNDSON")},
    **{code: ("sister", "brother", "sibling") for code in ("SIB", "BRO", "SIS")},
    "TWIN": ("twin", "twin", "twin"),
    "ROOM": ("roommate", "roommate", "roommate"),
}
_KIND: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "MTH",
            "NMTH",
            "ADOPTMTH",
            "GESTM",
            "FTH",
            "NFTH",
            "ADOPTFTH",
            "PRN",
            "NPRN",
            "ADOPTP",
            "STPMTH",
            "STPFTH",
            "STPPRN",
            "FTHFOST",
            "MTHFOST",
            "GUARD",
            "GUADLTM",
            "GRMTH",
            "GRFTH",
            "GRPRN",
        ),
        "parent",
    ),
    **dict.fromkeys(
        (
            "CHILD",
            "NCHILD",
            "DAU",
            "DAUC",
            "SON",
            "SONC",
            "CHLDADOPT",
            "STPCHLD",
            "STPDAU",
            "STPSON",
            "CHLDFOST",
            "GRNDCHILD",
            "GRNDDAU",
            "GRNDSON",
        ),
        "child",
    ),
    **dict.fromkeys(("SPS", "HUSB", "WIFE", "DOMPART", "SIGOTHR"), "partner"),
}

_DATE_RE: Final = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


# --------------------------------------------------------------------------- small readers
def _obj(value: object) -> Json:
    return value if isinstance(value, Mapping) else {}


def _objs(value: object) -> list[Json]:
    if isinstance(value, Mapping):  # a single object where a list belongs: seen in the wild
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _text(value: object) -> str | None:
    if isinstance(value, str):
        value = " ".join(value.split())
        return value or None
    return None


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [t for t in (_text(v) for v in value) if t]


def _codes(concept: object) -> list[tuple[str | None, str]]:
    """(system, code) of every coding in a CodeableConcept (or a list of them)."""
    out: list[tuple[str | None, str]] = []
    for cc in _objs(concept):
        for coding in _objs(cc.get("coding")):
            code = _text(coding.get("code"))
            if code:
                out.append((_text(coding.get("system")), code))
    return out


def _concept_text(concept: object) -> str | None:
    for cc in _objs(concept):
        text = _text(cc.get("text"))
        if text:
            return text
        for coding in _objs(cc.get("coding")):
            display = _text(coding.get("display"))
            if display:
                return display
    return None


def parse_fhir_date(value: object) -> tuple[date, date] | None:
    """A FHIR date/dateTime as the first and last day it may mean ("2014" → 2014-01-01 … 2014-12-31)."""
    if not isinstance(value, str):
        return None
    m = _DATE_RE.match(value.strip())
    if not m:
        return None
    try:
        year = int(m.group(1))
        if m.group(3):
            d = date(year, int(m.group(2)), int(m.group(3)))
            return d, d
        if m.group(2):
            month = int(m.group(2))
            start = date(year, month, 1)
            nxt = date(year + (month == 12), month % 12 + 1, 1)
            return start, date.fromordinal(nxt.toordinal() - 1)
        return date(year, 1, 1), date(year, 12, 31)
    except ValueError:
        return None


def _full_date(value: object) -> date | None:
    """Only a complete date: a DOB of "1974" is not shown as 01/01/1974."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}", value.strip()):
        return None
    span = parse_fhir_date(value)
    return span[0] if span else None


def _period_state(period: object, today: date) -> tuple[bool, bool]:
    """(ended, not yet started) of a Period, reading partial dates generously."""
    p = _obj(period)
    end = parse_fhir_date(p.get("end"))
    start = parse_fhir_date(p.get("start"))
    ended = end is not None and end[1] < today
    future = start is not None and start[0] > today
    return ended, future


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


# --------------------------------------------------------------------------- patients
def _pick_name(names: list[Json], today: date) -> Json | None:
    """Official, else usual, else the first; names whose period ended come last."""
    if not names:
        return None

    def score(item: tuple[int, Json]) -> tuple[int, int, int]:
        i, n = item
        use = n.get("use")
        ended, _ = _period_state(n.get("period"), today)
        rank = 0 if use == "official" else 1 if use == "usual" else 3 if use in ("old", "maiden") else 2
        return (int(ended), rank, i)

    return min(enumerate(names), key=score)[1]


def _name_parts(name: Json | None) -> tuple[str | None, str | None, str | None]:
    """(given, family, display) of one HumanName."""
    if name is None:
        return None, None, None
    given_list = _texts(name.get("given"))
    given = " ".join(given_list) or None
    family = _text(name.get("family")) or (" ".join(_texts(name.get("family"))) or None)  # DSTU2 used a list
    text = _text(name.get("text"))
    if given or family:
        display = " ".join(p for p in (given, family) if p)
    else:
        display = text
    return given, family, display


def _region_hint(resource: Json, default: str) -> str:
    for addr in _objs(resource.get("address")):
        country = _text(addr.get("country"))
        if country:
            c = country.upper()
            if len(c) == 2 and c.isalpha():
                return c
            if c in _ALPHA3:
                return _ALPHA3[c]
            if c in ("UNITED STATES", "UNITED STATES OF AMERICA", "U.S.", "U.S.A."):
                return "US"
    return default


def _impossible_nanp(number: PhoneNumber) -> bool:
    """A "+1" number that cannot be dialled from elsewhere: 7-digit local numbers (no area code), and
    area codes starting with 0 or 1 (a foreign number stored without its country code)."""
    return number.e164.startswith("+1") and (
        len(number.national_digits) != 10 or number.national_digits[:1] in ("0", "1")
    )


def patient_phones(resource: Json, *, today: date, region: str = DEFAULT_REGION) -> tuple[PatientPhone, ...]:
    """The resource's phone numbers (system phone/sms, or no system), parsed; unparseable ones skipped."""
    out: list[PatientPhone] = []
    for cp in _objs(resource.get("telecom")):
        system = cp.get("system")
        if system not in (None, "phone", "sms"):
            continue
        value = cp.get("value")
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            continue
        number = try_parse_phone(value, region)
        if not isinstance(number, PhoneNumber) or _impossible_nanp(number):
            continue
        use = PhoneUse.parse(cp.get("use"))
        if system == "sms" and use is PhoneUse.OTHER:
            use = PhoneUse.MOBILE
        ended, future = _period_state(cp.get("period"), today)
        rank = cp.get("rank")
        rank = rank if isinstance(rank, int) and not isinstance(rank, bool) and 0 < rank < 2**31 else None
        out.append(
            PatientPhone(number=number, use=use, rank=rank, current=not (use is PhoneUse.OLD or ended or future))
        )
    return tuple(out)


def _is_government_id(ident: Json) -> bool:
    system = _text(ident.get("system")) or ""
    codes = {code for _, code in _codes(ident.get("type"))}
    return bool(codes & _GOVERNMENT_ID_TYPES) or any(system.startswith(s) for s in _GOVERNMENT_ID_SYSTEMS)


def _mrn(resource: Json, today: date) -> str | None:
    """The MR-typed identifier (current before old), else the first one that is not a government id.

    Never an SSN, driver's licence or passport number: those are not record numbers
    and must not be shown where an MRN is expected.
    """
    idents = [i for i in _objs(resource.get("identifier")) if _text(i.get("value")) and not _is_government_id(i)]
    if not idents:
        return None

    def score(item: tuple[int, Json]) -> tuple[int, int, int]:
        i, ident = item
        is_mr = any(code == "MR" and system in (None, V2_0203) for system, code in _codes(ident.get("type")))
        ended, _ = _period_state(ident.get("period"), today)
        stale = ident.get("use") == "old" or ended
        return (0 if is_mr else 1, int(stale), i)

    return _text(min(enumerate(idents), key=score)[1].get("value"))


def _address(resource: Json, today: date) -> Address | None:
    addrs = _objs(resource.get("address"))
    if not addrs:
        return None

    def score(item: tuple[int, Json]) -> tuple[int, int, int]:
        i, a = item
        ended, _ = _period_state(a.get("period"), today)
        use = a.get("use")
        return (int(ended or use == "old"), 0 if use == "home" else 1, i)

    a = min(enumerate(addrs), key=score)[1]
    lines = tuple(_texts(a.get("line")))
    city, state, postal = _text(a.get("city")), _text(a.get("state")), _text(a.get("postalCode"))
    if not (lines or city or state or postal):
        text = _text(a.get("text"))
        if not text:
            return None
        lines = (text,)
    return Address(line=lines, city=city, state=state, postal_code=postal)


def _restricted(resource: Json) -> str | None:
    meta = _obj(resource.get("meta"))
    for label in _objs(meta.get("security")):
        code = _text(label.get("code"))
        system = _text(label.get("system"))
        if code in _RESTRICTED and (system is None or system in CONFIDENTIALITY_SYSTEMS):
            return _RESTRICTED[code]
    return None


def _deceased(resource: Json) -> bool:
    if resource.get("deceasedBoolean") is True:
        return True
    return isinstance(resource.get("deceasedDateTime"), str) and bool(resource["deceasedDateTime"].strip())


def patient_summary(resource: object, *, today: date | None = None, region: str = DEFAULT_REGION) -> PatientSummary:
    """The card/chooser view of a FHIR Patient. Never raises on dict-shaped input.

    ``today`` decides which telecoms are current (default: the local date);
    ``region`` is how numbers without a country code are read, unless the
    address names a country.
    """
    r = _obj(resource)
    today = today or date.today()
    rid = r.get("id")
    rid = rid if isinstance(rid, str) else ""
    try:
        given, family, display = _name_parts(_pick_name(_objs(r.get("name")), today))
        gender = r.get("gender")
        return PatientSummary(
            id=rid,
            mrn=_mrn(r, today),
            given=given,
            family=family,
            display_name=display or "(no name)",
            birth_date=_full_date(r.get("birthDate")),
            sex=gender if isinstance(gender, str) and gender else None,
            phones=patient_phones(r, today=today, region=_region_hint(r, region)),
            address=_address(r, today),
            active=r.get("active") is not False,
            deceased=_deceased(r),
            restricted_reason=_restricted(r),
        )
    except Exception:  # a defect here must not lose the caller: show what is certain
        return PatientSummary(id=rid)


# --------------------------------------------------------------------------- related persons
class RelatedPersonView(BaseModel):
    """A RelatedPerson, reduced to what household labelling needs."""

    model_config = ConfigDict(frozen=True)

    id: str
    patient_id: str | None = None  # the Patient this person is related to
    codes: tuple[str, ...] = ()  # relationship codes (v3-RoleCode, v2-0131)
    relationship: str | None = None  # label of this person, e.g. "mother"
    given: str | None = None
    family: str | None = None
    birth_date: date | None = None
    phones: tuple[PatientPhone, ...] = ()
    active: bool = True


def _reference_id(ref: object, resource_type: str) -> str | None:
    text = _text(_obj(ref).get("reference"))
    if not text:
        return None
    parts = text.split("/")
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    if len(parts) >= 4 and parts[-3] == "_history" and parts[-4] == resource_type:
        return parts[-2]
    return None


def relationship_label(codes: Sequence[str], text: str | None = None) -> str | None:
    """ "mother", "husband", "next of kin"…: family relationships before contact roles, then the text."""
    family = [c for c in codes if c in _INVERSE or c in _KIND]
    for code in [*family, *codes]:
        if code in _ROLE_LABELS:
            return _ROLE_LABELS[code]
    return text.lower() if text else None


def inverse_relationship(codes: Sequence[str], patient_sex: str | None) -> str | None:
    """How the patient relates to the related person: a mother's child is "daughter"/"son"/"child"."""
    for code in codes:
        labels = _INVERSE.get(code)
        if labels:
            return labels[0] if patient_sex == "female" else labels[1] if patient_sex == "male" else labels[2]
    return None


def relationship_kind(codes: Sequence[str]) -> str:
    """parent | child | partner | other: what the related person is to the patient."""
    for code in codes:
        if code in _KIND:
            return _KIND[code]
    return "other"


def related_person(resource: object, *, today: date | None = None) -> RelatedPersonView:
    """The household view of a RelatedPerson. Never raises on dict-shaped input."""
    r = _obj(resource)
    today = today or date.today()
    rid = r.get("id")
    rid = rid if isinstance(rid, str) else ""
    try:
        codes = tuple(code for _, code in _codes(r.get("relationship")))
        given, family, _ = _name_parts(_pick_name(_objs(r.get("name")), today))
        return RelatedPersonView(
            id=rid,
            patient_id=_reference_id(r.get("patient"), "Patient"),
            codes=codes,
            relationship=relationship_label(codes, _concept_text(r.get("relationship"))),
            given=given,
            family=family,
            birth_date=_full_date(r.get("birthDate")),
            phones=patient_phones(r, today=today, region=_region_hint(r, DEFAULT_REGION)),
            active=r.get("active") is not False,
        )
    except Exception:
        return RelatedPersonView(id=rid)


def linked_related_person_ids(patient: object) -> tuple[str, ...]:
    """Ids of the RelatedPersons a Patient says it also is (``Patient.link`` to RelatedPerson)."""
    out = []
    for link in _objs(_obj(patient).get("link")):
        rid = _reference_id(link.get("other"), "RelatedPerson")
        if rid:
            out.append(rid)
    return tuple(out)


# --------------------------------------------------------------------------- bundles and outcomes
class BundlePage(BaseModel):
    """One page of a searchset Bundle, split by ``search.mode``."""

    model_config = ConfigDict(frozen=True)

    matches: tuple[dict[str, Any], ...] = ()
    included: tuple[dict[str, Any], ...] = ()
    outcomes: tuple[dict[str, Any], ...] = ()
    total: int | None = None
    next_url: str | None = None


def bundle_page(bundle: object) -> BundlePage:
    """Split a Bundle's entries: matches, includes and OperationOutcomes. Never raises."""
    b = _obj(bundle)
    matches: list[dict[str, Any]] = []
    included: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    for entry in _objs(b.get("entry")):
        res = entry.get("resource")
        if not isinstance(res, dict):
            continue
        mode = _obj(entry.get("search")).get("mode")
        if mode == "outcome" or (mode is None and res.get("resourceType") == "OperationOutcome"):
            outcomes.append(res)
        elif mode == "include":
            included.append(res)
        else:
            matches.append(res)
    total = b.get("total")
    total = total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None
    next_url = None
    for link in _objs(b.get("link")):
        if link.get("relation") == "next" and _text(link.get("url")):
            next_url = _text(link.get("url"))
            break
    return BundlePage(
        matches=tuple(matches), included=tuple(included), outcomes=tuple(outcomes), total=total, next_url=next_url
    )


_SCRUB_RE: Final = re.compile(r"\d[\d\s().+\-/]{2,}\d|[^\s@]+@[^\s@]+")


def scrub(text: str, limit: int = 200) -> str:
    """Remove what may be PHI from a server's message: runs of digits (numbers, dates, MRNs) and e-mails."""
    text = _SCRUB_RE.sub("…", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def operation_outcome_message(outcome: object, *, severities: Iterable[str] = ("fatal", "error")) -> str | None:
    """One readable line from an OperationOutcome's issues of the given severities, PHI-scrubbed.

    Servers often echo the searched value in ``diagnostics``; digits and e-mail
    addresses are masked, so the line is safe for a banner and a log.
    """
    wanted = set(severities)
    parts: list[str] = []
    for issue in _objs(_obj(outcome).get("issue")):
        if issue.get("severity") not in wanted:
            continue
        text = _concept_text(issue.get("details")) or _text(issue.get("diagnostics"))
        code = _text(issue.get("code"))
        if text:
            parts.append(scrub(text))
        elif code:
            parts.append(code.replace("-", " "))
    if not parts:
        return None
    return "; ".join(dict.fromkeys(parts))


def is_outcome(resource: object) -> bool:
    return _obj(resource).get("resourceType") == "OperationOutcome"


def last_updated(resource: object) -> datetime | None:
    return _instant(_obj(_obj(resource).get("meta")).get("lastUpdated"))
