"""VerifyScreen: the identity check before PHI shows. Only ✓/✗ ever shows, never the record's value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from textual.widgets import Input

from pa_tui.domain.phones import parse_phone
from pa_tui.domain.verification import Verification
from pa_tui.screens.verify import VerifyScreen
from tests.ui.test_screen_support import SIZES_AND_THEMES, TODAY, ScreenHarness, family, screen_text, type_text

MARIA = family()[0]
AT = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
CALLER = parse_phone("(408) 555-1212")
# What must never appear unless the agent typed it: the record's own values.
RECORD_VALUES = ("03/14/1984", "1984-03-14", "3/14/1984", "00482913", "482913", "Evergreen", "95014", "9876")


def harness(masked: bool = False, theme: str = "textual-dark", **kwargs: object) -> ScreenHarness:
    return ScreenHarness(
        lambda: VerifyScreen(MARIA, today=TODAY, masked=masked, caller=CALLER, clock=lambda: AT, **kwargs),  # type: ignore[arg-type]
        theme=theme,
    )


def assert_no_record_values(text: str, typed: str = "") -> None:
    for value in RECORD_VALUES:
        if value not in typed:
            assert value not in text, f"{value!r} shown on screen"


@pytest.mark.parametrize(
    ("size", "dob"),
    [pytest.param((80, 24), "3/14/84", id="80x24"), pytest.param((160, 48), "March 14th, 1984", id="160x48")],
)  # every spelling is covered in tests/unit/test_verification.py
async def test_passes_with_tolerant_dob_and_mrn(size: tuple[int, int], dob: str) -> None:
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "Verify the caller — Maria Garcia" in text
        assert_no_record_values(text)
        await type_text(pilot, dob)
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "✓ matches" in text and app.results == []
        assert_no_record_values(text, typed=dob)
        # Focus moved on to the alternatives; the MRN as the caller reads it, zeros dropped.
        await pilot.press("tab")
        await type_text(pilot, "mrn 482913")
        await pilot.press("enter")
        await pilot.pause()
    (result,) = app.results
    assert isinstance(result, Verification)
    assert result.passed and result.methods == ("dob", "mrn") and result.failed == ()
    assert result.at == AT and result.patient_id == "pat-1" and result.reason is None


async def test_address_by_number_and_zip_or_street() -> None:
    app = harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_text(pilot, "1984-03-14")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.focused is app.screen.query_one("#answer-address", Input)
        await type_text(pilot, "742")
        await pilot.press("enter")
        await pilot.pause()
        assert "? add the zip or street" in screen_text(app)
        await pilot.press("end")  # the answer is selected for retyping; add to it instead
        await type_text(pilot, " evergreen terrace")
        await pilot.press("enter")
        await pilot.pause()
    assert app.results[0].passed and app.results[0].methods == ("dob", "address")


async def test_phone_last4_counts_only_another_number_than_the_callers() -> None:
    app = harness()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await type_text(pilot, "03/14/1984")
        await pilot.press("enter")
        await pilot.pause()
        app.screen.query_one("#answer-phone-last4", Input).focus()
        await type_text(pilot, "1212")
        await pilot.press("enter")  # the number they are calling from proves nothing
        await pilot.pause()
        assert "✗ does not match" in screen_text(app) and app.results == []
        await pilot.press("ctrl+u")
        await type_text(pilot, "9876")
        await pilot.press("enter")
        await pilot.pause()
    assert app.results[0].methods == ("dob", "phone_last4")


async def test_wrong_answers_show_only_a_cross_and_can_be_recorded_as_failed() -> None:
    size = (160, 48)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await type_text(pilot, "3/15/1984")
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "✗ does not match (2 left)" in text
        assert_no_record_values(text)
        assert app.screen.focused is app.screen.query_one("#answer-dob", Input)  # stays for a retry
        await type_text(pilot, "hello")
        await pilot.press("enter")
        await pilot.pause()
        assert "? not a date" in screen_text(app)
        await pilot.press("ctrl+n")
        await pilot.pause()
    (result,) = app.results
    assert result.passed is False and result.failed == ("dob",) and result.reason == "caller could not verify"


async def test_three_wrong_dates_lock_the_field() -> None:
    app = harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dob = app.screen.query_one("#answer-dob", Input)
        for wrong in ("1/1/1980", "1/2/1980", "1/3/1980"):
            dob.focus()
            await pilot.press("ctrl+u")
            await type_text(pilot, wrong)
            await pilot.press("enter")
            await pilot.pause()
        assert dob.disabled
        text = screen_text(app)
        assert "· locked" in text and "Cannot verify from the record now" in text
        await pilot.press("ctrl+n")
        await pilot.pause()
    assert app.results[0].passed is False


async def test_supervisor_override_needs_a_reason() -> None:
    size = (80, 24)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert "Supervisor override" in screen_text(app)
        await pilot.press("enter")  # no reason yet: nothing happens
        await pilot.pause()
        assert app.results == []
        await pilot.press("escape")  # back to the questions, not out of the screen
        await pilot.pause()
        assert app.results == [] and app.screen.focused is app.screen.query_one("#answer-dob", Input)
        await pilot.press("ctrl+o")
        await type_text(pilot, "J. Park confirmed by callback")
        await pilot.press("enter")
        await pilot.pause()
    (result,) = app.results
    assert result.passed and result.methods == ("override",) and result.reason == "J. Park confirmed by callback"


async def test_an_answer_taken_back_no_longer_counts() -> None:
    app = harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_text(pilot, "3/14/84")
        await pilot.press("enter")
        await pilot.pause()
        app.screen.query_one("#answer-dob", Input).focus()
        await pilot.press("ctrl+u", "tab")  # DOB cleared after its ✓; on to the address
        await type_text(pilot, "742 95014")
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == [] and "✓ matches" in screen_text(app)  # the address only
        assert app.screen.focused is app.screen.query_one("#answer-dob", Input)


async def test_escape_returns_none() -> None:
    app = harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_text(pilot, "3/14/84")
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


async def test_fields_not_on_file_are_marked_and_skipped() -> None:
    no_mrn = MARIA.model_copy(update={"mrn": None, "address": None})
    app = ScreenHarness(lambda: VerifyScreen(no_mrn, today=TODAY, caller=CALLER))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert screen_text(app).count("not on file") == 2
        assert app.screen.query_one("#answer-mrn", Input).disabled
        await type_text(pilot, "3/14/84")
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.focused is app.screen.query_one("#answer-phone-last4", Input)


@pytest.mark.parametrize(("size", "theme"), SIZES_AND_THEMES)
async def test_privacy_mask_hides_the_name_and_what_is_typed(size: tuple[int, int], theme: str) -> None:
    app = harness(masked=True, theme=theme)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await type_text(pilot, "3/14/84")
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "Patient 1" in text and "✓ matches" in text
        for secret in ("Maria", "Garcia", "3/14/84", *RECORD_VALUES):
            assert secret not in text
