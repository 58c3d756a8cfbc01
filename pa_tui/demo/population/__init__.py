"""A deterministic synthetic patient population, as FHIR R4 JSON.

``Population.generate(size, seed)`` builds households of patients the way a
contact center meets them: families where the children's records carry a
parent's number, couples sharing a landline, seniors whose only number is a
caregiver's mobile, numbers typed in every format registration clerks use
("(408) 555-1212", "408-555-1212", "+14085551212", "4085551212",
"408.555.1212", …), old numbers kept with ``use: old`` and an ended period,
and now and then an old number that has since been given to someone else.

Everything comes from one ``random.Random(seed)`` and fixed tables, so the same
``(size, seed, as_of)`` gives byte-identical resources on every machine; no
per-record Faker, so 100,000 patients take a few seconds.

Phone numbers are real-format, *possible and valid* NANP numbers in the
``555`` exchange of real area codes (the area code agrees with the address),
never ``555-0100``–``555-0199`` (kept free for callers that must match no one,
see :meth:`Population.unlisted_numbers`) and never ``555-1212``/``555-4334``
(directory services). Names are common US names; addresses are invented
street numbers on common street names; e-mail domains are reserved
(``example.com``, ``*.example``); identifiers live under HL7's example OID arc.

Resources are kept per type in :attr:`Population.resources`. Beside the
patients, a directory is built up front: the provider organisation and the
payors, a clinic in every city, and its clinicians with direct lines (numbers
from the same pool, so never a patient's). Each patient's record — appointments,
referrals, coverage, claims, account balance, prescriptions, care team and
notes — is generated on first access from its own random streams (see
:mod:`pa_tui.demo.population.records`), so 100,000 patients still build in
seconds, and a record is the same whichever patient was asked for first.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import threading
import uuid
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from pa_tui.demo.population import _directory
from pa_tui.demo.population import _tables as T
from pa_tui.demo.population.records import ACCOUNT_BALANCE_URL, ID_PREFIX, RECORD_TYPES, RecordFactory

__all__ = [
    "ACCOUNT_BALANCE_URL",
    "CONFIDENTIALITY_SYSTEM",
    "LEGACY_MRN_SYSTEM",
    "MRN_SYSTEM",
    "PHONE_FORMATS",
    "RECORD_TYPES",
    "REFERENCE_DATE",
    "ROLE_CODE_SYSTEM",
    "Population",
    "format_phone",
]

FhirJson = dict[str, Any]

#: The day ages and "old" periods are reckoned from unless ``as_of`` is given.
#: Fixed, so that a seed names the same population on every day it is run.
REFERENCE_DATE: Final = date(2026, 1, 1)

#: The synthetic health system's MRNs, under HL7's example OID arc (2.16.840.1.113883.19).
MRN_SYSTEM: Final = "urn:oid:2.16.840.1.113883.19.5.99.1"
#: MRNs of a retired system, kept as ``use: old`` identifiers on some records.
LEGACY_MRN_SYSTEM: Final = "urn:oid:2.16.840.1.113883.19.5.99.2"
V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
ROLE_CODE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONFIDENTIALITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
MARITAL_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
BCP47: Final = "urn:ietf:bcp:47"

#: How registration desks type a number, with how often each occurs (weights).
PHONE_FORMATS: Final[tuple[tuple[str, int], ...]] = (
    ("({a}) {b}-{c}", 30),
    ("{a}-{b}-{c}", 25),
    ("+1{a}{b}{c}", 15),
    ("{a}{b}{c}", 12),
    ("{a}.{b}.{c}", 8),
    ("1-{a}-{b}-{c}", 5),
    ("+1 {a} {b} {c}", 5),
)
_FORMAT_TEMPLATES: Final = tuple(f for f, _ in PHONE_FORMATS)
_FORMAT_CUM: Final = tuple(itertools.accumulate(w for _, w in PHONE_FORMATS))

# Lines of the 555 exchange never handed out: the fictional 01xx block (kept for
# "unknown caller" numbers) and the directory-assistance lines.
_RESERVED_LINES: Final = frozenset(range(100, 200)) | {1212, 4334}
_LINES_PER_AREA: Final = 10_000 - len(_RESERVED_LINES)

_ROLE_DISPLAY: Final[dict[str, str]] = {
    "MTH": "mother",
    "FTH": "father",
    "PRN": "parent",
    "SPS": "spouse",
    "HUSB": "husband",
    "WIFE": "wife",
    "DOMPART": "domestic partner",
    "DAU": "daughter",
    "SON": "son",
    "CHILD": "child",
}
_LANGUAGES: Final = (
    ("es", "Spanish", 60),
    ("vi", "Vietnamese", 8),
    ("zh", "Chinese", 8),
    ("ko", "Korean", 5),
    ("ar", "Arabic", 5),
    ("ru", "Russian", 5),
    ("fr", "French", 4),
    ("tl", "Tagalog", 5),
)
_MARITAL: Final = {
    "M": "Married",
    "S": "Never Married",
    "D": "Divorced",
    "W": "Widowed",
    "T": "Domestic partner",
}


def format_phone(national: str, template: str) -> str:
    """Render 10 national digits with one of :data:`PHONE_FORMATS`' templates."""
    return template.format(a=national[:3], b=national[3:6], c=national[6:])


def _rank_weights(n: int, flatten: int = 12) -> tuple[float, ...]:
    """Cumulative weights falling off with rank: common names stay common, rare ones still occur."""
    return tuple(itertools.accumulate(1.0 / (rank + flatten) for rank in range(n)))


