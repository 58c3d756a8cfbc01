"""The popped patient for the current caller: one card, a household list, or "not found".

Before the caller is verified it shows name, age and date of birth only.
"""

from __future__ import annotations

from datetime import date

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from pa_tui.domain.patients import CallerMatch, MatchSource, PatientSummary
from pa_tui.domain.phones import CallerNumber, NoCallerId, UnreadableNumber, format_human, mask_phone


class LookupState:
    IDLE = "idle"
    SEARCHING = "searching"
    DONE = "done"
    FAILED = "failed"


class PatientCard(Static):
    DEFAULT_CSS = """
    PatientCard { height: auto; min-height: 7; width: 1fr; padding: 0 1; }
    """

    caller: reactive[CallerNumber | None] = reactive(None)
    match: reactive[CallerMatch | None] = reactive(None)
    lookup: reactive[str] = reactive(LookupState.IDLE)
    error: reactive[str] = reactive("")
    today: reactive[date | None] = reactive(None)
    masked: reactive[bool] = reactive(False)
    patient: reactive[PatientSummary | None] = reactive(None)  # the member chosen / the single match
    verified: reactive[str] = reactive("")  # how the caller was verified; "" = not yet

    def watch_match(self, match: CallerMatch | None) -> None:
        self.set_class(match is not None and match.kind == "single", "-single")
        self.set_class(match is not None and match.kind == "household", "-household")

    def render(self) -> RenderableType:
        title = Text("Patient", style="bold underline")
        body: RenderableType
        if self.lookup == LookupState.IDLE and self.match is None:
            body = Text("No caller yet. The patient pops here when a call rings.", style="dim")
        elif isinstance(self.caller, NoCallerId) and self.match is None:
            body = Text("No caller ID on this call — search by name or date of birth (/).")
        elif isinstance(self.caller, UnreadableNumber) and self.match is None:
            body = Text(
                f"The caller's number could not be read ({self.caller.reason}) — search by name or date of birth (/)."
            )
        elif self.lookup == LookupState.SEARCHING:
            body = Text(f"Looking up {self._number()} in the EHR…", style="italic")
        elif self.lookup == LookupState.FAILED:
            body = Text(f"Could not look up the caller: {self.error}", style="bold")
        elif self.patient is not None:
            body = self._single(self.patient)
        elif self.match is None or not self.match.candidates:
            if self.match is not None and not self.match.phone_search_supported:
                body = Text(
                    f"This EHR does not search by phone — press / to identify {self._number()} by name and DOB."
                )
            else:
                body = Text(f"No patient found for {self._number()} — press / to search by name or DOB.")
        elif len(self.match.candidates) == 1:
            body = self._single(self.match.candidates[0])
        else:
            body = self._household(self.match)
        if self.match is not None and self.match.source is MatchSource.KNOWN_CALLER and self.match.known_since:
            since = self.match.known_since.astimezone().strftime("%m/%d/%Y")
            body = Group(Text(f"Known from a verified call on {since} (this number is not on file in the EHR)",
                              style="italic"), body)
        return Group(title, body)

    def _today(self) -> date:
        return self.today or date.today()

    def _number(self) -> str:
        return mask_phone(self.caller) if self.masked else format_human(self.caller)

    def _shown_name(self, patient: PatientSummary, index: int = 1) -> str:
        return f"Patient {index}" if self.masked else patient.display_name

    def _shown_dob(self, patient: PatientSummary) -> str:
        return "••/••/••••" if self.masked else patient.dob_label

    def _single(self, patient: PatientSummary) -> RenderableType:
        name = Text(self._shown_name(patient), style="bold")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        grid.add_row("Age", patient.age_label(self._today()))
        grid.add_row("DOB", self._shown_dob(patient))
        if patient.restricted_reason:
            grid.add_row("Restricted", patient.restricted_reason)
        if self.verified:
            grid.add_row("MRN", "•••••" if self.masked else (patient.mrn or "—"))
            if patient.address is not None:
                grid.add_row("Address", "•••" if self.masked else patient.address.one_line())
            note = Text(f"✓ Caller verified ({self.verified}) — Enter opens the record.", style="bold")
        else:
            note = Text("✗ Caller not verified — press v to verify before sharing details.", style="italic")
        return Group(name, grid, note)

    def _household(self, match: CallerMatch) -> RenderableType:
        head = Text(
            f"{len(match.candidates)} patients share {self._number()} — ask who is calling, then press c:",
            style="bold",
        )
        table = Table(box=None, show_header=True, header_style="dim", padding=(0, 2, 0, 0))
        table.add_column("#")
        table.add_column("Name")
        table.add_column("DOB")
        table.add_column("Age")
        table.add_column("Relationship")
        for i, patient in enumerate(match.candidates, 1):
            table.add_row(
                str(i),
                self._shown_name(patient, i),
                self._shown_dob(patient),
                patient.age_label(self._today()),
                patient.relationship or "",
            )
        return Group(head, table)
