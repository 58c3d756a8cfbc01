"""Verifying a caller's identity before PHI shows, and the privacy mask. Pure: no I/O.

The agent types what the caller says; :func:`check_answers` compares it with the
record and reports, per field, only whether it matched — never the stored value,
so nothing on screen can be read back to the caller.

Comparison is tolerant the way callers are: dates in any common spelling
(03/14/1984, 3/14/84, 1984-03-14, 14 Mar 1984, March 14th, 1984), case and
punctuation ignored, leading zeros ignored in identifiers and house numbers,
street types and unit designators ("St" / "Street", "Apt 4") ignored.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.patients import Address, PatientSummary
from pa_tui.domain.phones import CallerNumber, NoCallerId, PhoneNumber, UnreadableNumber, format_human, same_number

__all__ = [
    "FIELDS",
    "FIELD_LABELS",
    "MASKED_DOB",
    "MASKED_MRN",
    "MASKED_NUMBER",
    "FieldCheck",
    "Verification",
    "available_fields",
    "check_answers",
    "check_field",
    "dob_for",
    "mask_dob",
    "mask_mrn",
    "mask_name",
    "mask_number",
    "mrn_for",
    "name_for",
    "normalize_id",
    "normalize_words",
    "number_for",
    "parse_dob",
]

# --------------------------------------------------------------------------- fields
FIELDS: Final = ("dob", "address", "mrn", "phone_last4")
FIELD_LABELS: Final[dict[str, str]] = {
    "dob": "Date of birth",
    "address": "Address",
    "mrn": "MRN",
    "phone_last4": "Phone (last 4)",
}
OVERRIDE: Final = "override"


class FieldCheck(StrEnum):
    """How one answer compared. Says nothing about the stored value."""

    EMPTY = "empty"  # nothing typed yet
    UNREADABLE = "unreadable"  # typed, but not something we can compare (e.g. not a date)
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_ON_FILE = "not-on-file"  # the record has nothing to compare with

    @property
    def answered(self) -> bool:
        return self in (FieldCheck.MATCH, FieldCheck.MISMATCH)


class Verification(BaseModel):
    """The outcome of a verification step, as the App audits it."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    methods: tuple[str, ...] = ()  # fields that matched, or ("override",)
    failed: tuple[str, ...] = ()  # fields answered that did not match
    at: datetime
    reason: str | None = None  # override reason, or why verification was abandoned
    patient_id: str | None = None

    @property
    def override(self) -> bool:
        return OVERRIDE in self.methods


# --------------------------------------------------------------------------- text normalisation
_PUNCT_RE: Final = re.compile(r"[^\w\s]|_", re.UNICODE)


