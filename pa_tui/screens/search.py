"""Find a patient: one input that understands phone numbers, dates of birth, MRNs and names.

Results arrive as you type. The screen posts :class:`SearchScreen.QueryChanged`
(debounced) and the App runs the search in an exclusive worker, then sets
``searching``, ``results`` and ``error`` on the screen. Enter posts
:class:`SearchScreen.PatientChosen`; Esc (or q in the results) goes back.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Final

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from pa_tui.domain.patients import PatientSummary
from pa_tui.domain.phones import format_human
from pa_tui.domain.search import ParsedQuery, QueryKind, interpret_query, no_match_suggestion
from pa_tui.domain.verification import dob_for, mrn_for, name_for

DEBOUNCE_SECONDS: Final = 0.25


def _phone_tail(patient: PatientSummary, masked: bool) -> str:
    current = [p for p in patient.phones if p.current] or list(patient.phones)
    if not current:
        return "—"
    return "••••" if masked else f"…{current[0].number.last4}"


class SearchScreen(Screen[None]):
    """Full-screen patient search."""

    CSS_PATH = "../styles/search.tcss"
    BINDING_GROUP_TITLE = "Patient search"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "choose",
            "Open patient",
            priority=True,
            id="search-open",
            tooltip="Open the highlighted patient",
        ),
        Binding("down", "cursor(1)", "Next", show=False, id="search-next", tooltip="Highlight the next result"),
        Binding("up", "cursor(-1)", "Previous", show=False, id="search-previous", tooltip="Highlight the previous"),
        Binding("slash", "edit_query", "Edit search", id="search-edit", tooltip="Back to the search box"),
        Binding("escape", "back", "Back", id="search-back", tooltip="Back to the console"),
        Binding("q", "back", "Back", show=False, id="search-back-q", tooltip="Back to the console (from the results)"),
    ]

    results: reactive[tuple[PatientSummary, ...]] = reactive((), always_update=True, init=False)
    searching: reactive[bool] = reactive(False, init=False)
    error: reactive[str] = reactive("", init=False)
    show_mrn: reactive[bool] = reactive(False, init=False)

    class QueryChanged(Message):
        """The agent paused typing: search for ``search_text`` (the query rewritten for EHR.search)."""

        def __init__(self, screen: SearchScreen, parsed: ParsedQuery) -> None:
            super().__init__()
            self.search_screen = screen
            self.parsed = parsed
            self.query = parsed.text
            self.kind = parsed.kind
            self.search_text = parsed.search_text

        @property
        def control(self) -> SearchScreen:
            return self.search_screen

    class PatientChosen(Message):
        """The agent opened a result."""

        def __init__(self, screen: SearchScreen, patient: PatientSummary) -> None:
            super().__init__()
            self.search_screen = screen
            self.patient = patient

        @property
        def control(self) -> SearchScreen:
            return self.search_screen

    def __init__(
        self,
        initial_query: str = "",
        today: date | None = None,
        *,
        masked: bool = False,
        show_mrn: bool = False,
        debounce: float = DEBOUNCE_SECONDS,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.initial_query = initial_query
        self.today = today or date.today()
        self.masked = masked
        self.debounce = debounce
        self.set_reactive(SearchScreen.show_mrn, show_mrn)
        self.parsed = interpret_query(initial_query, today=self.today)
        self._posted: ParsedQuery | None = None  # the query the current results belong to
        self._timer: Timer | None = None
        self._can_choose = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("Find a patient", id="search-title")
        yield Input(
            value=self.initial_query,
            placeholder="Name, date of birth, phone number or MRN",
            id="search-query",
            password=self.masked,
        )
        yield Static("", id="search-hint")
        yield Static("", id="search-status")
        yield DataTable(id="search-results", cursor_type="row", zebra_stripes=True, classes="-empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key in (("Name", "name"), ("DOB", "dob"), ("Age", "age"), ("Sex", "sex"),
                           ("Phone", "phone"), ("MRN", "mrn")):  # fmt: skip
            table.add_column(label, key=key)
        self.query_one(Input).focus()
        self._show_hint()
        if self.parsed.kind.searchable:
            self._post_query()  # a pre-filled search runs at once
        else:
            self._show_status()

    # ------------------------------------------------------------------ typing
    @property
    def pending(self) -> bool:
        """A keystroke is waiting out the debounce."""
        return self._timer is not None

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    @on(Input.Changed, "#search-query")
    def _typed(self, event: Input.Changed) -> None:
        parsed = interpret_query(event.value, today=self.today)
        if parsed == self.parsed and (self.pending or self._posted == parsed):
            return
        self.parsed = parsed
        self._cancel_timer()
        self._show_hint()
        if parsed.kind.searchable:
            if self._posted is None or parsed.search_text != self._posted.search_text:
                self._timer = self.set_timer(self.debounce, self._post_query, name="search-debounce")
        else:
            self._posted = None
            self._fill_table(())
        self._show_status()
        self._sync_bindings()

    @on(Input.Submitted, "#search-query")
    def _submitted(self, event: Input.Submitted) -> None:
        # Enter while a search is still pending (nothing to open yet): search now.
        if self.pending:
            self._cancel_timer()
            self._post_query()

    def _post_query(self) -> None:
        self._timer = None
        self._posted = self.parsed
        self.error = ""  # a new search: the last one's failure no longer applies
        self.post_message(self.QueryChanged(self, self.parsed))
        self._show_status()
        self._sync_bindings()

    # ------------------------------------------------------------------ state from the App
    def watch_results(self, results: tuple[PatientSummary, ...]) -> None:
        if self._posted is None:
            return  # the query was cleared: results for an older one are stale
        self._fill_table(self.shown)
        self._show_status()
        self._sync_bindings()

    def watch_searching(self) -> None:
        self._show_status()
        self._sync_bindings()

    def watch_error(self) -> None:
        self._show_status()

    def watch_show_mrn(self) -> None:
        self._fill_table(self.shown if self._posted is not None else ())

    @property
    def shown(self) -> tuple[PatientSummary, ...]:
        """The results as listed: one row per patient id, in the order the EHR gave them."""
        first: dict[str, PatientSummary] = {}
        for patient in self.results:
            first.setdefault(patient.id, patient)
        return tuple(first.values())

    def _fill_table(self, results: tuple[PatientSummary, ...]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for i, p in enumerate(results, 1):
            name = name_for(p, i, masked=self.masked)
            if p.deceased:
                name += " (deceased)"
            elif p.restricted_reason:
                name += " (restricted)"
            table.add_row(
                name,
                dob_for(p, masked=self.masked),
                p.age_label(self.today),
                (p.sex or "—").capitalize(),
                _phone_tail(p, self.masked),
                mrn_for(p.mrn, masked=self.masked or not self.show_mrn) if p.mrn else "—",
                key=p.id,
            )
        table.set_class(not results, "-empty")

    def _show_hint(self) -> None:
        hint = self.query_one("#search-hint", Static)
        p = self.parsed
        text = p.hint
        if not self.masked:
            if p.kind is QueryKind.DOB and p.dob:
                text += f": {p.dob:%B} {p.dob.day}, {p.dob.year}"
            elif p.kind is QueryKind.PHONE and p.phone:
                text += f": {format_human(p.phone)}"
            elif p.kind is QueryKind.NAME and p.dob:
                text += f": {p.name}, born {p.dob:%m/%d/%Y}"
        hint.update(text)
        hint.set_class(p.kind is QueryKind.UNCLEAR, "-unclear")

    def _show_status(self) -> None:
        status = self.query_one("#search-status", Static)
        status.set_class(False, "-error")
        status.set_class(False, "-no-match")
        if not self.parsed.kind.searchable:
            status.update("")
        elif self.pending or self.searching:
            status.update("Searching…")
        elif self.error:
            status.update(f"✗ Search failed: {self.error}")
            status.set_class(True, "-error")
        elif self._posted is None:
            status.update("")
        elif not self.results:
            status.update(no_match_suggestion(self._posted, masked=self.masked))
            status.set_class(True, "-no-match")
        else:
            n = len(self.shown)
            status.update(f"{n} patient{'s' * (n != 1)} — ↑↓ to move, Enter to open")

    # ------------------------------------------------------------------ actions
    def _sync_bindings(self) -> None:
        """Redraw the footer only when Enter's state flips (a redraw per keystroke is slow)."""
        can = self.check_action("choose", ()) is True
        if can != self._can_choose:
            self._can_choose = can
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose":
            ready = bool(self.results) and self._posted is not None and not self.pending and not self.searching
            return ready or None
        if action == "cursor":
            return bool(self.results) or None
        return True

    def action_choose(self) -> None:
        table = self.query_one(DataTable)
        shown = self.shown
        if not 0 <= table.cursor_row < len(shown):
            return
        self.post_message(self.PatientChosen(self, shown[table.cursor_row]))

    @on(DataTable.RowSelected)
    def _row_clicked(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose()

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        if step > 0:
            table.action_cursor_down()
        else:
            table.action_cursor_up()

    def action_edit_query(self) -> None:
        self.query_one(Input).focus()

    def action_back(self) -> None:
        self._cancel_timer()
        self.dismiss(None)
