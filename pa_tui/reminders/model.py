"""Appointment reminders: the pure part. Templates, SMS segments, quiet hours, decisions, outcomes.

No I/O here (no HTTP, no database, no clock): :mod:`pa_tui.reminders.service` feeds
it the appointment, the patient, "now" and what the Store knows, and acts on the
answer. Everything with a phone number or a message body keeps them out of its
``repr`` so that a stray log line leaks no PHI.

What a reminder may say is deliberately narrow: the clinic's name, the date and
time (in the clinic's time zone), where to come, and how to answer. Never the
clinician, the specialty, the service or the reason for the visit: a text on a
lock screen must not disclose a condition.
"""

from __future__ import annotations

import hashlib
import math
import re
import string
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.patients import PatientSummary, PhoneUse
from pa_tui.domain.phones import PhoneNumber
from pa_tui.domain.records import Appointment

__all__ = [
    "KIND_CALLBACK",
    "KIND_CONFIRM",
    "KIND_SMS",
    "REMINDER_FIELDS",
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
    "ReplyKind",
    "ReplyOutcome",
    "SendOutcome",
    "SendResult",
    "SkipReason",
    "SmsText",
    "appointment_day",
    "callback_key",
    "decide",
    "format_date",
    "format_time",
    "gsm7_friendly",
    "is_gsm7",
    "mobile_number",
    "number_digest",
    "reminder_key",
    "render_reminder",
    "sms_segments",
]

#: Outbox kinds. ``sms.reminder`` items are the texts owed to Twilio; ``reminder.callback`` items are the
#: "to call" list (pending until an agent has called); ``ehr.appointment-confirm`` a confirmation owed to the EHR.
KIND_SMS: Final = "sms.reminder"
KIND_CALLBACK: Final = "reminder.callback"
KIND_CONFIRM: Final = "ehr.appointment-confirm"
#: Kinds a console's outbox worker should send with :meth:`ReminderService.send_item`.
REMINDER_KINDS: Final = (KIND_SMS, KIND_CONFIRM)
#: Inert outbox items (created done, never due) that index what the Store's schema cannot look up.
KIND_INDEX: Final = "reminder.index"

REMINDER_FIELDS: Final = ("clinic", "date", "time", "location")

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --------------------------------------------------------------------------- keys
def reminder_key(appointment_id: str, day: date | str) -> str:
    """The outbox idempotency key of an appointment's reminder for one day: sent at most once."""
    return f"reminder:{appointment_id}:{_day_text(day)}"


def callback_key(appointment_id: str, day: date | str) -> str:
    """The "to call" entry of an appointment (one per appointment and day)."""
    return f"callback:{appointment_id}:{_day_text(day)}"


def number_digest(number: PhoneNumber | str) -> str:
    """A short stable digest of a number, for index keys (keys are not the place for the digits)."""
    e164 = number.e164 if isinstance(number, PhoneNumber) else str(number)
    return hashlib.sha256(f"pa-tui-reminder:{e164}".encode()).hexdigest()[:20]


def _day_text(day: date | str) -> str:
    if isinstance(day, datetime):
        return day.date().isoformat()
    if isinstance(day, date):
        return day.isoformat()
    return date.fromisoformat(day).isoformat()


# --------------------------------------------------------------------------- SMS text
_GSM7: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT: Final = frozenset("^{}\\[~]|€\f")
# Characters that force UCS-2 (70 characters a segment) and have a plain GSM-7 twin.
_PLAIN: Final = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2007": " ", "\u200b": "",
    "\t": " ", "\u2022": "-", "\u00b7": "-",
}


def is_gsm7(text: str) -> bool:
    """Whether ``text`` fits the GSM 03.38 alphabet (basic set plus its extension table)."""
    return all(c in _GSM7 or c in _GSM7_EXT for c in text)


