"""Patients as the console shows them: small views, not whole FHIR resources. Pure."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.enums import LenientEnum
from pa_tui.domain.phones import PhoneNumber


class PhoneUse(LenientEnum):
    HOME = "home"
    MOBILE = "mobile"
    WORK = "work"
    TEMP = "temp"
    OLD = "old"
    OTHER = "other"


class PatientPhone(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: PhoneNumber
    use: PhoneUse = PhoneUse.OTHER
    rank: int | None = None
    current: bool = True  # False when the period has ended or use is "old"


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: tuple[str, ...] = ()
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None

    def one_line(self) -> str:
        parts = [", ".join(self.line), self.city or "", " ".join(p for p in (self.state, self.postal_code) if p)]
        return ", ".join(p for p in parts if p)


class PatientSummary(BaseModel):
    """What the card, the chooser and the search results need of a patient."""

    model_config = ConfigDict(frozen=True)

    id: str  # the EHR's resource id
    mrn: str | None = None
    given: str | None = None
    family: str | None = None
    display_name: str = "(no name)"
    birth_date: date | None = None
    sex: str | None = None
    phones: tuple[PatientPhone, ...] = ()
    address: Address | None = None
    active: bool = True
    deceased: bool = False
    relationship: str | None = None  # to the household's guarantor / the number's owner, when known
    household_id: str | None = None
    restricted_reason: str | None = None  # e.g. "confidential record", "minor"
    last_seen: datetime | None = None

    def age(self, today: date) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return today.year - b.year - ((today.month, today.day) < (b.month, b.day))

    def age_label(self, today: date) -> str:
        age = self.age(today)
        if age is None:
            return "age unknown"
        if age < 2 and self.birth_date is not None:
            months = (today.year - self.birth_date.year) * 12 + today.month - self.birth_date.month
            months -= today.day < self.birth_date.day
            return f"{max(months, 0)} mo"
        return f"{age} y"

    @property
    def dob_label(self) -> str:
        return self.birth_date.strftime("%m/%d/%Y") if self.birth_date else "unknown"


class MatchSource(StrEnum):
    PHONE_SEARCH = "phone-search"
    KNOWN_CALLER = "known-caller"
    SEARCH = "search"
    HANDOFF = "handoff"


class CallerMatch(BaseModel):
    """The outcome of identifying a caller by number."""

    model_config = ConfigDict(frozen=True)

    candidates: tuple[PatientSummary, ...] = ()
    source: MatchSource = MatchSource.PHONE_SEARCH
    phone_search_supported: bool = True
    known_since: datetime | None = None

    @property
    def kind(self) -> str:
        n = len(self.candidates)
        return "none" if n == 0 else "single" if n == 1 else "household"
