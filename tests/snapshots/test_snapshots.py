"""SVG snapshots of the main screens at 80x24 and 160x48 (pytest-textual-snapshot).

Deterministic: a fixed clock, a seeded population at its fixed date, a fresh simulator per
test, no cursor blink. After a deliberate UI change: run with --snapshot-update, then read
the report before committing the new SVGs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from pa_tui.app import PaTuiApp, make_app
from pa_tui.config import load_settings
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.screens.chooser import ChooserScreen
from pa_tui.screens.patient import PatientScreen
from pa_tui.screens.search import SearchScreen
from pa_tui.screens.verify import VerifyScreen
from pa_tui.widgets.section_view import SectionView
from tests.ui.conftest import wait_until
from tests.ui.test_screen_support import type_text

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
TABS = ["summary", "appointments", "referrals", "billing", "prescriptions", "care-team", "notes"]


def fixed_clock() -> datetime:
    return datetime(2026, 1, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def env() -> Iterator[DemoEnvironment]:
    e = DemoEnvironment.start(patients=200, seed=7, scenario=None)
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def app(env: DemoEnvironment, tmp_path: Path) -> PaTuiApp:
    return make_app(load_settings(), env.backends(store_path=tmp_path / "s.db"), clock=fixed_clock, tick=0)


def _still(app: PaTuiApp) -> None:
    app.clear_notifications()  # toasts come and go with timing; they are not part of the screen
    for widget in app.screen.query("Input, TextArea"):
        if isinstance(widget, (Input, TextArea)):
            widget.cursor_blink = False


async def _ring(pilot: Pilot[Any], env: DemoEnvironment, number: str) -> None:
    app: PaTuiApp = pilot.app  # type: ignore[assignment]
    await wait_until(pilot, lambda: env.dialpad.has_listener(env.agent_id) and app.agent_id is not None)
    await env.host.acall(env.dialpad.ring(number, user_id=env.agent_id))
    await wait_until(pilot, lambda: app.home.match is not None)
    await pilot.pause(0.2)


def _single(env: DemoEnvironment) -> str:
    return env.population.single_caller_numbers()[0]


async def _verified_record(pilot: Pilot[Any], env: DemoEnvironment) -> PatientScreen:
    from tests.ui.test_call_flows import _verify_through_ui

    app: PaTuiApp = pilot.app  # type: ignore[assignment]
    await _ring(pilot, env, _single(env))
    await _verify_through_ui(pilot, app, app.home.match.candidates[0])  # type: ignore[union-attr]
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, PatientScreen))
    screen = app.screen
    assert isinstance(screen, PatientScreen)
    return screen


def _compare(snap_compare: Callable[..., bool], app: PaTuiApp, size: tuple[int, int],
             before: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await before(pilot)
        _still(pilot.app)  # type: ignore[arg-type]
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_console_with_a_popped_caller(snap_compare, app, env, size) -> None:  # type: ignore[no-untyped-def]
    _compare(snap_compare, app, size, lambda pilot: _ring(pilot, env, _single(env)))


@pytest.mark.parametrize("size", SIZES)
def test_household_chooser(snap_compare, app, env, size) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot: Pilot[Any]) -> None:
        await _ring(pilot, env, env.population.household_numbers()[0])
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ChooserScreen))

    _compare(snap_compare, app, size, before)


@pytest.mark.parametrize("size", SIZES)
def test_verify(snap_compare, app, env, size) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot: Pilot[Any]) -> None:
        await _ring(pilot, env, _single(env))
        await pilot.press("v")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, VerifyScreen))

    _compare(snap_compare, app, size, before)


@pytest.mark.parametrize("tab", TABS)
@pytest.mark.parametrize("size", SIZES)
def test_patient_tab(snap_compare, app, env, size, tab) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot: Pilot[Any]) -> None:
        screen = await _verified_record(pilot, env)
        await pilot.press(str(TABS.index(tab) + 1))
        if tab != "summary":
            view_id = "#section-notes" if tab == "notes" else f"#section-{tab}"
            view = screen.query_one(view_id, SectionView)
            await wait_until(pilot, lambda: view.state.status in ("ready", "error", "unavailable"))
        else:
            await wait_until(pilot, lambda: screen.billing_state.status != "loading"
                             and screen.appointments_state.status != "loading")
        await pilot.pause(0.2)

    _compare(snap_compare, app, size, before)


@pytest.mark.parametrize("size", SIZES)
def test_search_with_results(snap_compare, app, env, size) -> None:  # type: ignore[no-untyped-def]
    family = env.population.patients[5]["name"][0]["family"]

    async def before(pilot: Pilot[Any]) -> None:
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SearchScreen))
        await type_text(pilot, family)
        screen = pilot.app.screen
        await wait_until(pilot, lambda: len(screen.results) > 0 and not screen.searching)
        await pilot.pause(0.3)

    _compare(snap_compare, app, size, before)


@pytest.mark.parametrize("size", SIZES)
def test_notes_being_written(snap_compare, app, env, size) -> None:  # type: ignore[no-untyped-def]
    async def before(pilot: Pilot[Any]) -> None:
        screen = await _verified_record(pilot, env)
        await pilot.press("7")
        view = screen.query_one("#section-notes", SectionView)
        await wait_until(pilot, lambda: view.state.status == "ready")
        screen.query_one("#note-editor", TextArea).focus()
        text = "Caller wants to move her appointment to a morning slot."
        await type_text(pilot, text)
        editor = screen.query_one("#note-editor", TextArea)
        # Settled: every key typed, no autosave pending, and the last one reported.
        await wait_until(pilot, lambda: editor.text == text and screen._autosave is None
                         and "autosaved" in screen.save_status, timeout=8)
        pilot.app.set_focus(None)  # the editor's cursor and focus ring drew differently run to run
        await pilot.pause(0.2)

    _compare(snap_compare, app, size, before)
