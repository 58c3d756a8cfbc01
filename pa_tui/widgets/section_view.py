"""One tab of the patient record: a status line and a table, set through one reactive.

The App loads the section in a worker and sets ``state``; this widget only renders.
A failing section shows its own error and how to retry; it never blanks the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, LoadingIndicator, Static

from pa_tui.domain.phones import PhoneNumber, format_human, mask_phone
from pa_tui.domain.records import (
    Appointment,
    Billing,
    CareTeamMember,
    ClinicalNote,
    Prescription,
    Referral,
    Section,
    SectionUnavailable,
)

MAX_COLUMN_WIDTH = 48

Status = Literal["idle", "loading", "ready", "error", "unavailable", "locked"]


@dataclass(frozen=True)
class SectionState:
    status: Status = "idle"
    data: Any = None
    message: str = ""


@dataclass(frozen=True)
class Row:
    cells: tuple[str | Text, ...]
    phone: PhoneNumber | None = None  # dialable number on this row, if any


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[Row, ...] = ()
    summary: str = ""
    extra: tuple["Table", ...] = field(default_factory=tuple)


def _dt(value: datetime | None) -> str:
    return value.astimezone().strftime("%m/%d/%Y %H:%M") if value else "—"


def _d(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%m/%d/%Y")


def _phone(number: PhoneNumber | None, masked: bool) -> str:
    if number is None:
        return "—"
    return mask_phone(number) if masked else format_human(number)


def appointments_table(items: Sequence[Appointment], now: datetime, masked: bool) -> Table:
    upcoming = sorted((a for a in items if a.start and a.start >= now), key=lambda a: a.start or now)
    past = sorted((a for a in items if not a.start or a.start < now), key=lambda a: a.start or now, reverse=True)
    rows = tuple(
        Row((("▶ " if a in upcoming else "  ") + _dt(a.start), a.status, a.service or a.description or "—",
             a.practitioner or "—", a.location or "—", a.patient_status or "—"))
        for a in (*upcoming, *past)
    )
    return Table(
        ("When", "Status", "What", "With", "Where", "Patient reply"),
        rows,
        f"{len(upcoming)} upcoming · {len(past)} past",
    )


def referrals_table(items: Sequence[Referral], now: datetime, masked: bool) -> Table:
    rows = tuple(
        Row((_d(r.authored), r.status, r.code or r.category or "—", r.performer or "—", r.requester or "—",
             r.reason or "—"))
        for r in sorted(items, key=lambda r: r.authored or datetime.min.replace(tzinfo=now.tzinfo), reverse=True)
    )
    active = sum(1 for r in items if r.status == "active")
    return Table(("Ordered", "Status", "Referral", "To", "By", "Reason"), rows, f"{len(items)} referrals · {active} active")


def prescriptions_table(items: Sequence[Prescription], now: datetime, masked: bool) -> Table:
    ordered = sorted(items, key=lambda p: (not p.is_active, p.medication.lower()))
    rows = tuple(
        Row((("● " if p.is_active else "○ ") + p.status, p.medication, p.dosage or "—",
             "—" if p.refills is None else str(p.refills), p.prescriber or "—", _d(p.authored)))
        for p in ordered
    )
    active = sum(1 for p in items if p.is_active)
    return Table(("Status", "Medication", "Dosage", "Refills", "Prescriber", "Written"), rows,
                 f"{active} active · {len(items) - active} stopped or completed")


def care_team_table(items: Sequence[CareTeamMember], now: datetime, masked: bool) -> Table:
    rows = tuple(
        Row((m.name, m.role or "—", _phone(m.phone, masked), m.team or "—"), phone=m.phone) for m in items
    )
    dialable = sum(1 for m in items if m.phone)
    return Table(("Name", "Role", "Phone", "Team"), rows, f"{len(items)} members · {dialable} dialable (d to dial)")


def notes_table(items: Sequence[ClinicalNote], now: datetime, masked: bool) -> Table:
    rows = tuple(
        Row((_dt(n.date), n.type or "Note", n.author or "—", (n.text or "").replace("\n", " ")[:120]))
        for n in sorted(items, key=lambda n: n.date or datetime.min.replace(tzinfo=now.tzinfo), reverse=True)
    )
    return Table(("Date", "Type", "Author", "Text"), rows, f"{len(items)} notes in the EHR")


def billing_table(billing: Billing, now: datetime, masked: bool) -> Table:
    accounts = tuple(
        Row((a.name or a.id, a.status or "—", str(a.balance) if a.balance else "—", a.guarantor or "—"))
        for a in billing.accounts
    )
    coverages = tuple(
        Row((c.payor or "—", c.plan or "—", "•••••" if masked else (c.subscriber_id or "—"), c.relationship or "—",
             c.status or "—", _d(c.period_end)))
        for c in billing.coverages
    )
    claims = tuple(
        Row((_d(c.created), c.provider or "—", c.outcome or c.status or "—", str(c.total) if c.total else "—",
             str(c.patient_owes) if c.patient_owes else "—"))
        for c in billing.claims
    )
    balance = billing.balance
    return Table(
        ("Account", "Status", "Balance", "Guarantor"),
        accounts,
        f"Balance {balance}" if balance is not None else "No balance on file",
        extra=(
            Table(("Payor", "Plan", "Member ID", "Relationship", "Status", "Ends"), coverages, "Coverage"),
            Table(("Date", "Provider", "Outcome", "Billed", "Patient owes"), claims, "Recent claims"),
        ),
    )


RENDERERS: dict[Section, Callable[[Any, datetime, bool], Table]] = {
    Section.APPOINTMENTS: appointments_table,
    Section.REFERRALS: referrals_table,
    Section.PRESCRIPTIONS: prescriptions_table,
    Section.CARE_TEAM: care_team_table,
    Section.NOTES: notes_table,
    Section.BILLING: billing_table,
}


class SectionView(Vertical):
    """Renders one section's state. Posts ``RetryRequested`` when the agent presses r."""

    DEFAULT_CSS = """
    SectionView { height: 1fr; }
    SectionView > .section-status { height: auto; padding: 0 1; }
    SectionView > LoadingIndicator { height: 3; }
    SectionView > DataTable { height: auto; max-height: 1fr; }
    """

    class RetryRequested(Message):
        def __init__(self, section: Section) -> None:
            super().__init__()
            self.section = section

    state: reactive[SectionState] = reactive(SectionState, always_update=True)
    now: reactive[datetime | None] = reactive(None)
    masked: reactive[bool] = reactive(False)

    def __init__(self, section: Section, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.section = section
        self._rows: list[Row] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="section-status")
        yield LoadingIndicator()
        yield DataTable(cursor_type="row", zebra_stripes=True, id=f"{self.section.value}-table")
        for i in range(2):
            yield Static("", classes="section-status extra-title", id=f"{self.section.value}-extra-title-{i}")
            yield DataTable(cursor_type="row", zebra_stripes=True, id=f"{self.section.value}-extra-{i}")

    def on_mount(self) -> None:
        self._render_state()

    def watch_state(self) -> None:
        if self.is_mounted:
            self._render_state()

    def watch_masked(self) -> None:
        if self.is_mounted:
            self._render_state()

    def selected_phone(self) -> PhoneNumber | None:
        table = self.query_one(f"#{self.section.value}-table", DataTable)
        if not self._rows or table.cursor_row is None or table.cursor_row >= len(self._rows):
            return None
        return self._rows[table.cursor_row].phone

    def _render_state(self) -> None:
        state = self.state
        status = self.query_one(".section-status", Static)
        spinner = self.query_one(LoadingIndicator)
        main = self.query_one(f"#{self.section.value}-table", DataTable)
        extras = [
            (self.query_one(f"#{self.section.value}-extra-title-{i}", Static),
             self.query_one(f"#{self.section.value}-extra-{i}", DataTable))
            for i in range(2)
        ]
        spinner.display = state.status == "loading"
        for title, table in extras:
            title.display = table.display = False
        main.display = False
        self._rows = []
        if state.status == "idle":
            status.update(Text("Opens when you select this tab.", style="dim"))
        elif state.status == "loading":
            status.update(Text(f"Loading {self.section.label.lower()} from the EHR…", style="italic"))
        elif state.status == "locked":
            status.update(Text(f"🔒 {state.message}", style="bold"))
        elif state.status == "unavailable":
            status.update(Text(f"⊘ {self.section.label}: {state.message}", style="bold"))
        elif state.status == "error":
            status.update(Text(f"✗ {self.section.label} could not load: {state.message}  — press r to retry"))
        elif isinstance(state.data, SectionUnavailable):
            status.update(Text(f"⊘ {self.section.label}: {state.data.reason}", style="bold"))
        else:
            renderer = RENDERERS.get(self.section)
            if renderer is None:
                return
            table = renderer(state.data, self.now or datetime.now().astimezone(), self.masked)
            status.update(Text(table.summary or "", style="bold"))
            self._fill(main, table)
            self._rows = list(table.rows)
            for (title, dt), extra in zip(extras, table.extra, strict=False):
                title.update(Text(extra.summary, style="bold underline"))
                title.display = True
                self._fill(dt, extra)

    @staticmethod
    def _fill(table: DataTable[Any], data: Table) -> None:
        table.clear(columns=True)
        # Widths from the content (capped), so a table filled while hidden is not cut to its headers.
        for i, label in enumerate(data.columns):
            cells = [len(c.plain if isinstance(c, Text) else str(c)) for c in (r.cells[i] for r in data.rows)]
            table.add_column(label, width=min(max([len(label), *cells]), MAX_COLUMN_WIDTH))
        for row in data.rows:
            table.add_row(*row.cells)
        table.display = True
        if not data.rows:
            table.add_row(*(["(none)"] + [""] * (len(data.columns) - 1)))

    def action_retry(self) -> None:
        if self.state.status == "error":
            self.post_message(self.RetryRequested(self.section))

    BINDINGS = [("r", "retry", "Retry")]
