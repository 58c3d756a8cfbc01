"""Keyboard-first: privacy mask, help, palette, dial and duty status from the console."""

from __future__ import annotations

from collections.abc import Callable

from textual.command import CommandPalette

from pa_tui.app import PaTuiApp
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.domain.phones import parse_phone
from pa_tui.screens.dial import DialScreen
from pa_tui.screens.search import SearchScreen
from pa_tui.screens.status import StatusScreen
from pa_tui.widgets.agent_bar import AgentBar
from pa_tui.widgets.call_banner import CallBanner
from pa_tui.widgets.event_log import EventLog
from pa_tui.widgets.patient_card import PatientCard
from tests.ui.conftest import listening, wait_until, widget_text
from tests.ui.test_screen_support import type_text


async def test_privacy_mask_hides_names_dobs_and_numbers_everywhere(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    number = demo_env.population.single_caller_numbers()[9]
    human = parse_phone(number).human  # type: ignore[union-attr]
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=demo_env.agent_id))
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: card.match is not None and card.match.kind == "single")
        patient = card.match.candidates[0]
        log = app.screen.query_one(EventLog)
        assert patient.display_name in widget_text(card) and human in "\n".join(log.texts)
        await pilot.press("ctrl+x")
        await pilot.pause()
        shown = widget_text(card) + widget_text(app.screen.query_one(CallBanner)) + "\n".join(log.texts)
        assert patient.display_name not in shown and patient.dob_label not in shown
        assert human not in shown and number[-10:] not in shown
        assert "Patient 1" in shown and "•••" in shown
        await pilot.press("ctrl+x")
        await pilot.pause()
        assert patient.display_name in widget_text(card)


async def test_help_and_palette(demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]) -> None:
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: bool(app.screen.query("HelpPanel")))
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: not app.screen.query("HelpPanel"))
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await type_text(pilot, "search patients")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))


async def test_dial_from_the_console_places_an_outbound_call(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        await wait_until(pilot, lambda: app.agent_id is not None)
        before = {c.call_id for c in demo_env.dialpad.active_calls()}
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DialScreen))
        await type_text(pilot, "(202) 555-0133")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, DialScreen))
        await wait_until(pilot, lambda: {c.call_id for c in demo_env.dialpad.active_calls()} - before != set())
        banner = app.screen.query_one(CallBanner)
        await wait_until(pilot, lambda: "(202) 555-0133" in widget_text(banner))
        assert "Outgoing" in widget_text(banner)


async def test_going_off_duty_with_a_reason(demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]) -> None:
    agent = list(demo_env.dialpad.agents.values())[2]
    from pa_tui.app import make_app
    from pa_tui.config import load_settings

    app = make_app(load_settings(), demo_env.backends(agent_id=agent.id, store_path=None))
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: demo_env.dialpad.has_listener(agent.id) and app.agent_id is not None)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, StatusScreen))
        await pilot.press("1")  # the first reason: off duty for it
        await wait_until(pilot, lambda: not isinstance(app.screen, StatusScreen))
        bar = app.screen.query_one(AgentBar)
        await wait_until(pilot, lambda: "Off duty" in widget_text(bar))
        assert demo_env.dialpad.duty_status(agent.id) == "unavailable"


async def test_diagnostics_shows_the_link_url_expiry_and_budgets(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    from pa_tui.screens.diagnostics import DiagnosticsScreen, DiagnosticsView

    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, DiagnosticsScreen))
        view = app.screen.query_one(DiagnosticsView)
        await wait_until(pilot, lambda: "connected" in widget_text(view))
        text = widget_text(view)
        assert "URL expires in" in text and "min" in text  # an hour-long URL, counting down
        assert "rate budgets" in text and "initiate_call" in text and "screen_pop" in text
        assert "Inbound listener" in text and "127.0.0.1" in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, DiagnosticsScreen))


async def test_wrap_up_codes_and_a_queued_call_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pa_tui.app import make_app
    from pa_tui.config import load_settings
    from pa_tui.demo.dialpad_sim import SCHEDULING_ID
    from pa_tui.screens.wrapup import WrapupScreen

    # A simulator of its own: the call-center offer needs the agent idle, whatever other tests did.
    with DemoEnvironment.start(patients=60, seed=4, scenario=None) as demo_env:
        await _wrap_up_and_call_back(demo_env, make_app(load_settings(), demo_env.backends(store_path=tmp_path / "w.db")),
                                     SCHEDULING_ID, WrapupScreen)


async def _wrap_up_and_call_back(demo_env, app, SCHEDULING_ID, WrapupScreen) -> None:  # type: ignore[no-untyped-def]
    number = demo_env.population.single_caller_numbers()[13]
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        call_id = await demo_env.host.acall(demo_env.dialpad.ring(number, call_center_id=SCHEDULING_ID))
        await demo_env.host.acall(demo_env.dialpad.answer(call_id, demo_env.agent_id))
        await wait_until(pilot, lambda: app.home.call is not None and app.home.call.state.value == "connected")
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WrapupScreen))
        from textual.widgets import SelectionList

        codes_list = app.screen.query_one(SelectionList)
        codes_list.focus()
        await wait_until(pilot, lambda: app.focused is codes_list)
        await pilot.press("space")
        await wait_until(pilot, lambda: len(codes_list.selected) == 1)
        await pilot.press("down", "down", "space")
        await wait_until(pilot, lambda: len(codes_list.selected) == 2)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, WrapupScreen))
        codes = tuple(app.settings.dialpad.wrapup_codes)
        await wait_until(pilot, lambda: demo_env.dialpad.call_info(call_id).labels == (codes[0], codes[2]))
        await pilot.press("b")
        await wait_until(pilot, lambda: any(c.phone_number == number
                                            for c in demo_env.dialpad.callbacks_for(SCHEDULING_ID)))
