"""The EHR protocol over FHIR R4: identify callers by phone, read and search patients.

``find_by_phone`` asks the server for ``Patient?phone=<national digits>`` (the
generic profile), then keeps only patients whose stored telecom *really* is the
caller's number after normalisation — servers match loosely (partial digits,
ignored country codes) or strictly (exact strings), and a wrong card popped
for a caller is worse than none. Several matches sharing a current number are
a household: they carry ``household_id`` (the E.164) and, where RelatedPerson
resources say so, their ``relationship`` to the number's owner.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Final

from pa_tui.backends.base import BackendError, BadRequest, NotSupported
from pa_tui.backends.fhir.client import FhirClient
from pa_tui.backends.fhir.parse import (
    RelatedPersonView,
    inverse_relationship,
    linked_related_person_ids,
    patient_summary,
    related_person,
    relationship_kind,
)
from pa_tui.domain.notes import Note
from pa_tui.domain.patients import CallerMatch, MatchSource, PatientPhone, PatientSummary, PhoneUse
from pa_tui.domain.phones import NoCallerId, PhoneNumber, PhoneNumberError, parse_phone, same_number
from pa_tui.domain.records import Section

__all__ = ["PHONE_FORMATS", "FhirEhr", "classify_query"]

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


class FhirEhr:
    """The console's EHR (see :class:`pa_tui.backends.base.EHR`) on a :class:`FhirClient`."""

    def __init__(
        self,
        client: FhirClient,
        *,
        today: date | Callable[[], date] | None = None,
        region: str = "US",
    ) -> None:
        self.client = client
        self._today = today
        self.region = region

    def today(self) -> date:
        if callable(self._today):
            return self._today()
        return self._today or date.today()

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

    async def _phone_search(self, number: PhoneNumber) -> tuple[list[dict[str, Any]], bool]:
        """Every Patient the server returns for the number, trying the profile's forms and parameters."""
        profile = self.client.profile
        found: list[dict[str, Any]] = []
        params = [profile.phone_param] + ([profile.phone_fallback_param] if profile.phone_fallback_param else [])
        for fmt in profile.phone_formats:
            value = PHONE_FORMATS[fmt](number)
            for i, param in enumerate(params):
                query = [(param, value if param == "phone" else f"phone|{value}")]
                try:
                    result = await self.client.search("Patient", query, max_pages=2, count=_MAX_PHONE_CANDIDATES // 2)
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

    async def _household_labels(
        self, number: PhoneNumber, members: list[tuple[PatientSummary, dict[str, Any]]], today: date
    ) -> dict[str, str]:
        """Each member's relationship to the number's owner, from RelatedPerson where the EHR has them."""
        ids = [s.id for s, _ in members]
        try:
            result = await self.client.search("RelatedPerson", [("patient", ",".join(ids))], max_pages=3, count=100)
        except BackendError as exc:  # relationships are a nicety: the household still pops without them
            log.info("FHIR RelatedPerson search failed (%s); household shown without relationships", type(exc).__name__)
            return {}
        views = [related_person(r, today=today) for r in result.resources]
        summaries = {s.id: s for s, _ in members}
        person_of = {rp: s.id for s, res in members for rp in linked_related_person_ids(res)}
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
        if not edges:
            return {}
        owner = _owner(members, number, edges, today)
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
        resource = await self.client.read("Patient", patient_id)
        return patient_summary(resource, today=self.today(), region=self.region)

    async def search(self, query: str) -> list[PatientSummary]:
        """Free text as an agent types it: a phone number, a date of birth, an MRN or id, or a name."""
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
            if match.candidates or not match.phone_search_supported:
                return list(match.candidates)
            return await self._by_identifier(value.national_digits)
        if kind == "date":
            return self._sorted(await self._search([("birthdate", value.isoformat())]))
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
                attempts = [[("name", words[0])]]
            else:
                attempts = [
                    [("given", words[0]), ("family", " ".join(words[1:]))],
                    [("family", words[0]), ("given", words[-1])],
                    [("family", " ".join(words))],
                ]
        for params in attempts:
            found = await self._search(params + extra)
            if found:
                return self._sorted(found)
        return []

    async def _by_identifier(self, token: str) -> list[PatientSummary]:
        searches = [self._search([("identifier", token)])]
        if re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", token):
            searches.append(self._search([("_id", token)]))
        results = await asyncio.gather(*searches, return_exceptions=True)
        out: dict[str, PatientSummary] = {}
        for r in results:
            if isinstance(r, BadRequest):
                continue
            if isinstance(r, BaseException):
                raise r
            for s in r:
                out.setdefault(s.id, s)
        return self._sorted(list(out.values()))

    async def _search(self, params: list[tuple[str, str]]) -> list[PatientSummary]:
        result = await self.client.search("Patient", params, max_pages=1, count=SEARCH_LIMIT)
        today = self.today()
        return [patient_summary(r, today=today, region=self.region) for r in result.resources]

    @staticmethod
    def _sorted(items: list[PatientSummary]) -> list[PatientSummary]:
        return sorted(
            items,
            key=lambda s: (
                not (s.active and not s.deceased),
                (s.family or "").casefold(),
                (s.given or "").casefold(),
                s.birth_date or date.min,
                s.id,
            ),
        )[:SEARCH_LIMIT]

    # ---------------------------------------------------------------- not yet over FHIR
    async def load_section(self, patient_id: str, section: Section) -> object:
        raise NotSupported(
            f"The {section.label} section is not available from the EHR yet",
            "This pa-tui version shows the patient summary only",
        )

    async def write_note(self, note: Note) -> str:
        raise NotSupported(
            "Notes cannot be written to the EHR yet",
            "The note is kept in pa-tui's own store",
        )

    def chart_url(self, patient: PatientSummary) -> str | None:
        return None

    async def aclose(self) -> None:
        await self.client.aclose()


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
