"""The 8x8 Work caller-info pop and `pa-tui pop` reach the running console."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from pa_tui.app import PaTuiApp
from pa_tui.backends.inbound import send_pop
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.widgets.call_banner import CallBanner
from pa_tui.widgets.patient_card import PatientCard
from tests.ui.conftest import wait_until, widget_text


async def test_8x8_pop_with_national_digits_pops_the_household(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    number = demo_env.population.household_numbers()[2]
    members = demo_env.population.households[number]
    national = number[2:]  # 8x8 sends national digits
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        listener = app.backends.inbound
        await wait_until(pilot, lambda: listener.url is not None)
        async with httpx.AsyncClient() as client:
            response = await client.get(listener.url + "/", params={"action": "start", "ani": national,
                                                                    "dnis": "4155550100"})
        assert response.status_code == 200
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: card.match is not None)
        assert card.match.kind == "household"
        assert {p.id for p in card.match.candidates} == set(members)
        assert f"{len(members)} patients share" in widget_text(card)
        assert "(415) 555-0100" in widget_text(app.screen.query_one(CallBanner))


async def test_cli_pop_reaches_the_console_and_a_bad_ani_is_refused(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    number = demo_env.population.single_caller_numbers()[3]
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        listener = app.backends.inbound
        await wait_until(pilot, lambda: listener.url is not None)
        await send_pop(number)
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: card.match is not None and card.match.kind == "single")
        async with httpx.AsyncClient() as client:
            bad = await client.get(listener.url + "/", params={"action": "start", "ani": "garbage"})
        assert bad.status_code == 400
        assert card.match.kind == "single"  # nothing changed


async def test_a_patient_text_reaches_the_agent_and_not_the_log_file(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    from pa_tui.backends.twilio import INBOUND_SMS_PATH
    from pa_tui.domain.phones import parse_phone
    from pa_tui.widgets.event_log import EventLog

    number = demo_env.population.single_caller_numbers()[17]
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        listener = app.backends.inbound
        await wait_until(pilot, lambda: listener.url is not None)
        await demo_env.host.acall(demo_env.twilio.reply(number, "C", listener.url + INBOUND_SMS_PATH))
        log = app.screen.query_one(EventLog)
        await wait_until(pilot, lambda: any("replied C (confirm)" in t for t in log.texts))
        assert any(parse_phone(number).human in t for t in log.texts)  # type: ignore[union-attr]
