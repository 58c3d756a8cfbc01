"""The Textual App: owns the backends, runs every I/O worker, routes results as Messages.

Data flows one way: backends → App (workers, messages) → screens (reactives) → widgets.
Screens and widgets never do I/O.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from pa_tui.backends.base import (
    BackendError,
    BackendSet,
    ConnectionState,
    Store,
    LinkStatus,
    StreamNotice,
)
from pa_tui.domain.agents import AgentStatus, AgentStatusEvent
from pa_tui.domain.calls import Call, CallBook, CallDirection, CallEvent, CallPhase, CallState
from pa_tui.domain.audit import Verification as AuditState
from pa_tui.domain.notes import Note, NoteStatus
from pa_tui.domain.patients import CallerMatch, MatchSource, PatientSummary
from pa_tui.domain.phones import PhoneNumber, format_human, mask_phone
from pa_tui.messages import (
    AgentLoaded,
    AgentStatusChanged,
    CallerIdentified,
    CallerLookupFailed,
    CallEventReceived,
    ConnectionChanged,
    InboundFactReceived,
    PopReceived,
    StreamNoticed,
)
from pa_tui.backends.inbound.facts import PopRequested
from pa_tui.backends.twilio.parse import DeliveryStatus, InboundSms
from pa_tui.commands import ContextCommands
from pa_tui.flows.calls import CallFlow
from pa_tui.flows.record import RecordFlow
from pa_tui.screens.transfer import TransferScreen
from pa_tui.screens.console import ConsoleScreen
from pa_tui.screens.diagnostics import DiagnosticsScreen
from pa_tui.screens.patient import PatientScreen
from pa_tui.widgets.patient_card import LookupState

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

SLOW_EHR_SECONDS = 2.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PaTuiApp(CallFlow, RecordFlow, App[int]):
    """The agent console."""

    TITLE = "pa-tui"
    COMMANDS = App.COMMANDS | {ContextCommands}
    CSS_PATH = ["styles/base.tcss", "styles/console.tcss", "styles/patient.tcss"]
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave pa-tui (notes are already saved)"),
        Binding("ctrl+x", "toggle_mask", "Privacy", id="privacy-mask",
                tooltip="Hide names, dates of birth, MRNs and numbers everywhere (for screen sharing)"),
        Binding("question_mark", "help", "Help", id="help", tooltip="Every key on this screen"),
        Binding("f2", "diagnostics", "Diagnostics", id="diagnostics",
                tooltip="Event link, websocket expiry, rate budgets, listener, outbox"),
    ]

    def __init__(
        self,
        settings: Any,
        backends: BackendSet,
        *,
        clock: Clock = _utcnow,
        tick: float = 1.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.backends = backends
        self.clock = clock
        self.tick_interval = tick
        self.book = CallBook()
        self.agent_id: str | None = None
        self.focused_call_id: str | None = None
        self.matches: dict[str, Any] = {}
        self.lookups_started: set[str] = set()
        self.lookup_started_at: dict[str, datetime] = {}
        self.problems: dict[str, str] = {}  # area -> one line; insertion order = age
        self.home = ConsoleScreen()
        self.privacy_mask = bool(getattr(getattr(settings, "ui", None), "privacy_mask", False))
        self.home.set_reactive(ConsoleScreen.masked, self.privacy_mask)
        self._closed = False
        self._store_ready = asyncio.Event()
        self._store_ok = False
        self._record_init()
        self.chosen: dict[str, PatientSummary] = {}  # call id -> the patient the caller is
        self.verified: dict[str, str] = {}  # call id -> how the caller was verified
        self.handoffs_checked: set[str] = set()

    # ------------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        self.push_screen(self.home)
        self._tick()
        if self.tick_interval > 0:
            self.set_interval(self.tick_interval, self._tick, name="clock")
        track = getattr(self.backends.telephony, "track_active_calls", None)
        if track is not None:
            track(lambda: [c.id for c in self.book.active() if not c.id.startswith("pop-")])
        self.open_store()
        if getattr(self.settings.fhir, "write_notes", False):
            self.run_outbox()
        self.load_agent()
        self.consume_events()
        if self.backends.inbound is not None:
            self.serve_inbound()

    async def on_unmount(self) -> None:
        await self._close_backends()

    async def action_quit(self) -> None:
        await self._persist_open_drafts()
        await self._close_backends()
        self.exit(0)

    async def _persist_open_drafts(self) -> None:
        """Quitting mid-note: the text on screen becomes the draft before the store closes."""
        store = self.backends.store if self._store_ok else None
        if store is None:
            return
        now = self.clock()
        for screen in self.screen_stack:
            if isinstance(screen, PatientScreen):
                text = screen.note_text()
                if text.strip():
                    await store.save_draft(
                        Note(patient_id=screen.patient_id, call_id=screen.call_id, agent_id=self.agent_id or
                             "unknown-agent", text=text, status=NoteStatus.DRAFT, created_at=now, updated_at=now)
                    )

    async def _close_backends(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.outbox_worker is not None:
            self.outbox_worker.stop()
        self.workers.cancel_all()
        await self.backends.aclose()

    def action_toggle_mask(self) -> None:
        self.privacy_mask = not self.privacy_mask
        self.home.masked = self.privacy_mask
        for screen in self.screen_stack:
            if hasattr(screen, "masked"):
                screen.masked = self.privacy_mask  # type: ignore[attr-defined]
        self.notify("Privacy mask on: PHI hidden" if self.privacy_mask else "Privacy mask off")

    def action_diagnostics(self) -> None:
        if not isinstance(self.screen, DiagnosticsScreen):
            self.push_screen(DiagnosticsScreen())

    def on_diagnostics_screen_refresh_requested(self, event: DiagnosticsScreen.RefreshRequested) -> None:
        self.refresh_diagnostics()

    @work(group="diagnostics", exclusive=True, exit_on_error=False, description="Gather diagnostics")
    async def refresh_diagnostics(self) -> None:
        telephony = self.backends.telephony
        info: dict[str, Any] = {
            "telephony": telephony.diagnostics() if hasattr(telephony, "diagnostics") else {},
            "inbound": getattr(self.backends.inbound, "url", None),
            "store": type(self.backends.store).__name__ if self.backends.store is not None else None,
        }
        store = await self.ready_store()
        if store is not None:
            try:
                info["outbox"] = await store.outbox_counts()
            except BackendError as exc:
                info["outbox"] = {"error": exc.title}
        if isinstance(self.screen, DiagnosticsScreen):
            self.screen.info = info

    def action_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def _tick(self) -> None:
        now = self.clock()
        self.home.now = now
        if isinstance(self.screen, PatientScreen):
            self.screen.now = now
        self.home.today = now.astimezone().date() if now.tzinfo else now.date()
        if self.lookup_started_at:
            waited = (now - min(self.lookup_started_at.values())).total_seconds()
            if waited >= SLOW_EHR_SECONDS:
                self._set_problem(
                    "ehr-slow", f"EHR is slow: still waiting after {waited:.0f} s — the card fills in when it answers"
                )

    # ------------------------------------------------------------------ store
    @work(group="store-open", exit_on_error=False, description="Open the local store")
    async def open_store(self) -> None:
        store = self.backends.store
        try:
            if store is not None:
                await store.open()
                self._store_ok = True
        except BackendError as exc:
            self._set_problem("store", f"Local store: {exc}")
            log.error("store unavailable: %s", exc.title)
        finally:
            self._store_ready.set()

    async def ready_store(self) -> Store | None:
        """The opened store, or ``None`` when there is none or it failed to open."""
        await self._store_ready.wait()
        return self.backends.store if self._store_ok else None

    # ------------------------------------------------------------------ workers
    @work(group="dialpad-agent", exit_on_error=False, description="Load the agent and their status")
    async def load_agent(self) -> None:
        agent = await self.backends.telephony.me()
        status: AgentStatus | None
        try:
            status = await self.backends.telephony.agent_status(agent.id)
        except BackendError as exc:
            log.warning("agent status unavailable: %s", exc.title)
            status = None
        self.post_message(AgentLoaded(agent, status))

    @work(group="dialpad-events", exclusive=True, exit_on_error=False, description="Live Dialpad events")
    async def consume_events(self) -> None:
        async for event in self.backends.telephony.events():
            if isinstance(event, CallEvent):
                self.post_message(CallEventReceived(event))
            elif isinstance(event, AgentStatusEvent):
                self.post_message(AgentStatusChanged(event))
            elif isinstance(event, ConnectionState):
                self.post_message(ConnectionChanged(event))
            elif isinstance(event, StreamNotice):
                self.post_message(StreamNoticed(event))

    @work(group="inbound", exclusive=True, exit_on_error=False, description="Webhooks and caller-info pops")
    async def serve_inbound(self) -> None:
        listener = self.backends.inbound
        try:
            url = await listener.start()
        except (OSError, BackendError) as exc:
            self._set_problem("inbound", f"Inbound listener could not start: {exc} — set listen.port to a free port")
            log.warning("inbound listener failed to start: %s", type(exc).__name__)
            return
        log.info("inbound listener on %s", url)
        async for fact in listener.events():
            if isinstance(fact, PopRequested):
                self.post_message(PopReceived(fact.ani, fact.dnis, str(fact.source)))
            elif isinstance(fact, (CallEvent, AgentStatusEvent)):
                queue = self.backends.webhook_events
                if queue is not None:
                    try:  # through the telephony: de-duplicated and reconciled like websocket events
                        queue.put_nowait(fact)
                    except asyncio.QueueFull:
                        log.warning("webhook event queue full; event dropped (reconcile will catch up)")
                elif isinstance(fact, CallEvent):
                    self.post_message(CallEventReceived(fact))
                else:
                    self.post_message(AgentStatusChanged(fact))
            else:
                self.post_message(InboundFactReceived(fact))

    @work(group="ehr-lookup", exit_on_error=False, description="Identify the caller in the EHR")
    async def identify_caller(self, call_id: str, number: PhoneNumber) -> None:
        try:
            match = await self.backends.ehr.find_by_phone(number)
            if not match.candidates:
                match = await self._known_caller_match(number) or match
        except BackendError as exc:
            self.post_message(CallerLookupFailed(call_id, exc))
            return
        self.post_message(CallerIdentified(call_id, match))

    async def _known_caller_match(self, number: PhoneNumber) -> CallerMatch | None:
        """Numbers an agent verified before: the candidates pop at once (still behind verification),
        even where the EHR cannot search by phone."""
        store = await self.ready_store()
        if store is None:
            return None
        known = await store.known_callers(number.e164)
        if not known:
            return None
        patients = []
        for entry in known[:6]:
            try:
                patients.append(await self.backends.ehr.patient(entry.patient_id))
            except BackendError as exc:
                log.info("known caller's patient %s not loaded: %s", entry.patient_id, exc.title)
        if not patients:
            return None
        return CallerMatch(
            candidates=tuple(patients), source=MatchSource.KNOWN_CALLER, known_since=known[0].verified_at
        )

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        group = event.worker.group
        area = "dialpad" if group.startswith("dialpad") else "ehr" if group.startswith("ehr") else "app"
        if isinstance(error, BackendError):
            self._set_problem(area, str(error))
            log.warning("worker %s failed: %s", group, error.title)
        else:
            self._set_problem("app", f"Internal error in {group}: {type(error).__name__} — see the log file")
            log.error("worker %s crashed", group, exc_info=error)

    # ------------------------------------------------------------------ messages
    def on_agent_loaded(self, message: AgentLoaded) -> None:
        self.agent_id = message.agent.id
        self.home.agent = message.agent
        self.home.agent_id = message.agent.id
        if message.status is not None:
            self.home.status = message.status

    def on_agent_status_changed(self, message: AgentStatusChanged) -> None:
        event = message.event
        if self.agent_id is not None and event.agent_id == self.agent_id:
            self.home.status = event.to_status()
            reason = f" ({event.reason})" if event.reason else ""
            self._log(f"status   {event.status.label}{reason}")

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        state = message.state
        self.home.connection = state
        if state.status is LinkStatus.CONNECTED:
            self._clear_problem("dialpad")
            self._log("dialpad  event stream connected")
        elif state.status in (LinkStatus.RECONNECTING, LinkStatus.AUTH_FAILED):
            self._set_problem("dialpad", f"Dialpad: {state.detail}" if state.detail else "Dialpad: reconnecting")
            self._log(f"dialpad  {state.status.value}")

    def on_pop_received(self, message: PopReceived) -> None:
        """An 8x8 caller-info pop or `pa-tui pop`: the same flow as a ringing Dialpad call."""
        now = self.clock()
        call = Call(
            id=f"pop-{uuid.uuid4().hex[:12]}",
            direction=CallDirection.INBOUND,
            state=CallState.RINGING,
            ani=message.ani,
            dnis=message.dnis,
            rang_at=now,
            started_at=now,
            updated_at=now,
        )
        self.book.replace(call)
        self._log(f"pop        ← {format_human(message.ani)} ({message.source})",
                  f"pop        ← {mask_phone(message.ani)} ({message.source})")
        if isinstance(call.ani, PhoneNumber):
            self.lookups_started.add(call.id)
            self.lookup_started_at[call.id] = now
            self.identify_caller(call.id, call.ani)
        self.focused_call_id = None  # a pop always takes the panel: the agent asked for it
        self._refocus(call)

    @on(ConsoleScreen.Requested)
    def _console_requested(self, event: ConsoleScreen.Requested) -> None:
        self.run_intent(event.action)

    def _caller_patient(self) -> PatientSummary | None:
        if self.home.patient is not None:
            return self.home.patient
        match = self.home.match
        if match is not None and match.kind == "single":
            return match.candidates[0]
        return None

    def on_inbound_fact_received(self, message: InboundFactReceived) -> None:
        """Patient texts and delivery reports: never dropped silently — shown to the agent.
        (Acting on them — confirming in the EHR, the "to call" list — is the reminders service's.)"""
        fact = message.fact
        if isinstance(fact, InboundSms):
            what = {"CONFIRM": "replied C (confirm)", "RESCHEDULE": "replied R (reschedule)",
                    "STOP": "texted STOP (opted out)", "START": "texted START (opted back in)"}.get(
                getattr(fact.keyword, "value", fact.keyword) or "", "sent a text")
            who, masked = format_human(fact.from_number), mask_phone(fact.from_number)
            self._log(f"sms        ← {who} {what}", f"sms        ← {masked} {what}")
            self.notify(f"{masked if self.privacy_mask else who} {what}.", title="Patient text", timeout=10)
        elif isinstance(fact, DeliveryStatus):
            log.info("sms %s: %s", fact.message_sid, fact.status)
            if fact.error_code:
                self._log(f"sms        reminder {fact.message_sid[-6:]} {fact.status} (Twilio {fact.error_code})")
        else:
            log.info("inbound fact %s not handled", type(fact).__name__)

    def on_stream_noticed(self, message: StreamNoticed) -> None:
        self._log(f"dialpad  {message.notice.text}")
        if message.notice.serious:
            self._set_problem("dialpad-frames", message.notice.text)

    def on_call_event_received(self, message: CallEventReceived) -> None:
        event = message.event
        call = self.book.apply(event)
        if call is None:
            return  # duplicate
        for gone in self.book.trimmed:  # the book forgot an old call: so does the console
            for per_call in (self.matches, self.lookup_started_at, self.chosen, self.verified, self.record_caches):
                per_call.pop(gone, None)
            self.lookups_started.discard(gone)
            self.handoffs_checked.discard(gone)
        if not self.screen_stack:  # shutting down with events still queued
            return
        log.info("call %s leg %s state %s", call.id, event.call_id, event.state.value)
        self._log(self._event_line(event, call), self._event_line(event, call, masked=True))
        if call.custom_data:
            self.maybe_receive_handoff(call)
        if call.is_ended and isinstance(self.screen, TransferScreen) and call.id == self.focused_call_id:
            self.screen.call_ended = True
        if (
            call.id not in self.lookups_started
            and isinstance(call.ani, PhoneNumber)
            and call.phase is not CallPhase.ENDED
        ):
            self.lookups_started.add(call.id)
            self.lookup_started_at[call.id] = self.clock()
            self.identify_caller(call.id, call.ani)
        self._refocus(call)

    def on_caller_identified(self, message: CallerIdentified) -> None:
        self.matches[message.call_id] = message.match
        for patient in message.match.candidates:  # the card shows each one's name and DOB: a view
            self.write_audit("view", patient.id, reason=f"call {message.call_id}", sections=("card",),
                             verification=AuditState.UNVERIFIED)
        self.lookup_started_at.pop(message.call_id, None)
        self._clear_problem("ehr-slow")
        self._clear_problem("ehr")
        log.info("call %s caller match: %s (%d)", message.call_id, message.match.kind, len(message.match.candidates))
        if message.call_id == self.focused_call_id:
            self.home.match = message.match
            self.home.lookup = LookupState.DONE

    def on_caller_lookup_failed(self, message: CallerLookupFailed) -> None:
        log.warning("call %s lookup failed: %s", message.call_id, message.error.title)
        if message.call_id == self.focused_call_id:
            self.home.lookup_error = str(message.error)
            self.home.lookup = LookupState.FAILED
        self.lookup_started_at.pop(message.call_id, None)
        self._clear_problem("ehr-slow")
        self._set_problem("ehr", f"EHR: {message.error}")

    # ------------------------------------------------------------------ helpers
    def _refocus(self, changed: Call) -> None:
        current = self.book.calls.get(self.focused_call_id) if self.focused_call_id else None
        take = (
            current is None
            or current.id == changed.id
            or (not current.is_active and changed.is_active)
            or (changed.phase is CallPhase.ACTIVE and current.phase is not CallPhase.ACTIVE)
            # A new ring takes the panel unless the agent is talking to someone.
            or (changed.phase is CallPhase.RINGING and current.phase is not CallPhase.ACTIVE)
        )
        focus = changed if take else current
        assert focus is not None
        if focus.id != self.focused_call_id:
            self.focused_call_id = focus.id
            self.home.caller = focus.ani
            self.home.patient = self.chosen.get(focus.id)
            self.home.verified = self.verified.get(focus.id, "")
            match = self.matches.get(focus.id)
            self.home.match = match
            if match is not None:
                self.home.lookup = LookupState.DONE
            elif focus.id in self.lookups_started:
                self.home.lookup = LookupState.SEARCHING
            else:
                self.home.lookup = LookupState.DONE if focus.ani is not None else LookupState.IDLE
        self.home.call = focus
        self.home.other_calls = self.book.active_count() - (1 if focus.is_active else 0)

    def _set_problem(self, area: str, text: str) -> None:
        """Raise the banner for ``area``; the newest problem shows until its area recovers."""
        self.problems.pop(area, None)
        self.problems[area] = text
        self.home.problem = text

    def _clear_problem(self, area: str) -> None:
        if self.problems.pop(area, None) is not None:
            self.home.problem = next(reversed(self.problems.values()), "")

    def _log(self, line: str, masked: str | None = None) -> None:
        stamp = self.clock().astimezone().strftime("%H:%M:%S")
        self.home.log_line(f"{stamp}  {line}", f"{stamp}  {masked}" if masked is not None else None)

    @staticmethod
    def _event_line(event: CallEvent, call: Call, *, masked: bool = False) -> str:
        who = (mask_phone(call.ani) if masked else format_human(call.ani)) if call.ani is not None else "unknown number"
        arrow = "←" if call.direction is CallDirection.INBOUND else "→"
        state = event.raw_state or event.state.value
        if event.state is CallState.UNKNOWN:
            state += " (unknown state, ignored)"
        target = f" · {event.target.name}" if event.target and event.target.name else ""
        return f"{state:<10} {arrow} {who}{target}"


def make_app(settings: Any, backends: BackendSet, **kwargs: Any) -> PaTuiApp:
    """Build the App exactly as the CLI does. Tests use this too."""
    return PaTuiApp(settings, backends, **kwargs)


__all__ = ["PaTuiApp", "make_app"]
