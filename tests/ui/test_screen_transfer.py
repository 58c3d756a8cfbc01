"""TransferScreen: filter by name, typed-number target, off-duty confirm, call ending while open."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from pa_tui.backends.base import TransferTarget
from pa_tui.screens.transfer import TransferScreen
from tests.ui.test_screen_support import SIZES, SIZES_AND_THEMES, ScreenHarness, screen_text, type_text

TARGETS = (
    TransferTarget(kind="callcenter", id="cc-front", name="Front desk", waiting=3),
    TransferTarget(kind="callcenter", id="cc-billing", name="Billing", waiting=0),
    TransferTarget(kind="user", id="u-zoe", name="Zoe Park", status="available"),
    TransferTarget(kind="user", id="u-adam", name="Adam Lee", status="unavailable"),
    TransferTarget(kind="user", id="u-bea", name="Bea Cruz", status="busy"),
    TransferTarget(kind="user", id="u-carl", name="Carl Dunn", status="available"),
)
LABEL = "(408) 555-1212 · Maria Garcia"


def harness(masked: bool = False, theme: str = "textual-dark") -> ScreenHarness:
    return ScreenHarness(lambda: TransferScreen(LABEL, masked=masked), theme=theme)


def screen(app: ScreenHarness) -> TransferScreen:
    assert isinstance(app.pushed, TransferScreen)
    return app.pushed


async def loaded(app: ScreenHarness, pilot: object) -> TransferScreen:
    """What the App does: push, then set loading, then the targets from its worker."""
    s = screen(app)
    s.loading = True
    await pilot.pause()  # type: ignore[attr-defined]
    assert "Loading transfer targets" in screen_text(app)
    s.targets = TARGETS
    s.loading = False
    await pilot.pause()  # type: ignore[attr-defined]
    return s


@pytest.mark.parametrize("size", SIZES)
async def test_grouped_list_with_waiting_counts_and_duty_words_available_first(size: tuple[int, int]) -> None:
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await loaded(app, pilot)
        lines = screen_text(app).splitlines()
        order = [
            next(i for i, line in enumerate(lines) if word in line)
            for word in (
                "Call centers",
                "Front desk",
                "Billing",
                "People",
                "Carl Dunn",
                "Zoe Park",
                "Bea Cruz",
                "Adam Lee",
            )
        ]
        assert order == sorted(order)
        assert "3 waiting" in lines[order[1]] and "0 waiting" in lines[order[2]]
        assert "Available" in lines[order[4]] and "Busy" in lines[order[6]] and "off duty" in lines[order[7]]
        await pilot.press("enter")  # the first target is highlighted
        await pilot.pause()
    assert app.results == [TARGETS[0]]


async def test_typing_filters_by_name() -> None:
    size = (160, 48)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await loaded(app, pilot)
        await type_text(pilot, "zo")
        text = screen_text(app)
        assert "Zoe Park" in text and "Carl Dunn" not in text and "Front desk" not in text
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [TARGETS[2]]


async def test_arrows_move_while_typing_stays_in_the_filter() -> None:
    app = harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await loaded(app, pilot)
        await type_text(pilot, "ar")  # Carl Dunn and Zoe Park
        await pilot.press("down", "enter")
        await pilot.pause()
    assert app.results == [TARGETS[2]]  # Carl Dunn first (available, C < Z), then Zoe Park


async def test_a_typed_number_becomes_a_target() -> None:
    size = (80, 24)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await loaded(app, pilot)
        await type_text(pilot, "408 555 98")
        text = screen_text(app)
        assert "✗ Typed number: not a possible phone number (too short)" in text
        assert "Front desk" not in text  # Enter must not send the call elsewhere
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == []
        await type_text(pilot, "76")
        assert "Transfer to the typed number  (408) 555-9876" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [TransferTarget(kind="number", id="+14085559876", name="(408) 555-9876")]


async def test_a_typed_number_works_while_the_list_is_still_loading_or_failed() -> None:
    app = harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        s = screen(app)
        s.loading = True  # shadows Widget.loading: the screen is not covered by a spinner
        await pilot.pause()
        assert app.screen.focused is s.query_one("#transfer-filter", Input)
        s.error = "Dialpad is unreachable"
        s.loading = False
        await pilot.pause()
        assert "✗ Could not load the transfer list: Dialpad is unreachable" in screen_text(app)
        await type_text(pilot, "+1 212 555 0100")
        await pilot.press("enter")
        await pilot.pause()
    assert app.results[0].kind == "number" and app.results[0].id == "+12125550100"


async def test_off_duty_needs_a_second_enter() -> None:
    size = (160, 48)
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await loaded(app, pilot)
        await type_text(pilot, "adam")
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == []
        assert "Adam Lee is off duty — Enter again to transfer anyway" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [TARGETS[3]]


async def test_moving_away_cancels_the_off_duty_confirmation() -> None:
    app = harness()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await loaded(app, pilot)
        await pilot.press("end")  # no-op in the filter; the list starts at Front desk
        for _ in range(5):
            await pilot.press("down")  # Front desk → Billing → Carl → Zoe → Bea → Adam
        await pilot.press("enter")
        await pilot.pause()
        assert "is off duty" in screen_text(app)
        await pilot.press("up")
        await pilot.pause()
        assert "is off duty —" not in screen_text(app)
        await pilot.press("down", "enter")  # back on Adam: asks again
        await pilot.pause()
        assert app.results == [] and "Adam Lee is off duty" in screen_text(app)


@pytest.mark.parametrize(
    ("size", "how"),
    [pytest.param((80, 24), "reactive", id="80x24-reactive"), pytest.param((160, 48), "message", id="160x48-message")],
)
async def test_call_ended_while_open_keeps_the_typing_and_refuses_to_transfer(size: tuple[int, int], how: str) -> None:
    app = harness()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        s = await loaded(app, pilot)
        await type_text(pilot, "zoe")
        if how == "reactive":
            s.call_ended = True
        else:
            s.post_message(TransferScreen.CallEnded())
        await pilot.pause()
        assert "The call ended — nothing to transfer" in screen_text(app)
        assert s.query_one("#transfer-filter", Input).value == "zoe"
        assert s.check_action("transfer", ()) is None
        await pilot.press("enter")
        await pilot.pause()
        assert app.results == [] and isinstance(app.screen, TransferScreen)
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


@pytest.mark.parametrize(("size", "theme"), SIZES_AND_THEMES)
async def test_privacy_mask_hides_the_call_label_and_typed_numbers(size: tuple[int, int], theme: str) -> None:
    app = harness(masked=True, theme=theme)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await loaded(app, pilot)
        text = screen_text(app)
        assert "Maria" not in text and "555" not in text and "Zoe Park" in text  # colleagues are not PHI
        await type_text(pilot, "4085559876")
        text = screen_text(app)
        assert "(•••) •••-••••" in text
        for secret in ("408", "9876", "Maria", "Garcia"):
            assert secret not in text
        await pilot.press("enter")
        await pilot.pause()
    assert app.results[0].id == "+14085559876"
