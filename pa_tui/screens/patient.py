"""The patient record: a header, and tabs for every section plus the agent's notes.

The App sets sections through :meth:`PatientScreen.set_section` as its workers
finish; this screen only asks (messages up) and renders (attributes down).
"""

from __future__ import annotations

from datetime import date, datetime

from rich.console import Group, RenderableType
from rich.table import Table as RichTable
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane, TextArea

from pa_tui.domain.notes import Note
from pa_tui.domain.patients import PatientSummary
from pa_tui.domain.phones import PhoneNumber, format_human, mask_phone
from pa_tui.domain.records import Appointment, Billing, Section
from pa_tui.widgets.section_view import SectionState, SectionView

RECORD_TABS: tuple[Section, ...] = (
    Section.APPOINTMENTS,
    Section.REFERRALS,
    Section.BILLING,
    Section.PRESCRIPTIONS,
    Section.CARE_TEAM,
)

AUTOSAVE_SECONDS = 0.5


def masked_name(patient: PatientSummary, masked: bool) -> str:
    return "Patient ••••" if masked else patient.display_name


class PatientHeader(Static):
    """Name, age, DOB, and — once the caller is verified — identifiers and numbers."""

    DEFAULT_CSS = """
    PatientHeader { height: auto; padding: 0 1; }
    """

    patient: reactive[PatientSummary | None] = reactive(None)
    phi_allowed: reactive[bool] = reactive(False)
    verification: reactive[str] = reactive("")
    masked: reactive[bool] = reactive(False)
    today: reactive[date | None] = reactive(None)

    def render(self) -> RenderableType:
        p = self.patient
        if p is None:
            return Text("")
        today = self.today or date.today()
        line = Text()
        line.append(masked_name(p, self.masked), style="bold")
        line.append(f"   Age {p.age_label(today)}   DOB {'••/••/••••' if self.masked else p.dob_label}")
        if p.sex:
            line.append(f"   Sex {p.sex}")
        if self.phi_allowed:
            line.append(f"   MRN {'•••••' if self.masked else (p.mrn or '—')}")
        status = Text()
        if self.verification:
            status.append(f"✓ {self.verification}", style="bold")
        elif self.phi_allowed:
            status.append("Opened from a search (no caller on the line)", style="dim")
        else:
            status.append("✗ Caller not verified — press v to verify before sharing details", style="bold")
        if p.restricted_reason:
            status.append(f"   ⚠ Restricted: {p.restricted_reason}", style="bold")
        if not p.active:
            status.append("   (inactive record)", style="dim")
        if p.deceased:
            status.append("   (deceased)", style="bold")
        return Group(line, status)


class SummaryView(Static):
    """Demographics, alerts, the next appointment and the balance."""

    patient: reactive[PatientSummary | None] = reactive(None)
    phi_allowed: reactive[bool] = reactive(False)
    masked: reactive[bool] = reactive(False)
    now: reactive[datetime | None] = reactive(None)
    appointments: reactive[SectionState] = reactive(SectionState, always_update=True)
    billing: reactive[SectionState] = reactive(SectionState, always_update=True)

    def render(self) -> RenderableType:
        p = self.patient
        if p is None:
            return Text("")
        if not self.phi_allowed:
            return Text("🔒 Verify the caller (v) to see the record.", style="bold")
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        grid.add_row("Name", masked_name(p, self.masked))
        grid.add_row("DOB", "••/••/••••" if self.masked else p.dob_label)
        grid.add_row("MRN", "•••••" if self.masked else (p.mrn or "—"))
        grid.add_row("Sex", p.sex or "—")
        address = p.address.one_line() if p.address else ""
        grid.add_row("Address", "•••" if self.masked and address else (address or "—"))
        for phone in p.phones:
            label = f"Phone ({phone.use.value}{'' if phone.current else ', old'})"
            grid.add_row(label, mask_phone(phone.number) if self.masked else format_human(phone.number))
        grid.add_row("Alerts", p.restricted_reason or "none")
        grid.add_row("Next appointment", self._next_appointment())
        grid.add_row("Balance", self._balance())
        return grid

    def _next_appointment(self) -> str:
        state = self.appointments
        if state.status == "loading":
            return "loading…"
        if state.status in ("error", "unavailable"):
            return f"unavailable ({state.message})"
        if state.status != "ready" or not isinstance(state.data, tuple):
            return "—"
        now = self.now or datetime.now().astimezone()
        upcoming = sorted(
            (a for a in state.data if isinstance(a, Appointment) and a.start and a.start >= now and a.status == "booked"),
            key=lambda a: a.start or now,
        )
        if not upcoming:
            return "none booked"
        a = upcoming[0]
        when = a.start.astimezone().strftime("%a %m/%d/%Y %H:%M") if a.start else "?"
        return f"{when} · {a.service or a.description or 'visit'} · {a.practitioner or ''} · {a.location or ''}".strip(
            " ·"
        )

    def _balance(self) -> str:
        state = self.billing
        if state.status == "loading":
            return "loading…"
        if state.status in ("error", "unavailable"):
            return f"unavailable ({state.message})"
        if isinstance(state.data, Billing):
            balance = state.data.balance
            return str(balance) if balance is not None else "no balance on file"
        return "—"


