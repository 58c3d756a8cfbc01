"""DialScreen: validated as you type; Enter dials only a valid number."""

from __future__ import annotations

import pytest

from pa_tui.domain.phones import PhoneNumber, PhoneNumberError, parse_phone
from pa_tui.screens.dial import DialScreen, read_dial_input
from tests.ui.test_screen_support import SIZES, SIZES_AND_THEMES, ScreenHarness, screen_text, type_text


def harness(initial: str = "", masked: bool = False, theme: str = "textual-dark") -> ScreenHarness:
    return ScreenHarness(lambda: DialScreen(initial, "US", masked=masked), theme=theme)


@pytest.mark.parametrize("size", SIZES)
async def test_a_valid_number_shows_its_human_form_and_enter_dials(size: tuple[int, int]) -> None:
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert "Type the number to dial" in screen_text(app)
        await type_text(pilot, "408.555.1212")
        text = screen_text(app)
        assert "✓ Ready to dial" in text and "(408) 555-1212" in text
        await pilot.press("enter")
        await pilot.pause()
    (number,) = app.results
    assert isinstance(number, PhoneNumber) and number.e164 == "+14085551212"


async def test_an_invalid_number_shows_the_specific_reason_and_enter_does_nothing() -> None:
    size = (80, 24)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await type_text(pilot, "408")
        with pytest.raises(PhoneNumberError) as why:
            parse_phone("408")
        assert f"✗ {why.value}" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == [] and isinstance(app.screen, DialScreen)
        await type_text(pilot, "5551212")  # now complete: the reason goes, the number shows
        assert "✓ Ready to dial" in screen_text(app) and "too short" not in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


INVALID = [
    ("555-1212", "✗ Missing the area code — type all 10 digits"),
    ("anonymous", "✗ That reads as “no caller ID”, not a number to dial"),
    ("+999 1234567", "✗ not a phone number (unknown country code)"),
    ("12", "✗ phone number has too few digits"),
]


@pytest.mark.parametrize(("typed", "reason"), INVALID)
def test_read_dial_input_says_why(typed: str, reason: str) -> None:
    assert read_dial_input(typed) == (None, reason)


async def test_each_kind_of_invalid_input_says_why_on_screen() -> None:
    app = harness(initial=INVALID[0][0])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for typed, reason in INVALID:
            if typed != INVALID[0][0]:
                await pilot.press("ctrl+u")
                await type_text(pilot, typed)
            assert reason in screen_text(app), typed
            await pilot.press("enter")
            await pilot.pause()
            assert app.results == []


async def test_prefilled_international_number() -> None:
    app = harness(initial="+44 20 7946 0018")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert "+44 20 7946 0018" in screen_text(app) and "(GB)" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
    assert app.results[0].e164 == "+442079460018"


@pytest.mark.parametrize(("size", "theme"), SIZES_AND_THEMES)
async def test_privacy_mask_hides_the_number(size: tuple[int, int], theme: str) -> None:
    app = harness(masked=True, theme=theme)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await type_text(pilot, "4085551212")
        text = screen_text(app)
        assert "(•••) •••-••••" in text and "✓ Ready to dial" in text
        for secret in ("408", "555", "1212"):
            assert secret not in text
        await pilot.press("enter")
        await pilot.pause()
    assert app.results[0].e164 == "+14085551212"
