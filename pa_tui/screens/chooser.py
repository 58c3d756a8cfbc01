"""Who is calling? The household members who share the caller's number.

Shows name, date of birth, age and relationship — nothing more until the
caller is verified. Returns the chosen :class:`PatientSummary`, ``"none"`` when
the caller is none of them (the App opens the identification form), or ``None``
when the agent backs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import ClassVar, Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from pa_tui.domain.patients import PatientSummary
from pa_tui.domain.phones import CallerNumber
from pa_tui.domain.verification import dob_for, name_for, number_for

ChooserResult = PatientSummary | Literal["none"] | None

_MAX_DIGIT = 9


def _digit_bindings() -> list[BindingType]:
    return [
        Binding(
            str(n),
            f"pick({n})",
            f"Choose #{n}",
            show=n == 1,
            key_display="1–9" if n == 1 else None,
            id=f"chooser-pick-{n}",
            tooltip=f"The caller is patient #{n} in the list",
        )
        for n in range(1, _MAX_DIGIT + 1)
    ]


class ChooserScreen(ModalScreen[ChooserResult]):
    """Pick the caller among the patients on one number."""

    CSS_PATH = "../styles/chooser.tcss"
    BINDING_GROUP_TITLE = "Choose the caller"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "choose",
            "Choose",
            priority=True,
            id="chooser-choose",
            tooltip="The caller is the highlighted patient",
        ),
        *_digit_bindings(),
        Binding("n", "none", "None of these", id="chooser-none", tooltip="The caller is not listed: identify them"),
        Binding("escape", "cancel", "Cancel", id="chooser-cancel", tooltip="Close without choosing"),
        Binding("q", "cancel", "Cancel", show=False, id="chooser-cancel-q", tooltip="Close without choosing"),
    ]

    def __init__(
        self,
        candidates: Sequence[PatientSummary],
        number_label: str | CallerNumber,
        today: date | None = None,
        *,
        masked: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.candidates = tuple(candidates)
        self.number_label = number_label
        self.today = today or date.today()
        self.masked = masked

    def compose(self) -> ComposeResult:
        n = len(self.candidates)
        number = number_for(self.number_label, masked=self.masked)
        with Vertical(id="chooser-dialog"):
            share = f"{n} patients share" if n != 1 else "1 patient has"
            yield Static(f"Who is calling? {share} {number}", id="chooser-title")
            yield Static("Ask the caller's name and date of birth, then choose.", id="chooser-help")
            yield DataTable(id="chooser-table", cursor_type="row", zebra_stripes=True, show_row_labels=False)
            yield Static("n  None of these — identify the caller   ·   Esc  back", id="chooser-none-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("#", key="n")
        table.add_column("Name", key="name")
        table.add_column("DOB", key="dob")
        table.add_column("Age", key="age")
        table.add_column("Relationship", key="relationship")
        for i, patient in enumerate(self.candidates, 1):
            table.add_row(
                str(i) if i <= _MAX_DIGIT else "",
                name_for(patient, i, masked=self.masked),
                dob_for(patient, masked=self.masked),
                patient.age_label(self.today),
                patient.relationship or "—",
                key=str(i - 1),
            )
        table.focus()

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick":
            (n,) = parameters
            return isinstance(n, int) and 1 <= n <= len(self.candidates)
        if action == "choose":
            return bool(self.candidates)
        return True

    def action_pick(self, n: int) -> None:
        if 1 <= n <= len(self.candidates):
            self.dismiss(self.candidates[n - 1])

    def action_choose(self) -> None:
        row = self.query_one(DataTable).cursor_row
        if 0 <= row < len(self.candidates):
            self.dismiss(self.candidates[row])

    def action_none(self) -> None:
        self.dismiss("none")

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        # A mouse click on a row; Enter is handled by the priority binding.
        event.stop()
        self.dismiss(self.candidates[int(event.row_key.value or 0)])
