"""Working a call end to end against the simulators: choose, verify, search, transfer with hand-off."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import Input

from pa_tui.app import PaTuiApp, make_app
from pa_tui.config import load_settings
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.domain.records import Section
from pa_tui.screens.chooser import ChooserScreen
from pa_tui.screens.patient import PatientScreen
from pa_tui.screens.search import SearchScreen
from pa_tui.screens.transfer import TransferScreen
from pa_tui.screens.verify import VerifyScreen
from pa_tui.widgets.patient_card import PatientCard
from pa_tui.widgets.section_view import SectionView
from tests.contract.store.conftest import StoreTarget
from tests.ui.conftest import listening, wait_until, widget_text
from tests.ui.test_screen_support import type_text


async def _verify_through_ui(pilot, app: PaTuiApp, patient) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("v")
    await wait_until(pilot, lambda: isinstance(app.screen, VerifyScreen))
    app.screen.query_one("#answer-dob", Input).focus()
    await type_text(pilot, patient.birth_date.strftime("%m/%d/%Y"))
    app.screen.query_one("#answer-mrn", Input).focus()
    await type_text(pilot, patient.mrn)
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, VerifyScreen))


async def test_household_choose_then_verify_unlocks_the_record_and_is_audited(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    number = demo_env.population.household_numbers()[4]
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=demo_env.agent_id))
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: card.match is not None and card.match.kind == "household")
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ChooserScreen))
        await pilot.press("2")
        await wait_until(pilot, lambda: app.home.patient is not None)
        chosen = app.home.patient
        assert chosen is not None and chosen.id == card.match.candidates[1].id
        assert "not verified" in widget_text(card)
        await _verify_through_ui(pilot, app, chosen)
        await wait_until(pilot, lambda: app.home.verified != "")
        assert "DOB" in app.home.verified and "MRN" in app.home.verified
        assert "Caller verified" in widget_text(card)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PatientScreen))
        screen = app.screen
        assert isinstance(screen, PatientScreen) and screen.phi_allowed
        await pilot.press("2")
        view = screen.query_one(f"#section-{Section.APPOINTMENTS.value}", SectionView)
        await wait_until(pilot, lambda: view.state.status not in ("idle", "loading", "locked"))
        store = app.backends.store
        rows = await store.audit_rows(patient_id=chosen.id)
        assert any(r.action == "verify" and r.verification == "verified" for r in rows)
        assert any(r.action == "view" for r in rows)
        known = await store.known_callers(number)
        assert [k.patient_id for k in known] == [chosen.id]


async def test_search_without_a_call_opens_the_record(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    target = demo_env.population.patients[5]
    family = target["name"][0]["family"]
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        search = app.screen
        await type_text(pilot, family)
        await wait_until(pilot, lambda: len(search.results) > 0)
        assert any(p.id == target["id"] for p in search.results)
        search.query_one("DataTable").focus()
        rows = [p.id for p in search.results]
        for _ in range(rows.index(target["id"])):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PatientScreen))
        assert app.screen.patient_id == target["id"] and app.screen.phi_allowed
        rows = await app.backends.store.audit_rows()
        assert any(r.action == "search" for r in rows)


async def test_transfer_hands_the_patient_context_to_the_receiving_console(
    demo_env: DemoEnvironment, store_target: StoreTarget
) -> None:
    agents = list(demo_env.dialpad.agents.values())
    a, b = agents[0], agents[1]
    app_a = make_app(load_settings(), demo_env.backends(agent_id=a.id, store=store_target.make()))
    app_b = make_app(load_settings(), demo_env.backends(agent_id=b.id, store=store_target.make()))
    number = demo_env.population.single_caller_numbers()[7 if store_target.backend == "sqlite" else 8]
    async with app_a.run_test(size=(160, 48)) as pa, app_b.run_test(size=(160, 48)) as pb:
        await wait_until(pa, lambda: demo_env.dialpad.has_listener(a.id) and demo_env.dialpad.has_listener(b.id))
        call_id = await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=a.id))
        await demo_env.host.acall(demo_env.dialpad.answer(call_id, a.id))
        card_a = app_a.screen.query_one(PatientCard)
        await wait_until(pa, lambda: card_a.match is not None and card_a.match.kind == "single")
        patient = card_a.match.candidates[0]
        await _verify_through_ui(pa, app_a, patient)
        await wait_until(pa, lambda: app_a.home.verified != "")
        await pa.press("t")
        await wait_until(pa, lambda: isinstance(app_a.screen, TransferScreen))
        transfer = app_a.screen
        await wait_until(pa, lambda: not transfer.loading and len(transfer.targets) > 0)
        await type_text(pa, b.name)
        await pa.press("enter")
        await wait_until(pa, lambda: not isinstance(app_a.screen, TransferScreen))
        # B's console: the transferred call rings with the patient and A's verification.
        await wait_until(pb, lambda: app_b.home.patient is not None, timeout=10)
        assert app_b.home.patient.id == patient.id
        assert "verified by agent" in app_b.home.verified
        assert patient.display_name.split()[-1] in widget_text(app_b.screen.query_one(PatientCard))
        handoffs = await app_b.backends.store.handoffs_for(b.id)
        assert handoffs and handoffs[0].patient_id == patient.id


async def test_a_number_verified_once_pops_its_patient_next_time(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    unknown = "+12025550166"  # not on any record in the EHR
    target = demo_env.population.patients[21]
    family = target["name"][0]["family"]
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        first = await demo_env.host.acall(demo_env.dialpad.ring(unknown, user_id=demo_env.agent_id))
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: card.match is not None)
        assert card.match.kind == "none"
        # Identify the caller by search, then verify them.
        await pilot.press("slash")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen))
        search = app.screen
        search.query_one(Input).value = ""
        await type_text(pilot, family)
        await wait_until(pilot, lambda: any(p.id == target["id"] for p in search.results))
        search.query_one("DataTable").focus()
        for _ in range([p.id for p in search.results].index(target["id"])):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.home.patient is not None)
        await _verify_through_ui(pilot, app, app.home.patient)
        await wait_until(pilot, lambda: app.home.verified != "")
        await demo_env.host.acall(demo_env.dialpad.hangup(first))
        # The next call from that number pops the patient at once, marked as known.
        await demo_env.host.acall(demo_env.dialpad.ring(unknown, user_id=demo_env.agent_id))
        await wait_until(pilot, lambda: card.match is not None and card.match.kind == "single", timeout=10)
        assert card.match.candidates[0].id == target["id"]
        text = widget_text(card)
        assert "Known from a verified call" in text and "not verified" in text
