"""``pa-tui remind``: a day's reminders as one batch, with a progress bar and a summary.

:func:`run_batch` is the batch itself (usable from tests and scripts);
:func:`run_remind` builds the backends from Settings and secrets (or the demo
simulators), runs it, and prints. Output names appointments and patients by id
only: no names, numbers or message text other than one preview per clinic in a
dry run (which holds no patient detail).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import sys
from collections.abc import Callable
from datetime import date, timedelta
from typing import IO, Any

from pa_tui.backends.base import BackendError, NotSupported, Store
from pa_tui.backends.twilio.client import PRODUCTION_URL, TwilioClient
from pa_tui.domain.audit import Verification
from pa_tui.domain.patients import PatientSummary
from pa_tui.reminders.model import (
    BatchSummary,
    DueAppointment,
    ReminderPolicy,
    SendOutcome,
    SendResult,
    SkipReason,
    render_reminder,
)
from pa_tui.reminders.service import ReminderService
from pa_tui.reminders.source import AppointmentSource

__all__ = ["build_twilio_client", "format_summary", "parse_day", "run_batch", "run_remind"]

log = logging.getLogger("pa_tui.reminders")

Progress = Callable[[SendResult], None]


def parse_day(text: str, today: date) -> date:
    """``tomorrow``, ``today`` or ``YYYY-MM-DD``."""
    word = text.strip().lower()
    if word == "tomorrow":
        return today + timedelta(days=1)
    if word == "today":
        return today
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise ValueError(f"{text!r} is not tomorrow, today or a date as YYYY-MM-DD") from None


# --------------------------------------------------------------------------- the batch
async def run_batch(
    service: ReminderService,
    source: AppointmentSource,
    day: date,
    *,
    clinic: str | None = None,
    dry_run: bool = False,
    wait: float | None = None,
    audit_agent: str | None = None,
    on_found: Callable[[list[DueAppointment]], None] | None = None,
    progress: Progress | None = None,
) -> BatchSummary:
    """Remind every booked appointment on ``day`` (of ``clinic``, when given).

    Each appointment is planned (opt-out, already sent, quiet hours, mobile number),
    its reminder put in the outbox once, then everything due is sent one by one.
    With ``wait`` seconds, Twilio is asked for each message's delivery status until
    it is final. ``dry_run`` plans only: nothing is written to the outbox or sent.
    """
    found = await source.appointments_on(day)
    candidates: list[DueAppointment] = []
    for due in found:
        if clinic and not service.policy.clinic_matches(
            clinic, service.clinic_of(due), due.location_id, due.location_name
        ):
            continue
        candidates.append(due)
    if on_found is not None:
        on_found(candidates)
    tick = progress or (lambda _r: None)

    async def fetch(patient_id: str) -> PatientSummary | BackendError:
        try:
            return await source.patient(patient_id)
        except BackendError as exc:
            return exc

    # Each patient once (a household may have several appointments), read concurrently.
    wanted = list(dict.fromkeys(d.patient_id for d in candidates))
    fetched = dict(zip(wanted, await asyncio.gather(*(fetch(pid) for pid in wanted)), strict=True))

    results: dict[str, SendResult | None] = {}
    keys: dict[str, str] = {}
    for due in candidates:
        patient = fetched[due.patient_id]
        if isinstance(patient, BackendError):
            result = SendResult(
                appointment_id=due.id,
                patient_id=due.patient_id,
                outcome=SendOutcome.FAILED,
                detail=f"EHR: {patient.title}",
            )
            results[due.id] = result
            tick(result)
            continue
        if audit_agent:
            await service.store.audit(
                agent_id=audit_agent,
                action="reminder",
                patient_id=patient.id,
                reason=f"appointment reminder {due.id}" + (" (dry run)" if dry_run else ""),
                sections=("contact",),
                verification=Verification.NOT_REQUIRED,
            )
        scheduled = await service.schedule(due, patient, dry_run=dry_run)
        results[due.id] = scheduled.result
        if scheduled.result is not None:
            tick(scheduled.result)
        elif scheduled.key is not None:
            keys[scheduled.key] = due.id

    earlier: list[SendResult] = []
    aborted: str | None = None
    if not dry_run:

        def on_result(item: Any, result: SendResult) -> None:
            if item.idempotency_key in keys:
                tick(result)

        drained = await service.drain(on_result=on_result)
        for key, result in drained.items():
            if key in keys:
                results[keys[key]] = result
            elif not (result.outcome is SendOutcome.SKIPPED and result.reason is SkipReason.ALREADY_SENT):
                earlier.append(result)
        stopped = service.stopped
        for key, appointment_id in keys.items():
            if results[appointment_id] is None:
                if stopped:
                    results[appointment_id] = SendResult(
                        appointment_id=appointment_id, outcome=SendOutcome.RETRY, detail=f"not sent: {stopped}"
                    )
                else:
                    results[appointment_id] = SendResult(
                        appointment_id=appointment_id, outcome=SendOutcome.SKIPPED, reason=SkipReason.IN_PROGRESS
                    )
        aborted = stopped
        wait = service.policy.delivery_wait if wait is None else wait
        sent = [r for r in (*results.values(), *earlier) if r is not None and r.outcome is SendOutcome.SENT and r.sid]
        if wait > 0 and sent:
            reports = await service.poll_delivery([r.sid for r in sent if r.sid], timeout=wait)

            def settle(r: SendResult) -> SendResult:
                report = reports.get(r.sid or "") if r.outcome is SendOutcome.SENT else None
                if report is None:
                    return r
                update: dict[str, Any] = {"status": report.status, "error_code": report.error_code}
                if report.failed:
                    detail = report.error or f"not delivered ({report.status})"
                    update |= {"outcome": SendOutcome.FAILED, "detail": detail}
                return r.model_copy(update=update)

            results = {k: settle(v) if v is not None else v for k, v in results.items()}
            earlier = [settle(r) for r in earlier]
    final = tuple(r for r in results.values() if r is not None)
    return BatchSummary(
        day=day,
        clinic=clinic,
        dry_run=dry_run,
        found=len(candidates),
        results=final,
        earlier=tuple(earlier),
        aborted=aborted,
    )


# --------------------------------------------------------------------------- output
def format_summary(summary: BatchSummary, *, preview: dict[str, str] | None = None) -> list[str]:
    """The lines ``pa-tui remind`` prints. Ids and reasons only (no PHI)."""
    lines: list[str] = []
    where = f"clinic {summary.clinic!r}" if summary.clinic else "all clinics"
    mode = " — dry run, nothing sent" if summary.dry_run else ""
    lines.append(f"Reminders for {summary.day:%a %Y-%m-%d} ({where}): {summary.found} booked appointments{mode}")
    if summary.dry_run:
        for r in summary.results:
            if r.outcome is SendOutcome.WOULD_SEND:
                what = f"would send ({r.segments} segment{'s' if r.segments != 1 else ''})"
            elif r.reason is SkipReason.QUIET_HOURS and r.send_at is not None:
                what = f"quiet hours: refused now; would be sent at {r.send_at:%Y-%m-%d %H:%M} UTC"
            elif r.outcome is SendOutcome.SKIPPED and r.reason is not None:
                what = f"skipped: {r.reason.label}"
            else:
                what = f"{r.outcome.value}: {r.detail or ''}".rstrip(": ")
            lines.append(f"  {r.appointment_id}  {r.patient_id or '-'}  {what}")
        for clinic, text in sorted((preview or {}).items()):
            lines.append(f"Preview ({clinic}): {text}")
        would = summary.count(SendOutcome.WOULD_SEND)
        lines.append(f"Would send: {would}")
    else:
        sent = [r for r in summary.results if r.outcome is SendOutcome.SENT]
        delivered = sum(1 for r in sent if r.status in ("delivered", "read"))
        waiting = len(sent) - delivered
        detail = f" (delivered {delivered}, awaiting delivery report {waiting})" if sent else ""
        lines.append(f"Sent: {len(sent)}{detail}")
        deferred = [r for r in summary.results if r.outcome is SendOutcome.DEFERRED]
        if deferred:
            first = min(r.send_at for r in deferred if r.send_at is not None)
            lines.append(
                f"Deferred: {len(deferred)} (quiet hours; due from {first:%Y-%m-%d %H:%M} UTC — sent by the next "
                "`pa-tui remind` or a running console)"
            )
        else:
            lines.append("Deferred: 0")
    skipped = summary.skipped
    if summary.dry_run:
        skipped.pop(SkipReason.QUIET_HOURS, None)
        quiet = sum(1 for r in summary.results if r.reason is SkipReason.QUIET_HOURS)
        lines.append(f"Quiet hours: {quiet}")
    lines.append(f"Skipped: {sum(skipped.values())}")
    for reason, n in sorted(skipped.items(), key=lambda kv: kv[0].value):
        lines.append(f"  {reason.label}: {n}")
    failed = summary.failed
    lines.append(f"Failed: {len(failed)}")
    for r in failed:
        tail = " (will be retried)" if r.outcome is SendOutcome.RETRY else ""
        lines.append(f"  {r.appointment_id}: {r.detail or 'failed'}{tail}")
    if summary.earlier:
        sent_earlier = sum(1 for r in summary.earlier if r.outcome is SendOutcome.SENT)
        lines.append(f"Also sent {sent_earlier} reminder(s) owed from earlier runs")
    if summary.aborted:
        lines.append(f"Stopped early: {summary.aborted}")
    return lines


def _previews(service: ReminderService, summary: BatchSummary, due: list[DueAppointment]) -> dict[str, str]:
    """One sample text per clinic (the template with that clinic's values: no patient detail)."""
    out: dict[str, str] = {}
    wanted = {r.appointment_id for r in summary.results if r.outcome is SendOutcome.WOULD_SEND}
    for d in due:
        if d.id in wanted and d.appointment.start is not None:
            clinic = service.clinic_of(d)
            if clinic.name not in out:
                text = render_reminder(d.appointment.start, clinic)
                out[clinic.name] = f"{text.body}  [{text.chars} chars, {text.segments} segment(s), {text.encoding}]"
    return out


# --------------------------------------------------------------------------- building backends
def build_twilio_client(settings: Any) -> TwilioClient:
    """The Twilio REST client from ``[twilio]`` and the ``twilio`` secret (auth token or API key secret)."""
    from pa_tui.secrets import require_secret

    twilio = settings.twilio
    if not twilio.account_sid:
        raise NotSupported("No Twilio account configured", "Set twilio.account_sid in the config file")
    secret = require_secret("twilio")
    if twilio.api_key_sid:
        return TwilioClient(
            account_sid=twilio.account_sid,
            api_key=twilio.api_key_sid,
            api_secret=secret,
            base_url=twilio.base_url or PRODUCTION_URL,
        )
    return TwilioClient(account_sid=twilio.account_sid, auth_token=secret, base_url=twilio.base_url or PRODUCTION_URL)


class _Bar:
    """A click progress bar on stderr, opened once the number of appointments is known."""

    def __init__(self, file: IO[str] | None) -> None:
        self.file = file
        self._stack = contextlib.ExitStack()
        self._bar: Any = None
        self.found: list[DueAppointment] = []

    def open(self, found: list[DueAppointment]) -> None:
        import click

        self.found = found
        total = len(found)
        if total:
            self._bar = self._stack.enter_context(
                click.progressbar(length=total, label="Reminders", file=self.file or sys.stderr, show_pos=True)
            )

    def tick(self, _result: SendResult) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        self._stack.close()


async def _remind(
    service: ReminderService,
    source: AppointmentSource,
    day: date,
    *,
    clinic: str | None,
    dry_run: bool,
    wait: float | None,
    out: Callable[[str], None],
    bar_file: IO[str] | None,
) -> int:
    bar = _Bar(bar_file)
    try:
        summary = await run_batch(
            service,
            source,
            day,
            clinic=clinic,
            dry_run=dry_run,
            wait=wait,
            audit_agent=f"cli:{_user()}",
            on_found=bar.open,
            progress=bar.tick,
        )
    finally:
        bar.close()
    preview = _previews(service, summary, bar.found) if dry_run else None
    for line in format_summary(summary, preview=preview):
        out(line)
    log.info(
        "remind %s: found %d, sent %d, failed %d", day.isoformat(), summary.found, summary.sent, len(summary.failed)
    )
    return summary.exit_code


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not a reason to fail
        return "unknown"


def run_remind(
    settings: Any,
    *,
    day: date,
    clinic: str | None = None,
    dry_run: bool = False,
    demo: bool = False,
    wait: float | None = None,
    out: Callable[[str], None] = print,
    bar_file: IO[str] | None = None,
    store: Store | None = None,
) -> int:
    """Run ``pa-tui remind``; returns the exit code (1 when any reminder failed)."""
    if demo:
        return _run_demo(settings, day=day, clinic=clinic, dry_run=dry_run, wait=wait, out=out, bar_file=bar_file,
                         store=store)
    return asyncio.run(
        _run_real(settings, day=day, clinic=clinic, dry_run=dry_run, wait=wait, out=out, bar_file=bar_file, store=store)
    )


async def _run_real(
    settings: Any, *, day: date, clinic: str | None, dry_run: bool, wait: float | None, out: Callable[[str], None],
    bar_file: IO[str] | None, store: Store | None,
) -> int:
    from pa_tui.backends.store import open_store
    from pa_tui.reminders.source import FhirAppointmentSource
    from pa_tui.wiring import build_ehr

    twilio = None
    if not dry_run:
        if not (settings.reminders.from_number or settings.twilio.from_number or settings.reminders.clinics):
            raise NotSupported(
                "No Twilio number to send reminders from", "Set reminders.from_number or twilio.from_number"
            )
        twilio = build_twilio_client(settings)
    ehr = build_ehr(settings)
    store = store or open_store(settings)
    try:
        async with store:
            service = ReminderService.from_settings(settings, store, twilio, ehr=ehr)
            return await _remind(service, FhirAppointmentSource(ehr), day, clinic=clinic, dry_run=dry_run, wait=wait,
                                 out=out, bar_file=bar_file)
    finally:
        await ehr.aclose()
        if twilio is not None:
            await twilio.aclose()


def _run_demo(
    settings: Any, *, day: date, clinic: str | None, dry_run: bool, wait: float | None, out: Callable[[str], None],
    bar_file: IO[str] | None, store: Store | None,
) -> int:
    from pa_tui.backends.fhir import FhirClient, FhirEhr
    from pa_tui.backends.store import SqliteStore
    from pa_tui.config import data_dir
    from pa_tui.reminders import demo as demo_module
    from pa_tui.reminders.source import FhirAppointmentSource

    demo = demo_module.start_demo()
    try:

        async def main() -> int:
            ehr = FhirEhr(FhirClient(demo.fhir_url, vendor="generic"), today=demo.population.as_of)
            twilio = TwilioClient(
                account_sid=demo.twilio.account_sid, auth_token=demo.twilio.auth_token, base_url=demo.twilio_url
            )
            # The demo keeps its reminders apart from a site's real ones (and from the demo console's).
            demo_store = store or SqliteStore(data_dir() / "demo-reminders.db")
            policy = ReminderPolicy.from_settings(settings.reminders).with_sender(demo_module.DEMO_SMS_NUMBER)
            try:
                async with demo_store:
                    service = ReminderService(demo_store, None if dry_run else twilio, policy, ehr=ehr)
                    return await _remind(service, FhirAppointmentSource(ehr), day, clinic=clinic, dry_run=dry_run,
                                         wait=wait, out=out, bar_file=bar_file)
            finally:
                await ehr.aclose()
                await twilio.aclose()

        return asyncio.run(main())
    finally:
        demo.stop()
