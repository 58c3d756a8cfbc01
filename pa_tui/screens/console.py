"""The agent's home screen: header, problem banner, current call, patient, live events."""

from __future__ import annotations

from datetime import date, datetime

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Static

from pa_tui.backends.base import ConnectionState
from pa_tui.domain.agents import Agent, AgentStatus
from pa_tui.domain.calls import Call
from pa_tui.domain.patients import CallerMatch, PatientSummary
from pa_tui.domain.phones import CallerNumber
from pa_tui.widgets.agent_bar import AgentBar
from pa_tui.widgets.call_banner import CallBanner
from pa_tui.widgets.event_log import EventLog
from pa_tui.widgets.patient_card import LookupState, PatientCard
from pa_tui.widgets.problem_banner import ProblemBanner


class ConsoleScreen(Screen[None]):
    """State arrives through reactives set by the App; widgets are bound to them."""

    BINDING_GROUP_TITLE = "Console"
    BINDINGS = [
        Binding("enter", "open_record", "Open record", id="open-record",
                tooltip="Open the caller's record (after verification)"),
        Binding("v", "verify", "Verify", id="verify-caller", tooltip="Verify the caller's identity"),
        Binding("c", "choose", "Choose", id="choose-patient", tooltip="Choose which household member is calling"),
        Binding("slash", "search", "Search", id="search", tooltip="Search patients by name, phone, DOB or ID"),
        Binding("d", "intent('dial')", "Dial", id="dial", tooltip="Dial a number from your Dialpad devices"),
        Binding("t", "intent('transfer')", "Transfer", id="transfer",
                tooltip="Transfer the call; the patient context goes with it"),
        Binding("h", "intent('hangup')", "Hang up", id="hangup", tooltip="Hang up the current call"),
        Binding("s", "intent('status')", "Status", id="status", tooltip="Go on or off duty"),
        Binding("m", "intent('mini-dialer')", "Mini dialer", id="mini-dialer",
                tooltip="Open the Dialpad mini dialer in your browser (it carries the call audio)"),
        Binding("w", "intent('wrapup')", "Wrap-up", id="wrapup", tooltip="Set wrap-up codes on the call"),
        Binding("b", "intent('callback')", "Call back", id="callback",
                tooltip="Queue a call back to this caller in the call center"),
    ]

    def watch_call(self, old: Call | None, new: Call | None) -> None:
        # Every call event replaces ``call``; the footer depends only on "is there a call, is it
        # active", so refresh the keys when that changes, not on every event (60-90 ms each).
        def key(c: Call | None) -> tuple[bool, bool]:
            return (c is not None, c is not None and c.is_active)

        if key(old) != key(new):
            self.refresh_bindings()

    def action_intent(self, action: str) -> None:
        self.post_message(self.Requested(action))

    class Requested(Message):
        """An intent from the console: ``action`` is one of the binding actions."""

        def __init__(self, action: str) -> None:
            super().__init__()
            self.action = action

    def action_open_record(self) -> None:
        self.post_message(self.Requested("open-record"))

    def action_verify(self) -> None:
        self.post_message(self.Requested("verify"))

    def action_choose(self) -> None:
        self.post_message(self.Requested("choose"))

    def action_search(self) -> None:
        self.post_message(self.Requested("search"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        match = self.match
        if action == "choose":
            return True if match is not None and match.kind == "household" else None
        if action in ("open_record", "verify"):
            return True if self.patient is not None or (match is not None and match.kind == "single") else None
        if action == "intent" and parameters and parameters[0] in ("transfer", "hangup"):
            return True if self.call is not None and self.call.is_active else None
        if action == "intent" and parameters and parameters[0] in ("wrapup", "callback"):
            return True if self.call is not None else None
        return True

    agent: reactive[Agent | None] = reactive(None)
    agent_id: reactive[str | None] = reactive(None)
    status: reactive[AgentStatus | None] = reactive(None)
    connection: reactive[ConnectionState | None] = reactive(None)
    problem: reactive[str] = reactive("")
    call: reactive[Call | None] = reactive(None)
    other_calls: reactive[int] = reactive(0)
    now: reactive[datetime | None] = reactive(None)
    today: reactive[date | None] = reactive(None)
    caller: reactive[CallerNumber | None] = reactive(None)
    match: reactive[CallerMatch | None] = reactive(None, bindings=True)
    lookup: reactive[str] = reactive(LookupState.IDLE)
    lookup_error: reactive[str] = reactive("")
    masked: reactive[bool] = reactive(False)
    patient: reactive[PatientSummary | None] = reactive(None, bindings=True)  # the chosen caller
    verified: reactive[str] = reactive("")

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[tuple[str, str | None]] = []

    def compose(self) -> ComposeResult:
        yield AgentBar(id="agent-bar").data_bind(
            ConsoleScreen.agent, ConsoleScreen.status, ConsoleScreen.connection
        )
        yield ProblemBanner(id="problem-banner").data_bind(ConsoleScreen.problem)
        yield CallBanner(id="call-banner").data_bind(
            ConsoleScreen.call, ConsoleScreen.now, ConsoleScreen.masked, others=ConsoleScreen.other_calls,
            me=ConsoleScreen.agent_id,
        )
        with Horizontal(id="console-body"):
            with Vertical(id="patient-pane"):
                yield PatientCard(id="patient-card").data_bind(
                    ConsoleScreen.caller,
                    ConsoleScreen.match,
                    ConsoleScreen.lookup,
                    ConsoleScreen.today,
                    ConsoleScreen.masked,
                    ConsoleScreen.patient,
                    ConsoleScreen.verified,
                    error=ConsoleScreen.lookup_error,
                )
            with Vertical(id="events-pane"):
                yield Static("Live events", classes="pane-title")
                yield EventLog(id="event-log").data_bind(ConsoleScreen.masked)
        yield Footer()

    NARROW_BELOW = 110  # columns

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < self.NARROW_BELOW, "-narrow")

    def log_line(self, line: str, masked: str | None = None) -> None:
        logs = self.query(EventLog)
        if not logs:  # events can arrive before the screen is composed: keep them for on_mount
            self._pending.append((line, masked))
            return
        logs.first().add(line, masked)

    def on_mount(self) -> None:
        log = self.query_one(EventLog)
        for line, masked in self._pending:
            log.add(line, masked)
        self._pending.clear()
