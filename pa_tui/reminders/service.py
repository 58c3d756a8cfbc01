"""Sending reminders and handling what comes back: the part that talks to the Store, Twilio and the EHR.

Every reminder is an outbox item (kind ``sms.reminder``) with the idempotency key
``reminder:{appointment_id}:{day}`` — ``day`` being the appointment's date at the
clinic — so an appointment is texted at most once for its day, however often a
batch is re-run and whichever console asks. Sending one goes:

1. the item is claimed under a lease (no other process sends it meanwhile);
2. the number is checked against the Store's opt-outs, quiet hours are checked again;
3. ``Store.record_reminder(…, "sending")`` — from here on the reminder counts as sent, so
   a crash between Twilio accepting it and step 4 never leads to a second text;
4. Twilio's answer: ``record_reminder(…, status, sid)``, the SID indexed for delivery
   reports, the number indexed for replies, the item marked done.

A send Twilio may or may not have received (a timeout, a 5xx) is never repeated: it
is reported as "may have been sent". Delivery reports (status callbacks, or polling
in ``pa-tui remind``) update the reminder's status; an undelivered reminder puts the
patient on the "to call" list.

The Store's schema has no lookup by message SID or by number, and no "to call" table,
so this module keeps those as outbox items too: inert ``reminder.index`` items (created
done, never due) looked up by key, and ``reminder.callback`` items that stay pending
until an agent has called. Nothing here logs a number, a name or a message body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from pa_tui.backends.base import (
    EHR,
    AuthError,
    BackendError,
    BadRequest,
    NotSupported,
    PermissionDenied,
    RateLimited,
    Store,
    Unavailable,
)
from pa_tui.backends.inbound.facts import ConfirmationDigits
from pa_tui.backends.store.outbox import OutboxWorker
from pa_tui.backends.twilio.client import TwilioClient
from pa_tui.backends.twilio.errors import TwilioBadRequest, TwilioUnavailable, describe_code
from pa_tui.backends.twilio.parse import DeliveryStatus, InboundSms, MessageStatus
from pa_tui.domain.outbox import OutboxItem, OutboxStatus
from pa_tui.domain.patients import PatientSummary, PhoneUse
from pa_tui.domain.phones import PhoneNumber, parse_phone
from pa_tui.domain.records import Appointment
from pa_tui.reminders.model import (
    KIND_CALLBACK,
    KIND_CONFIRM,
    KIND_INDEX,
    KIND_SMS,
    REMINDER_KINDS,
    AppointmentRef,
    CallbackEntry,
    Clinic,
    Decision,
    DeliveryOutcome,
    DueAppointment,
    ReminderPolicy,
    ReplyKind,
    ReplyOutcome,
    SendOutcome,
    SendResult,
    SkipReason,
    appointment_day,
    callback_key,
    decide,
    mobile_number,
    number_digest,
    reminder_key,
)

__all__ = ["REMINDER_CHANNEL", "ReminderService", "Scheduled"]

log = logging.getLogger("pa_tui.reminders")

#: Store notification channel: the "to call" list changed (payload: an appointment id).
REMINDER_CHANNEL: Final = "pa_tui_reminders"
STATUS_CALLBACK_PATH: Final = "/twilio/status"
CALL_STATUS_PATH: Final = "/twilio/call-status"
APP_CONFIRM_PATH: Final = "/app_confirm"

_FAR: Final = timedelta(days=3650)
_MAX_SLOTS: Final = 10  # reminders to one number on one day (a household)
# Twilio codes that mean pa-tui's Twilio settings are wrong, not this patient: stop and keep the rest.
_SETTINGS_CODES: Final = frozenset({21212, 21603, 21606, 21701, 21705, 20003, 20005, 20008, 21408})
_STATUS_RANK: Final = {
    "sending": 0,
    "unknown": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
    "partially_delivered": 3,
    "read": 4,
}


# --------------------------------------------------------------------------- errors the outbox worker sees
class _GiveUp(NotSupported):
    """Permanent: the item is marked dead with this title."""


class _Skip(_GiveUp):
    def __init__(self, reason: SkipReason) -> None:
        super().__init__(f"not sent: {reason.label}")
        self.reason = reason


class _Later(RateLimited):
    """Not now (quiet hours): come back after ``retry_after`` seconds."""


class _SettingsProblem(Unavailable):
    """pa-tui's Twilio settings are wrong: keep the item, stop the run."""


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@dataclass
class _Drain:
    observe: Callable[[OutboxItem, SendResult], None]
    worker: OutboxWorker
    stopped: str | None = None


