"""The sections of a patient record, as small views the tabs render. Pure."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.phones import PhoneNumber


class Section(StrEnum):
    SUMMARY = "summary"
    APPOINTMENTS = "appointments"
    REFERRALS = "referrals"
    BILLING = "billing"
    PRESCRIPTIONS = "prescriptions"
    CARE_TEAM = "care-team"
    NOTES = "notes"

    @property
    def label(self) -> str:
        return {
            Section.SUMMARY: "Summary",
            Section.APPOINTMENTS: "Appointments",
            Section.REFERRALS: "Referrals",
            Section.BILLING: "Billing",
            Section.PRESCRIPTIONS: "Prescriptions",
            Section.CARE_TEAM: "Care team",
            Section.NOTES: "Notes",
        }[self]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class Appointment(_View):
    id: str
    status: str  # FHIR Appointment.status: booked, fulfilled, cancelled, noshow…
    start: datetime | None = None
    end: datetime | None = None
    description: str | None = None
    service: str | None = None
    practitioner: str | None = None
    location: str | None = None
    patient_status: str | None = None  # the patient participant's status (accepted, needs-action…)


class Referral(_View):
    id: str
    status: str
    intent: str | None = None
    category: str | None = None
    code: str | None = None
    authored: datetime | None = None
    requester: str | None = None
    performer: str | None = None
    reason: str | None = None


class Money(_View):
    value: Decimal
    currency: str = "USD"

    def __str__(self) -> str:
        sign = "-" if self.value < 0 else ""
        symbol = "$" if self.currency == "USD" else f"{self.currency} "
        return f"{sign}{symbol}{abs(self.value):,.2f}"


class AccountView(_View):
    id: str
    name: str | None = None
    status: str | None = None
    balance: Money | None = None
    guarantor: str | None = None


class CoverageView(_View):
    id: str
    status: str | None = None
    payor: str | None = None
    plan: str | None = None
    subscriber_id: str | None = None
    relationship: str | None = None
    period_end: date | None = None


class ClaimView(_View):
    """A recent ExplanationOfBenefit."""

    id: str
    status: str | None = None
    outcome: str | None = None
    created: datetime | None = None
    provider: str | None = None
    total: Money | None = None
    patient_owes: Money | None = None


class Billing(_View):
    accounts: tuple[AccountView, ...] = ()
    coverages: tuple[CoverageView, ...] = ()
    claims: tuple[ClaimView, ...] = ()

    @property
    def balance(self) -> Money | None:
        values = [a.balance for a in self.accounts if a.balance is not None]
        if not values:
            return None
        return Money(value=sum((m.value for m in values), Decimal(0)), currency=values[0].currency)


class Prescription(_View):
    id: str
    status: str
    medication: str
    authored: datetime | None = None
    dosage: str | None = None
    refills: int | None = None
    prescriber: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status == "active"


class CareTeamMember(_View):
    name: str
    role: str | None = None
    phone: PhoneNumber | None = None
    team: str | None = None


class ClinicalNote(_View):
    """A note in the EHR (DocumentReference)."""

    id: str
    date: datetime | None = None
    type: str | None = None
    author: str | None = None
    text: str | None = None
    status: str | None = None


class SectionUnavailable(_View):
    """The EHR profile does not expose this section (e.g. athena billing)."""

    section: Section
    reason: str