def _fold(text: str) -> str:
    """Case-folded, accents stripped."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def normalize_words(text: str) -> tuple[str, ...]:
    """Words, case-folded, punctuation dropped: "123 N. Main-St." -> ("123", "n", "main", "st")."""
    return tuple(_PUNCT_RE.sub(" ", _fold(text)).split())


def normalize_id(text: str) -> str:
    """An identifier compared tolerantly: letters and digits only, upper case, no leading zeros.

    A leading "MRN" label is dropped ("MRN: 00123" -> "123").
    """
    compact = "".join(ch for ch in _fold(text) if ch.isalnum()).upper()
    if compact.startswith("MRN") and len(compact) > 3:
        compact = compact[3:]
    return compact.lstrip("0") or ("0" if compact else "")


# --------------------------------------------------------------------------- dates
_MONTHS: Final[dict[str, int]] = {}
for _i, _names in enumerate(
    (
        ("jan", "january"),
        ("feb", "february"),
        ("mar", "march"),
        ("apr", "april"),
        ("may",),
        ("jun", "june"),
        ("jul", "july"),
        ("aug", "august"),
        ("sep", "sept", "september"),
        ("oct", "october"),
        ("nov", "november"),
        ("dec", "december"),
    ),
    start=1,
):
    for _n in _names:
        _MONTHS[_n] = _i

_ORDINAL_RE: Final = re.compile(r"(\d+)(st|nd|rd|th)\b")
_DATE_SPLIT_RE: Final = re.compile(r"[\s/\-.,]+")
MIN_YEAR: Final = 1850


def _full_year(token: str, month: int, day: int, today: date | None) -> int | None:
    if len(token) == 4:
        return int(token)
    if len(token) != 2:
        return None
    yy = int(token)
    ref = today or date.today()
    year = 2000 + yy
    # A date of birth is never in the future: "3/14/84" is 1984, "1/2/25" is 2025 until then.
    try:
        if date(year, month, day) > ref:
            year -= 100
    except ValueError:
        return year  # an impossible day: let the caller's date() reject it
    return year


def _make_date(year: int | None, month: int, day: int) -> date | None:
    if year is None or year < MIN_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_dob(text: str, today: date | None = None, *, compact: bool = True) -> date | None:
    """A date of birth as a caller says it and an agent types it, or ``None``.

    Accepts 03/14/1984, 3/14/84, 03-14-1984, 03.14.1984, 1984-03-14, 1984/3/14,
    14 Mar 1984, Mar 14 1984, March 14th, 1984, 14-MAR-84 and, when ``compact``,
    03141984 / 031484. Numeric dates are month first (US) unless only the other
    order is possible (14/03/1984). Two-digit years are the latest year that is
    not in the future of ``today``.
    """
    folded = _ORDINAL_RE.sub(r"\1", _fold(text.strip()))
    if not folded:
        return None
    tokens = [t for t in _DATE_SPLIT_RE.split(folded) if t]
    if len(tokens) == 1 and compact and tokens[0].isdigit() and len(tokens[0]) in (6, 8):
        t = tokens[0]
        tokens = [t[:2], t[2:4], t[4:]]
    if len(tokens) != 3:
        return None
    months = [i for i, t in enumerate(tokens) if t in _MONTHS]
    if any(not t.isdigit() for i, t in enumerate(tokens) if i not in months):
        return None
    if len(months) > 1:
        return None
    if len(months) == 1:
        month = _MONTHS[tokens[months[0]]]
        a, b = (t for i, t in enumerate(tokens) if i not in months)
        if len(a) == 4 and len(b) <= 2:  # 1984 Mar 14
            return _make_date(int(a), month, int(b))
        if len(a) <= 2 and len(b) in (2, 4):  # 14 Mar 1984 / Mar 14 1984 / 14-Mar-84
            day = int(a)
            return _make_date(_full_year(b, month, day, today), month, day)
        return None
    a, b, c = tokens
    if len(a) == 4 and len(b) <= 2 and len(c) <= 2:  # ISO order
        return _make_date(int(a), int(b), int(c))
    if len(a) <= 2 and len(b) <= 2 and len(c) in (2, 4):
        month, day = int(a), int(b)
        if month > 12 >= day:  # 14/03/1984: only day-first is possible
            month, day = day, month
        return _make_date(_full_year(c, month, day, today), month, day)
    return None


# --------------------------------------------------------------------------- addresses
_STREET_TYPES: Final = frozenset(
    {
        "st", "street", "ave", "av", "avenue", "rd", "road", "dr", "drive", "ln", "lane", "blvd",
        "boulevard", "ct", "court", "way", "pl", "place", "ter", "terr", "terrace", "cir", "circle",
        "pkwy", "parkway", "hwy", "highway", "sq", "square", "trl", "trail", "loop", "aly", "alley",
    }
)  # fmt: skip
_DIRECTIONS: Final = frozenset(
    {"n", "s", "e", "w", "ne", "nw", "se", "sw", "north", "south", "east", "west",
     "northeast", "northwest", "southeast", "southwest"}
)  # fmt: skip
_UNIT_WORDS: Final = frozenset({"apt", "apartment", "unit", "ste", "suite", "fl", "floor", "rm", "room", "bldg"})


def _street_parts(address: Address) -> tuple[str | None, tuple[str, ...]]:
    """(house number without leading zeros, core street-name words) of the first address line."""
    if not address.line:
        return None, ()
    words = list(normalize_words(address.line[0]))
    number = None
    if words and words[0][:1].isdigit():
        number = re.sub(r"\D.*$", "", words.pop(0)).lstrip("0") or "0"
    core: list[str] = []
    for w in words:
        if w in _UNIT_WORDS:
            break
        if w in _STREET_TYPES or w in _DIRECTIONS:
            continue
        core.append(w)
    return number, tuple(core)


def _zip5(address: Address) -> str | None:
    digits = re.sub(r"\D", "", address.postal_code or "")
    return digits[:5] if len(digits) >= 5 else None


_HOUSE_NUMBER_RE: Final = re.compile(r"^(\d+)[a-z]?$")


def _address_on_file(address: Address | None) -> bool:
    if address is None:
        return False
    number, core = _street_parts(address)
    return number is not None and (_zip5(address) is not None or bool(core))


def _check_address(address: Address, answer: str) -> FieldCheck:
    """House number, plus the zip code or the street name."""
    number, core = _street_parts(address)
    zip5 = _zip5(address)
    words = normalize_words(answer)
    numbers: Counter[str] = Counter()
    name_words: set[str] = set()
    for w in words:
        m = _HOUSE_NUMBER_RE.match(w)
        if m:
            numbers[m.group(1).lstrip("0") or "0"] += 1
        elif w not in _STREET_TYPES and w not in _DIRECTIONS:
            name_words.add(w)
    if not numbers:
        return FieldCheck.UNREADABLE  # a street number is always needed
    if numbers[number or ""] < 1:
        return FieldCheck.MISMATCH
    numbers[number or ""] -= 1  # the zip must be a different token from the house number
    zip_ok = zip5 is not None and any(n > 0 and len(w) >= 3 and w.zfill(5) == zip5 for w, n in numbers.items())
    name_ok = bool(core) and all(w in name_words for w in core)
    if zip_ok or name_ok:
        return FieldCheck.MATCH
    if not name_words and sum(numbers.values()) == 0:
        return FieldCheck.UNREADABLE  # the house number alone proves nothing: ask for the zip or street
    return FieldCheck.MISMATCH


# --------------------------------------------------------------------------- phones
def _other_phones(patient: PatientSummary, caller: CallerNumber | None) -> list[PhoneNumber]:
    return [p.number for p in patient.phones if p.current and not same_number(p.number, caller)]


def available_fields(patient: PatientSummary, caller: CallerNumber | None = None) -> dict[str, bool]:
    """Which fields the record can be checked against (True) — never their values."""
    return {
        "dob": patient.birth_date is not None,
        "address": _address_on_file(patient.address),
        "mrn": bool(patient.mrn and normalize_id(patient.mrn)),
        "phone_last4": bool(_other_phones(patient, caller)),
    }


# --------------------------------------------------------------------------- checking
def check_field(
    patient: PatientSummary,
    field: str,
    answer: str,
    *,
    today: date | None = None,
    caller: CallerNumber | None = None,
) -> FieldCheck:
    """Compare one answer with the record."""
    if field not in FIELDS:
        raise ValueError(f"unknown verification field {field!r}")
    if not available_fields(patient, caller)[field]:
        return FieldCheck.NOT_ON_FILE
    if not answer.strip():
        return FieldCheck.EMPTY
    if field == "address":
        assert patient.address is not None
        return _check_address(patient.address, answer)
    if field == "dob":
        parsed = parse_dob(answer, today)
        if parsed is None:
            return FieldCheck.UNREADABLE
        return FieldCheck.MATCH if parsed == patient.birth_date else FieldCheck.MISMATCH
    if field == "mrn":
        typed = normalize_id(answer)
        if not typed:
            return FieldCheck.UNREADABLE
        assert patient.mrn is not None
        return FieldCheck.MATCH if typed == normalize_id(patient.mrn) else FieldCheck.MISMATCH
    # phone_last4
    digits = re.sub(r"\D", "", answer)
    if len(digits) < 4:
        return FieldCheck.UNREADABLE
    last4 = digits[-4:]
    return FieldCheck.MATCH if any(n.last4 == last4 for n in _other_phones(patient, caller)) else FieldCheck.MISMATCH


def check_answers(
    patient: PatientSummary,
    answers: Mapping[str, str],
    *,
    required: Iterable[str] = ("dob",),
    one_of: Iterable[str] = ("address", "mrn", "phone_last4"),
    today: date | None = None,
    caller: CallerNumber | None = None,
    at: datetime | None = None,
) -> Verification:
    """Compare what the caller said with the record.

    Passes when every ``required`` field matches and, if ``one_of`` is not empty,
    at least one of those matches too. ``methods`` lists the fields that matched,
    ``failed`` those answered that did not (unreadable or empty answers are neither).
    """
    required = tuple(required)
    one_of = tuple(one_of)
    for name in (*required, *one_of, *answers):
        if name not in FIELDS:
            raise ValueError(f"unknown verification field {name!r}")
    results = {
        name: check_field(patient, name, answers.get(name, ""), today=today, caller=caller)
        for name in dict.fromkeys((*required, *one_of))
    }
    methods = tuple(name for name, r in results.items() if r is FieldCheck.MATCH)
    failed = tuple(name for name, r in results.items() if r is FieldCheck.MISMATCH)
    passed = all(results[n] is FieldCheck.MATCH for n in required) and (
        not one_of or any(results[n] is FieldCheck.MATCH for n in one_of)
    )
    return Verification(
        passed=passed,
        methods=methods,
        failed=failed,
        at=at or datetime.now(UTC),
        patient_id=patient.id,
    )


# --------------------------------------------------------------------------- privacy mask
MASKED_DOB: Final = "••/••/••••"
MASKED_NUMBER: Final = "(•••) •••-••••"
MASKED_MRN: Final = "•••••"


def mask_name(index: int = 1) -> str:
    """A stand-in for a patient's name: "Patient 1", "Patient 2", …"""
    return f"Patient {index}"


def mask_dob() -> str:
    return MASKED_DOB


def mask_number() -> str:
    return MASKED_NUMBER


def mask_mrn() -> str:
    return MASKED_MRN


def name_for(patient: PatientSummary, index: int = 1, *, masked: bool = False) -> str:
    return mask_name(index) if masked else patient.display_name


def dob_for(patient: PatientSummary, *, masked: bool = False) -> str:
    if patient.birth_date is None:
        return "unknown"
    return MASKED_DOB if masked else patient.dob_label


def number_for(number: CallerNumber | str | None, *, masked: bool = False, region: str = "US") -> str:
    """A phone number for display; a label that is not a parsed number is masked whole when it holds digits."""
    if isinstance(number, str):
        if masked and any(ch.isdigit() for ch in number):
            return MASKED_NUMBER
        return number
    if masked and isinstance(number, PhoneNumber):
        return MASKED_NUMBER
    if number is None or isinstance(number, NoCallerId | UnreadableNumber):
        return format_human(number)
    return format_human(number, region)


def mrn_for(mrn: str | None, *, masked: bool = False) -> str:
    if not mrn:
        return "—"
    return MASKED_MRN if masked else mrn
