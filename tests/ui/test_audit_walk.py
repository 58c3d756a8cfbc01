"""Walk the UI and count audit rows: every card, record view, search and verification writes one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from pa_tui.app import PaTuiApp
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.domain.records import Section
from pa_tui.screens.patient import PatientScreen
from pa_tui.screens.search import SearchScreen
from pa_tui.widgets.section_view import SectionView
from tests.ui.conftest import listening, wait_until
from tests.ui.test_call_flows import _verify_through_ui
from tests.ui.test_screen_support import type_text


async def test_walking_the_ui_writes_exactly_one_row_per_access(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    app = console_app()
    number = demo_env.population.single_caller_numbers()[15]
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        store = app.backends.store

        async def counts() -> Counter[str]:
            return Counter(r.action for r in await store.audit_rows())

        async def settle(expected: dict[str, int]) -> None:
            for _ in range(100):
                if {k: v for k, v in (await counts()).items() if k in expected} == expected:
                    return
                await pilot.pause(0.05)
            assert dict(await counts()) == expected

        await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=demo_env.agent_id))
        await wait_until(pilot, lambda: app.home.match is not None)
        patient = app.home.match.candidates[0]
        await settle({"view": 1})  # the card
        await _verify_through_ui(pilot, app, patient)
        await settle({"view": 1, "verify": 1, "known-caller": 1})
        await pilot.press("enter")  # summary, plus the appointments and billing it shows
        await wait_until(pilot, lambda: isinstance(app.screen, PatientScreen))
        await settle({"view": 4, "verify": 1})
        screen = app.screen
        await pilot.press("3")  # referrals, loaded
        view = screen.query_one(f"#section-{Section.REFERRALS.value}", SectionView)
        await wait_until(pilot, lambda: view.state.status == "ready")
        await settle({"view": 5})
        await pilot.press("2")  # appointments again, from the cache: still a view
        await settle({"view": 6})
        await pilot.press("escape")
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        await type_text(pilot, demo_env.population.patients[3]["name"][0]["family"])
        search = app.screen
        await wait_until(pilot, lambda: len(search.results) > 0)
        await settle({"view": 6, "verify": 1, "search": 1, "known-caller": 1})
        rows = await store.audit_rows(patient_id=patient.id)
        assert all(r.agent_id == app.agent_id for r in rows)
        assert all(r.reason.startswith("call ") for r in rows)