_FEMALE_CUM: Final = _rank_weights(len(T.FEMALE_GIVEN))
_MALE_CUM: Final = _rank_weights(len(T.MALE_GIVEN))
_FAMILY_CUM: Final = _rank_weights(len(T.FAMILY), flatten=25)
_CITY_CUM: Final = tuple(itertools.accumulate(c.weight for c in T.CITIES))
_ALL_AREA_CODES: Final = tuple(dict.fromkeys(a for c in T.CITIES for a in c.area_codes))
_LANG_CUM: Final = tuple(itertools.accumulate(w for *_, w in _LANGUAGES))

# Household kinds and their weights: about 2.1 people a household overall.
_KINDS: Final = (
    ("single", 34),
    ("couple", 20),
    ("family", 17),
    ("single_parent", 8),
    ("multigen", 3),
    ("caregiver", 4),
    ("roommates", 14),
)
_KIND_NAMES: Final = tuple(k for k, _ in _KINDS)
_PATIENT_BITS: Final = 24  # patient index bits in the packed appointment schedule
_KIND_CUM: Final = tuple(itertools.accumulate(w for _, w in _KINDS))


# --------------------------------------------------------------------------- internals
@dataclass(slots=True)
class _Phone:
    national: str  # 10 digits
    use: str  # home | mobile | work | old
    text: str  # as stored
    current: bool
    rank: int | None = None
    period: dict[str, str] | None = None


@dataclass(slots=True)
class _Person:
    sex: str
    given: list[str]
    family: str
    dob: date
    maiden: str | None = None
    married_on: date | None = None
    suffix: str | None = None
    mobile: str | None = None  # own mobile, national digits
    phones: list[_Phone] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # RelatedPerson ids describing this person
    id: str = ""
    marital: str | None = None

    def age(self, today: date) -> int:
        return today.year - self.dob.year - ((today.month, today.day) < (self.dob.month, self.dob.day))


@dataclass(slots=True)
class _Household:
    kind: str
    city: T.City
    address: FhirJson
    members: list[_Person] = field(default_factory=list)
    # (subject index, related person index, v3-RoleCode code): "members[j] is the CODE of members[i]"
    relations: list[tuple[int, int, str]] = field(default_factory=list)
    landline: str | None = None


class _FastRandom(random.Random):
    """``random.Random`` whose integer draws each take one ``random()`` call.

    Several times faster than the standard library's bit-exact versions, and just
    as reproducible: the same seed gives the same draws on every platform.
    """

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if stop is None:
            start, stop = 0, start
        n = (stop - start + step - 1) // step
        if n <= 0:
            raise ValueError("empty range for randrange()")
        return start + step * int(self.random() * n)

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: Any) -> Any:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        return seq[int(self.random() * len(seq))]


