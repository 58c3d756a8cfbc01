"""ChooserScreen: pick the caller among the patients who share a number, keyboard only."""

from __future__ import annotations

import pytest

from pa_tui.screens.chooser import ChooserScreen
from tests.ui.test_screen_support import SIZES, SIZES_AND_THEMES, TODAY, ScreenHarness, family, screen_text


def harness(masked: bool = False, theme: str = "textual-dark") -> ScreenHarness:
    return ScreenHarness(lambda: ChooserScreen(family(), "(408) 555-1212", TODAY, masked=masked), theme=theme)


@pytest.mark.parametrize("size", SIZES)
async def test_arrows_and_enter_choose(size: tuple[int, int]) -> None:
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "3 patients share (408) 555-1212" in text
        for name, dob, age, rel in (
            ("Maria Garcia", "03/14/1984", "42 y", "self"),
            ("Luis Garcia", "07/01/1982", "44 y", "spouse"),
            ("Ana Garcia", "05/05/2015", "11 y", "child"),
        ):
            row = next(line for line in text.splitlines() if name in line)
            assert dob in row and age in row and rel in row
        await pilot.press("down", "down", "up", "enter")
        await pilot.pause()
    assert [r.id for r in app.results] == ["pat-2"]


async def test_a_digit_chooses_directly() -> None:
    size = (80, 24)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("3")
        await pilot.pause()
    assert [r.id for r in app.results] == ["pat-3"]


async def test_a_digit_past_the_list_does_nothing() -> None:
    app = harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("7")
        await pilot.pause()
        assert app.results == [] and isinstance(app.screen, ChooserScreen)
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


async def test_none_of_these() -> None:
    size = (160, 48)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert "None of these" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
    assert app.results == ["none"]


async def test_escape_and_q_cancel_without_quitting() -> None:
    size = (80, 24)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert app.results == [None] and app.is_running


async def test_no_more_phi_than_name_dob_age_relationship() -> None:
    app = harness()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = screen_text(app)
    for secret in ("00482913", "482913", "Evergreen", "95014", "9876", "3434", "female", "Female"):
        assert secret not in text


@pytest.mark.parametrize(("size", "theme"), SIZES_AND_THEMES)
async def test_privacy_mask_hides_names_dobs_and_the_number(size: tuple[int, int], theme: str) -> None:
    app = harness(masked=True, theme=theme)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        for secret in ("Maria", "Luis", "Ana", "Garcia", "03/14/1984", "07/01/1982", "05/05/2015", "408", "1212"):
            assert secret not in text
        for shown in ("Patient 1", "Patient 2", "Patient 3", "••/••/••••", "(•••) •••-••••", "spouse", "42 y"):
            assert shown in text
        await pilot.press("2")
        await pilot.pause()
    assert [r.id for r in app.results] == ["pat-2"]  # the mask changes what shows, not what is returned
