"""Agents, patients and record views: the pure parts the screens rely on."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from pa_tui.domain.agents import DutyStatus
from pa_tui.domain.patients import CallerMatch, PatientSummary
from pa_tui.domain.records import AccountView, Billing, Money


@pytest.mark.parametrize(
    ("raw", "status", "on_duty"),
    [
        ("available", DutyStatus.AVAILABLE, True),
        ("busy", DutyStatus.BUSY, True),
        ("occupied", DutyStatus.OCCUPIED, True),
        ("occupied-end", DutyStatus.AVAILABLE, True),
        ("wrapup", DutyStatus.WRAPUP, True),
        ("wrapup-end", DutyStatus.AVAILABLE, True),
        ("unavailable", DutyStatus.UNAVAILABLE, False),
        ("Off_Duty", DutyStatus.UNAVAILABLE, False),
        ("teleported", DutyStatus.UNKNOWN, False),
        (None, DutyStatus.UNKNOWN, False),
    ],
)
def test_duty_status_parses_dialpad_values(raw: object, status: DutyStatus, on_duty: bool) -> None:
    parsed = DutyStatus.parse(raw)
    assert parsed is status
    assert parsed.on_duty is on_duty
    assert parsed.label


def test_age_and_dob_labels() -> None:
    p = PatientSummary(id="1", display_name="Ana Diaz", birth_date=date(1984, 3, 14))
    assert p.age(date(2026, 3, 13)) == 41
    assert p.age(date(2026, 3, 14)) == 42
    assert p.age_label(date(2026, 11, 21)) == "42 y"
    assert p.dob_label == "03/14/1984"
    baby = PatientSummary(id="2", birth_date=date(2026, 5, 30))
    assert baby.age_label(date(2026, 11, 21)) == "5 mo"
    unknown = PatientSummary(id="3")
    assert unknown.age(date(2026, 1, 1)) is None
    assert unknown.age_label(date(2026, 1, 1)) == "age unknown"
    assert unknown.dob_label == "unknown"


def test_caller_match_kinds() -> None:
    a = PatientSummary(id="a")
    b = PatientSummary(id="b")
    assert CallerMatch().kind == "none"
    assert CallerMatch(candidates=(a,)).kind == "single"
    assert CallerMatch(candidates=(a, b)).kind == "household"


def test_billing_balance_sums_accounts_and_formats_money() -> None:
    billing = Billing(
        accounts=(
            AccountView(id="1", balance=Money(value=Decimal("120.50"))),
            AccountView(id="2", balance=Money(value=Decimal("-20.25"))),
            AccountView(id="3"),
        )
    )
    assert str(billing.balance) == "$100.25"
    assert str(Money(value=Decimal("-1234.5"))) == "-$1,234.50"
    assert Billing().balance is None
