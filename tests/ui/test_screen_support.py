"""Shared pieces for the screen tests: a tiny App that pushes one screen and records what it returns.

Also tests the helpers themselves (and that every screen's bindings follow the house rules).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar

import pytest
from textual import events
from textual.app import App
from textual.binding import Binding, BindingType
from textual.keys import _character_to_key
from textual.message import Message
from textual.pilot import Pilot
from textual.screen import Screen

from pa_tui.domain.patients import Address, PatientPhone, PatientSummary
from pa_tui.domain.phones import parse_phone

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
THEMES = [pytest.param("textual-dark", id="dark"), pytest.param("textual-light", id="light")]
# Both sizes and both themes, in two runs rather than four.
SIZES_AND_THEMES = [
    pytest.param((80, 24), "textual-light", id="80x24-light"),
    pytest.param((160, 48), "textual-dark", id="160x48-dark"),
]
TODAY = date(2026, 11, 21)


class ScreenHarness(App[None]):
    """Pushes the screen ``make()`` builds; ``results`` gets each dismiss value, ``messages`` what bubbled up."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit", id="quit", tooltip="Quit")]  # like the App

    def __init__(self, make: Callable[[], Screen[Any]], *, theme: str = "textual-dark") -> None:
        super().__init__()
        self.make = make
        self.results: list[Any] = []
        self.messages: list[Message] = []
        self.pushed: Screen[Any] | None = None
        self._theme_name = theme

    def on_mount(self) -> None:
        self.theme = self._theme_name
        self.pushed = self.make()
        self.push_screen(self.pushed, callback=self.results.append)

    def on_search_screen_query_changed(self, message: Message) -> None:
        self.messages.append(message)

    def on_search_screen_patient_chosen(self, message: Message) -> None:
        self.messages.append(message)


def screen_text(app: App[Any]) -> str:
    """Everything the current screen shows, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type ``text`` into whatever has focus, as key events through the App — like ``pilot.press``
    one character at a time, but waiting for the screen to settle once instead of after every key."""
    app = pilot.app
    for ch in text:
        event = events.Key(ch if ch.isalnum() else _character_to_key(ch), ch)
        event.set_sender(app)
        app.post_message(event)
    await pilot.pause()


def family() -> tuple[PatientSummary, ...]:
    shared = PatientPhone(number=parse_phone("(408) 555-1212"))
    return (
        PatientSummary(
            id="pat-1",
            mrn="00482913",
            display_name="Maria Garcia",
            given="Maria",
            family="Garcia",
            birth_date=date(1984, 3, 14),
            sex="female",
            relationship="self",
            phones=(shared, PatientPhone(number=parse_phone("408-555-9876"))),
            address=Address(line=("742 Evergreen Ter", "Apt 4"), city="Springfield", state="CA", postal_code="95014"),
        ),
        PatientSummary(
            id="pat-2",
            mrn="00482914",
            display_name="Luis Garcia",
            birth_date=date(1982, 7, 1),
            sex="male",
            relationship="spouse",
            phones=(shared, PatientPhone(number=parse_phone("408-555-3434"))),
        ),
        PatientSummary(
            id="pat-3",
            mrn="00482915",
            display_name="Ana Garcia",
            birth_date=date(2015, 5, 5),
            sex="female",
            relationship="child",
            phones=(shared,),
        ),
    )


# --------------------------------------------------------------------------- the helpers and house rules
async def test_harness_records_a_dismissed_value() -> None:
    from pa_tui.screens.chooser import ChooserScreen

    app = ScreenHarness(lambda: ChooserScreen(family(), "(408) 555-1212", TODAY))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "Maria Garcia" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [None]


def test_every_binding_has_id_description_tooltip_and_screens_have_group_titles() -> None:
    from pa_tui.screens.chooser import ChooserScreen
    from pa_tui.screens.dial import DialScreen
    from pa_tui.screens.search import SearchScreen
    from pa_tui.screens.status import StatusScreen
    from pa_tui.screens.transfer import TransferScreen
    from pa_tui.screens.verify import VerifyScreen

    for screen in (ChooserScreen, VerifyScreen, DialScreen, TransferScreen, StatusScreen, SearchScreen):
        assert screen.BINDING_GROUP_TITLE, screen
        ids = []
        for binding in screen.BINDINGS:
            assert isinstance(binding, Binding), (screen, binding)
            assert binding.id and binding.description and binding.tooltip, (screen, binding)
            ids.append(binding.id)
        assert len(ids) == len(set(ids)), screen


def test_every_rule_sits_under_its_screen_and_uses_theme_variables() -> None:
    from pathlib import Path

    import pa_tui

    styles = Path(pa_tui.__file__).parent / "styles"
    for name, screen in (
        ("chooser", "ChooserScreen"),
        ("verify", "VerifyScreen"),
        ("dial", "DialScreen"),
        ("transfer", "TransferScreen"),
        ("status", "StatusScreen"),
        ("search", "SearchScreen"),
    ):
        text = (styles / f"{name}.tcss").read_text()
        top_level = [line for line in text.splitlines() if line and not line[0].isspace() and line != "}"]
        assert top_level == [f"{screen} {{"], (name, top_level)
        assert "#" not in "".join(
            line.split(":", 1)[1] for line in text.splitlines() if ":" in line and not line.strip().startswith("&")
        ), f"{name}.tcss: use theme variables, not hex colours"
