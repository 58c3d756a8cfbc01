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

from pa_tui.domain.patients import CallerMatch, PatientSummary
from pa_tui.domain.phones import CallerNumber, NoCallerId, UnreadableNumber, format_human


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
            body = Text(f"Looking up {format_human(self.caller)} in the EHR…", style="italic")
        elif self.lookup == LookupState.FAILED:
            body = Text(f"Could not look up the caller: {self.error}", style="bold")
        elif self.match is None or not self.match.candidates:
            body = Text(f"No patient found for {format_human(self.caller)} — press / to search by name or DOB.")
        elif len(self.match.candidates) == 1:
            body = self._single(self.match.candidates[0])
        else:
            body = self._household(self.match)
        return Group(title, body)

    def _today(self) -> date:
        return self.today or date.today()

    def _single(self, patient: PatientSummary) -> RenderableType:
        name = Text(patient.display_name, style="bold")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        grid.add_row("Age", patient.age_label(self._today()))
        grid.add_row("DOB", patient.dob_label)
        if patient.restricted_reason:
            grid.add_row("Restricted", patient.restricted_reason)
        note = Text("Caller not verified — confirm identity before sharing details.", style="italic")
        return Group(name, grid, note)

    def _household(self, match: CallerMatch) -> RenderableType:
        head = Text(
            f"{len(match.candidates)} patients share {format_human(self.caller)} — ask who is calling:",
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
                patient.display_name,
                patient.dob_label,
                patient.age_label(self._today()),
                patient.relationship or "",
            )
        return Group(head, table)
