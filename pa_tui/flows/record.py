"""The patient record and the agent's notes, as the App runs them.

A mixin of :class:`pa_tui.app.PaTuiApp`: it answers the Patient screen's
intents with workers (EHR sections, Store notes and drafts, audit rows) and
sets the results back on the screen. No widget here does I/O; this is the App.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual import work

from pa_tui.backends.base import BackendError
from pa_tui.domain.audit import Verification
from pa_tui.backends.store.outbox import OutboxWorker
from pa_tui.domain.notes import Note, NoteStatus
from pa_tui.domain.outbox import OutboxItem
from pa_tui.domain.patients import PatientSummary
from pa_tui.domain.records import Section, SectionUnavailable
from pa_tui.screens.patient import PatientScreen
from pa_tui.widgets.section_view import SectionState

if TYPE_CHECKING:
    from pa_tui.app import PaTuiApp

log = logging.getLogger(__name__)

SEARCH_CONTEXT = "search"
NOTE_OUTBOX_KIND = "ehr.note"


@dataclass
class RecordCache:
    """Sections loaded for one call (or one manual search), so tabs reopen instantly."""

    sections: dict[tuple[str, Section], Any] = field(default_factory=dict)

    def get(self, patient_id: str, section: Section) -> Any:
        return self.sections.get((patient_id, section))

    def put(self, patient_id: str, section: Section, value: Any) -> None:
        self.sections[(patient_id, section)] = value


class RecordFlow:
    """Patient record + notes. Mixed into the App; ``self`` is the App."""

    def _record_init(self) -> None:
        self.record_caches: dict[str, RecordCache] = {}
        self.outbox_worker: OutboxWorker | None = None

    # ------------------------------------------------------------------ the outbox
    @work(group="store-outbox", exclusive=True, exit_on_error=False, description="Deliver owed writes")
    async def run_outbox(self: PaTuiApp) -> None:
        """Notes owed to the EHR go out until the EHR confirms; survives restarts (the Store keeps them)."""
        store = await self.ready_store()
        if store is None:
            return
        self.outbox_worker = OutboxWorker(store, self._send_owed, kinds=(NOTE_OUTBOX_KIND,), poll_interval=5.0)
        await self.outbox_worker.run()

    async def _send_owed(self: PaTuiApp, item: OutboxItem) -> str | None:
        note = Note.model_validate(item.payload["note"])
        remote_id = await self.backends.ehr.write_note(note)
        log.info("note %s written to the EHR as %s", note.id, remote_id)
        return remote_id

    # ------------------------------------------------------------------ opening
    def open_record(
        self: PaTuiApp, patient: PatientSummary, *, call_id: str | None, verified_label: str = ""
    ) -> None:
        """Open the patient screen. Without a call (a manual search) the record shows at once."""
        phi_allowed = call_id is None or bool(verified_label) or not self.settings.ui.verify_before_phi
        screen = PatientScreen(
            patient,
            call_id=call_id,
            phi_allowed=phi_allowed,
            verification=verified_label,
            masked=self.privacy_mask,
        )
        screen.now = self.clock()
        screen.today = self.home.today
        self.push_screen(screen)
        self.load_notes(screen, patient.id)
        self.load_draft(screen, patient.id, call_id)
        self.write_audit(
            "view",
            patient.id,
            reason=f"call {call_id}" if call_id else "manual search",
            sections=("summary",) if phi_allowed else ("card",),
            verification=_state(call_id, verified_label),
        )

    def _cache_for(self: PaTuiApp, call_id: str | None) -> RecordCache:
        key = call_id or SEARCH_CONTEXT
        cache = self.record_caches.get(key)
        if cache is None:
            cache = self.record_caches[key] = RecordCache()
        return cache

    # ------------------------------------------------------------------ sections
    # (Named handlers, not @on: Textual collects @on handlers only on MessagePump classes.)
    def on_patient_screen_section_requested(self: PaTuiApp, event: PatientScreen.SectionRequested) -> None:
        screen = event.control if isinstance(event.control, PatientScreen) else self.screen
        if not isinstance(screen, PatientScreen):
            return
        cache = self._cache_for(screen.call_id)
        cached = cache.get(event.patient_id, event.section)
        if cached is not None and not event.force:
            screen.set_section(event.section, cached)
            self.write_audit(
                "view", event.patient_id, reason=f"call {screen.call_id}" if screen.call_id else "manual search",
                sections=(event.section.value,), verification=_state(screen.call_id, screen.verification),
            )
            return
        screen.set_section(event.section, SectionState("loading"))
        self.load_section(screen, event.patient_id, event.section)

    @work(group="ehr-section", exit_on_error=False, description="Load a section of the patient record")
    async def load_section(self: PaTuiApp, screen: PatientScreen, patient_id: str, section: Section) -> None:
        try:
            data = await self.backends.ehr.load_section(patient_id, section)
        except BackendError as exc:
            state = SectionState("error", message=str(exc))
            log.warning("section %s for patient %s failed: %s", section.value, patient_id, exc.title)
        else:
            if isinstance(data, SectionUnavailable):
                state = SectionState("unavailable", message=data.reason)
            else:
                state = SectionState("ready", data=data)
            self._cache_for(screen.call_id).put(patient_id, section, state)
            self.write_audit(
                "view", patient_id, reason=f"call {screen.call_id}" if screen.call_id else "manual search",
                sections=(section.value,), verification=_state(screen.call_id, screen.verification),
            )
        if screen.is_attached:
            screen.set_section(section, state)

    # ------------------------------------------------------------------ notes
    def on_patient_screen_note_draft_changed(self: PaTuiApp, event: PatientScreen.NoteDraftChanged) -> None:
        self.save_draft(event.patient_id, event.call_id, event.text)

    @work(group="store-draft", exclusive=True, exit_on_error=False, description="Autosave the note draft")
    async def save_draft(self: PaTuiApp, patient_id: str, call_id: str | None, text: str) -> None:
        store = await self.ready_store()
        if store is None:
            return
        now = self.clock()
        agent = self.agent_id or "unknown-agent"
        if text.strip():
            await store.save_draft(
                Note(patient_id=patient_id, call_id=call_id, agent_id=agent, text=text,
                     status=NoteStatus.DRAFT, created_at=now, updated_at=now)
            )
        else:
            await store.delete_draft(agent, patient_id, call_id)
        screen = self.screen
        if isinstance(screen, PatientScreen) and screen.patient_id == patient_id:
            screen.save_status = f"Draft autosaved {now.astimezone().strftime('%H:%M:%S')}"

    def on_patient_screen_note_save_requested(self: PaTuiApp, event: PatientScreen.NoteSaveRequested) -> None:
        self.save_note(event.patient_id, event.call_id, event.text)

    @work(group="store-note", exit_on_error=False, description="Save a note")
    async def save_note(self: PaTuiApp, patient_id: str, call_id: str | None, text: str) -> None:
        store = await self.ready_store()
        screen = self.screen if isinstance(self.screen, PatientScreen) else None
        if store is None:
            if screen is not None:
                screen.save_status = "✗ Not saved: the local store is unavailable — the text stays in the editor"
            return
        now = self.clock()
        note = Note(patient_id=patient_id, call_id=call_id, agent_id=self.agent_id or "unknown-agent", text=text,
                    created_at=now, updated_at=now)
        write_back = bool(getattr(self.settings.fhir, "write_notes", False))
        saved = await store.save_note(note, outbox_kind=NOTE_OUTBOX_KIND if write_back else None)
        if write_back and self.outbox_worker is not None:
            self.outbox_worker.kick()
        log.info("note %s saved for patient %s", saved.id, patient_id)
        self.write_audit("note", patient_id, reason=f"call {call_id}" if call_id else "manual search")
        if screen is not None and screen.patient_id == patient_id:
            screen.note_saved()
            screen.save_status = f"✓ Note saved {now.astimezone().strftime('%H:%M:%S')}"
            screen.notes = tuple(await store.notes_for(patient_id, limit=50))

    @work(group="store-notes", exit_on_error=False, description="Load earlier notes")
    async def load_notes(self: PaTuiApp, screen: PatientScreen, patient_id: str) -> None:
        store = await self.ready_store()
        if store is None:
            return
        notes = await store.notes_for(patient_id, limit=50)
        if screen.is_attached:
            screen.notes = tuple(notes)

    @work(group="store-notes", exit_on_error=False, description="Restore an unsaved draft")
    async def load_draft(self: PaTuiApp, screen: PatientScreen, patient_id: str, call_id: str | None) -> None:
        store = await self.ready_store()
        if store is None:
            return
        draft = await store.latest_draft(self.agent_id or "unknown-agent", patient_id, call_id)
        if draft is not None and screen.is_attached:
            screen.restore_draft(draft.text, draft.updated_at)

    # ------------------------------------------------------------------ audit
    def write_audit(
        self: PaTuiApp,
        action: str,
        patient_id: str | None,
        *,
        reason: str,
        sections: tuple[str, ...] = (),
        verification: Verification | None = None,
    ) -> None:
        self._audit_worker(action, patient_id, reason, sections, verification, self.clock())

    @work(group="store-audit", exit_on_error=False, description="Write an audit row")
    async def _audit_worker(
        self: PaTuiApp,
        action: str,
        patient_id: str | None,
        reason: str,
        sections: tuple[str, ...],
        verification: Verification | None,
        at: datetime,
    ) -> None:
        store = await self.ready_store()
        if store is None:
            log.error("audit row not written (no store): action %s patient %s", action, patient_id)
            return
        await store.audit(
            agent_id=self.agent_id or "unknown-agent",
            action=action,
            patient_id=patient_id,
            reason=reason,
            sections=sections,
            verification=verification,
            at=at,
        )


def _state(call_id: str | None, verified_label: str) -> Verification:
    if verified_label:
        return Verification.VERIFIED
    return Verification.NOT_REQUIRED if call_id is None else Verification.UNVERIFIED
