"""The patient record from the console: locked before verification, notes never lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from textual.widgets import TextArea

from pa_tui.app import PaTuiApp
from pa_tui.backends.store import SqliteStore
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.domain.records import Section
from pa_tui.screens.patient import PatientHeader, PatientScreen
from pa_tui.widgets.patient_card import PatientCard
from pa_tui.widgets.section_view import SectionView
from tests.ui.conftest import listening, wait_until, widget_text


async def _pop_single(pilot, app: PaTuiApp, env: DemoEnvironment) -> str:  # type: ignore[no-untyped-def]
    await listening(pilot, env)
    number = env.population.single_caller_numbers()[1]
    call_id = await env.host.acall(env.dialpad.ring(number, user_id=env.agent_id))
    card = app.screen.query_one(PatientCard)
    await wait_until(pilot, lambda: card.match is not None and card.match.kind == "single")
    return call_id


async def test_record_opened_for_an_unverified_caller_is_locked(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await _pop_single(pilot, app, demo_env)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PatientScreen))
        screen = app.screen
        assert isinstance(screen, PatientScreen)
        header = widget_text(screen.query_one(PatientHeader))
        assert "not verified" in header and "MRN" not in header
        await pilot.press("3")
        view = screen.query_one(f"#section-{Section.REFERRALS.value}", SectionView)
        assert view.state.status == "locked"
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, PatientScreen))


async def test_note_draft_autosaves_within_a_second_and_save_lists_it(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp], tmp_path: Path
) -> None:
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        call_id = await _pop_single(pilot, app, demo_env)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PatientScreen))
        screen = app.screen
        assert isinstance(screen, PatientScreen)
        await pilot.press("7")
        editor = screen.query_one("#note-editor", TextArea)
        editor.focus()
        await pilot.press(*"Caller asks to move the appointment")
        store = app.backends.store
        assert store is not None
        await wait_until(pilot, lambda: "autosaved" in screen.save_status, timeout=3)
        draft = await store.latest_draft(app.agent_id or "", screen.patient_id, call_id)
        assert draft is not None and draft.text == "Caller asks to move the appointment"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "Note saved" in screen.save_status)
        notes = await store.notes_for(screen.patient_id)
        assert [n.text for n in notes] == ["Caller asks to move the appointment"]
        assert editor.text == ""
        assert await store.latest_draft(app.agent_id or "", screen.patient_id, call_id) is None
        rows = await store.audit_rows(patient_id=screen.patient_id)
        assert {r.action for r in rows} >= {"view", "note"}


async def test_quitting_mid_note_keeps_the_text_as_a_draft(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp], tmp_path: Path
) -> None:
    app = console_app()
    patient_id = ""
    async with app.run_test(size=(160, 48)) as pilot:
        call_id = await _pop_single(pilot, app, demo_env)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PatientScreen))
        screen = app.screen
        assert isinstance(screen, PatientScreen)
        patient_id = screen.patient_id
        await pilot.press("7")
        screen.query_one("#note-editor", TextArea).focus()
        await pilot.press(*"half a thought")
        app.set_focus(None)
        await pilot.press("q")  # at once: before the autosave timer fires
    store = SqliteStore(tmp_path / "store.db")
    async with store:
        draft = await store.latest_draft(app.agent_id or "", patient_id, call_id)
    assert draft is not None and draft.text == "half a thought"


async def test_saved_note_is_written_back_to_the_ehr_through_the_outbox(
    demo_env: DemoEnvironment, tmp_path: Path
) -> None:
    from pa_tui.app import make_app
    from pa_tui.config import load_settings

    settings = load_settings()
    settings = settings.model_copy(update={"fhir": settings.fhir.model_copy(update={"write_notes": True})})
    app = make_app(settings, demo_env.backends(store_path=tmp_path / "wb.db"))
    async with app.run_test(size=(160, 48)) as pilot:
        await _pop_single(pilot, app, demo_env)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PatientScreen))
        screen = app.screen
        assert isinstance(screen, PatientScreen)
        await pilot.press("7")
        screen.query_one("#note-editor", TextArea).focus()
        await pilot.press(*"Wants a morning slot")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "Note saved" in screen.save_status)
        store = app.backends.store
        (note,) = await store.notes_for(screen.patient_id)
        for _ in range(100):
            if (await store.outbox_counts()).get("done", 0) >= 1:
                break
            await pilot.pause(0.1)
        assert (await store.outbox_counts()).get("done", 0) == 1
        async with httpx.AsyncClient() as http:
            found = await http.get(f"{demo_env.fhir_url}/DocumentReference",
                                   params={"identifier": f"urn:pa-tui:note|{note.id}"})
        bundle = found.json()
        assert bundle["total"] == 1
        assert bundle["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{screen.patient_id}"
