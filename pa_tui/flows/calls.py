"""Working the call: choose the caller, verify, search, dial, transfer (with the hand-off),
hang up, duty status, open the chart and the mini dialer.

A mixin of :class:`pa_tui.app.PaTuiApp` (``self`` is the App). Screens post
intents; this code runs the backends in workers and sets results back.
Handlers are named ``on_…`` (Textual collects ``@on`` only on MessagePump classes).
"""

from __future__ import annotations

import asyncio
import logging
import webbrowser
from typing import TYPE_CHECKING, Any, Literal

from textual import work

from pa_tui.backends.base import BackendError, TransferTarget
from pa_tui.domain.audit import Verification as AuditState
from pa_tui.domain.handoff import Handoff, looks_like_ref
from pa_tui.domain.patients import PatientSummary
from pa_tui.domain.phones import PhoneNumber, format_human
from pa_tui.domain.verification import Verification
from pa_tui.screens.chooser import ChooserScreen
from pa_tui.screens.dial import DialScreen
from pa_tui.screens.patient import PatientScreen
from pa_tui.screens.search import SearchScreen
from pa_tui.screens.status import StatusChoice, StatusScreen
from pa_tui.screens.transfer import TransferScreen
from pa_tui.screens.verify import VerifyScreen
from pa_tui.screens.wrapup import WrapupScreen

if TYPE_CHECKING:
    from pa_tui.app import PaTuiApp

log = logging.getLogger(__name__)


def verification_label(v: Verification) -> str:
    if v.override:
        return f"override: {v.reason or 'no reason given'}"
    names = {"dob": "DOB", "mrn": "MRN", "address": "address", "phone_last4": "another phone"}
    return " + ".join(names.get(m, m) for m in v.methods)


