"""The EHR protocol over FHIR R4: identify callers, read the record, write notes back.

Identifying a caller: ``find_by_phone`` asks the server for the caller's number
(``phone`` or ``telecom``, as the vendor profile and the server's
CapabilityStatement say), then keeps only patients whose stored telecom *really*
is the caller's number after normalisation — servers match loosely (partial
digits, ignored country codes) or strictly (exact strings), and a wrong card
popped for a caller is worse than none. Where the EHR does not search by phone
(Epic, athenahealth) the match says ``phone_search_supported=False`` and the
console opens the identification form, answered by :meth:`FhirEhr.search_identify`
with the vendor's minimum search set.

Several patients sharing a current number are a household: they carry
``household_id`` (the E.164) and their ``relationship`` to the number's owner,
read from RelatedPerson resources and Account guarantors. ``Patient.link`` is not
family: a ``replaced-by`` link is followed to the surviving record instead (merged
duplicates appear once). Restricted records (confidentiality R/V) and minors
under ``minor_age`` carry a ``restricted_reason`` so the console masks them.

The record: :meth:`FhirEhr.load_section` returns domain views for each
:class:`~pa_tui.domain.records.Section`; each section loads on its own (its own
searches, its own time limit), so one that fails or times out raises its own
error and the others still render. FHIR JSON never leaves this package.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
import re
import string
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final
from urllib.parse import quote

from pa_tui.backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    NotFound,
    NotSupported,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from pa_tui.backends.fhir.client import FhirClient, TooManyMatches
from pa_tui.backends.fhir.parse import (
    RelatedPersonView,
    inverse_relationship,
    linked_related_person_ids,
    patient_summary,
    related_person,
    relationship_kind,
)
from pa_tui.backends.fhir.profiles import VendorProfile
from pa_tui.backends.fhir.sections import (
    NOTE_IDENTIFIER_SYSTEM,
    RecordSummary,
    appointment_view,
    billing,
    care_team_members,
    clinical_note,
    guarantor_references,
    is_referral,
    note_identifier,
    prescription_view,
    reference_key,
    references_to_resolve,
    referral_view,
    replaced_by,
    replaces,
)
from pa_tui.domain.notes import Note
from pa_tui.domain.patients import CallerMatch, MatchSource, PatientPhone, PatientSummary, PhoneUse
from pa_tui.domain.phones import NoCallerId, PhoneNumber, PhoneNumberError, parse_phone, same_number
from pa_tui.domain.records import (
    Appointment,
    Billing,
    CareTeamMember,
    Money,
    Section,
    SectionUnavailable,
)

__all__ = ["NOTE_TYPE", "PHONE_FORMATS", "FhirEhr", "RecordSummary", "classify_query"]

log = logging.getLogger("pa_tui.backends.fhir")

#: How a number can be written in a phone search, by profile key.
PHONE_FORMATS: Final[dict[str, Callable[[PhoneNumber], str]]] = {
    "national_digits": lambda n: n.national_digits,
    "e164": lambda n: n.e164,
    "national_dashed": lambda n: (
        f"{n.national_digits[:3]}-{n.national_digits[3:6]}-{n.national_digits[6:]}"
        if len(n.national_digits) == 10
        else n.national_digits
    ),
    "national_parens": lambda n: (
        f"({n.national_digits[:3]}) {n.national_digits[3:6]}-{n.national_digits[6:]}"
        if len(n.national_digits) == 10
        else n.national_digits
    ),
}

SEARCH_LIMIT: Final = 50  # results a free-text search returns at most
_MAX_PHONE_CANDIDATES: Final = 100

_DATE_PATTERNS: Final = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"), ("m", "d", "y")),
    (re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$"), ("m", "d", "y")),
    (re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$"), ("m", "d", "y")),
)
_NAME_WORD_RE: Final = re.compile(r"^[^\W\d_][\w'’.\-]*$", re.UNICODE)
_PHONE_CHARS_RE: Final = re.compile(r"^[\s\d+().\-]+$")


def _as_date(text: str) -> date | None:
    for pattern, order in _DATE_PATTERNS:
        m = pattern.match(text)
        if m:
            parts = dict(zip(order, (int(g) for g in m.groups()), strict=True))
            try:
                return date(parts["y"], parts["m"], parts["d"])
            except ValueError:
                return None
    return None


def classify_query(query: str) -> tuple[str, Any]:
    """What an agent typed: ("phone", PhoneNumber) | ("date", date) | ("id", token) |
    ("name", (words, date | None)) | ("empty", None) | ("unknown", None)."""
    q = " ".join(query.split())
    if not q:
        return "empty", None
    whole_date = _as_date(q)
    if whole_date:
        return "date", whole_date
    digits = sum(c.isdigit() for c in q)
    if _PHONE_CHARS_RE.match(q) and (digits >= 10 or (q.startswith("+") and digits >= 8)):
        try:
            number = parse_phone(q)
        except PhoneNumberError:
            number = None
        if isinstance(number, PhoneNumber):
            return "phone", number
    tokens = q.split(" ")
    if len(tokens) == 1 and digits and re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", q):
        return "id", q
    dob = None
    words: list[str] = []
    for tok in tokens:
        d = _as_date(tok)
        if d and dob is None:
            dob = d
        elif _NAME_WORD_RE.match(tok.strip(",")) or tok == ",":
            words.append(tok)
        else:
            return "unknown", None
    text = " ".join(words).strip(" ,")
    if text:
        return "name", (text, dob)
    return ("date", dob) if dob else ("unknown", None)


#: LOINC 34109-9 "Note": the DocumentReference.type pa-tui writes unless configured otherwise.
NOTE_TYPE: Final = ("http://loinc.org", "34109-9", "Note")
US_CORE_DOC_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
_CHART_FIELDS: Final = frozenset({"patient_id", "mrn", "fhir_id"})
_UNSAFE_SCHEMES: Final = frozenset({"javascript", "data", "file", "vbscript", "about", "blob"})
_PID_RE: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_GENDERS: Final = {
    "male": "male",
    "m": "male",
    "female": "female",
    "f": "female",
    "other": "other",
    "x": "other",
    "unknown": "unknown",
    "u": "unknown",
}
_CLOSED_APPOINTMENT: Final = frozenset({"cancelled", "noshow", "entered-in-error", "fulfilled", "checked-in"})
_GONE: Final = frozenset({"entered-in-error"})


class _NotOffered(Exception):
    """A record search answered 404: the server does not serve that resource type."""

    def __init__(self, resource_type: str, error: NotFound) -> None:
        super().__init__(resource_type)
        self.resource_type = resource_type
        self.error = error


class FhirEhr:
    """The console's EHR (see :class:`pa_tui.backends.base.EHR`) on a :class:`FhirClient`.

    Cheap to call concurrently: every call shares the client's connection pool and
    token; the only state is a small cache of referenced resources (practitioners,
    locations, organizations…) and the latest appointments and billing per patient
    for the Summary tab. No locks.
    """

    def __init__(
        self,
        client: FhirClient,
        *,
        today: date | Callable[[], date] | None = None,
        region: str = "US",
        minor_age: int | None = 18,
        chart_url_template: str | None = None,
        note_type: tuple[str, str, str] = NOTE_TYPE,
        section_timeout: float | None = 20.0,
        reference_cache_size: int = 512,
        reference_ttl: float = 600.0,
        summary_ttl: float = 60.0,
        recent_claims: int = 10,
    ) -> None:
        self.client = client
        self._today = today
        self.region = region
        self.minor_age = minor_age
        self.chart_url_template = _check_chart_template(chart_url_template) if chart_url_template else None
        self.note_type = note_type
        self.section_timeout = section_timeout
        self.recent_claims = recent_claims
        self._ref_cache: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._ref_cache_size = max(0, reference_cache_size)
        self._ref_ttl = reference_ttl
        self._memo: OrderedDict[tuple[str, Section], tuple[float, object]] = OrderedDict()
        self._summary_ttl = summary_ttl

    @property
    def profile(self) -> VendorProfile:
        """What this EHR allows (the client's vendor profile)."""
        return self.client.profile

    def today(self) -> date:
        if callable(self._today):
            return self._today()
        return self._today or date.today()

    def now(self) -> datetime:
        """The moment "upcoming" is reckoned from: now, on :meth:`today` (a demo's simulated day)."""
        real = datetime.now(UTC)
        today = self.today()
        return real if today == real.date() else datetime.combine(today, real.timetz())

    # ---------------------------------------------------------------- patients as the console sees them
    def _summary(self, resource: object, today: date | None = None) -> PatientSummary:
        today = today or self.today()
        s = patient_summary(resource, today=today, region=self.region)
        return self._mark(s, today)

    def _mark(self, s: PatientSummary, today: date) -> PatientSummary:
        """Minors under ``minor_age`` are restricted ("minor") unless a confidentiality label already is."""
        if s.restricted_reason is None and self.minor_age is not None:
            age = s.age(today)
            if age is not None and age < self.minor_age:
                return s.model_copy(update={"restricted_reason": "minor"})
        return s

    async def _survivors(self, resources: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The resources with merged-away records replaced by their surviving record (``replaced-by``
        followed, at most three hops), each patient once. ``Patient.link`` is never read as family."""
        by_id: dict[str, dict[str, Any]] = {}
        for r in resources:
            rid = r.get("id")
            if isinstance(rid, str) and rid:
                by_id.setdefault(rid, r)
        superseded = {old for r in by_id.values() for old in replaces(r) if old != r.get("id")}
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for rid, r in list(by_id.items()):
            current = r
            hops = 0
            while hops < 3:
                nxt = replaced_by(current)
                if not nxt or nxt == current.get("id"):
                    break
                if nxt not in by_id:
                    try:
                        by_id[nxt] = await self.client.read("Patient", nxt)
                    except (NotFound, BadRequest, PermissionDenied):
                        log.info("FHIR Patient replaced by a record that cannot be read; keeping the old one")
                        break
                current = by_id[nxt]
                hops += 1
            cid = current.get("id")
            if current is r and rid in superseded:
                continue  # its survivor is in the results too
            if isinstance(cid, str) and cid not in seen:
                seen.add(cid)
                out.append(current)
        return out

    # ---------------------------------------------------------------- caller identification
    async def find_by_phone(self, number: PhoneNumber | NoCallerId) -> CallerMatch:
        """Patients whose stored telecom really is ``number``, best first."""
        if not isinstance(number, PhoneNumber):
            return CallerMatch(source=MatchSource.PHONE_SEARCH)
        raw, supported = await self._phone_search(number)
        if not supported:
            return CallerMatch(source=MatchSource.PHONE_SEARCH, phone_search_supported=False)
        today = self.today()
        by_id: dict[str, tuple[PatientSummary, dict[str, Any]]] = {}
        for res in raw:
            summary = patient_summary(res, today=today, region=self.region)
            if summary.id and summary.id not in by_id:
                by_id[summary.id] = (summary, res)
        matched = [(s, r) for s, r in by_id.values() if any(same_number(p.number, number) for p in s.phones)]
        if len(matched) < len(by_id):
            log.info(
                "FHIR phone search: %d of %d returned patients do not hold the number; dropped",
                len(by_id) - len(matched),
                len(by_id),
            )
        survivors = await self._survivors([r for _, r in matched])
        matched = [(self._summary(r, today), r) for r in survivors]
        matched.sort(key=lambda item: _match_rank(item[0], number))
        candidates = [s for s, _ in matched]
        holders = {s.id for s in candidates if _tier(s, number) < 2}
        if len(holders) >= 2:
            labels = await self._household_labels(number, [(s, r) for s, r in matched if s.id in holders], today)
            candidates = [
                s.model_copy(update={"household_id": number.e164, "relationship": labels.get(s.id)})
                if s.id in holders
                else s
                for s in candidates
            ]
        log.debug("FHIR phone match: %d candidate(s), %d sharing the number", len(candidates), len(holders))
        return CallerMatch(candidates=tuple(candidates), source=MatchSource.PHONE_SEARCH)

    async def _phone_params(self) -> list[str] | None:
        """The Patient search parameters to try for a number, in order; None: no phone search here."""
        profile = self.profile
        if profile.phone_param is None:
            return None
        if profile.phone_from_capabilities:
            advertised = await self.client.search_params("Patient")
            if advertised is not None:
                if "phone" in advertised:
                    return ["phone"]
                if "telecom" in advertised:
                    return ["telecom"]
                log.warning("FHIR server advertises no phone or telecom search on Patient")
                return None
        return [profile.phone_param] + ([profile.phone_fallback_param] if profile.phone_fallback_param else [])

    async def _phone_search(self, number: PhoneNumber) -> tuple[list[dict[str, Any]], bool]:
        """Every Patient the server returns for the number, trying the profile's forms and parameters."""
        params = await self._phone_params()
        if params is None:
            log.info("FHIR: %s does not search patients by phone; identify the caller with the form", self.profile.display)
            return [], False
        found: list[dict[str, Any]] = []
        for fmt in self.profile.phone_formats:
            value = PHONE_FORMATS[fmt](number)
            for i, param in enumerate(params):
                query = [(param, value if param != "telecom" else f"phone|{value}")]
                try:
                    result = await self.client.search("Patient", query, max_pages=2, count=_MAX_PHONE_CANDIDATES // 2)
                except NotSupported:
                    log.info("FHIR: %s does not allow a phone-only patient search", self.profile.display)
                    return [], False
                except TooManyMatches:
                    log.info("FHIR phone search matched too many patients; identify the caller with the form")
                    return [], True
                except BadRequest:
                    if i + 1 < len(params):
                        log.info("FHIR server refused the '%s' search; trying '%s'", param, params[i + 1])
                        continue
                    log.warning("FHIR server supports no phone search; callers cannot be identified by number")
                    return [], False
                found.extend(result.resources)
                params = [param]  # this parameter works: use it for the other formats too
                break
        return found, True

    async def search_identify(
        self,
        given: str,
        family: str,
        birthdate: date | None,
        gender: str | None = None,
        phone: PhoneNumber | str | None = None,
    ) -> CallerMatch:
        """The identification form: a Patient search built from the vendor's minimum set.

        With a date of birth: given + family + birthdate (+ gender). Without one: given +
        family + gender + phone, where the vendor searches by phone. A phone number also
        ranks the patients holding it first. Raises :class:`BadRequest` when the form does
        not hold enough for this EHR (the fix names what it needs).
        """
        given_words = (given or "").split()
        family = " ".join((family or "").split())
        if not given_words or not family:
            raise BadRequest("First and last name are needed to identify the caller", self._needs())
        sex = _GENDERS.get((gender or "").strip().lower()) if gender else None
        if gender and sex is None:
            raise BadRequest("Legal sex must be male, female, other or unknown", self._needs())
        number: PhoneNumber | None = None
        if isinstance(phone, PhoneNumber):
            number = phone
        elif isinstance(phone, str) and phone.strip():
            try:
                parsed = parse_phone(phone, self.region)
            except PhoneNumberError:
                raise BadRequest("The phone number on the form is not a phone number", "Check the number") from None
            number = parsed if isinstance(parsed, PhoneNumber) else None
        params: list[tuple[str, str]] = [("given", given_words[0]), ("family", family)]
        if birthdate is not None:
            params.append(("birthdate", birthdate.isoformat()))
        if sex:
            params.append(("gender", sex))
        if birthdate is None and number is not None:
            phone_params = await self._phone_params()
            if phone_params:
                value = PHONE_FORMATS[self.profile.phone_formats[0]](number)
                param = phone_params[0]
                params.append((param, value if param != "telecom" else f"phone|{value}"))
        if birthdate is None and not any(k in ("phone", "telecom") for k, _ in params):
            raise BadRequest("A date of birth (or legal sex and phone) is needed to identify the caller", self._needs())
        try:
            self.profile.check_patient_search(k for k, _ in params)
        except NotSupported:
            raise BadRequest(
                f"Not enough to identify the caller in {self.profile.display}", self._needs()
            ) from None
        result = await self.client.search("Patient", params, max_pages=1, count=SEARCH_LIMIT)
        today = self.today()
        survivors = await self._survivors(result.resources)
        found = [self._summary(r, today) for r in survivors]
        if number is not None:
            found.sort(key=lambda s: (_tier(s, number), *_name_key(s)))
        else:
            found = self._sorted(found)
        return CallerMatch(candidates=tuple(found[:SEARCH_LIMIT]), source=MatchSource.SEARCH)

    def _needs(self) -> str:
        profile = self.profile
        if profile.patient_minimum_sets:
            return f"{profile.display} needs {profile.minimum_sets_text()}"
        return "Enter first name, last name and date of birth (or legal sex and phone)"

    async def _household_labels(
        self, number: PhoneNumber, members: list[tuple[PatientSummary, dict[str, Any]]], today: date
    ) -> dict[str, str]:
        """Each member's relationship to the number's owner, from RelatedPerson where the EHR has them;
        the owner is the guarantor of the others' Accounts where the EHR says so."""
        ids = [s.id for s, _ in members]
        related_search = self.client.search("RelatedPerson", [("patient", ",".join(ids))], max_pages=3, count=100)
        searches: list[Awaitable[Any]] = [related_search]
        if self.profile.billing:
            searches.append(self.client.search("Account", [("patient", ",".join(ids))], max_pages=2, count=100))
        results = await asyncio.gather(*searches, return_exceptions=True)
        related, accounts = results[0], (results[1] if len(results) > 1 else None)
        views: list[RelatedPersonView] = []
        if isinstance(related, BaseException):
            if not isinstance(related, BackendError):
                raise related
            # relationships are a nicety: the household still pops without them
            log.info("FHIR RelatedPerson search failed (%s); household shown without relationships", type(related).__name__)
        else:
            views = [related_person(r, today=today) for r in related.resources]
        if isinstance(accounts, BaseException):
            if not isinstance(accounts, BackendError):
                raise accounts
            log.info("FHIR Account search for the household failed (%s)", type(accounts).__name__)
            accounts = None
        summaries = {s.id: s for s, _ in members}
        person_of = {rp: s.id for s, res in members for rp in linked_related_person_ids(res)}
        views_by_id = {v.id: v for v in views}
        # edges[(a, b)] = what b is to a, e.g. ("pt-1", "pt-2") -> ("parent", "mother")
        edges: dict[tuple[str, str], tuple[str, str | None]] = {}
        for view in views:
            subject = view.patient_id
            if subject not in summaries or not view.active:
                continue
            person = person_of.get(view.id) or _identify(view, summaries, exclude=subject, number=number)
            if person is None or person == subject:
                continue
            kind = relationship_kind(view.codes)
            edges.setdefault((subject, person), (kind, view.relationship))
            inverse_kind = {"parent": "child", "child": "parent"}.get(kind, kind)
            edges.setdefault(
                (person, subject), (inverse_kind, inverse_relationship(view.codes, summaries[subject].sex))
            )
        # guarantors[g] = members whose account g guarantees
        guarantors: dict[str, set[str]] = {}
        for acc in accounts.resources if accounts is not None else []:
            if acc.get("status") in ("entered-in-error", "inactive"):
                continue
            subjects = {
                k.split("/", 1)[1]
                for k in (reference_key(s) for s in acc.get("subject") or [] if isinstance(s, dict))
                if k and k.startswith("Patient/")
            }
            for key in guarantor_references(acc, today=today):
                kind_, _, gid = key.partition("/")
                member = gid if kind_ == "Patient" else None
                if kind_ == "RelatedPerson":
                    member = person_of.get(gid)
                    if member is None and gid in views_by_id:
                        view = views_by_id[gid]
                        member = _identify(view, summaries, exclude=view.patient_id or "", number=number)
                if member in summaries:
                    guarantors.setdefault(member, set()).update(subjects & set(summaries) - {member})
        payers = {g: deps for g, deps in guarantors.items() if deps}
        if not edges and not payers:
            return {}
        owner = None
        if payers:
            owner = max(payers, key=lambda g: (len(payers[g]), -ids.index(g)))
        owner = owner or _owner(members, number, edges, today)
        labels: dict[str, str] = {}
        for s, _ in members:
            if s.id == owner:
                continue
            edge = edges.get((owner, s.id))
            if edge and edge[1]:
                labels[s.id] = edge[1]
        return labels

    # ---------------------------------------------------------------- reading and searching
    async def patient(self, patient_id: str) -> PatientSummary:
        """The patient, or the record that replaced it when it was merged away."""
        resource = await self.client.read("Patient", patient_id)
        survivors = await self._survivors([resource])
        return self._summary(survivors[0] if survivors else resource)

    async def search(self, query: str) -> list[PatientSummary]:
        """Free text as an agent types it: a phone number, a date of birth, an MRN or id, or a name.

        Searches the vendor does not allow are not sent: :class:`NotSupported` says what it needs.
        """
        kind, value = classify_query(query)
        if kind == "empty":
            return []
        if kind == "unknown":
            raise BadRequest(
                "Cannot tell what to search for",
                'Type a name ("Garcia, Maria"), a phone number, a date of birth (MM/DD/YYYY) or an MRN',
            )
        if kind == "phone":
            match = await self.find_by_phone(value)
            if not match.phone_search_supported:
                raise NotSupported(
                    f"{self.profile.display} cannot search patients by phone number",
                    "Search by name and date of birth, or by MRN",
                )
            if match.candidates:
                return list(match.candidates)
            return await self._by_identifier(value.national_digits)
        if kind == "date":
            return self._sorted(await self._search_allowed([[("birthdate", value.isoformat())]]))
        if kind == "id":
            return await self._by_identifier(value)
        text, dob = value
        extra = [("birthdate", dob.isoformat())] if dob else []
        if "," in text:
            family, _, given = text.partition(",")
            attempts = [[("family", family.strip())] + ([("given", given.split()[0])] if given.split() else [])]
        else:
            words = text.split()
            if len(words) == 1:
                attempts = [[("name", words[0])], [("family", words[0])]]
            else:
                attempts = [
                    [("given", words[0]), ("family", " ".join(words[1:]))],
                    [("family", words[0]), ("given", words[-1])],
                    [("family", " ".join(words))],
                ]
        return self._sorted(await self._search_allowed([a + extra for a in attempts]))

    async def _search_allowed(self, attempts: list[list[tuple[str, str]]]) -> list[PatientSummary]:
        """The first attempt the vendor allows that finds someone."""
        allowed = [a for a in attempts if self.profile.patient_search_allowed(k for k, _ in a)]
        if not allowed:
            raise NotSupported(f"{self.profile.display} does not allow this patient search", self._needs())
        for params in allowed:
            found = await self._search(params)
            if found:
                return found
        return []

    async def _by_identifier(self, token: str) -> list[PatientSummary]:
        ident = f"{self.profile.identifier_type}|{token}" if self.profile.identifier_type else token
        searches = [self._search([("identifier", ident)])]
        if re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", token):
            searches.append(self._search([("_id", token)]))
        results = await asyncio.gather(*searches, return_exceptions=True)
        out: dict[str, PatientSummary] = {}
        for r in results:
            if isinstance(r, (BadRequest, NotSupported)) and not isinstance(r, TooManyMatches):
                continue
            if isinstance(r, BaseException):
                raise r
            for s in r:
                out.setdefault(s.id, s)
        return self._sorted(list(out.values()))

    async def _search(self, params: list[tuple[str, str]]) -> list[PatientSummary]:
        result = await self.client.search("Patient", params, max_pages=1, count=SEARCH_LIMIT)
        today = self.today()
        survivors = await self._survivors(result.resources)
        return [self._summary(r, today) for r in survivors]

    @staticmethod
    def _sorted(items: list[PatientSummary]) -> list[PatientSummary]:
        return sorted(items, key=_name_key)[:SEARCH_LIMIT]

    # ---------------------------------------------------------------- the record
    async def load_section(self, patient_id: str, section: Section | str) -> object:
        """The section's domain view: a tuple of views, a :class:`Billing`, a :class:`RecordSummary`
        (Summary), or :class:`SectionUnavailable` when this EHR does not expose it.

        Each call stands alone and is bounded by ``section_timeout``: a section that times
        out raises :class:`Unavailable` naming itself, and the others are unaffected.
        """
        section = Section(section)
        if not isinstance(patient_id, str) or not _PID_RE.match(patient_id):
            raise BadRequest("not a valid patient id", "FHIR ids are 1–64 letters, digits, '-' or '.'")
        loaders: dict[Section, Callable[[str], Awaitable[object]]] = {
            Section.SUMMARY: self._load_summary,
            Section.APPOINTMENTS: self._load_appointments,
            Section.REFERRALS: self._load_referrals,
            Section.BILLING: self._load_billing,
            Section.PRESCRIPTIONS: self._load_prescriptions,
            Section.CARE_TEAM: self._load_care_team,
            Section.NOTES: self._load_notes,
        }
        started = time.monotonic()
        try:
            if self.section_timeout is None:
                result = await loaders[section](patient_id)
            else:
                result = await asyncio.wait_for(loaders[section](patient_id), self.section_timeout)
        except _NotOffered as exc:
            log.info("FHIR %s section: the server does not offer %s", section.value, exc.resource_type)
            return SectionUnavailable(
                section=section, reason=f"not available from this EHR ({exc.resource_type} is not offered over FHIR)"
            )
        except TimeoutError:
            log.warning("FHIR %s section timed out after %.1f s", section.value, time.monotonic() - started)
            raise Unavailable(
                f"EHR is slow: {section.label} did not load within {self.section_timeout:g} s",
                "Press r to retry this tab; the rest of the record is unaffected",
            ) from None
        if section in (Section.APPOINTMENTS, Section.BILLING):
            self._remember(patient_id, section, result)
        log.debug("FHIR %s section loaded in %.2f s", section.value, time.monotonic() - started)
        return result

    async def _records(
        self, resource_type: str, params: list[tuple[str, str]], *, max_pages: int = 4
    ) -> list[dict[str, Any]]:
        try:
            result = await self.client.search(resource_type, params, max_pages=max_pages, count=100)
        except NotFound as exc:  # the base URL answers Patient searches: this type is simply not served
            raise _NotOffered(resource_type, exc) from None
        return [r for r in result.resources if r.get("status") not in _GONE]

    async def _load_appointments(self, patient_id: str) -> object:
        if not self.profile.appointment_search:
            return SectionUnavailable(
                section=Section.APPOINTMENTS,
                reason=f"{self.profile.display} finds appointments by id only, not by patient: see them in the EHR",
            )
        found = await self._records("Appointment", [("patient", patient_id)])
        refs = await self._resolve(k for r in found for k in references_to_resolve(r, patient_id=patient_id))
        today = self.today()
        views = [appointment_view(r, patient_id=patient_id, refs=refs, today=today) for r in found]
        return tuple(_appointment_order(views, self.now()))

    async def _load_referrals(self, patient_id: str) -> object:
        category = self.profile.referral_category
        filter_here = category is None
        found: list[dict[str, Any]]
        if category:
            try:
                result = await self.client.search(
                    "ServiceRequest", [("patient", patient_id), ("category", category)], max_pages=4, count=100
                )
                found = [r for r in result.resources if r.get("status") not in _GONE]
                filter_here = bool(result.warnings)  # a lenient server may have ignored the category
            except NotFound as exc:
                raise _NotOffered("ServiceRequest", exc) from None
            except BadRequest:
                log.info("FHIR server refused the ServiceRequest category search; filtering referrals here")
                found = await self._records("ServiceRequest", [("patient", patient_id)])
                filter_here = True
        else:
            found = await self._records("ServiceRequest", [("patient", patient_id)])
        if filter_here:
            found = [r for r in found if is_referral(r)]
        refs = await self._resolve(k for r in found for k in references_to_resolve(r))
        today = self.today()
        views = [referral_view(r, refs=refs, today=today) for r in found]
        views.sort(key=lambda v: (_referral_rank(v.status), -_ts(v.authored), v.id))
        return tuple(views)

    async def _load_billing(self, patient_id: str) -> object:
        if not self.profile.billing:
            return SectionUnavailable(section=Section.BILLING, reason="not available from this EHR")
        results = await asyncio.gather(
            self._records("Account", [("patient", patient_id)], max_pages=2),
            self._coverages(patient_id),
            self._records("ExplanationOfBenefit", [("patient", patient_id)], max_pages=2),
            return_exceptions=True,
        )
        parts: list[list[dict[str, Any]]] = []
        failures: list[BackendError] = []
        for name, r in zip(("Account", "Coverage", "ExplanationOfBenefit"), results, strict=True):
            if isinstance(r, _NotOffered):
                r = r.error
            if isinstance(r, BaseException):
                if not isinstance(r, BackendError):
                    raise r
                if isinstance(r, (Unavailable, AuthError, RateLimited)):
                    raise r  # the EHR itself is in trouble: the tab shows it
                log.info("FHIR %s search for billing failed (%s); shown without it", name, type(r).__name__)
                failures.append(r)
                parts.append([])
            else:
                parts.append(r)
        if len(failures) == 3:
            if all(isinstance(f, NotFound) for f in failures):
                return SectionUnavailable(section=Section.BILLING, reason="not available from this EHR")
            raise failures[0]
        accounts, coverages, claims = parts
        refs = await self._resolve(k for r in (*accounts, *coverages, *claims) for k in references_to_resolve(r))
        return billing(
            accounts, coverages, claims, refs=refs, today=self.today(), recent_claims=self.recent_claims
        )

    async def _coverages(self, patient_id: str) -> list[dict[str, Any]]:
        try:
            return await self._records("Coverage", [("patient", patient_id)], max_pages=2)
        except BadRequest:
            return await self._records("Coverage", [("beneficiary", patient_id)], max_pages=2)

    async def _load_prescriptions(self, patient_id: str) -> object:
        found = await self._records("MedicationRequest", [("patient", patient_id)])
        refs = await self._resolve(k for r in found for k in references_to_resolve(r))
        today = self.today()
        views = [prescription_view(r, refs=refs, today=today) for r in found]
        views.sort(key=lambda v: (_prescription_rank(v.status), -_ts(v.authored), v.medication.casefold(), v.id))
        return tuple(views)

    async def _load_care_team(self, patient_id: str) -> object:
        today = self.today()
        teams = [
            t
            for t in await self._records("CareTeam", [("patient", patient_id)], max_pages=2)
            if t.get("status") not in ("inactive",) and not _ended(t, today)
        ]
        refs = await self._resolve(k for t in teams for k in references_to_resolve(t, patient_id=patient_id))
        members: dict[tuple[str, str | None], CareTeamMember] = {}
        for t in teams:
            for m in care_team_members(t, patient_id=patient_id, refs=refs, today=today, region=self.region):
                key = (m.name.casefold(), (m.role or "").casefold() or None)
                if key not in members or (members[key].phone is None and m.phone is not None):
                    members[key] = m
        return tuple(members.values())

    async def _load_notes(self, patient_id: str) -> object:
        found = [
            r
            for r in await self._records("DocumentReference", [("patient", patient_id)], max_pages=3)
            if r.get("status") != "superseded"
        ]
        refs = await self._resolve(k for r in found for k in references_to_resolve(r))
        today = self.today()
        views = [clinical_note(r, refs=refs, today=today) for r in found]
        views.sort(key=lambda v: (v.date is None, -_ts(v.date), v.id))
        return tuple(views)

    async def _load_summary(self, patient_id: str) -> object:
        """The patient, the next appointment and the balance: from the Appointments and Billing tabs'
        latest results when fresh, else the fewest searches (run side by side). A failing part is
        left empty; only the patient read failing fails the Summary."""

        async def next_appointment() -> Appointment | None:
            cached = self._recall(patient_id, Section.APPOINTMENTS)
            if cached is None:
                if not self.profile.appointment_search:
                    return None
                found = await self._records("Appointment", [("patient", patient_id)])
                cached = tuple(appointment_view(r, patient_id=patient_id) for r in found)
            return _next_appointment(cached, self.now())

        async def balance() -> Money | None:
            cached = self._recall(patient_id, Section.BILLING)
            if isinstance(cached, Billing):
                return cached.balance
            if not self.profile.billing:
                return None
            accounts = await self._records("Account", [("patient", patient_id)], max_pages=2)
            return billing(accounts, today=self.today()).balance

        patient, upcoming, owed = await asyncio.gather(
            self.patient(patient_id), next_appointment(), balance(), return_exceptions=True
        )
        if isinstance(patient, BaseException):
            raise patient
        for part in (upcoming, owed):
            if isinstance(part, BaseException) and not isinstance(part, (BackendError, _NotOffered)):
                raise part
        return RecordSummary(
            patient=patient,
            next_appointment=None if isinstance(upcoming, BaseException) else upcoming,
            balance=None if isinstance(owed, BaseException) else owed,
            appointments_available=self.profile.appointment_search,
            billing_available=self.profile.billing,
        )

    def _remember(self, patient_id: str, section: Section, value: object) -> None:
        self._memo[(patient_id, section)] = (time.monotonic(), value)
        self._memo.move_to_end((patient_id, section))
        while len(self._memo) > 128:
            self._memo.popitem(last=False)

    def _recall(self, patient_id: str, section: Section) -> Any:
        hit = self._memo.get((patient_id, section))
        if hit is None or time.monotonic() - hit[0] > self._summary_ttl:
            return None
        value = hit[1]
        return None if isinstance(value, SectionUnavailable) else value

    # ---------------------------------------------------------------- referenced resources
    async def _resolve(self, keys: Iterable[str], *, budget: float = 5.0) -> dict[str, dict[str, Any]]:
        """Read the referenced resources (Practitioner/…, Location/…) not cached yet, side by side, within
        ``budget`` seconds; those that cannot be read (dangling, forbidden, slow) are simply left out."""
        wanted = list(dict.fromkeys(k for k in keys if k))
        now = time.monotonic()
        out: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for key in wanted:
            hit = self._ref_cache.get(key)
            if hit is not None and now - hit[0] <= self._ref_ttl:
                self._ref_cache.move_to_end(key)
                if hit[1] is not None:
                    out[key] = hit[1]
            else:
                missing.append(key)
        if not missing:
            return out
        missing = missing[:50]
        tasks = {asyncio.ensure_future(self._read_ref(key)): key for key in missing}
        if self.section_timeout is not None:
            budget = min(budget, self.section_timeout / 2)
        try:
            done, pending = await asyncio.wait(tasks, timeout=budget)
        except asyncio.CancelledError:  # the section's own time limit: leave nothing running behind
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        for task in pending:
            task.cancel()
        if pending:
            log.info("FHIR: %d referenced resource(s) too slow to read; shown without their names", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            key = tasks[task]
            exc = task.exception()
            if exc is None:
                resource = task.result()
                self._cache_ref(key, resource)
                if resource is not None:
                    out[key] = resource
            elif isinstance(exc, (NotFound, BadRequest, PermissionDenied, NotSupported)):
                self._cache_ref(key, None)  # dangling or not ours to read: remember, do not ask again
            elif not isinstance(exc, BackendError):
                raise exc
        return out

    async def _read_ref(self, key: str) -> dict[str, Any] | None:
        rtype, _, rid = key.partition("/")
        return await self.client.read(rtype, rid)

    def _cache_ref(self, key: str, resource: dict[str, Any] | None) -> None:
        if self._ref_cache_size == 0:
            return
        self._ref_cache[key] = (time.monotonic(), resource)
        self._ref_cache.move_to_end(key)
        while len(self._ref_cache) > self._ref_cache_size:
            self._ref_cache.popitem(last=False)

    # ---------------------------------------------------------------- writes
    async def write_note(self, note: Note, *, encounter_id: str | None = None) -> str:
        """Write the note as a DocumentReference; returns its id in the EHR.

        Idempotent: the note id is in ``DocumentReference.identifier`` (system
        ``urn:pa-tui:note``); the EHR is searched for it first and the create is
        conditional (``If-None-Exist``), so a retry from the outbox never writes twice.
        """
        if not self.profile.note_writes:
            raise NotSupported(
                f"{self.profile.display} does not accept notes from pa-tui",
                "The note is kept in pa-tui's own store",
            )
        pid = note.patient_id
        if not pid or not _PID_RE.match(pid):
            raise BadRequest("The note is not attached to a patient in the EHR", "It is kept in pa-tui's own store")
        if encounter_id is not None and not _PID_RE.match(encounter_id):
            raise BadRequest("not a valid Encounter id", "FHIR ids are 1–64 letters, digits, '-' or '.'")
        token = f"{NOTE_IDENTIFIER_SYSTEM}|{note.id}"
        existing = await self._find_note(note.id, pid)
        if existing:
            log.info("FHIR note already in the EHR as DocumentReference/%s; not written again", existing)
            return existing
        result = await self.client.create(
            "DocumentReference", self._note_resource(note, encounter_id), if_none_exist=f"identifier={token}"
        )
        return result.id

    async def _find_note(self, note_id: str, patient_id: str) -> str | None:
        token = f"{NOTE_IDENTIFIER_SYSTEM}|{note_id}"
        try:
            result = await self.client.search(
                "DocumentReference", [("patient", patient_id), ("identifier", token)], max_pages=1, count=10
            )
            candidates = result.resources
        except BadRequest:  # no identifier search here: look through the patient's documents instead
            log.info("FHIR DocumentReference identifier search refused; checking the patient's documents")
            result = await self.client.search("DocumentReference", [("patient", patient_id)], max_pages=5, count=100)
            candidates = result.resources
        for r in candidates:
            rid = r.get("id")
            if note_identifier(r) == note_id and isinstance(rid, str) and rid:
                return rid
        return None

    def _note_resource(self, note: Note, encounter_id: str | None) -> dict[str, Any]:
        system, code, display = self.note_type
        created = note.created_at if note.created_at.tzinfo else note.created_at.replace(tzinfo=UTC)
        doc: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "identifier": [{"system": NOTE_IDENTIFIER_SYSTEM, "value": note.id}],
            "status": "current",
            "type": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "category": [
                {"coding": [{"system": US_CORE_DOC_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}]}
            ],
            "subject": {"reference": f"Patient/{note.patient_id}"},
            "date": created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "author": [{"display": note.agent_id}],
            "description": "Contact-center note",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": base64.b64encode(note.text.encode("utf-8")).decode("ascii"),
                        "title": "Contact-center note",
                        "creation": created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    }
                }
            ],
        }
        if encounter_id:
            doc["context"] = {"encounter": [{"reference": f"Encounter/{encounter_id}"}]}
        return doc

    async def confirm_appointment(self, appointment_id: str) -> bool:
        """Mark the patient as having accepted the appointment (a reminder's "yes"): the patient
        participant's status becomes ``accepted``, by PUT with ``If-Match``. False where this EHR
        does not let pa-tui change appointments, or the appointment cannot be confirmed (cancelled,
        past, no patient participant)."""
        if not self.profile.appointment_updates:
            log.info("FHIR: %s does not allow appointment updates; not confirmed", self.profile.display)
            return False
        resource, version = await self.client.read_versioned("Appointment", appointment_id)
        if resource.get("status") in _CLOSED_APPOINTMENT:
            log.info("FHIR Appointment/%s is %s; not confirmed", appointment_id, resource.get("status"))
            return False
        participants = resource.get("participant")
        part = None
        if isinstance(participants, list):
            for p in participants:
                if isinstance(p, dict) and (reference_key(p.get("actor")) or "").startswith("Patient/"):
                    part = p
                    break
        if part is None:
            log.info("FHIR Appointment/%s has no patient participant; not confirmed", appointment_id)
            return False
        if part.get("status") == "accepted":
            return True
        updated = copy.deepcopy(resource)
        for p in updated["participant"]:
            if isinstance(p, dict) and (reference_key(p.get("actor")) or "").startswith("Patient/"):
                p["status"] = "accepted"
                break
        try:
            await self.client.update(updated, version_id=version)
        except NotSupported:
            return False
        return True

    # ---------------------------------------------------------------- the chart in the EHR
    def chart_url(self, patient: PatientSummary) -> str | None:
        """The site's chart URL for the patient (``chart_url_template`` with ``{patient_id}``, ``{mrn}``,
        ``{fhir_id}``, each URL-encoded); None without a template or when a value it needs is unknown."""
        template = self.chart_url_template
        if not template or not patient.id:
            return None
        values = {"patient_id": patient.id, "fhir_id": patient.id, "mrn": patient.mrn}
        needed = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        if any(values.get(f) is None for f in needed):
            return None
        return template.format(**{k: quote(v, safe="") for k, v in values.items() if v is not None})

    async def aclose(self) -> None:
        await self.client.aclose()