_DRAIN: ContextVar[_Drain | None] = ContextVar("pa_tui_reminders_drain", default=None)


class Scheduled:
    """What :meth:`ReminderService.schedule` did with one appointment."""

    __slots__ = ("key", "result")

    def __init__(self, key: str | None, result: SendResult | None) -> None:
        self.key = key  # the outbox key, when an item exists
        self.result = result  # final for this run (skipped, deferred, dry run); None: due now, drain to send

    @property
    def due_now(self) -> bool:
        return self.result is None


class ReminderService:
    """Reminders for one site: send, record, and turn replies into outcomes for the console.

    ``twilio`` may be ``None`` for a dry run; ``ehr`` ``None`` when replies need not confirm in
    the EHR. ``public_base_url`` is the inbound listener's public URL (``twilio.status_callback_base``):
    status callbacks go to ``{base}/twilio/status``, the confirmation call fetches ``{base}/app_confirm``.
    """

    def __init__(
        self,
        store: Store,
        twilio: TwilioClient | None,
        policy: ReminderPolicy,
        *,
        ehr: EHR | None = None,
        public_base_url: str | None = None,
        messaging_service_sid: str | None = None,
        clock: Callable[[], datetime] = _now,
        lease: timedelta = timedelta(seconds=60),
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.twilio = twilio
        self.policy = policy
        self.ehr = ehr
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.messaging_service_sid = messaging_service_sid
        self.clock = clock
        self.lease = lease
        self._sleep = sleep
        #: Why the last :meth:`drain` stopped early (pa-tui's Twilio credentials or sender refused), if it did.
        self.stopped: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Any, store: Store, twilio: TwilioClient | None, *, ehr: EHR | None = None, **kwargs: Any
    ) -> ReminderService:
        """From pa-tui's ``Settings`` (its ``reminders`` and ``twilio`` sections)."""
        policy = ReminderPolicy.from_settings(settings.reminders, default_from=settings.twilio.from_number)
        kwargs.setdefault("public_base_url", settings.twilio.status_callback_base)
        return cls(store, twilio, policy, ehr=ehr, **kwargs)

    def now(self) -> datetime:
        return _utc(self.clock())

    @property
    def status_callback(self) -> str | None:
        return f"{self.public_base_url}{STATUS_CALLBACK_PATH}" if self.public_base_url else None

    # ------------------------------------------------------------------ planning
    def clinic_of(self, due: DueAppointment) -> Clinic:
        return self.policy.clinic_for(due.location_id, due.location_name, due.location_address)

    async def plan(self, due: DueAppointment, patient: PatientSummary) -> tuple[Clinic, Decision]:
        """The decision for one appointment now, with what the Store knows (opt-out, already sent). Reads only."""
        clinic = self.clinic_of(due)
        appointment = due.appointment
        opted_out = already = gave_up = False
        number = mobile_number(patient)
        if number is not None:
            opted_out = await self.store.is_opted_out(number)
        if appointment.start is not None:
            day = appointment_day(appointment.start, clinic)
            item = await self.store.outbox_item(reminder_key(appointment.id, day))
            done = item is not None and item.status is OutboxStatus.DONE
            already = done or await self.store.reminder_sent(appointment.id, day)
            gave_up = item is not None and item.status is OutboxStatus.DEAD
        decision = decide(appointment, patient, clinic, self.now(), opted_out=opted_out, already_sent=already)
        if gave_up and decision.action != "skip":  # an earlier run gave it up (Twilio refused it): not again
            decision = Decision(action="skip", reason=SkipReason.FAILED_EARLIER, day=decision.day)
        return clinic, decision

    async def schedule(self, due: DueAppointment, patient: PatientSummary, *, dry_run: bool = False) -> Scheduled:
        """Plan one appointment and, unless ``dry_run``, put its reminder in the outbox (once)."""
        clinic, d = await self.plan(due, patient)
        base = {
            "appointment_id": due.id,
            "patient_id": patient.id,
            "day": d.day,
            "clinic": clinic.name,
            "segments": d.text.segments if d.text else None,
        }
        if d.action == "skip":
            return Scheduled(None, SendResult(outcome=SendOutcome.SKIPPED, reason=d.reason, **base))
        if dry_run:
            if d.action == "defer":
                return Scheduled(
                    None,
                    SendResult(outcome=SendOutcome.SKIPPED, reason=SkipReason.QUIET_HOURS, send_at=d.send_at, **base),
                )
            return Scheduled(None, SendResult(outcome=SendOutcome.WOULD_SEND, **base))
        assert d.day is not None and d.to is not None and d.text is not None and due.appointment.start is not None
        key = reminder_key(due.id, d.day)
        payload = {
            "appointment_id": due.id,
            "patient_id": patient.id,
            "day": d.day.isoformat(),
            "to": d.to.e164,
            "body": d.text.body,
            "segments": d.text.segments,
            "from": clinic.from_number,
            "clinic": clinic.name,
            "tz": clinic.tz_name,
            "start": _utc(due.appointment.start).astimezone(clinic.zone(due.appointment.start)).isoformat(),
        }
        item = await self.store.enqueue(KIND_SMS, payload, key, not_before=d.send_at)
        if item.status is OutboxStatus.DONE:
            return Scheduled(key, SendResult(outcome=SendOutcome.SKIPPED, reason=SkipReason.ALREADY_SENT, **base))
        if item.status is OutboxStatus.DEAD:
            return Scheduled(key, SendResult(outcome=SendOutcome.SKIPPED, reason=SkipReason.FAILED_EARLIER, **base))
        now = self.now()
        if item.lease_until is not None and item.lease_until > now:
            return Scheduled(key, SendResult(outcome=SendOutcome.SKIPPED, reason=SkipReason.IN_PROGRESS, **base))
        if item.next_try > now:
            if item.last_error and "quiet hours" not in item.last_error:  # backing off after a failure
                detail = f"{item.last_error}; tried again from {item.next_try:%H:%M} UTC"
                retry = SendResult(outcome=SendOutcome.RETRY, detail=detail, send_at=item.next_try, **base)
                return Scheduled(key, retry)
            deferred = SendResult(
                outcome=SendOutcome.DEFERRED, reason=SkipReason.QUIET_HOURS, send_at=item.next_try, **base
            )
            return Scheduled(key, deferred)
        return Scheduled(key, None)

    # ------------------------------------------------------------------ sending
    def worker(self, **kwargs: Any) -> OutboxWorker:
        """An outbox worker for the console: sends ``sms.reminder`` (and EHR confirmation) items."""
        kwargs.setdefault("kinds", REMINDER_KINDS)
        kwargs.setdefault("lease", self.lease)
        kwargs.setdefault("permanent", (BadRequest, PermissionDenied, NotSupported))
        return OutboxWorker(self.store, self.send_item, **kwargs)

    async def drain(
        self, *, on_result: Callable[[OutboxItem, SendResult], None] | None = None, kinds: tuple[str, ...] = (KIND_SMS,)
    ) -> dict[str, SendResult]:
        """Send every reminder due now (this run's and any owed from earlier ones), one at a time.

        Returns each item's result by its key. Stops early when Twilio refuses pa-tui's
        credentials or sender (those items stay in the outbox for the next run).
        """
        results: dict[str, SendResult] = {}

        def observe(item: OutboxItem, result: SendResult) -> None:
            results[item.idempotency_key] = result
            if on_result is not None:
                on_result(item, result)

        worker = self.worker(kinds=kinds, batch=1, clock=self.now)
        state = _Drain(observe, worker)
        token = _DRAIN.set(state)  # seen by send_item in this task only, not by a console's background worker
        try:
            await worker.drain()
        finally:
            _DRAIN.reset(token)
        self.stopped = state.stopped
        return results

    async def send_item(self, item: OutboxItem) -> str | None:
        """The outbox sender for reminder kinds: raises for the worker to retry or give up."""
        if item.kind == KIND_CONFIRM:
            return await self._confirm_item(item)
        result, error = await self._deliver(item)
        state = _DRAIN.get()
        if state is not None:
            state.observe(item, result)
        if error is not None:
            if isinstance(error, (AuthError, _SettingsProblem)) and state is not None:
                state.stopped = error.title
                state.worker.stop()
            raise error
        return result.sid or result.outcome.value

    async def _deliver(self, item: OutboxItem) -> tuple[SendResult, BackendError | None]:
        p = item.payload
        appointment_id, day = str(p["appointment_id"]), _date(p["day"])
        base = {
            "appointment_id": appointment_id,
            "patient_id": p.get("patient_id"),
            "day": day,
            "clinic": p.get("clinic"),
            "segments": p.get("segments"),
        }

        def skipped(reason: SkipReason) -> tuple[SendResult, BackendError | None]:
            return SendResult(outcome=SendOutcome.SKIPPED, reason=reason, **base), _Skip(reason)

        now = self.now()
        start = _when(p.get("start"))
        if start is not None and _utc(start) <= now:
            return skipped(SkipReason.TOO_LATE)
        try:
            to = parse_phone(str(p["to"]))
        except ValueError:
            title = "the stored number is not a phone number"
            return SendResult(outcome=SendOutcome.FAILED, detail=title, **base), _GiveUp(title)
        assert isinstance(to, PhoneNumber)
        if await self.store.is_opted_out(to):
            return skipped(SkipReason.OPTED_OUT)
        if await self.store.reminder_sent(appointment_id, day):
            # An earlier run got as far as sending (and maybe no further): never text twice.
            log.info("reminder %s: already sent or being sent by an earlier run; not sent again", appointment_id)
            return SendResult(outcome=SendOutcome.SKIPPED, reason=SkipReason.ALREADY_SENT, **base), None
        zone = ZoneInfo(p["tz"]) if p.get("tz") else (start.tzinfo if start is not None and start.tzinfo else UTC)
        local = now.astimezone(zone)
        allowed = self.policy.quiet.next_allowed(local)
        if allowed > local:
            wait = (allowed - local).total_seconds()
            result = SendResult(
                outcome=SendOutcome.DEFERRED, reason=SkipReason.QUIET_HOURS, send_at=allowed.astimezone(UTC), **base
            )
            return result, _Later("quiet hours at the clinic", "sent when they end", retry_after=wait)
        if self.twilio is None:
            error = NotSupported("Twilio is not configured", "Set twilio.account_sid and run `pa-tui auth set twilio`")
            problem = _SettingsProblem(error.title, error.fix)
            return SendResult(outcome=SendOutcome.RETRY, detail=error.title, **base), problem
        sender = p.get("from") or self.policy.from_number
        if not sender and not self.messaging_service_sid:
            title = "No Twilio number to send reminders from"
            return SendResult(outcome=SendOutcome.RETRY, detail=title, **base), _SettingsProblem(
                title, "Set reminders.from_number (or twilio.from_number) in the config file"
            )

        await self.store.record_reminder(appointment_id, day, "sending", None, at=now)
        try:
            sent = await self._post(to, str(p["body"]), sender)
        except TwilioUnavailable as exc:
            if exc.may_have_sent:
                await self.store.record_reminder(appointment_id, day, "unknown", None, at=self.now())
                title = "Twilio did not answer; the reminder may have been sent (not sent again)"
                log.warning("reminder %s: %s", appointment_id, exc.title)
                return SendResult(outcome=SendOutcome.FAILED, detail=title, **base), _GiveUp(
                    title, "Check the Twilio Console's message log; call the patient if it is not there"
                )
            await self.store.record_reminder(appointment_id, day, "failed", None, at=self.now())
            return SendResult(outcome=SendOutcome.RETRY, detail=exc.title, **base), exc
        except TwilioBadRequest as exc:
            await self.store.record_reminder(appointment_id, day, "failed", None, at=self.now())
            if exc.opted_out:  # Twilio knew of a STOP the Store did not: remember it
                await self.store.set_opt_out(to, True, at=self.now())
                return skipped(SkipReason.OPTED_OUT)
            if exc.code in _SETTINGS_CODES:
                retry = SendResult(outcome=SendOutcome.RETRY, detail=exc.title, error_code=exc.code, **base)
                return retry, _SettingsProblem(exc.title, exc.fix)
            log.info("reminder %s: Twilio refused it (code %s)", appointment_id, exc.code)
            return SendResult(outcome=SendOutcome.FAILED, detail=exc.title, error_code=exc.code, **base), exc
        except AuthError as exc:
            await self.store.record_reminder(appointment_id, day, "failed", None, at=self.now())
            return SendResult(outcome=SendOutcome.RETRY, detail=exc.title, **base), exc
        except BackendError as exc:  # rate limited, forbidden, …: not sent, so it may be tried again
            await self.store.record_reminder(appointment_id, day, "failed", None, at=self.now())
            outcome = SendOutcome.FAILED if isinstance(exc, (PermissionDenied, BadRequest)) else SendOutcome.RETRY
            return SendResult(outcome=outcome, detail=exc.title, **base), exc
        await self.store.record_reminder(appointment_id, day, sent.status, sent.sid, at=self.now())
        ref = {
            "appointment_id": appointment_id,
            "patient_id": p.get("patient_id"),
            "day": day.isoformat(),
            "clinic": p.get("clinic"),
            "start": p.get("start"),
        }
        await self._index(f"reminder-sid:{sent.sid}", ref, status=sent.status)
        await self._index_number(to, day, ref)
        log.info("reminder %s sent as %s (%d segment(s))", appointment_id, sent.sid, p.get("segments") or 0)
        return SendResult(outcome=SendOutcome.SENT, sid=sent.sid, status=sent.status, **base), None

    async def _post(self, to: PhoneNumber, body: str, sender: str | None) -> Any:
        """One message; a short Retry-After or a connection that never opened is waited out and tried again."""
        assert self.twilio is not None
        for attempt in range(3):
            try:
                return await self.twilio.send_sms(
                    to,
                    body,
                    from_=sender,
                    messaging_service_sid=self.messaging_service_sid,
                    status_callback=self.status_callback,
                )
            except RateLimited as exc:
                if attempt == 2 or exc.retry_after > 10:
                    raise
                await self._sleep(max(exc.retry_after, 0.2))
            except TwilioUnavailable as exc:
                if exc.may_have_sent or attempt == 2:
                    raise
                await self._sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ one appointment, from the console
    async def send_one(
        self, appointment: Appointment, patient: PatientSummary, *, location_id: str | None = None
    ) -> SendResult:
        """The Appointments tab's "send reminder": the same checks and outbox path as the batch.

        Returns at once with the outcome: sent (Twilio accepted it), deferred (quiet hours),
        skipped (opted out, no mobile, already sent…) or failed with Twilio's reason.
        """
        due = DueAppointment(
            appointment=appointment, patient_id=patient.id, location_id=location_id, location_name=appointment.location
        )
        scheduled = await self.schedule(due, patient)
        if scheduled.result is not None or scheduled.key is None:
            assert scheduled.result is not None
            return scheduled.result
        drained = await self.drain()
        result = drained.get(scheduled.key)
        if result is not None:
            return result
        item = await self.store.outbox_item(scheduled.key)
        day = _date(item.payload["day"]) if item is not None else None
        if item is not None and item.status is OutboxStatus.DONE:
            return SendResult(appointment_id=appointment.id, patient_id=patient.id, day=day, outcome=SendOutcome.SENT,
                              sid=item.remote_id)
        return SendResult(appointment_id=appointment.id, patient_id=patient.id, day=day,
                          outcome=SendOutcome.SKIPPED, reason=SkipReason.IN_PROGRESS)

    # ------------------------------------------------------------------ delivery reports
    async def handle_delivery(self, status: DeliveryStatus) -> DeliveryOutcome | None:
        """A status callback (or a polled status) for a message: ``None`` when it is not one of ours
        or older than what is already recorded. Undelivered reminders go on the "to call" list."""
        index = await self.store.outbox_item(f"reminder-sid:{status.message_sid}")
        if index is None or index.kind != KIND_INDEX:
            return None
        p = index.payload
        appointment_id, day = str(p["appointment_id"]), _date(p["day"])
        previous = index.remote_id or ""
        new = status.status.value
        if _STATUS_RANK.get(new, 0) < _STATUS_RANK.get(previous, 0) or (new == previous and not status.is_final):
            return None
        await self.store.record_reminder(appointment_id, day, new, status.message_sid, at=self.now())
        await self.store.mark_done(index.id, new)
        error = describe_code(status.error_code).title if status.error_code is not None else None
        to_call = False
        if status.failed:
            to_call = await self.add_to_call_list(self._ref(p), "undelivered", source="delivery")
            log.info("reminder %s %s (code %s)", appointment_id, new, status.error_code)
        return DeliveryOutcome(
            appointment_id=appointment_id,
            patient_id=p.get("patient_id"),
            day=day,
            sid=status.message_sid,
            status=new,
            error_code=status.error_code,
            error=error,
            final=status.is_final,
            failed=status.failed,
            to_call=to_call,
        )

    async def poll_delivery(
        self, sids: list[str], *, timeout: float, interval: float = 0.5
    ) -> dict[str, DeliveryOutcome]:
        """Ask Twilio for each message's status until it is final or ``timeout`` passes (``pa-tui remind``,
        which has no listener for status callbacks). Each answer goes through :meth:`handle_delivery`."""
        if self.twilio is None or not sids:
            return {}
        latest: dict[str, DeliveryOutcome] = {}
        pending = list(dict.fromkeys(sids))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        gate = asyncio.Semaphore(8)

        async def one(sid: str) -> bool:
            async with gate:
                try:
                    info = await self.twilio.get_message(sid)  # type: ignore[union-attr]
                except BackendError as exc:
                    log.info("reminder message %s: status not read (%s)", sid, type(exc).__name__)
                    return False
            try:
                status = DeliveryStatus(message_sid=sid, status=MessageStatus(info.status), error_code=info.error_code)
            except ValueError:
                return False
            outcome = await self.handle_delivery(status)
            if outcome is not None:
                latest[sid] = outcome
            return status.is_final

        while pending:
            done = await asyncio.gather(*(one(s) for s in pending))
            pending = [s for s, finished in zip(pending, done, strict=True) if not finished]
            if not pending or loop.time() + interval > deadline:
                break
            await self._sleep(interval)
        return latest

    # ------------------------------------------------------------------ replies
    async def handle_reply(self, sms: InboundSms) -> ReplyOutcome:
        """A patient's text: C confirms, R goes on the "to call" list, STOP/START set the opt-out,
        anything else is for an agent to read (the outcome carries the text; nothing logs it)."""
        number = sms.from_number
        refs = await self.reminded(number) if number is not None else []
        targets = self._targets(refs)
        common: dict[str, Any] = {"channel": "sms", "sid": sms.message_sid, "number": number, "appointments": targets}
        keyword = sms.keyword
        log.info("reminder reply %s: keyword %s, %d reminded appointment(s)", sms.message_sid, keyword, len(targets))
        if keyword == "STOP":
            if number is not None:
                await self.store.set_opt_out(number, True, at=self.now())
            return ReplyOutcome(kind=ReplyKind.OPTED_OUT, note="Opted out of reminder texts (STOP)", **common)
        if keyword == "START":
            if number is not None:
                await self.store.set_opt_out(number, False, at=self.now())
            return ReplyOutcome(kind=ReplyKind.OPTED_IN, note="Opted back in to reminder texts (START)", **common)
        if keyword == "HELP":
            note = "Asked for help by text (Twilio sent the help reply)"
            return ReplyOutcome(kind=ReplyKind.HELP, note=note, **common)
        if keyword == "CONFIRM":
            return await self._confirm(targets, common)
        if keyword == "RESCHEDULE":
            return await self._reschedule(targets, common)
        what = "a reminder" if targets else "no recent reminder"
        note = f"Text reply to {what}: read it and follow up"
        return ReplyOutcome(kind=ReplyKind.MESSAGE, needs_agent=True, text=sms.body, note=note, **common)

    async def handle_confirmation_digits(self, digits: ConfirmationDigits) -> ReplyOutcome | None:
        """A key pressed on the confirmation call: 1 confirms, 2 goes on the "to call" list.
        ``None`` when the call is not one pa-tui placed for a reminder."""
        index = await self.store.outbox_item(f"reminder-call:{digits.call_sid}")
        if index is None or index.kind != KIND_INDEX:
            return None
        targets = (self._ref(index.payload),)
        common: dict[str, Any] = {"channel": "voice", "sid": digits.call_sid, "appointments": targets}
        log.info("confirmation call %s: choice %s", digits.call_sid, digits.choice)
        if digits.choice == "confirm":
            return await self._confirm(list(targets), common)
        if digits.choice == "reschedule":
            return await self._reschedule(list(targets), common)
        note = "Pressed a key that is not an option"
        return ReplyOutcome(kind=ReplyKind.MESSAGE, needs_agent=True, note=note, **common)

    async def _confirm(self, targets: Sequence[AppointmentRef], common: dict[str, Any]) -> ReplyOutcome:
        common = {**common, "appointments": tuple(targets)}
        if not targets:
            note = "Confirmed, but no recent reminder went to this number"
            return ReplyOutcome(kind=ReplyKind.CONFIRMED, needs_agent=True, note=note, **common)
        confirmed: list[str] = []
        refused: list[str] = []
        problems: list[str] = []
        for ref in targets:
            await self._remember_reply(ref, ReplyKind.CONFIRMED)
            if not self.policy.confirm_in_ehr or self.ehr is None:
                refused.append(ref.appointment_id)
                continue
            try:
                ok = await self.ehr.confirm_appointment(ref.appointment_id)
            except (Unavailable, RateLimited) as exc:
                await self.store.enqueue(
                    KIND_CONFIRM, {"appointment_id": ref.appointment_id}, f"confirm:{ref.appointment_id}"
                )
                refused.append(ref.appointment_id)
                problems.append(f"{exc.title}; it will be recorded when the EHR answers")
                continue
            except BackendError as exc:
                refused.append(ref.appointment_id)
                problems.append(exc.title)
                continue
            (confirmed if ok else refused).append(ref.appointment_id)
        if confirmed and not refused:
            note = "Confirmed; recorded in the EHR"
        elif not self.policy.confirm_in_ehr or self.ehr is None:
            note = "Confirmed by the patient; record it in the EHR"
        elif problems:
            note = "Confirmed by the patient; the EHR was not updated: " + problems[0]
        else:
            note = "Confirmed by the patient; this EHR does not let pa-tui record it: record it in the EHR"
        return ReplyOutcome(
            kind=ReplyKind.CONFIRMED,
            confirmed_in_ehr=tuple(confirmed),
            not_confirmed=tuple(refused),
            needs_agent=bool(refused),
            note=note,
            **common,
        )

    async def _reschedule(self, targets: Sequence[AppointmentRef], common: dict[str, Any]) -> ReplyOutcome:
        common = {**common, "appointments": tuple(targets)}
        added: list[str] = []
        for ref in targets:
            await self._remember_reply(ref, ReplyKind.RESCHEDULE)
            await self.add_to_call_list(ref, "reschedule", source=common["channel"])
            added.append(ref.appointment_id)
        if added:
            note = "Wants to reschedule: on the to-call list"
        else:
            note = "Wants to reschedule, but no recent reminder went to this number"
        return ReplyOutcome(kind=ReplyKind.RESCHEDULE, to_call=tuple(added), needs_agent=True, note=note, **common)

    async def _confirm_item(self, item: OutboxItem) -> str | None:
        if self.ehr is None:
            raise _SettingsProblem("No EHR to record the confirmation in", "Run the console with its EHR configured")
        if await self.ehr.confirm_appointment(str(item.payload["appointment_id"])):
            return "confirmed"
        raise _GiveUp("the EHR did not accept the confirmation")

    # ------------------------------------------------------------------ the confirmation call
    async def start_confirmation_call(
        self, appointment: Appointment, patient: PatientSummary, *, location_id: str | None = None
    ) -> str:
        """Call the patient; the listener's ``/app_confirm`` asks them to press 1 (confirm) or 2 (reschedule).
        Returns the call SID. The key press arrives as ``ConfirmationDigits`` → :meth:`handle_confirmation_digits`."""
        if self.twilio is None:
            raise NotSupported("Twilio is not configured", "Set twilio.account_sid and run `pa-tui auth set twilio`")
        if not self.public_base_url:
            raise NotSupported(
                "Confirmation calls need the listener's public URL",
                "Set twilio.status_callback_base to the URL Twilio reaches the listener on",
            )
        if appointment.start is None:
            raise BadRequest("This appointment has no start time", "Check the appointment in the EHR")
        clinic = self.policy.clinic_for(location_id, appointment.location)
        sender = clinic.from_number or self.policy.from_number
        if not sender:
            raise NotSupported("No Twilio number to call from", "Set reminders.from_number (or twilio.from_number)")
        to = mobile_number(patient) or _any_phone(patient)
        if to is None:
            raise BadRequest("The patient has no phone number on file", "Add one in the EHR")
        call = await self.twilio.start_confirmation_call(
            to,
            from_=sender,
            twiml_url=f"{self.public_base_url}{APP_CONFIRM_PATH}",
            status_callback=f"{self.public_base_url}{CALL_STATUS_PATH}",
            status_callback_events=("completed",),
        )
        day = appointment_day(appointment.start, clinic)
        ref = {
            "appointment_id": appointment.id,
            "patient_id": patient.id,
            "day": day.isoformat(),
            "clinic": clinic.name,
            "start": _utc(appointment.start).isoformat(),
        }
        await self._index(f"reminder-call:{call.sid}", ref, status=call.status)
        log.info("confirmation call %s placed for appointment %s", call.sid, appointment.id)
        return call.sid

    # ------------------------------------------------------------------ the "to call" list
    async def add_to_call_list(self, ref: AppointmentRef, reason: str, *, source: str = "agent") -> bool:
        """Put the patient on the "to call" list for this appointment (once while it is open)."""
        payload = {
            "appointment_id": ref.appointment_id,
            "patient_id": ref.patient_id,
            "day": ref.day.isoformat(),
            "clinic": ref.clinic,
            "reason": reason,
            "source": source,
            "at": self.now().isoformat(),
        }
        base = callback_key(ref.appointment_id, ref.day)
        for n in range(_MAX_SLOTS):
            key = base if n == 0 else f"{base}:{n + 1}"
            item = await self.store.enqueue(KIND_CALLBACK, payload, key, not_before=self.now())
            if item.status is OutboxStatus.PENDING:
                break  # new, or already on the list
        else:
            return False
        try:
            await self.store.publish(REMINDER_CHANNEL, ref.appointment_id)
        except (BackendError, ValueError) as exc:  # the list is saved; only the nudge failed
            log.info("reminders: to-call notification not published (%s)", type(exc).__name__)
        return True

    async def to_call_list(self, *, limit: int = 500) -> list[CallbackEntry]:
        """The open "to call" entries, oldest first."""
        items = await self.store.due(self.now(), limit, lease=timedelta(0), kinds=[KIND_CALLBACK])
        out = []
        for item in items:
            p = item.payload
            out.append(
                CallbackEntry(
                    item_id=item.id,
                    appointment_id=str(p.get("appointment_id")),
                    patient_id=p.get("patient_id"),
                    day=_date(p.get("day")),
                    reason=str(p.get("reason") or "reply"),
                    source=str(p.get("source") or "sms"),
                    clinic=p.get("clinic"),
                    at=_when(p.get("at")) or item.created_at,
                )
            )
        return out

    async def call_done(self, entry: CallbackEntry | int, outcome: str = "called") -> None:
        """The agent called the patient: the entry leaves the list."""
        await self.store.mark_done(entry.item_id if isinstance(entry, CallbackEntry) else entry, outcome)

    # ------------------------------------------------------------------ what pa-tui remembers
    async def reminded(self, number: PhoneNumber) -> list[AppointmentRef]:
        """Reminders sent to ``number`` for appointments from yesterday to ``reply_window_days`` ahead."""
        today = self.now().date()
        digest = number_digest(number)
        out: list[AppointmentRef] = []
        for offset in range(-1, self.policy.reply_window_days + 2):
            day = today + timedelta(days=offset)
            for n in range(_MAX_SLOTS):
                item = await self.store.outbox_item(f"reminder-to:{digest}:{day.isoformat()}:{n}")
                if item is None:
                    break
                out.append(self._ref(item.payload))
        return out

    async def last_reply(self, appointment_id: str, day: date | str) -> ReplyKind | None:
        """The patient's latest answer to this appointment's reminder (confirmed / reschedule), if any."""
        item = await self.store.outbox_item(f"reminder-reply:{appointment_id}:{_date(day).isoformat()}")
        if item is None or not item.remote_id:
            return None
        try:
            return ReplyKind(item.remote_id)
        except ValueError:
            return None

    def _targets(self, refs: list[AppointmentRef]) -> list[AppointmentRef]:
        """The appointments a reply answers: those of the nearest day still ahead (a household may
        have several), else of the latest day."""
        if not refs:
            return []
        now = self.now()
        upcoming = [
            r
            for r in refs
            if (_utc(r.start) > now - timedelta(hours=1) if r.start is not None else r.day >= now.date())
        ]
        pool = upcoming or refs
        day = min(r.day for r in pool) if upcoming else max(r.day for r in pool)
        return list({r.appointment_id: r for r in pool if r.day == day}.values())

    @staticmethod
    def _ref(p: dict[str, Any]) -> AppointmentRef:
        return AppointmentRef(
            appointment_id=str(p["appointment_id"]),
            patient_id=p.get("patient_id"),
            day=_date(p["day"]),
            clinic=p.get("clinic"),
            start=_when(p.get("start")),
        )

    async def _index(self, key: str, payload: dict[str, Any], *, status: str | None = None) -> OutboxItem:
        item = await self.store.enqueue(KIND_INDEX, payload, key, not_before=self.now() + _FAR)
        await self.store.mark_done(item.id, status)
        return item

    async def _index_number(self, number: PhoneNumber, day: date, ref: dict[str, Any]) -> None:
        digest = number_digest(number)
        for n in range(_MAX_SLOTS):
            item = await self._index(f"reminder-to:{digest}:{day.isoformat()}:{n}", ref)
            if item.payload.get("appointment_id") == ref["appointment_id"]:
                return
        log.warning("reminders: more than %d reminders to one number on one day; replies may miss some", _MAX_SLOTS)

    async def _remember_reply(self, ref: AppointmentRef, kind: ReplyKind) -> None:
        await self._index(
            f"reminder-reply:{ref.appointment_id}:{ref.day.isoformat()}",
            {"appointment_id": ref.appointment_id, "day": ref.day.isoformat()},
            status=kind.value,
        )


def _any_phone(patient: PatientSummary) -> PhoneNumber | None:
    for use in (PhoneUse.HOME, PhoneUse.WORK, PhoneUse.OTHER, PhoneUse.TEMP):
        for phone in patient.phones:
            if phone.use is use and phone.current and phone.number.valid:
                return phone.number
    return None