class NotesPanel(Vertical):
    """The agent's note for this patient and call (autosaved), and earlier notes."""

    DEFAULT_CSS = """
    NotesPanel { height: 1fr; }
    NotesPanel > TextArea { height: 8; }
    NotesPanel > .notes-status { height: 1; padding: 0 1; }
    NotesPanel > DataTable { height: auto; max-height: 12; }
    """

    notes: reactive[tuple[Note, ...]] = reactive(tuple)
    save_status: reactive[str] = reactive("")
    masked: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        yield Static("", classes="notes-status", id="note-status")
        yield TextArea(id="note-editor", soft_wrap=True, show_line_numbers=False)
        yield Static(Text("Earlier notes in pa-tui", style="bold underline"), classes="notes-status")
        yield DataTable(id="pa-notes", cursor_type="row", zebra_stripes=True)
        yield Static(Text("Notes in the EHR", style="bold underline"), classes="notes-status")
        yield SectionView(Section.NOTES, id="section-notes")

    def on_mount(self) -> None:
        table = self.query_one("#pa-notes", DataTable)
        for label, width in (("Saved", 11), ("Agent", 8), ("Call", 8), ("Note", 100)):
            table.add_column(label, width=width)
        self.watch_notes()
        self.watch_save_status()

    def watch_save_status(self) -> None:
        if self.is_mounted:
            text = self.save_status or "Type a note: it is autosaved as you type; ctrl+s saves it."
            self.query_one("#note-status", Static).update(Text(text, style="italic"))

    def watch_notes(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one("#pa-notes", DataTable)
        table.clear()
        for note in self.notes:
            text = "••••" if self.masked else note.text.replace("\n", " ")[:120]
            table.add_row(note.updated_at.astimezone().strftime("%m/%d %H:%M"), note.agent_id[-6:],
                          (note.call_id or "—")[-6:], text)
        if not self.notes:
            table.add_row("—", "", "", "No earlier notes for this patient")


class PatientScreen(Screen[None]):
    """A patient's record, opened from a call or a search."""

    BINDING_GROUP_TITLE = "Patient"
    BINDINGS = [
        Binding("escape", "back", "Back", id="patient-back", tooltip="Back to the console (the note is kept)"),
        Binding("v", "verify", "Verify", id="patient-verify", tooltip="Verify the caller's identity"),
        Binding("1", "tab('summary')", "Summary", id="tab-summary", show=False, tooltip="Summary tab"),
        Binding("2", "tab('appointments')", "Appts", id="tab-appointments", show=False, tooltip="Appointments tab"),
        Binding("3", "tab('referrals')", "Referrals", id="tab-referrals", show=False, tooltip="Referrals tab"),
        Binding("4", "tab('billing')", "Billing", id="tab-billing", show=False, tooltip="Billing tab"),
        Binding("5", "tab('prescriptions')", "Rx", id="tab-prescriptions", show=False, tooltip="Prescriptions tab"),
        Binding("6", "tab('care-team')", "Care team", id="tab-care-team", show=False, tooltip="Care team tab"),
        Binding("7", "tab('notes')", "Notes", id="tab-notes", show=False, tooltip="Notes tab"),
        Binding("n", "tab('notes')", "Note", id="patient-note", tooltip="Write a note about this call"),
        Binding("ctrl+s", "save_note", "Save note", id="note-save", tooltip="Save the note now"),
        Binding("d", "dial_selected", "Dial", id="patient-dial", tooltip="Dial the selected phone number"),
        Binding("o", "open_chart", "Open chart", id="patient-chart", tooltip="Open the chart in the EHR"),
    ]

    # ------------------------------------------------------------------ messages (intents)
    class SectionRequested(Message):
        def __init__(self, patient_id: str, section: Section, *, force: bool = False) -> None:
            super().__init__()
            self.patient_id = patient_id
            self.section = section
            self.force = force

    class NoteDraftChanged(Message):
        def __init__(self, patient_id: str, call_id: str | None, text: str) -> None:
            super().__init__()
            self.patient_id = patient_id
            self.call_id = call_id
            self.text = text

    class NoteSaveRequested(Message):
        def __init__(self, patient_id: str, call_id: str | None, text: str) -> None:
            super().__init__()
            self.patient_id = patient_id
            self.call_id = call_id
            self.text = text

    class VerifyRequested(Message):
        def __init__(self, patient: PatientSummary) -> None:
            super().__init__()
            self.patient = patient

    class DialRequested(Message):
        def __init__(self, number: PhoneNumber) -> None:
            super().__init__()
            self.number = number

    class OpenChartRequested(Message):
        def __init__(self, patient: PatientSummary) -> None:
            super().__init__()
            self.patient = patient

    # ------------------------------------------------------------------ state
    patient: reactive[PatientSummary | None] = reactive(None)
    phi_allowed: reactive[bool] = reactive(False, bindings=True)
    verification: reactive[str] = reactive("")
    masked: reactive[bool] = reactive(False)
    now: reactive[datetime | None] = reactive(None)
    today: reactive[date | None] = reactive(None)
    notes: reactive[tuple[Note, ...]] = reactive(tuple)
    save_status: reactive[str] = reactive("")
    appointments_state: reactive[SectionState] = reactive(SectionState, always_update=True)
    billing_state: reactive[SectionState] = reactive(SectionState, always_update=True)

    def __init__(
        self,
        patient: PatientSummary,
        *,
        call_id: str | None,
        phi_allowed: bool,
        verification: str = "",
        masked: bool = False,
        draft: str = "",
    ) -> None:
        super().__init__()
        self.call_id = call_id
        self._draft = draft
        self._autosave: Timer | None = None
        self._last_text = draft
        self.set_reactive(PatientScreen.patient, patient)
        self.set_reactive(PatientScreen.phi_allowed, phi_allowed)
        self.set_reactive(PatientScreen.verification, verification)
        self.set_reactive(PatientScreen.masked, masked)

    @property
    def patient_id(self) -> str:
        assert self.patient is not None
        return self.patient.id

    def compose(self) -> ComposeResult:
        yield PatientHeader(id="patient-header").data_bind(
            PatientScreen.patient, PatientScreen.phi_allowed, PatientScreen.verification, PatientScreen.masked,
            PatientScreen.today,
        )
        with TabbedContent(id="patient-tabs", initial="summary"):
            with TabPane("Summary", id="summary"):
                yield SummaryView(id="summary-view").data_bind(
                    PatientScreen.patient, PatientScreen.phi_allowed, PatientScreen.masked, PatientScreen.now,
                    appointments=PatientScreen.appointments_state, billing=PatientScreen.billing_state,
                )
            for section in RECORD_TABS:
                with TabPane(section.label, id=section.value):
                    yield SectionView(section, id=f"section-{section.value}").data_bind(
                        PatientScreen.now, PatientScreen.masked
                    )
            with TabPane("Notes", id="notes"):
                yield NotesPanel(id="notes-panel").data_bind(
                    PatientScreen.notes, PatientScreen.save_status, PatientScreen.masked
                )
        with Horizontal(id="patient-hints"):
            yield Static(
                Text("1–7 tabs · v verify · n note · d dial selected number · o open chart · esc back", style="dim")
            )
        yield Footer()

    def on_mount(self) -> None:
        editor = self.query_one("#note-editor", TextArea)
        editor.text = self._draft
        if self.phi_allowed:
            self._request(Section.APPOINTMENTS)
            self._request(Section.BILLING)
        else:
            self._lock_all()

    # ------------------------------------------------------------------ from the App
    def set_section(self, section: Section, state: SectionState) -> None:
        if section is Section.APPOINTMENTS:
            self.appointments_state = state
        if section is Section.BILLING:
            self.billing_state = state
        view = self.query_one(f"#section-{section.value}", SectionView)
        view.state = state

    def unlock(self, verification: str) -> None:
        """The caller was verified: show the record and load what the open tab needs."""
        self.verification = verification
        self.phi_allowed = True
        for section in (*RECORD_TABS, Section.NOTES):
            self.set_section(section, SectionState())
        self._request(Section.APPOINTMENTS)
        self._request(Section.BILLING)
        self._request_active()

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "verify":
            return not self.verification and self.call_id is not None
        if action in ("dial_selected", "open_chart"):
            return True if self.phi_allowed else None
        return True

    def action_back(self) -> None:
        self._flush_draft()
        self.dismiss(None)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_verify(self) -> None:
        if self.patient is not None:
            self.post_message(self.VerifyRequested(self.patient))

    def action_save_note(self) -> None:
        text = self.query_one("#note-editor", TextArea).text
        if not text.strip():
            self.notify("The note is empty — nothing to save.", severity="warning")
            return
        if self._autosave is not None:
            self._autosave.stop()
            self._autosave = None
        self.save_status = "Saving…"
        self.post_message(self.NoteSaveRequested(self.patient_id, self.call_id, text))

    def note_text(self) -> str:
        return self.query_one("#note-editor", TextArea).text

    def restore_draft(self, text: str, saved_at: datetime) -> None:
        """Put back a draft the Store kept (e.g. after a crash), unless the agent already typed."""
        editor = self.query_one("#note-editor", TextArea)
        if editor.text.strip():
            return
        editor.text = text
        self._last_text = text
        self.save_status = f"Restored the unsaved draft from {saved_at.astimezone().strftime('%m/%d %H:%M:%S')}"

    def note_saved(self) -> None:
        """The App saved the note: clear the editor for the next one."""
        editor = self.query_one("#note-editor", TextArea)
        editor.text = ""
        self._last_text = ""

    def action_dial_selected(self) -> None:
        number: PhoneNumber | None = None
        active = self.query_one(TabbedContent).active
        if active == Section.CARE_TEAM.value:
            number = self.query_one(f"#section-{Section.CARE_TEAM.value}", SectionView).selected_phone()
        elif self.patient is not None:
            current = [p for p in self.patient.phones if p.current]
            number = current[0].number if current else None
        if number is None:
            self.notify("No phone number selected to dial.", severity="warning")
            return
        self.post_message(self.DialRequested(number))

    def action_open_chart(self) -> None:
        if self.patient is not None:
            self.post_message(self.OpenChartRequested(self.patient))

    # ------------------------------------------------------------------ events
    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._request_active()

    @on(SectionView.RetryRequested)
    def _retry(self, event: SectionView.RetryRequested) -> None:
        self._request(event.section, force=True)

    @on(TextArea.Changed, "#note-editor")
    def _note_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.text == self._last_text:
            return
        self._last_text = event.text_area.text
        self.save_status = "Editing… (autosaves)"
        # Not a debounce: an agent who never pauses must not lose their draft either. The first
        # unsaved keystroke starts the timer; later ones ride along, so the Store lags < 1 s.
        if self._autosave is None:
            self._autosave = self.set_timer(AUTOSAVE_SECONDS, self._flush_draft, name="note-autosave")

    def _flush_draft(self) -> None:
        if self._autosave is not None:
            self._autosave.stop()
            self._autosave = None
        if self.patient is None or not self.is_mounted:
            return
        text = self.query_one("#note-editor", TextArea).text
        self.post_message(self.NoteDraftChanged(self.patient_id, self.call_id, text))

    def _request_active(self) -> None:
        active = self.query_one(TabbedContent).active
        if active == "summary":
            return
        if active == "notes":
            self._request(Section.NOTES)
            return
        self._request(Section(active))

    def _request(self, section: Section, *, force: bool = False) -> None:
        if not self.phi_allowed:
            return
        self.post_message(self.SectionRequested(self.patient_id, section, force=force))

    def _lock_all(self) -> None:
        for section in (*RECORD_TABS, Section.NOTES):
            self.set_section(
                section, SectionState("locked", message="Verify the caller (v) before this section shows.")
            )


__all__ = ["PatientScreen"]