def _check_chart_template(template: str) -> str:
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError:
        raise ValueError("fhir.chart_url_template is not a valid template (unbalanced braces)") from None
    unknown = [f for f, _, _ in fields if f not in _CHART_FIELDS]
    if unknown:
        raise ValueError(
            f"fhir.chart_url_template uses {{{unknown[0]}}}; only {{patient_id}}, {{mrn}} and {{fhir_id}} are known"
        )
    if any(spec or conv for _, spec, conv in fields):
        raise ValueError("fhir.chart_url_template placeholders take no format spec or conversion")
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):", template.strip())
    if not m or m.group(1).lower() in _UNSAFE_SCHEMES:
        raise ValueError("fhir.chart_url_template must be an https:// (or the EHR's own scheme) URL")
    return template.strip()


# --------------------------------------------------------------------------- record ordering
def _ts(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def _ended(resource: dict[str, Any], today: date) -> bool:
    period = resource.get("period")
    end = period.get("end") if isinstance(period, dict) else None
    return isinstance(end, str) and end[:10] < today.isoformat()


def _appointment_order(views: list[Appointment], now: datetime) -> list[Appointment]:
    """Upcoming first (soonest first), then past (latest first), then undated."""
    upcoming = sorted((v for v in views if v.start and v.start >= now), key=lambda v: (_ts(v.start), v.id))
    past = sorted((v for v in views if v.start and v.start < now), key=lambda v: (-_ts(v.start), v.id))
    undated = [v for v in views if v.start is None]
    return upcoming + past + undated


def _next_appointment(views: Iterable[object], now: datetime) -> Appointment | None:
    upcoming = [
        v
        for v in views
        if isinstance(v, Appointment)
        and v.start is not None
        and v.start >= now
        and v.status in ("booked", "pending", "proposed", "arrived", "waitlist")
    ]
    return min(upcoming, key=lambda v: _ts(v.start), default=None)


def _referral_rank(status: str) -> int:
    return {"active": 0, "on-hold": 1, "draft": 2, "completed": 3, "revoked": 4}.get(status, 5)


def _prescription_rank(status: str) -> int:
    return {"active": 0, "on-hold": 1, "draft": 2, "completed": 3, "stopped": 4, "cancelled": 5}.get(status, 6)


def _name_key(s: PatientSummary) -> tuple[Any, ...]:
    return (
        not (s.active and not s.deceased),
        (s.family or "").casefold(),
        (s.given or "").casefold(),
        s.birth_date or date.min,
        s.id,
    )


# --------------------------------------------------------------------------- ranking and households
def _matching(s: PatientSummary, number: PhoneNumber) -> list[PatientPhone]:
    return [p for p in s.phones if same_number(p.number, number)]


def _tier(s: PatientSummary, number: PhoneNumber) -> int:
    """0: a current mobile/home number; 1: another current use (work…); 2: only an old number."""
    hits = [p for p in _matching(s, number) if p.current]
    if any(p.use in (PhoneUse.MOBILE, PhoneUse.HOME) for p in hits):
        return 0
    return 1 if hits else 2


def _match_rank(s: PatientSummary, number: PhoneNumber) -> tuple[Any, ...]:
    ranks = [p.rank for p in _matching(s, number) if p.current and p.rank is not None]
    return (
        _tier(s, number),
        not (s.active and not s.deceased),
        (s.family or "").casefold(),
        (s.given or "").casefold(),
        min(ranks) if ranks else 99,
        s.id,
    )


def _identify(
    view: RelatedPersonView, summaries: dict[str, PatientSummary], *, exclude: str, number: PhoneNumber
) -> str | None:
    """The candidate a RelatedPerson describes, when the Patient does not link to it: same name, and
    the same date of birth when both have one, else the same phone number. Ambiguity → None."""
    if not view.family or not view.given:
        return None
    first = view.given.split()[0].casefold()
    hits = []
    for sid, s in summaries.items():
        if sid == exclude or not s.family or not s.given:
            continue
        if s.family.casefold() != view.family.casefold() or s.given.split()[0].casefold() != first:
            continue
        if view.birth_date and s.birth_date:
            if view.birth_date == s.birth_date:
                hits.append(sid)
        elif any(same_number(p.number, q.number) for p in view.phones for q in s.phones):
            hits.append(sid)
    return hits[0] if len(hits) == 1 else None


def _owner(
    members: Sequence[tuple[PatientSummary, dict[str, Any]]],
    number: PhoneNumber,
    edges: dict[tuple[str, str], tuple[str, str | None]],
    today: date,
) -> str:
    """Whose number it most likely is: an adult holding it as a current mobile, a parent, the eldest."""

    def score(s: PatientSummary) -> tuple[Any, ...]:
        age = s.age(today)
        adult = age is not None and age >= 18
        hits = [p for p in _matching(s, number) if p.current]
        own_mobile = any(p.use is PhoneUse.MOBILE and (p.rank in (None, 1)) for p in hits)
        is_parent = any(a == s.id and kind == "child" for (a, _), (kind, _) in edges.items())
        connected = sum(1 for (a, _) in edges if a == s.id)
        return (
            not adult,
            not (s.active and not s.deceased),
            not is_parent,
            not own_mobile,
            -connected,
            -(age or 0),
            s.id,
        )

    return min((s for s, _ in members), key=score).id
