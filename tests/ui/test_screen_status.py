"""StatusScreen: on duty, or off duty with one of the site's reasons."""

from __future__ import annotations

import pytest

from pa_tui.domain.agents import AgentStatus, DutyStatus
from pa_tui.screens.status import StatusChoice, StatusScreen
from tests.ui.test_screen_support import SIZES, ScreenHarness, screen_text

REASONS = ("Lunch", "Meeting", "Training", "End of shift")
AVAILABLE = AgentStatus(agent_id="a-1", status=DutyStatus.AVAILABLE)
AT_LUNCH = AgentStatus(agent_id="a-1", status=DutyStatus.UNAVAILABLE, reason="Lunch")


def harness(current: AgentStatus | None) -> ScreenHarness:
    return ScreenHarness(lambda: StatusScreen(current, REASONS))


@pytest.mark.parametrize("size", SIZES)
async def test_off_duty_with_a_reason_by_arrows(size: tuple[int, int]) -> None:
    app = harness(AVAILABLE)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "Now: ● Available" in text
        assert "(now)" in next(line for line in text.splitlines() if "On duty — take calls" in line)
        for reason in REASONS:
            assert reason in text
        await pilot.press("down", "enter")  # starts on the first reason when on duty
        await pilot.pause()
    assert app.results == [StatusChoice(on_duty=False, reason="Meeting")]


async def test_back_on_duty_from_lunch() -> None:
    size = (160, 48)
    app = harness(AT_LUNCH)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "Now: ○ Off duty (Lunch)" in text
        assert "(now)" in next(line for line in text.splitlines() if "1  ○ Lunch" in line)
        await pilot.press("enter")  # starts on "On duty" when off duty
        await pilot.pause()
    assert app.results == [StatusChoice(on_duty=True, reason=None)]


async def test_keys_choose_directly() -> None:
    app = harness(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "Now: ? Unknown" in screen_text(app)
        await pilot.press("4")
        await pilot.pause()
        app.push_screen(StatusScreen(AT_LUNCH, REASONS), callback=app.results.append)
        await pilot.pause()
        await pilot.press("9")  # no ninth reason: nothing happens
        await pilot.press("o")
        await pilot.pause()
    assert app.results == [StatusChoice(on_duty=False, reason="End of shift"), StatusChoice(on_duty=True)]


async def test_off_duty_without_a_reason_and_escape() -> None:
    app = harness(AVAILABLE)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("end", "enter")
        await pilot.pause()
        app.push_screen(StatusScreen(AVAILABLE, REASONS), callback=app.results.append)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [StatusChoice(on_duty=False, reason=None), None]