class _NumberPool:
    """Hands out unique 555-exchange numbers per area code, in a scrambled but reproducible order."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._state: dict[str, list[int]] = {}

    def _take(self, area: str) -> str | None:
        st = self._state.get(area)
        if st is None:
            a = self._rng.randrange(1001, 10_000, 2)  # odd …
            if a % 5 == 0:  # … and not a multiple of 5: coprime with 10,000, so k -> a*k+b is a permutation
                a += 2
            st = self._state[area] = [0, a, self._rng.randrange(10_000)]
        while st[0] < 10_000:
            line = (st[1] * st[0] + st[2]) % 10_000
            st[0] += 1
            if line not in _RESERVED_LINES:
                return f"{area}555{line:04d}"
        return None

    def take(self, city: T.City) -> str:
        codes = city.area_codes
        first = codes[self._rng.randrange(len(codes))]
        for area in itertools.chain((first,), codes, _ALL_AREA_CODES):
            number = self._take(area)
            if number is not None:
                return number
        raise ValueError("the synthetic number plan is exhausted: generate fewer patients")


class _Generator:
    def __init__(self, size: int, seed: int, as_of: date) -> None:
        self.size = size
        self.rng = _FastRandom(seed)
        self.today = as_of
        self.numbers = _NumberPool(self.rng)
        self.recyclable: list[str] = []  # mobiles of earlier households
        self.patients: list[FhirJson] = []
        self.related: list[FhirJson] = []
        # E.164 -> [(patient id, current?)] in generation order
        self.index: dict[str, list[tuple[str, bool]]] = {}
        self.preferred: dict[str, str] = {}  # patient id -> E.164 of the number to call them on
        # patient id -> [(RelatedPerson id, related patient id, v3-RoleCode)]: "the other is my CODE"
        self.relations: dict[str, list[tuple[str, str, str]]] = {}
        self.mrn_a = 7_919_053  # coprime with 90,000,000: a permutation of 8-digit MRNs
        self.mrn_b = self.rng.randrange(90_000_000)

    # ---------------------------------------------------------------- small draws
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def given_name(self, sex: str, *, avoid: str | None = None) -> str:
        rng = self.rng
        if sex == "female" or (sex not in ("male", "female") and rng.random() < 0.5):
            names, cum = T.FEMALE_GIVEN, _FEMALE_CUM
        else:
            names, cum = T.MALE_GIVEN, _MALE_CUM
        for _ in range(4):
            name = names[bisect_left(cum, rng.random() * cum[-1])]
            if name != avoid:
                return name
        return name

    def family_name(self) -> str:
        return T.FAMILY[bisect_left(_FAMILY_CUM, self.rng.random() * _FAMILY_CUM[-1])]

    def sex(self) -> str:
        r = self.rng.random()
        return "female" if r < 0.505 else "male" if r < 0.994 else "other" if r < 0.997 else "unknown"

    def dob(self, min_age: float, max_age: float) -> date:
        lo = int(min_age * 365.2425)
        hi = max(lo, int((max_age + 1) * 365.2425) - 1)
        return date.fromordinal(self.today.toordinal() - self.rng.randint(lo, hi))

    def days_ago(self, lo: int, hi: int) -> date:
        return date.fromordinal(self.today.toordinal() - self.rng.randint(lo, hi))

    def person(self, sex: str, min_age: float, max_age: float, family: str | None = None) -> _Person:
        given = [self.given_name(sex)]
        r = self.rng.random()
        if r < 0.5:
            given.append(self.given_name(sex, avoid=given[0]))
        elif r < 0.6:
            given.append(self.given_name(sex)[0] + ".")
        return _Person(sex=sex, given=given, family=family or self.family_name(), dob=self.dob(min_age, max_age))

    def fmt(self, national: str) -> str:
        tpl = _FORMAT_TEMPLATES[bisect_left(_FORMAT_CUM, self.rng.random() * _FORMAT_CUM[-1])]
        return format_phone(national, tpl)

    def address(self, city: T.City) -> FhirJson:
        rng = self.rng
        street = (
            f"{rng.randint(1, 9899)} {T.STREETS[rng.randrange(len(T.STREETS))]} "
            f"{T.STREET_SUFFIXES[rng.randrange(len(T.STREET_SUFFIXES))]}"
        )
        line = [street]
        if rng.random() < 0.25:
            unit = T.UNIT_PREFIXES[rng.randrange(len(T.UNIT_PREFIXES))]
            number = rng.randint(1, 40)
            letter = "" if rng.random() < 0.7 else "ABCD"[rng.randrange(4)]
            line.append(f"{unit} {number}{letter}")
        return {
            "use": "home",
            "type": "both",
            "line": line,
            "city": city.name,
            "state": city.state,
            "postalCode": f"{city.zip3}{rng.randint(1, 99):02d}",
            "country": "US",
        }

    def city(self) -> T.City:
        return T.CITIES[bisect_left(_CITY_CUM, self.rng.random() * _CITY_CUM[-1])]

    # ---------------------------------------------------------------- households
    def household(self) -> _Household:
        rng = self.rng
        kind = _KIND_NAMES[bisect_left(_KIND_CUM, rng.random() * _KIND_CUM[-1])]
        city = self.city()
        hh = _Household(kind=kind, city=city, address=self.address(city))
        getattr(self, f"_hh_{kind}")(hh)
        return hh

    def _couple(self, hh: _Household, min_age: float, max_age: float) -> tuple[int, int]:
        rng = self.rng
        first_sex = self.sex()
        if first_sex not in ("male", "female"):
            first_sex = "female"
        same_sex = rng.random() < 0.06
        second_sex = first_sex if same_sex else ("male" if first_sex == "female" else "female")
        a = self.person(first_sex, min_age, max_age)
        b_age = max(18.0, min(99.0, a.age(self.today) + rng.randint(-6, 6)))
        b = self.person(second_sex, b_age, b_age)
        married = rng.random() < 0.8
        if married:
            a.marital = b.marital = "M"
            wedding = self.dob(0.5, max(0.5, min(a.age(self.today), b.age(self.today)) - 19))
            if rng.random() < 0.65:  # took the other's name; the old one is kept as a maiden name
                taker, giver = (b, a) if (b.sex == "female" or rng.random() < 0.5) else (a, b)
                if taker.family != giver.family:
                    taker.maiden = taker.family
                    taker.married_on = wedding
                    taker.family = giver.family
        else:
            a.marital = b.marital = "T"
        i = len(hh.members)
        hh.members += [a, b]
        code_for = (
            (lambda p: {"female": "WIFE", "male": "HUSB"}.get(p.sex, "SPS")) if married else (lambda p: "DOMPART")
        )
        hh.relations.append((i, i + 1, code_for(b)))
        hh.relations.append((i + 1, i, code_for(a)))
        return i, i + 1

    def _children(
        self, hh: _Household, parents: list[int], count: int, *, min_age: float = 0.0, max_age: float = 17.99
    ) -> None:
        rng = self.rng
        youngest_parent = min(hh.members[p].age(self.today) for p in parents)
        oldest_child = max(0.0, min(max_age, youngest_parent - 18))
        min_age = min(min_age, oldest_child)
        primary = hh.members[parents[0]]
        hyphenate = len(parents) == 2 and rng.random() < 0.04 and hh.members[parents[1]].family != primary.family
        for _ in range(count):
            family = f"{primary.family}-{hh.members[parents[1]].family}" if hyphenate else primary.family
            child = self.person(self.sex(), min_age, oldest_child, family=family)
            father = next((hh.members[p] for p in parents if hh.members[p].sex == "male"), None)
            if child.sex == "male" and father is not None and rng.random() < 0.03:
                child.given = list(father.given)
                child.suffix = "Jr."
            c = len(hh.members)
            hh.members.append(child)
            for p in parents:
                hh.relations.append((c, p, {"female": "MTH", "male": "FTH"}.get(hh.members[p].sex, "PRN")))

    def _hh_single(self, hh: _Household) -> None:
        p = self.person(self.sex(), 18, 92)
        r = self.rng.random()
        p.marital = "S" if r < 0.6 else "D" if r < 0.85 else "W"
        hh.members.append(p)

    def _hh_roommates(self, hh: _Household) -> None:
        # Unrelated adults at one address: each keeps their own number.
        for _ in range(self.rng.choice((2, 2, 3))):
            p = self.person(self.sex(), 19, 40)
            p.marital = "S"
            hh.members.append(p)

    def _hh_couple(self, hh: _Household) -> None:
        self._couple(hh, 22, 90)

    def _hh_family(self, hh: _Household) -> None:
        a, b = self._couple(hh, 24, 55)
        n = self.rng.choice((1, 1, 1, 2, 2, 2, 3, 4))
        self._children(hh, [a, b], n)
        if self.rng.random() < 0.12:  # a grown child still at home
            self._children(hh, [a, b], 1, min_age=18, max_age=24)

    def _hh_single_parent(self, hh: _Household) -> None:
        sex = "female" if self.rng.random() < 0.8 else "male"
        parent = self.person(sex, 20, 55)
        parent.marital = "S" if self.rng.random() < 0.5 else "D"
        hh.members.append(parent)
        self._children(hh, [0], self.rng.choice((1, 1, 2, 2, 3)))

    def _hh_multigen(self, hh: _Household) -> None:
        a, b = self._couple(hh, 28, 50)
        g = self.person("female" if self.rng.random() < 0.7 else "male", 62, 92)
        g.marital = "W"
        gi = len(hh.members)
        hh.members.append(g)
        self._children(hh, [a, b], self.rng.choice((1, 2, 3)))
        # The grandparent's record names their own child (whichever parent shares the family name).
        own = a if hh.members[a].maiden is None else b
        hh.relations.append((gi, own, {"female": "DAU", "male": "SON"}.get(hh.members[own].sex, "CHILD")))

    def _hh_caregiver(self, hh: _Household) -> None:
        senior = self.person("female" if self.rng.random() < 0.65 else "male", 75, 99)
        senior.marital = "W"
        carer = self.person(self.sex(), 40, 65, family=senior.family if self.rng.random() < 0.7 else None)
        carer.marital = "S"
        hh.members += [senior, carer]
        hh.relations.append((0, 1, {"female": "DAU", "male": "SON"}.get(carer.sex, "CHILD")))

    # ---------------------------------------------------------------- phones
    def phones(self, hh: _Household) -> None:
        rng, today = self.rng, self.today
        members = hh.members
        ages = [m.age(today) for m in members]
        head_age = ages[0]
        p_landline = 0.12 if head_age < 35 else 0.25 if head_age < 50 else 0.4 if head_age < 65 else 0.65
        if hh.kind == "roommates":
            p_landline = 0.0
        if rng.random() < p_landline:
            hh.landline = self.numbers.take(hh.city)
        for m, age in zip(members, ages, strict=True):
            p_mobile = 0.0 if age < 13 else 0.55 if age < 18 else 0.93 if age < 65 else 0.78 if age < 80 else 0.5
            if hh.kind == "single" and hh.landline is None:
                p_mobile = max(p_mobile, 0.97)
            if rng.random() < p_mobile:
                m.mobile = self.numbers.take(hh.city if rng.random() < 0.85 else self.city())
        guardians = sorted(
            {j for (i, j, code) in hh.relations if code in ("MTH", "FTH", "PRN")},
            key=lambda j: (members[j].mobile is None, j),
        )
        guardian_mobile = next((members[j].mobile for j in guardians if members[j].mobile), None)
        adults_with_mobile = [m.mobile for m, a in zip(members, ages, strict=True) if a >= 18 and m.mobile]

        for idx, (m, age) in enumerate(zip(members, ages, strict=True)):
            phones = m.phones
            if m.mobile:
                phones.append(_Phone(m.mobile, "mobile", self.fmt(m.mobile), True))
                if rng.random() < 0.03:  # the same number entered twice, as home too, typed differently
                    phones.append(_Phone(m.mobile, "home", self.fmt(m.mobile), True))
            if hh.landline:
                phones.append(_Phone(hh.landline, "home", self.fmt(hh.landline), True))
            is_dependant = age < 18 or (
                idx in {i for (i, _, c) in hh.relations if c in ("MTH", "FTH", "PRN")} and age < 25
            )
            if is_dependant and guardian_mobile and guardian_mobile != m.mobile:
                if hh.landline is None or rng.random() < 0.5:
                    use = "mobile" if rng.random() < 0.6 else "home"
                    phones.append(
                        _Phone(guardian_mobile, use, self.fmt(guardian_mobile), True, rank=2 if m.mobile else None)
                    )
            elif not m.mobile and not hh.landline and adults_with_mobile:
                # No number of their own: the record carries a spouse's or caregiver's mobile.
                other = next(n for n in adults_with_mobile if n != m.mobile)
                phones.append(_Phone(other, "home" if rng.random() < 0.5 else "mobile", self.fmt(other), True))
            elif (
                hh.kind in ("couple", "family", "multigen")
                and age >= 18
                and m.mobile
                and hh.landline is None
                and rng.random() < 0.12
            ):
                other = next((n for n in adults_with_mobile if n != m.mobile), None)
                if other:
                    phones.append(_Phone(other, "home", self.fmt(other), True, rank=2))
            if 22 <= age <= 66 and rng.random() < 0.08:
                work = self.numbers.take(self.city() if rng.random() < 0.2 else hh.city)
                text = self.fmt(work)
                if rng.random() < 0.35:
                    text += f" x{rng.randint(100, 9999)}" if rng.random() < 0.6 else f" ext. {rng.randint(10, 999)}"
                phones.append(_Phone(work, "work", text, True))
            if rng.random() < (0.2 if age >= 18 else 0.03):
                if self.recyclable and rng.random() < 0.1:
                    old = self.recyclable[rng.randrange(len(self.recyclable))]
                else:
                    old = self.numbers.take(hh.city if rng.random() < 0.7 else self.city())
                ended = self.days_ago(60, 365 * 9)
                period: dict[str, str] = {"end": ended.isoformat() if rng.random() < 0.8 else str(ended.year - 1)}
                if rng.random() < 0.3:
                    period = {
                        "start": date.fromordinal(ended.toordinal() - rng.randint(200, 3000)).isoformat(),
                        **period,
                    }
                phones.insert(
                    0 if rng.random() < 0.2 else len(phones), _Phone(old, "old", self.fmt(old), False, period=period)
                )
            current = [p for p in phones if p.current]
            if current and rng.random() < 0.4:
                current[0].rank = 1
            if current and rng.random() < 0.1:
                current[0].period = {"start": self.days_ago(30, 365 * 12).isoformat()}
        self.recyclable.extend(m.mobile for m in members if m.mobile)

    # ---------------------------------------------------------------- resources
    def mrn(self, n: int) -> str:
        return f"{(self.mrn_a * n + self.mrn_b) % 90_000_000 + 10_000_000}"

    def patient_json(self, m: _Person, hh: _Household, serial: int) -> FhirJson:
        rng, today = self.rng, self.today
        age = m.age(today)
        res: FhirJson = {"resourceType": "Patient", "id": m.id}
        day = self.days_ago(0, 900).isoformat()
        hour, minute, second = rng.randint(7, 19), rng.randint(0, 59), rng.randint(0, 59)
        meta: FhirJson = {"lastUpdated": f"{day}T{hour:02d}:{minute:02d}:{second:02d}Z"}
        r = rng.random()
        if r < 0.01:
            meta["security"] = [{"system": CONFIDENTIALITY_SYSTEM, "code": "R", "display": "restricted"}]
        elif r < 0.012:
            meta["security"] = [{"system": CONFIDENTIALITY_SYSTEM, "code": "V", "display": "very restricted"}]
        res["meta"] = meta
        mr_type = {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}], "text": "MRN"}
        identifiers: list[FhirJson] = [
            {
                "use": "usual",
                "type": mr_type,
                "system": MRN_SYSTEM,
                "value": self.mrn(serial),
                "assigner": {"display": "Synthetic Health System"},
            }
        ]
        if rng.random() < 0.05:
            legacy = {
                "use": "old",
                "type": mr_type,
                "system": LEGACY_MRN_SYSTEM,
                "value": f"L{rng.randint(100000, 999999)}",
                "period": {"end": self.days_ago(400, 4000).isoformat()},
            }
            identifiers.insert(0 if rng.random() < 0.3 else 1, legacy)
        res["identifier"] = identifiers
        res["active"] = rng.random() >= 0.015
        official: FhirJson = {"use": "official", "family": m.family, "given": list(m.given)}
        if m.suffix:
            official["suffix"] = [m.suffix]
        if rng.random() < 0.2:
            official = {
                "use": "official",
                "text": " ".join([*m.given, m.family, *([m.suffix] if m.suffix else [])]),
                **{k: v for k, v in official.items() if k != "use"},
            }
        names = [official]
        nick = T.NICKNAMES.get(m.given[0])
        if nick and rng.random() < 0.25:
            names.append({"use": "usual", "given": [nick]})
        if m.maiden and rng.random() < 0.6:
            maiden: FhirJson = {"use": "maiden", "family": m.maiden, "given": [m.given[0]]}
            if m.married_on:
                maiden["period"] = {"end": m.married_on.isoformat()}
            names.append(maiden)
        res["name"] = names
        telecom = [self.telecom_json(p) for p in m.phones]
        if age >= 18 and rng.random() < 0.45:
            local = f"{m.given[0]}.{m.family}".lower().replace(" ", "").replace("'", "")
            local = local.encode("ascii", "ignore").decode() or "patient"
            telecom.append(
                {
                    "system": "email",
                    "value": f"{local}{rng.randint(1, 99)}@{rng.choice(T.EMAIL_DOMAINS)}",
                    "use": "home",
                }
            )
        if telecom:
            res["telecom"] = telecom
        res["gender"] = m.sex
        res["birthDate"] = m.dob.isoformat()
        if age >= 75 and rng.random() < 0.03:
            res["deceasedDateTime"] = self.days_ago(1, 700).isoformat()
        addresses = [dict(hh.address)]
        if rng.random() < 0.1:
            old_city = self.city()
            old = self.address(old_city)
            old["use"] = "old"
            old["period"] = {"end": self.days_ago(90, 3000).isoformat()}
            addresses.append(old)
        res["address"] = addresses
        if m.marital and age >= 18:
            res["maritalStatus"] = {
                "coding": [{"system": MARITAL_SYSTEM, "code": m.marital, "display": _MARITAL[m.marital]}],
                "text": _MARITAL[m.marital],
            }
        if rng.random() < 0.16:
            code, display, _ = _LANGUAGES[bisect_left(_LANG_CUM, rng.random() * _LANG_CUM[-1])]
            res["communication"] = [
                {
                    "language": {"coding": [{"system": BCP47, "code": code, "display": display}], "text": display},
                    "preferred": True,
                }
            ]
        if m.links:
            res["link"] = [{"other": {"reference": f"RelatedPerson/{rp}"}, "type": "seealso"} for rp in m.links]
        return res

    @staticmethod
    def telecom_json(p: _Phone) -> FhirJson:
        out: FhirJson = {"system": "phone", "value": p.text, "use": p.use}
        if p.rank is not None:
            out["rank"] = p.rank
        if p.period is not None:
            out["period"] = p.period
        return out

    def related_json(self, rp_id: str, subject: _Person, person: _Person, code: str, address: FhirJson) -> FhirJson:
        display = _ROLE_DISPLAY[code]
        res: FhirJson = {
            "resourceType": "RelatedPerson",
            "id": rp_id,
            "active": True,
            "patient": {"reference": f"Patient/{subject.id}"},
            "relationship": [
                {
                    "coding": [{"system": ROLE_CODE_SYSTEM, "code": code, "display": display}],
                    "text": display.capitalize(),
                }
            ],
            "name": [{"use": "official", "family": person.family, "given": list(person.given)}],
        }
        best = next((p for p in person.phones if p.current and p.use in ("mobile", "home")), None)
        if best is not None:
            res["telecom"] = [{"system": "phone", "value": best.text, "use": best.use}]
        res["gender"] = person.sex
        if self.rng.random() < 0.9:
            res["birthDate"] = person.dob.isoformat()
        res["address"] = [dict(address)]
        return res

    def run(self, progress: Callable[[int, int], None] | None = None) -> tuple[list[FhirJson], list[FhirJson]]:
        rp_serial = 0
        next_report = 0
        while len(self.patients) < self.size:
            if progress is not None and len(self.patients) >= next_report:
                progress(len(self.patients), self.size)
                next_report = len(self.patients) + max(1, self.size // 200)
            hh = self.household()
            room = self.size - len(self.patients)
            if len(hh.members) > room:  # the last household is cut to fit; parents come first
                hh.members = hh.members[:room]
                hh.relations = [r for r in hh.relations if r[0] < room and r[1] < room]
            self.phones(hh)
            for offset, m in enumerate(hh.members, start=len(self.patients) + 1):
                m.id = f"pt-{offset:06d}"
            related: list[tuple[str, int, int, str]] = []
            for subject, person, code in hh.relations:
                rp_serial += 1
                rp_id = f"rp-{rp_serial:06d}"
                related.append((rp_id, subject, person, code))
                if self.rng.random() < 0.9:  # most records link the patient to the RelatedPerson they also are
                    hh.members[person].links.append(rp_id)
            for m in hh.members:
                serial = len(self.patients) + 1
                self.patients.append(self.patient_json(m, hh, serial))
                self.index_phones(m)
            for rp_id, subject, person, code in related:
                self.related.append(self.related_json(rp_id, hh.members[subject], hh.members[person], code, hh.address))
                self.relations.setdefault(hh.members[subject].id, []).append((rp_id, hh.members[person].id, code))
        if progress is not None:
            progress(self.size, self.size)
        return self.patients, self.related

    def directory(self, seed: int) -> tuple[dict[str, list[FhirJson]], dict[str, Any]]:
        """Clinics, clinicians and payors: names from their own stream (the same whatever the
        size), numbers from the patients' pool (so none is a patient's number)."""
        patients_rng = self.rng
        self.rng = _FastRandom(f"pa-tui/{seed}/directory")
        try:
            return _directory.build(self)
        finally:
            self.rng = patients_rng

    def index_phones(self, m: _Person) -> None:
        seen: set[str] = set()
        preferred: tuple[int, str] | None = None
        for p in m.phones:
            e164 = "+1" + p.national
            if p.current and p.use in ("mobile", "home"):
                score = 0 if p.rank == 1 else 1 if p.national == m.mobile else 2 if p.use == "mobile" else 3
                if preferred is None or score < preferred[0]:
                    preferred = (score, e164)
            if e164 in seen:
                # listed twice on one record: count once, current if either entry is
                if p.current:
                    self.index[e164] = [(i, c or i == m.id) for i, c in self.index[e164]]
                continue
            seen.add(e164)
            self.index.setdefault(e164, []).append((m.id, p.current))
        if preferred is None:
            preferred = next(((9, "+1" + p.national) for p in m.phones if p.current), None)
        if preferred is not None:
            self.preferred[m.id] = preferred[1]


# --------------------------------------------------------------------------- public
class Population:
    """A generated population: FHIR R4 JSON per resource type, plus the indexes demos need.

    Construct with :meth:`generate` (or :meth:`cached`). :attr:`resources` holds what is
    built up front: ``Patient``, ``RelatedPerson`` and the health system's directory
    (``Organization``, ``Location``, ``Practitioner``, ``PractitionerRole``). Each
    patient's clinical and billing record (the :attr:`record_types`) is built on first
    use by :meth:`records` and is the same whenever and in whatever order it is asked
    for. Resources are plain ``dict`` s (FHIR JSON); treat them as read-only — the
    sandbox and the demo share them.
    """

    #: Resource types generated per patient, on first access (see :mod:`.records`).
    record_types: Final = frozenset(RECORD_TYPES)

    def __init__(
        self,
        resources: dict[str, list[FhirJson]],
        *,
        seed: int,
        as_of: date,
        phone_holders: dict[str, list[tuple[str, bool]]],
        preferred_phone: dict[str, str],
        relations: dict[str, list[tuple[str, str, str]]] | None = None,
        directory_index: dict[str, Any] | None = None,
    ) -> None:
        self.seed = seed
        self.as_of = as_of
        self.resources = resources
        self.by_id: dict[str, FhirJson] = {p["id"]: p for p in resources.get("Patient", [])}
        self._holders = phone_holders
        self._preferred = preferred_phone
        self._relations = relations or {}
        #: ``{"City|ST": {"location": id, "staff": {specialty: [practitioner ids]}}}``
        self.directory_index: dict[str, Any] = directory_index or {}
        self.households: dict[str, list[str]] = {}
        for number, holders in phone_holders.items():
            current = [pid for pid, is_current in holders if is_current]
            if len(current) >= 2:
                self.households[number] = current
        self._single: list[str] | None = None
        self._household_numbers: list[str] | None = None
        self._records: dict[str, dict[str, list[FhirJson]]] = {}
        self._factory: RecordFactory | None = None
        self._schedule: tuple[array[int], array[int], list[str]] | None = None
        self._lock = threading.RLock()
        self._by_type_id: dict[str, dict[str, FhirJson]] = {}

    @classmethod
    def generate(
        cls,
        size: int = 500,
        seed: int = 7,
        *,
        as_of: date | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Population:
        """``size`` patients (exactly) in households, with their RelatedPersons and the directory.

        Same ``size``, ``seed`` and ``as_of`` → byte-identical resources (records too).
        ``as_of`` (default :data:`REFERENCE_DATE`) is the day ages, ended periods and
        appointments count from: a demo passes ``date.today()`` to have appointments
        "tomorrow". ``progress(done, total)`` is called as patients are built.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("size must be a whole number of patients, 0 or more")
        as_of = as_of or REFERENCE_DATE
        gen = _Generator(size, seed, as_of)
        # Building ~40 small dicts a patient: pause the cyclic GC (nothing here makes cycles).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            patients, related = gen.run(progress)
            directory, directory_index = gen.directory(seed)
        finally:
            if gc_was_enabled:
                gc.enable()
        return cls(
            {"Patient": patients, "RelatedPerson": related, **directory},
            seed=seed,
            as_of=as_of,
            phone_holders=gen.index,
            preferred_phone=gen.preferred,
            relations=gen.relations,
            directory_index=directory_index,
        )

    @classmethod
    def cached(
        cls,
        size: int = 100_000,
        seed: int = 7,
        *,
        as_of: date | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Population:
        """:meth:`generate`, kept on disk so the next start with the same arguments is quick.

        The cache lives under platformdirs' ``user_cache_path("pa-tui")/population`` (or
        ``cache_dir``), one file per ``(size, seed, as_of, generator version, Python)``;
        an unreadable or stale file is regenerated, and a cache that cannot be written
        is only a slower next start.
        """
        from pa_tui.demo.population import _cache

        return _cache.cached(cls, size, seed, as_of=as_of or REFERENCE_DATE, cache_dir=cache_dir, progress=progress)

    # ---------------------------------------------------------------- views
    @property
    def size(self) -> int:
        return len(self.patients)

    @property
    def patients(self) -> list[FhirJson]:
        return self.resources.get("Patient", [])

    @property
    def related_persons(self) -> list[FhirJson]:
        return self.resources.get("RelatedPerson", [])

    @property
    def practitioners(self) -> list[FhirJson]:
        return self.resources.get("Practitioner", [])

    @property
    def locations(self) -> list[FhirJson]:
        return self.resources.get("Location", [])

    @property
    def organizations(self) -> list[FhirJson]:
        return self.resources.get("Organization", [])

    def resource(self, resource_type: str, resource_id: str) -> FhirJson | None:
        """One resource by type and id, generating its patient's record if need be."""
        if resource_type == "Patient":
            return self.by_id.get(resource_id)
        if resource_type in self.record_types:
            pid = self.patient_for(resource_type, resource_id)
            if pid is None:
                return None
            return next((r for r in self.records(pid)[resource_type] if r["id"] == resource_id), None)
        index = self._by_type_id.get(resource_type)
        if index is None:
            index = self._by_type_id[resource_type] = {r["id"]: r for r in self.resources.get(resource_type, [])}
        return index.get(resource_id)

    def all_resources(self) -> Iterator[FhirJson]:
        """Every resource, records included (this generates every patient's record)."""
        for items in self.resources.values():
            yield from items
        yield from self.iter_records()

    # ---------------------------------------------------------------- records
    def _records_factory(self) -> RecordFactory:
        if self._factory is None:
            self._factory = RecordFactory(self)
        return self._factory

    def relations_of(self, patient_id: str) -> list[tuple[str, str, str]]:
        """``[(RelatedPerson id, patient id, v3-RoleCode)]``: the household members this patient's
        record names, each read "the other patient is my CODE" (e.g. ``MTH``: my mother)."""
        return list(self._relations.get(patient_id, ()))

    def records(self, patient_id: str) -> dict[str, list[FhirJson]]:
        """This patient's record per type (:attr:`record_types`), built on first call.

        Raises ``KeyError`` for an id that is not a generated patient.
        """
        found = self._records.get(patient_id)
        if found is not None:
            return found
        with self._lock:
            found = self._records.get(patient_id)
            if found is None:
                if patient_id not in self.by_id:
                    raise KeyError(patient_id)
                found = self._records[patient_id] = self._records_factory().records(patient_id)
        return found

    def patient_for(self, resource_type: str, resource_id: str) -> str | None:
        """The patient whose generated record holds ``resource_type/resource_id``, from the id alone."""
        prefix, _, rest = resource_id.partition("-")
        if ID_PREFIX.get(resource_type) != prefix:
            return None
        pid = "pt-" + rest.partition("-")[0]
        return pid if pid in self.by_id else None

    def iter_records(self, resource_type: str | None = None) -> Iterator[FhirJson]:
        """Every patient's records (optionally of one type), in patient order. Generates them all."""
        for pid in self.by_id:
            for rtype, items in self.records(pid).items():
                if resource_type is None or rtype == resource_type:
                    yield from items

    def _appointment_schedule(self) -> tuple[array[int], array[int], list[str]]:
        with self._lock:
            if self._schedule is None:
                factory = self._records_factory()
                ids = list(self.by_id)
                by_day: list[int] = []
                by_second: list[int] = []
                for index, pid in enumerate(ids):
                    for ordinal, seconds in factory.schedule(pid):
                        by_day.append(ordinal << _PATIENT_BITS | index)
                        by_second.append(seconds << _PATIENT_BITS | index)
                by_day.sort()
                by_second.sort()
                self._schedule = (array("q", by_day), array("q", by_second), ids)
            return self._schedule

    def appointment_patients(
        self, *, days: tuple[int, int] | None = None, seconds: tuple[int, int] | None = None
    ) -> set[str]:
        """Patients with a generated appointment starting within an inclusive range of local
        dates (``date.toordinal()``) or of UTC instants (epoch seconds). Cheap after the first
        call (which plans, but does not build, every patient's appointments)."""
        by_day, by_second, ids = self._appointment_schedule()
        keys, (lo, hi) = (by_day, days) if days is not None else (by_second, seconds or (0, 0))
        if days is None and seconds is None:
            return set(ids)
        start = bisect_left(keys, max(lo, 0) << _PATIENT_BITS)
        stop = bisect_left(keys, (max(hi, -1) + 1) << _PATIENT_BITS)
        mask = (1 << _PATIENT_BITS) - 1
        return {ids[k & mask] for k in keys[start:stop]}

    def appointments_on(self, day: date) -> list[FhirJson]:
        """Generated appointments starting on ``day`` (the clinic's local date), any status."""
        ordinal = day.toordinal()
        out = []
        for pid in sorted(self.appointment_patients(days=(ordinal, ordinal))):
            out += [a for a in self.records(pid)["Appointment"] if a["start"][:10] == day.isoformat()]
        return out

    def holders(self, number: str) -> list[str]:
        """Ids of every patient whose record lists ``number`` (E.164), current or old, in order."""
        return [pid for pid, _ in self._holders.get(number, ())]

    def numbers(self) -> list[str]:
        """Every E.164 number on any patient record, in generation order."""
        return list(self._holders)

    # ---------------------------------------------------------------- callers for demos
    def _usable(self, pid: str) -> bool:
        p = self.by_id[pid]
        return bool(p.get("active", True)) and "deceasedDateTime" not in p and "deceasedBoolean" not in p

    def single_caller_numbers(self) -> list[str]:
        """Numbers that identify exactly one (active, living) patient: a call from one pops one card."""
        if self._single is None:
            preferred = set(self._preferred.values())
            self._single = [
                n
                for n, holders in self._holders.items()
                if len(holders) == 1 and holders[0][1] and n in preferred and self._usable(holders[0][0])
            ]
        return list(self._single)

    def household_numbers(self) -> list[str]:
        """Numbers shared as a current number by several patients: a call from one pops a chooser."""
        if self._household_numbers is None:
            self._household_numbers = [
                n
                for n, ids in self.households.items()
                if all(self._usable(pid) for pid in ids) and all(c for _, c in self._holders[n])
            ]
        return list(self._household_numbers)

    def recycled_numbers(self) -> list[str]:
        """Numbers that are one patient's current number and another's ``use: old`` one."""
        return [
            n for n, holders in self._holders.items() if any(c for _, c in holders) and any(not c for _, c in holders)
        ]

    def patient_phone(self, patient_id: str) -> str:
        """The E.164 number this patient would call from (their preferred current mobile or home).

        Raises ``KeyError`` for an unknown id and ``LookupError`` for a patient with no number.
        """
        if patient_id not in self.by_id:
            raise KeyError(patient_id)
        try:
            return self._preferred[patient_id]
        except KeyError:
            raise LookupError(f"patient {patient_id} has no current phone number") from None

    @staticmethod
    def unlisted_numbers(count: int = 100) -> list[str]:
        """Valid numbers no generated patient has (555-0100…0199 in the population's area codes)."""
        out: list[str] = []
        for area in _ALL_AREA_CODES:
            for line in range(100, 200):
                if len(out) >= count:
                    return out
                out.append(f"+1{area}555{line:04d}")
        return out

    def shared_fraction(self) -> float:
        """Share of patients holding a current number that another patient also holds."""
        if not self.patients:
            return 0.0
        sharing = {pid for ids in self.households.values() for pid in ids}
        return len(sharing) / len(self.patients)

    def to_bundle(self, bundle_type: str = "collection") -> FhirJson:
        """Every resource, records included, in one Bundle (e.g. to export the population to a
        real FHIR server). Generates every patient's record."""
        return {
            "resourceType": "Bundle",
            "type": bundle_type,
            "entry": [{"fullUrl": f"urn:uuid:{_uuid_for(r)}", "resource": r} for r in self.all_resources()],
        }


def _uuid_for(resource: FhirJson) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pa-tui:{resource['resourceType']}/{resource['id']}"))