def gsm7_friendly(text: str) -> str:
    """``text`` with typographic quotes, dashes, ellipses and accents a GSM-7 phone lacks made plain.

    Letters with an accent GSM-7 does not have become the bare letter (``í`` → ``i``);
    anything else without a plain twin (an emoji, CJK) is kept, and the text then goes as UCS-2.
    """
    out: list[str] = []
    for ch in text:
        if ch in _GSM7 or ch in _GSM7_EXT:
            out.append(ch)
            continue
        if ch in _PLAIN:
            out.append(_PLAIN[ch])
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(c in _GSM7 for c in base) else ch)
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` takes: GSM-7 160 (153 a part), else UCS-2 70 (67 a part)."""
    if not text:
        return 1
    if is_gsm7(text):
        length = sum(2 if c in _GSM7_EXT else 1 for c in text)
        return 1 if length <= 160 else math.ceil(length / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


class SmsText(BaseModel):
    """A rendered reminder. ``body`` is kept out of the ``repr``."""

    model_config = ConfigDict(frozen=True)

    body: str
    segments: int
    encoding: Literal["GSM-7", "UCS-2"]

    @classmethod
    def of(cls, body: str) -> SmsText:
        return cls(body=body, segments=sms_segments(body), encoding="GSM-7" if is_gsm7(body) else "UCS-2")

    @property
    def chars(self) -> int:
        return len(self.body)

    def __repr__(self) -> str:
        return f"SmsText(chars={self.chars}, segments={self.segments}, encoding={self.encoding!r})"

    __str__ = __repr__


# --------------------------------------------------------------------------- time
def format_date(moment: datetime) -> str:
    """``Tue Nov 24`` (English, whatever the machine's locale)."""
    return f"{_DAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment.day}"


def format_time(moment: datetime) -> str:
    """``9:05 AM``, ``1:20 PM``, ``12:00 PM``."""
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")[:2]
    return time(int(hours), int(minutes))


class QuietHours(BaseModel):
    """No texts from ``start`` until ``end`` (clinic time). ``start == end``: never quiet."""

    model_config = ConfigDict(frozen=True)

    start: time = time(20, 0)
    end: time = time(8, 0)

    @classmethod
    def parse(cls, start: str, end: str) -> QuietHours:
        return cls(start=_parse_hhmm(start), end=_parse_hhmm(end))

    def contains(self, local: datetime) -> bool:
        t = local.timetz().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:  # a daytime pause, e.g. 12:00–13:00
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # overnight, e.g. 20:00–08:00

    def next_allowed(self, local: datetime) -> datetime:
        """``local`` itself when texts may go then, else the moment quiet hours end (same zone)."""
        if not self.contains(local):
            return local
        tz = local.tzinfo
        candidate = datetime.combine(local.date(), self.end, tzinfo=tz)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=tz)
        return candidate

    @property
    def label(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


# --------------------------------------------------------------------------- clinics
class Clinic(BaseModel):
    """How one clinic's reminders read and when they may go."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    key: str  # the config key, or the EHR location name when the clinic is not configured
    name: str  # as the text names it
    location: str  # where to come
    tz_name: str | None = None  # IANA zone; None: the appointment's own UTC offset
    from_number: str | None = None
    template: str
    short_template: str
    quiet: QuietHours = QuietHours()

    def zone(self, start: datetime | None = None) -> tzinfo:
        if self.tz_name:
            return ZoneInfo(self.tz_name)
        if start is not None and start.tzinfo is not None:
            return start.tzinfo
        return UTC

    def local(self, moment: datetime, start: datetime | None = None) -> datetime:
        return _aware(moment).astimezone(self.zone(start))


def _check_template(template: str) -> str:
    try:
        fields = [(n, spec, conv) for _, n, spec, conv in string.Formatter().parse(template) if n is not None]
    except ValueError:
        fields = [("{", "", None)]
    if any(n not in REMINDER_FIELDS or spec or conv for n, spec, conv in fields):
        raise ValueError("a reminder template may only use {clinic}, {date}, {time} and {location}")
    return template


def render_reminder(start: datetime, clinic: Clinic) -> SmsText:
    """The reminder for an appointment at ``start``: clinic, date, time and place only.

    Written in the clinic's zone, made GSM-7-friendly; the short template is used
    when the full text would take more than one segment and the short one takes fewer.
    """
    local = clinic.local(start, start)
    values = {
        "clinic": gsm7_friendly(clinic.name),
        "date": format_date(local),
        "time": format_time(local),
        "location": gsm7_friendly(clinic.location),
    }
    full = SmsText.of(gsm7_friendly(_check_template(clinic.template).format_map(values)))
    if full.segments <= 1 or clinic.short_template == clinic.template:
        return full
    short = SmsText.of(gsm7_friendly(_check_template(clinic.short_template).format_map(values)))
    return short if short.segments < full.segments else full


def appointment_day(start: datetime, clinic: Clinic) -> date:
    """The appointment's date at the clinic: the ``day`` of its reminder key."""
    return clinic.local(start, start).date()


def _norm(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


class ReminderPolicy(BaseModel):
    """The site's reminder settings, resolved: which clinic an appointment belongs to, and its texts."""

    model_config = ConfigDict(frozen=True)

    template: str
    short_template: str
    tz_name: str | None = None
    from_number: str | None = None
    quiet: QuietHours = QuietHours()
    confirm_in_ehr: bool = True
    reply_window_days: int = 14
    delivery_wait: float = 20.0
    clinics: tuple[tuple[str, Mapping[str, Any]], ...] = ()

    @classmethod
    def from_settings(cls, reminders: Any, *, default_from: str | None = None) -> ReminderPolicy:
        """From :class:`pa_tui.config.ReminderSettings` (or anything with its attributes)."""
        clinics = []
        for key, value in (getattr(reminders, "clinics", None) or {}).items():
            data = value.model_dump() if hasattr(value, "model_dump") else dict(value)
            clinics.append((key, data))
        return cls(
            template=reminders.template,
            short_template=reminders.short_template,
            tz_name=reminders.timezone,
            from_number=reminders.from_number or default_from,
            quiet=QuietHours.parse(reminders.quiet_start, reminders.quiet_end),
            confirm_in_ehr=reminders.confirm_in_ehr,
            reply_window_days=reminders.reply_window_days,
            delivery_wait=reminders.delivery_wait,
            clinics=tuple(clinics),
        )

    def with_sender(self, number: str) -> ReminderPolicy:
        """The same policy texting from ``number`` for every clinic (the demo's simulator number)."""
        clinics = tuple((key, {**data, "from_number": None}) for key, data in self.clinics)
        return self.model_copy(update={"from_number": number, "clinics": clinics})

    def _configured(self, location_id: str | None, location_name: str | None) -> tuple[str, Mapping[str, Any]] | None:
        wanted = {_norm(location_id), _norm(location_name)} - {""}
        if location_name and "," in location_name:
            wanted |= {_norm(part) for part in location_name.split(",")} - {""}
        for key, data in self.clinics:
            names = {_norm(key), _norm(data.get("name"))} | {_norm(m) for m in data.get("match") or ()}
            if wanted & (names - {""}):
                return key, data
        return None

    def clinic_for(
        self, location_id: str | None, location_name: str | None, location_address: str | None = None
    ) -> Clinic:
        """The clinic of an appointment at this EHR location (configured, else the defaults)."""
        found = self._configured(location_id, location_name)
        key, data = found if found is not None else ((location_name or location_id or "clinic"), {})
        name = data.get("name") or location_name or key
        return Clinic(
            key=key,
            name=name,
            location=data.get("location") or location_address or name,
            tz_name=data.get("timezone") or self.tz_name,
            from_number=data.get("from_number") or self.from_number,
            template=data.get("template") or self.template,
            short_template=data.get("short_template") or data.get("template") or self.short_template,
            quiet=self.quiet,
        )

    def clinic_matches(self, wanted: str, clinic: Clinic, location_id: str | None, location_name: str | None) -> bool:
        """``--clinic NAME``: the config key, the clinic's name or the EHR location's name or id
        (ignoring case); a part of the location's name will do too."""
        w = _norm(wanted)
        if not w:
            return True
        exact = {_norm(clinic.key), _norm(clinic.name), _norm(location_id), _norm(location_name)}
        return w in exact or w in _norm(location_name) or w in _norm(clinic.name)


# --------------------------------------------------------------------------- what to remind
class DueAppointment(BaseModel):
    """A booked appointment found for a day, with what the reminder needs beyond the view."""

    model_config = ConfigDict(frozen=True)

    appointment: Appointment
    patient_id: str
    location_id: str | None = None
    location_name: str | None = None
    location_address: str | None = None

    @property
    def id(self) -> str:
        return self.appointment.id


def mobile_number(patient: PatientSummary) -> PhoneNumber | None:
    """The patient's current mobile number (lowest rank first), or None: landlines get no texts."""
    mobiles = [p for p in patient.phones if p.use is PhoneUse.MOBILE and p.current and p.number.valid]
    if not mobiles:
        return None
    mobiles.sort(key=lambda p: (p.rank if p.rank is not None else 1_000))
    return mobiles[0].number


class SkipReason(StrEnum):
    OPTED_OUT = "opted-out"
    NO_MOBILE = "no-mobile"
    QUIET_HOURS = "quiet-hours"  # a dry run: would wait for the end of quiet hours
    ALREADY_SENT = "already-sent"
    TOO_LATE = "too-late"  # quiet hours last past the appointment's start
    NOT_BOOKED = "not-booked"
    NO_TIME = "no-time"
    INACTIVE = "inactive"  # the patient record is inactive or deceased
    IN_PROGRESS = "in-progress"  # another run holds this reminder right now
    FAILED_EARLIER = "failed-earlier"  # a previous run gave it up; not tried again

    @property
    def label(self) -> str:
        return {
            SkipReason.OPTED_OUT: "opted out (replied STOP)",
            SkipReason.NO_MOBILE: "no mobile number",
            SkipReason.QUIET_HOURS: "quiet hours",
            SkipReason.ALREADY_SENT: "already sent",
            SkipReason.TOO_LATE: "too late (quiet hours until after the appointment)",
            SkipReason.NOT_BOOKED: "not booked",
            SkipReason.NO_TIME: "no start time",
            SkipReason.INACTIVE: "patient record inactive or deceased",
            SkipReason.IN_PROGRESS: "being sent by another run",
            SkipReason.FAILED_EARLIER: "failed in an earlier run (not retried)",
        }[self]


class Decision(BaseModel):
    """What to do about one appointment now: send, defer to ``send_at``, or skip for ``reason``."""

    model_config = ConfigDict(frozen=True)

    action: Literal["send", "defer", "skip"]
    reason: SkipReason | None = None
    day: date | None = None
    send_at: datetime | None = None  # UTC
    text: SmsText | None = None
    to: PhoneNumber | None = None

    def __repr__(self) -> str:
        return f"Decision(action={self.action!r}, reason={self.reason!r}, day={self.day!r})"

    __str__ = __repr__


def decide(
    appointment: Appointment,
    patient: PatientSummary,
    clinic: Clinic,
    now: datetime,
    *,
    opted_out: bool = False,
    already_sent: bool = False,
) -> Decision:
    """Whether and when to text this patient about this appointment. Pure."""
    now = _aware(now).astimezone(UTC)
    if appointment.status != "booked":
        return Decision(action="skip", reason=SkipReason.NOT_BOOKED)
    if appointment.start is None:
        return Decision(action="skip", reason=SkipReason.NO_TIME)
    start = _aware(appointment.start)
    day = appointment_day(start, clinic)
    if not patient.active or patient.deceased:
        return Decision(action="skip", reason=SkipReason.INACTIVE, day=day)
    to = mobile_number(patient)
    if to is None:
        return Decision(action="skip", reason=SkipReason.NO_MOBILE, day=day)
    if opted_out:
        return Decision(action="skip", reason=SkipReason.OPTED_OUT, day=day)
    if already_sent:
        return Decision(action="skip", reason=SkipReason.ALREADY_SENT, day=day)
    send_at = clinic.quiet.next_allowed(clinic.local(now, start)).astimezone(UTC)
    if start <= send_at:
        return Decision(action="skip", reason=SkipReason.TOO_LATE, day=day)
    text = render_reminder(start, clinic)
    if send_at > now:
        return Decision(action="defer", reason=SkipReason.QUIET_HOURS, day=day, send_at=send_at, text=text, to=to)
    return Decision(action="send", day=day, send_at=now, text=text, to=to)


# --------------------------------------------------------------------------- results
class SendOutcome(StrEnum):
    SENT = "sent"  # Twilio accepted it
    DEFERRED = "deferred"  # waiting in the outbox for quiet hours to end
    SKIPPED = "skipped"
    FAILED = "failed"  # given up: Twilio refused it, or it was not delivered
    RETRY = "retry"  # not sent this time (Twilio busy or unreachable); the outbox tries again
    WOULD_SEND = "would-send"  # a dry run


class SendResult(BaseModel):
    """What became of one appointment's reminder. PHI-free: ids, statuses and Twilio's reasons."""

    model_config = ConfigDict(frozen=True)

    appointment_id: str
    patient_id: str | None = None
    day: date | None = None
    outcome: SendOutcome
    reason: SkipReason | None = None
    detail: str | None = None  # a Twilio/EHR error title, or a note
    sid: str | None = None
    status: str | None = None  # the latest delivery status (queued, sent, delivered, undelivered…)
    error_code: int | None = None
    send_at: datetime | None = None
    segments: int | None = None
    clinic: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in (SendOutcome.FAILED, SendOutcome.RETRY)


class AppointmentRef(BaseModel):
    """An appointment a reminder was about (from the reminder's own records, not the EHR)."""

    model_config = ConfigDict(frozen=True)

    appointment_id: str
    patient_id: str | None = None
    day: date
    clinic: str | None = None
    start: datetime | None = None


class ReplyKind(StrEnum):
    CONFIRMED = "confirmed"  # C (or key 1): the patient will come
    RESCHEDULE = "reschedule"  # R (or key 2): on the "to call" list
    OPTED_OUT = "opted-out"  # STOP: no more texts to this number
    OPTED_IN = "opted-in"  # START: texts again
    HELP = "help"  # HELP: Twilio answers it; nothing to do
    MESSAGE = "message"  # anything else: for an agent to read


class ReplyOutcome(BaseModel):
    """What a patient's reply (text or key press) did, for the console to show.

    ``number`` and ``text`` are PHI: they are for the screen and never appear in the ``repr``.
    """

    model_config = ConfigDict(frozen=True)

    kind: ReplyKind
    channel: Literal["sms", "voice"] = "sms"
    sid: str  # the incoming message's SID, or the confirmation call's
    appointments: tuple[AppointmentRef, ...] = ()
    confirmed_in_ehr: tuple[str, ...] = ()  # appointment ids the EHR now shows as accepted
    not_confirmed: tuple[str, ...] = ()  # the EHR did not (may not) record the confirmation
    to_call: tuple[str, ...] = ()  # appointment ids put on the "to call" list
    needs_agent: bool = False
    note: str = ""  # one PHI-free line for the console
    number: PhoneNumber | None = None
    text: str | None = None

    @property
    def matched(self) -> bool:
        """Whether the reply could be tied to a reminder pa-tui sent."""
        return bool(self.appointments)

    @property
    def patient_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.patient_id for a in self.appointments if a.patient_id))

    def __repr__(self) -> str:
        ids = [a.appointment_id for a in self.appointments]
        return f"ReplyOutcome(kind={self.kind.value!r}, channel={self.channel!r}, sid={self.sid!r}, appointments={ids})"

    __str__ = __repr__


class DeliveryOutcome(BaseModel):
    """A delivery report for a reminder pa-tui sent, after it was recorded."""

    model_config = ConfigDict(frozen=True)

    appointment_id: str
    patient_id: str | None = None
    day: date
    sid: str
    status: str
    error_code: int | None = None
    error: str | None = None  # Twilio's reason, readable
    final: bool = False
    failed: bool = False
    to_call: bool = False  # put on the "to call" list (not delivered)


class CallbackEntry(BaseModel):
    """One patient on the "to call" list."""

    model_config = ConfigDict(frozen=True)

    item_id: int
    appointment_id: str
    patient_id: str | None = None
    day: date
    reason: Literal["reschedule", "undelivered", "reply", "unconfirmed"] | str
    source: Literal["sms", "voice", "delivery", "agent"] | str = "sms"
    clinic: str | None = None
    at: datetime


class BatchSummary(BaseModel):
    """A whole ``pa-tui remind`` run."""

    model_config = ConfigDict(frozen=True)

    day: date
    clinic: str | None = None
    dry_run: bool = False
    found: int = 0
    results: tuple[SendResult, ...] = ()
    earlier: tuple[SendResult, ...] = ()  # reminders owed from earlier runs, sent in this one
    aborted: str | None = None  # why the run stopped early (bad credentials…)

    def _all(self) -> Sequence[SendResult]:
        return (*self.results, *self.earlier)

    def count(self, outcome: SendOutcome, results: Iterable[SendResult] | None = None) -> int:
        return sum(1 for r in (self.results if results is None else results) if r.outcome is outcome)

    @property
    def sent(self) -> int:
        return self.count(SendOutcome.SENT)

    @property
    def failed(self) -> list[SendResult]:
        return [r for r in self._all() if r.failed]

    @property
    def skipped(self) -> dict[SkipReason, int]:
        out: dict[SkipReason, int] = {}
        for r in self.results:
            if r.outcome is SendOutcome.SKIPPED and r.reason is not None:
                out[r.reason] = out.get(r.reason, 0) + 1
        return out

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.aborted else 0