class CallFlow:
    """Console intents about the caller and the call."""

    # ------------------------------------------------------------------ dispatch
    def run_intent(self: PaTuiApp, action: str) -> None:
        handler = {
            "open-record": self.intent_open_record,
            "verify": self.intent_verify,
            "choose": self.intent_choose,
            "search": self.intent_search,
            "dial": self.intent_dial,
            "transfer": self.intent_transfer,
            "hangup": self.intent_hangup,
            "status": self.intent_status,
            "mini-dialer": self.intent_mini_dialer,
            "wrapup": self.intent_wrapup,
            "callback": self.intent_callback,
        }.get(action)
        if handler is not None:
            handler()

    def _focused_call(self: PaTuiApp) -> Any:
        return self.book.calls.get(self.focused_call_id) if self.focused_call_id else None

    # ------------------------------------------------------------------ caller
    def intent_open_record(self: PaTuiApp) -> None:
        patient = self._caller_patient()
        if patient is None:
            self.notify("No single patient for this call yet: choose (c) or search (/).", severity="warning")
            return
        call_id = self.focused_call_id
        self.open_record(patient, call_id=call_id, verified_label=self.verified.get(call_id or "", ""))

    def intent_choose(self: PaTuiApp) -> None:
        match = self.home.match
        call = self._focused_call()
        if match is None or match.kind != "household" or call is None:
            return
        call_id = call.id

        def chosen(result: PatientSummary | Literal["none"] | None) -> None:
            if result == "none":
                self.intent_search(prefill=True)
            elif isinstance(result, PatientSummary):
                self.chosen[call_id] = result
                if self.focused_call_id == call_id:
                    self.home.patient = result
                log.info("call %s: caller chosen as patient %s", call_id, result.id)

        self.push_screen(
            ChooserScreen(match.candidates, call.ani, self.home.today, masked=self.privacy_mask), chosen
        )

    def intent_verify(self: PaTuiApp, patient: PatientSummary | None = None) -> None:
        patient = patient or self._caller_patient()
        call = self._focused_call()
        if patient is None:
            self.notify("Choose or find the patient first.", severity="warning")
            return
        call_id = call.id if call is not None else None
        caller = call.ani if call is not None and isinstance(call.ani, PhoneNumber) else None

        def verified(result: Verification | None) -> None:
            if result is None:
                return
            self.record_verification(patient, call_id, caller, result)

        self.push_screen(
            VerifyScreen(patient, today=self.home.today, masked=self.privacy_mask, caller=caller, clock=self.clock),
            verified,
        )

    def record_verification(
        self: PaTuiApp, patient: PatientSummary, call_id: str | None, caller: PhoneNumber | None, v: Verification
    ) -> None:
        label = verification_label(v) if v.passed else ""
        methods = "+".join(v.methods) or "none"
        reason = f"call {call_id}; methods {methods}" + (f"; {v.reason}" if v.reason else "")
        self.write_audit(
            "verify", patient.id, reason=reason,
            verification=AuditState.VERIFIED if v.passed else AuditState.FAILED,
        )
        if not v.passed:
            self.notify("Caller not verified: share nothing from the record.", severity="warning")
            return
        if call_id is not None:
            self.verified[call_id] = label
            self.chosen[call_id] = patient
            if self.focused_call_id == call_id:
                self.home.patient = patient
                self.home.verified = label
            if caller is not None:
                self.remember_known_caller(caller, patient.id, call_id)
        for screen in self.screen_stack:
            if isinstance(screen, PatientScreen) and screen.patient_id == patient.id:
                screen.unlock(label)
        self.notify(f"Caller verified ({label}).")

    @work(group="store-known", exit_on_error=False, description="Remember a verified caller's number")
    async def remember_known_caller(self: PaTuiApp, number: PhoneNumber, patient_id: str, call_id: str) -> None:
        store = await self.ready_store()
        if store is not None:
            await store.remember_caller(number.e164, patient_id, self.agent_id or "unknown-agent", self.clock(),
                                        reason=f"call {call_id}")

    def on_patient_screen_verify_requested(self: PaTuiApp, event: PatientScreen.VerifyRequested) -> None:
        self.intent_verify(event.patient)

    # ------------------------------------------------------------------ search
    def intent_search(self: PaTuiApp, prefill: bool = False) -> None:
        call = self._focused_call()
        initial = ""
        if call is not None and isinstance(call.ani, PhoneNumber) and (prefill or self.home.match is not None):
            match = self.home.match
            if prefill or (match is not None and match.kind == "none"):
                initial = call.ani.human
        self.push_screen(SearchScreen(initial, self.home.today, masked=self.privacy_mask))

    def on_search_screen_query_changed(self: PaTuiApp, event: SearchScreen.QueryChanged) -> None:
        self.run_search(event.search_screen, event.search_text, event.kind)

    @work(group="ehr-search", exclusive=True, exit_on_error=False, description="Search patients")
    async def run_search(self: PaTuiApp, screen: SearchScreen, text: str, kind: Any) -> None:
        screen.searching = True
        try:
            results = await self.backends.ehr.search(text)
        except BackendError as exc:
            screen.error = str(exc)
            screen.results = ()
        else:
            screen.results = tuple(results)
            self.write_audit("search", None, reason=f"search:{getattr(kind, 'value', kind)}")
        finally:
            screen.searching = False

    def on_search_screen_patient_chosen(self: PaTuiApp, event: SearchScreen.PatientChosen) -> None:
        patient = event.patient
        event.search_screen.dismiss(None)
        call = self._focused_call()
        if call is not None and call.is_active:
            # The caller, found by search: their card, still behind verification.
            self.chosen[call.id] = patient
            if self.focused_call_id == call.id:
                self.home.patient = patient
            self.notify("Caller set to the chosen patient — verify (v) before sharing details.")
        else:
            self.open_record(patient, call_id=None)

    # ------------------------------------------------------------------ dial / transfer / hang up
    def intent_dial(self: PaTuiApp, number: PhoneNumber | None = None) -> None:
        if number is not None:
            self.place_call(number)
            return

        def dial(result: PhoneNumber | None) -> None:
            if result is not None:
                self.place_call(result)

        self.push_screen(DialScreen(region=self.settings.region, masked=self.privacy_mask), dial)

    def on_patient_screen_dial_requested(self: PaTuiApp, event: PatientScreen.DialRequested) -> None:
        self.place_call(event.number)

    @work(group="dialpad-dial", exit_on_error=False, description="Dial a number")
    async def place_call(self: PaTuiApp, number: PhoneNumber) -> None:
        if self.agent_id is None:
            self.notify("Not connected to Dialpad yet — try again in a moment.", severity="warning")
            return
        shown = "the number" if self.privacy_mask else format_human(number)
        try:
            call_id = await self.backends.telephony.dial(self.agent_id, number)
        except BackendError as exc:
            self.notify(str(exc), title="Dial failed", severity="error", timeout=8)
            return
        log.info("dialled: call %s", call_id)
        self.notify(f"Dialling {shown} — answer on your Dialpad device or the mini dialer (m).")

    def intent_transfer(self: PaTuiApp) -> None:
        call = self._focused_call()
        if call is None or not call.is_active:
            self.notify("No active call to transfer.", severity="warning")
            return
        screen = TransferScreen(
            format_human(call.ani) if not self.privacy_mask else "the current call",
            loading=True, masked=self.privacy_mask, region=self.settings.region,
        )
        call_id = call.id

        def chosen(target: TransferTarget | None) -> None:
            if target is not None:
                self.transfer_call(call_id, target)

        self.push_screen(screen, chosen)
        self.load_transfer_targets(screen)

    @work(group="dialpad-targets", exclusive=True, exit_on_error=False, description="Load transfer targets")
    async def load_transfer_targets(self: PaTuiApp, screen: TransferScreen) -> None:
        try:
            targets = await self.backends.telephony.transfer_targets()
        except BackendError as exc:
            screen.error = str(exc)
        else:
            screen.targets = tuple(t for t in targets if t.id != self.agent_id)
        finally:
            screen.loading = False

    @work(group="dialpad-transfer", exit_on_error=False, description="Transfer the call")
    async def transfer_call(self: PaTuiApp, call_id: str, target: TransferTarget) -> None:
        ref = await self.write_handoff(call_id, target)
        try:
            await self.backends.telephony.transfer(call_id, target, custom_data=ref)
        except BackendError as exc:
            self.notify(str(exc), title="Transfer failed", severity="error", timeout=8)
            return
        log.info("call %s transferred to %s %s (hand-off %s)", call_id, target.kind, target.id, ref or "-")
        self.notify(f"Transferring to {target.name}" + (" — the patient context goes with the call." if ref else "."))

    async def write_handoff(self: PaTuiApp, call_id: str, target: TransferTarget) -> str | None:
        """Store the patient context for the receiving console; returns the ref for custom_data."""
        store = await self.ready_store()
        patient = self.chosen.get(call_id) or self._caller_patient()
        if store is None or patient is None:
            return None
        notes = await store.notes_for_call(call_id)
        handoff = Handoff(
            call_id=call_id,
            from_agent=self.agent_id or "unknown-agent",
            to_agent=target.id if target.kind == "user" else None,
            patient_id=patient.id,
            verification=AuditState.VERIFIED if self.verified.get(call_id) else AuditState.UNVERIFIED,
            note_ids=tuple(n.id for n in notes),
            call=self.book.calls.get(call_id),
            created_at=self.clock(),
        )
        ref = await store.put_handoff(handoff)
        self.write_audit("handoff", patient.id, reason=f"call {call_id} to {target.kind} {target.id}")
        return ref

    def intent_hangup(self: PaTuiApp) -> None:
        call = self._focused_call()
        if call is None or not call.is_active:
            self.notify("No active call to hang up.", severity="warning")
            return
        self.hang_up(call.id)

    @work(group="dialpad-hangup", exit_on_error=False, description="Hang up")
    async def hang_up(self: PaTuiApp, call_id: str) -> None:
        try:
            await self.backends.telephony.hangup(call_id)
        except BackendError as exc:
            self.notify(str(exc), title="Hang-up failed", severity="error", timeout=8)

    # ------------------------------------------------------------------ wrap-up and callbacks
    def intent_wrapup(self: PaTuiApp) -> None:
        call = self._focused_call()
        if call is None or call.id.startswith("pop-"):
            self.notify("No Dialpad call to set wrap-up codes on.", severity="warning")
            return
        call_id = call.id

        def chosen(codes: tuple[str, ...] | None) -> None:
            if codes:
                self.set_wrapup(call_id, codes)

        self.push_screen(WrapupScreen(self.settings.dialpad.wrapup_codes, call.labels), chosen)

    @work(group="dialpad-labels", exit_on_error=False, description="Set wrap-up codes")
    async def set_wrapup(self: PaTuiApp, call_id: str, codes: tuple[str, ...]) -> None:
        try:
            await self.backends.telephony.set_wrapup_labels(call_id, codes)
        except BackendError as exc:
            self.notify(str(exc), title="Wrap-up codes not set", severity="error", timeout=8)
            return
        self.notify("Wrap-up: " + ", ".join(codes))

    def intent_callback(self: PaTuiApp) -> None:
        call = self._focused_call()
        if call is None or not isinstance(call.ani, PhoneNumber):
            self.notify("No caller number to call back.", severity="warning")
            return
        center = call.queue.id if call.queue is not None and call.queue.type.value == "callcenter" else None
        center = center or next(iter(self.settings.dialpad.call_center_ids), None)
        if center is None:
            self.notify("This call did not come through a call center (set dialpad.call_center_ids).",
                        severity="warning")
            return
        self.queue_callback(center, call.ani)

    @work(group="dialpad-callback", exit_on_error=False, description="Queue a call back")
    async def queue_callback(self: PaTuiApp, center_id: str, number: PhoneNumber) -> None:
        try:
            place = await self.backends.telephony.request_callback(center_id, number)
        except BackendError as exc:
            self.notify(str(exc), title="Call back not queued", severity="error", timeout=8)
            return
        where = f" (place {place} in the queue)" if place else ""
        self.notify(f"Call back queued{where}.")

    # ------------------------------------------------------------------ receiving a hand-off
    @work(group="store-handoff", exit_on_error=False, description="Load a transferred call's context")
    async def receive_handoff(self: PaTuiApp, call_id: str, ref: str) -> None:
        store = await self.ready_store()
        if store is None:
            return
        handoff = await store.get_handoff(ref) or await store.get_handoff(call_id)
        if handoff is None or handoff.patient_id is None or handoff.from_agent == self.agent_id:
            return
        try:
            patient = await self.backends.ehr.patient(handoff.patient_id)
        except BackendError as exc:
            self.notify(f"Transferred caller's record could not load: {exc}", severity="warning")
            return
        self.chosen[call_id] = patient
        label = ""
        if handoff.verification is AuditState.VERIFIED:
            label = f"verified by agent {handoff.from_agent} before transfer"
            self.verified[call_id] = label
        if self.focused_call_id == call_id:
            self.home.patient = patient
            self.home.verified = label
        self.write_audit("view", patient.id, reason=f"call {call_id} (hand-off {handoff.ref})",
                         sections=("card",), verification=handoff.verification)
        self.notify("Transferred call: the patient and earlier notes came with it (Enter opens the record).")

    def maybe_receive_handoff(self: PaTuiApp, call: Any) -> None:
        data = (call.custom_data or "").strip()
        if data and looks_like_ref(data) and call.id not in self.handoffs_checked:
            self.handoffs_checked.add(call.id)
            self.receive_handoff(call.id, data.upper())

    # ------------------------------------------------------------------ status, chart, mini dialer
    def intent_status(self: PaTuiApp) -> None:
        def chosen(choice: StatusChoice | None) -> None:
            if choice is not None:
                self.change_status(choice)

        self.push_screen(StatusScreen(self.home.status, masked=self.privacy_mask), chosen)

    @work(group="dialpad-status", exit_on_error=False, description="Change duty status")
    async def change_status(self: PaTuiApp, choice: StatusChoice) -> None:
        if self.agent_id is None:
            return
        try:
            await self.backends.telephony.set_status(self.agent_id, on_duty=choice.on_duty, reason=choice.reason)
        except BackendError as exc:
            self.notify(str(exc), title="Status not changed", severity="error", timeout=8)

    def on_patient_screen_open_chart_requested(self: PaTuiApp, event: PatientScreen.OpenChartRequested) -> None:
        url = self.backends.ehr.chart_url(event.patient)
        if not url:
            self.notify("No chart link configured (fhir.chart_url_template).", severity="warning")
            return
        self.open_external(url, "chart")
        if self.settings.dialpad.screen_pop_chart and self.agent_id is not None:
            self.screen_pop_chart(url)

    @work(group="dialpad-screen-pop", exit_on_error=False, description="Screen pop the chart in Dialpad")
    async def screen_pop_chart(self: PaTuiApp, url: str) -> None:
        try:
            await self.backends.telephony.screen_pop(self.agent_id or "", url)
        except BackendError as exc:
            self.notify(str(exc), title="Dialpad screen pop failed", severity="warning", timeout=8)

    def intent_mini_dialer(self: PaTuiApp) -> None:
        url = self.backends.telephony.mini_dialer_url()
        if not url:
            self.notify("No mini dialer configured (dialpad.mini_dialer_client_id).", severity="warning")
            return
        self.open_external(url, "Dialpad mini dialer (the softphone audio stays in the browser)")

    @work(group="browser", exit_on_error=False, description="Open a link in the browser")
    async def open_external(self: PaTuiApp, url: str, what: str) -> None:
        opened = await asyncio.to_thread(_open_browser, url)
        if opened:
            self.notify(f"Opened the {what} in your browser.")
            return
        # Over SSH there is no browser here: show it and copy it (OSC 52 reaches the agent's terminal).
        self.copy_to_clipboard(url)
        self.notify(f"No browser here — the {what} link is copied to your clipboard:\n{url}", timeout=15)


def _open_browser(url: str) -> bool:
    import os

    if os.environ.get("SSH_CONNECTION") and not os.environ.get("DISPLAY"):
        return False
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False
