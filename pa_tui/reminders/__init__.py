"""Appointment reminders by SMS (issue #9): templates, quiet hours, opt-outs, the outbox, replies.

- :mod:`.model` — pure: templates and SMS segments, quiet hours, :func:`decide`, the outcomes.
- :mod:`.service` — :class:`ReminderService`: send (once per appointment and day, through the
  Store's outbox), delivery reports, replies (C / R / STOP / START / other), the confirmation
  call and its key presses, the "to call" list.
- :mod:`.source` — the day's booked appointments from the EHR (FHIR ``Appointment?date=``).
- :mod:`.runner` — ``pa-tui remind``: the batch, its progress bar and summary.

The console calls, on its worker thread (never from a widget)::

    service = ReminderService.from_settings(settings, store, twilio_client, ehr=ehr)
    result = await service.send_one(appointment, patient)          # Appointments tab key
    outcome = await service.handle_reply(inbound_sms)               # InboundSms fact
    delivery = await service.handle_delivery(delivery_status)      # DeliveryStatus fact
    outcome = await service.handle_confirmation_digits(digits)     # ConfirmationDigits fact
    entries = await service.to_call_list()                          # the "to call" list
"""

from pa_tui.reminders.model import (
    KIND_CALLBACK,
    KIND_CONFIRM,
    KIND_SMS,
    REMINDER_KINDS,
    AppointmentRef,
    BatchSummary,
    CallbackEntry,
    Clinic,
    Decision,
    DeliveryOutcome,
    DueAppointment,
    QuietHours,
    ReminderPolicy,
    ReplyKind,
    ReplyOutcome,
    SendOutcome,
    SendResult,
    SkipReason,
    SmsText,
    decide,
    gsm7_friendly,
    mobile_number,
    reminder_key,
    render_reminder,
    sms_segments,
)
from typing import Any


__all__ = [
    "KIND_CALLBACK",
    "KIND_CONFIRM",
    "KIND_SMS",
    "REMINDER_CHANNEL",
    "REMINDER_KINDS",
    "AppointmentRef",
    "BatchSummary",
    "CallbackEntry",
    "Clinic",
    "Decision",
    "DeliveryOutcome",
    "DueAppointment",
    "QuietHours",
    "ReminderPolicy",
    "ReminderService",
    "ReplyKind",
    "ReplyOutcome",
    "SendOutcome",
    "SendResult",
    "SkipReason",
    "SmsText",
    "decide",
    "gsm7_friendly",
    "mobile_number",
    "reminder_key",
    "render_reminder",
    "sms_segments",
]


def __getattr__(name: str) -> Any:
    # The service pulls in httpx, the Store and the Twilio client: only when asked for,
    # so that importing the pure model stays free of I/O libraries.
    if name in ("ReminderService", "REMINDER_CHANNEL"):
        from pa_tui.reminders import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
