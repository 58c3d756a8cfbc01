"""pa_tui.reminders.model (pure) and the [reminders] settings: templates without clinical detail,
time zones, GSM-7 and segments, quiet hours, decisions, PHI-free reprs, summaries."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from pa_tui.config import ConfigError, ReminderSettings, Settings, load_settings
from pa_tui.domain.patients import PatientPhone, PatientSummary, PhoneUse
from pa_tui.domain.phones import PhoneNumber, parse_phone
from pa_tui.domain.records import Appointment
from pa_tui.reminders.model import (
    BatchSummary,
    QuietHours,
    ReminderPolicy,
    ReplyKind,
    ReplyOutcome,
    SendOutcome,
    SendResult,
    SkipReason,
    SmsText,
    appointment_day,
    decide,
    format_date,
    format_time,
    gsm7_friendly,
    is_gsm7,
    mobile_number,
    reminder_key,
    render_reminder,
    sms_segments,
)
from pa_tui.reminders.runner import format_summary, parse_day

CHICAGO = "America/Chicago"
MOBILE = "+13125550147"


def num(text: str) -> PhoneNumber:
    n = parse_phone(text)
    assert isinstance(n, PhoneNumber)
    return n


def policy(**reminders: object) -> ReminderPolicy:
    return ReminderPolicy.from_settings(ReminderSettings(**reminders), default_from="+14155550142")


def clinical_appointment(start: datetime | None = None, status: str = "booked") -> Appointment:
    """Every clinical field filled with something that must never reach a text."""
    return Appointment(
        id="ap-1",
        status=status,
        start=start or datetime(2026, 3, 11, 15, 30, tzinfo=UTC),
        description="Follow-up: HIV viral load",
        service="Oncology infusion",
        practitioner="Dana Reyes, MD (Psychiatry)",
        location="Midtown Clinic, Chicago",
        patient_status="needs-action",
    )


def patient(*phones: PatientPhone, active: bool = True, deceased: bool = False) -> PatientSummary:
    return PatientSummary(id="pt-1", display_name="Ann Example", phones=phones, active=active, deceased=deceased)


def mobile(number: str = MOBILE, rank: int | None = 1, current: bool = True) -> PatientPhone:
    return PatientPhone(number=num(number), use=PhoneUse.MOBILE, rank=rank, current=current)


# --------------------------------------------------------------------------- templates
def test_template_carries_no_clinical_detail() -> None:
    p = policy(timezone=CHICAGO)
    clinic = p.clinic_for("loc-chicago-il", "Midtown Clinic, Chicago", "2462 Washington Blvd, Suite 225")
    appointment = clinical_appointment()
    text = render_reminder(appointment.start, clinic)  # type: ignore[arg-type]
    body = text.body
    for clinical in ("HIV", "viral", "Oncology", "infusion", "Psychiatry", "Dana Reyes", "Follow-up", "needs-action"):
        assert clinical.lower() not in body.lower()
    assert body.startswith("Midtown Clinic, Chicago reminder: appointment Wed Mar 11 at 10:30 AM, 2462 Washington")
    assert body.endswith("Reply C to confirm, R to reschedule, STOP to opt out.")
    assert text.segments == 1 and text.encoding == "GSM-7" and text.chars <= 160
    # decide() renders the same text and never looks at the clinical fields either
    d = decide(appointment, patient(mobile()), clinic, datetime(2026, 3, 10, 19, tzinfo=UTC))
    assert d.action == "send" and d.text == text


@pytest.mark.parametrize(
    "template",
    [
        "{clinic}: {practitioner} at {time}. Reply STOP to opt out.",
        "{clinic}: {service} on {date}. Reply STOP to opt out.",
        "{clinic.__class__} STOP",
        "{time!r} STOP",
        "{date:%Y} STOP",
    ],
)
def test_settings_refuse_templates_with_other_fields(template: str) -> None:
    with pytest.raises(ValueError, match="only use"):
        ReminderSettings(template=template)
    with pytest.raises(ValueError, match="only use"):
        ReminderPolicy(template=template, short_template=template).clinic_for(None, "X")  # policy accepts…
        render_reminder(datetime(2026, 3, 11, tzinfo=UTC), ReminderPolicy(template=template, short_template=template)
                        .clinic_for(None, "X"))  # …rendering refuses


def test_template_must_offer_opt_out(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[reminders]\ntemplate = "{clinic}: see you {date} at {time}."\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "reminders.template" in str(err.value) and "STOP" in str(err.value)


def test_reminder_settings_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[reminders]\n"
        "quiet_start = 21:00:00\n"
        'quiet_end = "7:30"\n'
        'timezone = "America/New_York"\n'
        'from_number = "+1 415 555 0142"\n'
        '[reminders.clinics."Midtown Clinic, Chicago"]\n'
        'name = "Midtown Clinic"\n'
        'location = "2462 Washington Blvd"\n'
        'timezone = "America/Chicago"\n'
        'match = ["loc-chicago-il"]\n'
    )
    s = load_settings(path).reminders
    assert (s.quiet_start, s.quiet_end, s.timezone) == ("21:00", "07:30", "America/New_York")
    clinic = s.clinics["Midtown Clinic, Chicago"]
    assert clinic.name == "Midtown Clinic" and clinic.match == ["loc-chicago-il"]
    p = ReminderPolicy.from_settings(s)
    assert p.quiet == QuietHours(start=time(21, 0), end=time(7, 30))
    found = p.clinic_for("loc-chicago-il", None)
    assert (found.name, found.location, found.tz_name, found.from_number) == (
        "Midtown Clinic", "2462 Washington Blvd", CHICAGO, "+1 415 555 0142"
    )
    other = p.clinic_for("loc-x", "Elsewhere Clinic", "1 Main St")
    assert (other.name, other.location, other.tz_name) == ("Elsewhere Clinic", "1 Main St", "America/New_York")


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ('timezone = "Mars/Olympus"', "reminders.timezone", "IANA time zone"),
        ('quiet_start = "25:00"', "reminders.quiet_start", "HH:MM"),
        ('from_number = "4155550142"', "reminders.from_number", "international form"),
        ("reply_window_days = 0", "reminders.reply_window_days", "at least 1"),
        ('templat = "x"', "reminders.templat", "did you mean 'template'"),
    ],
)
def test_reminder_settings_errors_name_the_key(tmp_path: Path, toml: str, key: str, expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[reminders]\n{toml}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert key in str(err.value) and expected in str(err.value)


def test_default_settings_keep_working() -> None:
    s = Settings()
    assert s.reminders.quiet_start == "20:00" and s.reminders.quiet_end == "08:00" and s.reminders.clinics == {}
    assert "STOP" in s.reminders.template and "{clinic}" in s.reminders.short_template


# --------------------------------------------------------------------------- time zones
def test_rendered_in_the_clinic_zone() -> None:
    start = datetime(2026, 11, 24, 19, 20, tzinfo=UTC)  # 1:20 PM in Chicago (CST), 2:20 PM in New York
    chicago = policy(timezone=CHICAGO).clinic_for(None, "Midtown Clinic")
    assert "Tue Nov 24 at 1:20 PM" in render_reminder(start, chicago).body
    new_york = policy(timezone="America/New_York").clinic_for(None, "Midtown Clinic")
    assert "Tue Nov 24 at 2:20 PM" in render_reminder(start, new_york).body
    # no zone configured: the appointment's own offset (what the EHR wrote)
    own = datetime(2026, 11, 24, 13, 20, tzinfo=timezone(timedelta(hours=-6)))
    assert "Tue Nov 24 at 1:20 PM" in render_reminder(own, policy().clinic_for(None, "Midtown")).body
    # the day of the key is the clinic's day, not UTC's
    late = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # 8:30 PM on the 24th in Chicago
    assert appointment_day(late, chicago) == date(2026, 11, 24)


def test_date_and_time_formats() -> None:
    assert format_date(datetime(2026, 3, 2)) == "Mon Mar 2"
    assert [format_time(datetime(2026, 1, 1, h, m)) for h, m in ((0, 5), (9, 0), (12, 0), (13, 20), (23, 59))] == [
        "12:05 AM", "9:00 AM", "12:00 PM", "1:20 PM", "11:59 PM"
    ]


# --------------------------------------------------------------------------- GSM-7 and segments
def test_gsm7_friendly_and_segments() -> None:
    assert gsm7_friendly("O’Hare – “Clínica” San José…") == "O'Hare - \"Clinica\" San José..."
    assert is_gsm7(gsm7_friendly("O’Hare – “Clínica” San José…"))
    assert not is_gsm7("Clinic 🙂") and gsm7_friendly("Clinic 🙂") == "Clinic 🙂"
    assert sms_segments("a" * 160) == 1 and sms_segments("a" * 161) == 2 and sms_segments("a" * 306) == 2
    assert sms_segments("[" * 80) == 1 and sms_segments("[" * 81) == 2  # extension characters count twice
    assert sms_segments("ü" * 160) == 1  # ü is in the GSM-7 basic set
    assert sms_segments("ż" * 70) == 1 and sms_segments("ż" * 71) == 2  # UCS-2
    assert SmsText.of("ż").encoding == "UCS-2"


def test_long_clinic_names_fall_back_to_the_short_template() -> None:
    clinic = policy(timezone=CHICAGO).clinic_for(
        None,
        "The Very Long Name Community Health and Wellness Center of Greater Springfield",
        "12345 Northwest Boulevard, Suite 1200",
    )
    text = render_reminder(datetime(2026, 3, 11, 15, 30, tzinfo=UTC), clinic)
    assert text.segments == 1 and "appt Wed Mar 11 10:30 AM" in text.body and "STOP" in text.body
    # a typographic name is made plain rather than sending UCS-2 (70 characters a segment)
    curly = policy(timezone=CHICAGO).clinic_for(None, "St. Mary’s – Clínica Familiar")
    assert render_reminder(datetime(2026, 3, 11, 15, 30, tzinfo=UTC), curly).encoding == "GSM-7"


# --------------------------------------------------------------------------- quiet hours
def test_quiet_hours_overnight_and_daytime() -> None:
    q = QuietHours()  # 20:00–08:00
    tz = timezone(timedelta(hours=-6))
    at = lambda h, m=0: datetime(2026, 3, 10, h, m, tzinfo=tz)  # noqa: E731
    assert [q.contains(at(h)) for h in (7, 8, 12, 19, 20, 23)] == [True, False, False, False, True, True]
    assert q.next_allowed(at(21)) == datetime(2026, 3, 11, 8, 0, tzinfo=tz)
    assert q.next_allowed(at(6, 30)) == at(8)
    assert q.next_allowed(at(12)) == at(12)
    lunch = QuietHours(start=time(12), end=time(13))
    assert lunch.contains(at(12, 30)) and not lunch.contains(at(13)) and lunch.next_allowed(at(12, 30)) == at(13)
    assert not QuietHours(start=time(8), end=time(8)).contains(at(3))


def test_decide_defers_during_quiet_hours_and_refuses_when_too_late() -> None:
    clinic = policy(timezone=CHICAGO).clinic_for(None, "Midtown Clinic")
    appointment = clinical_appointment(start=datetime(2026, 3, 11, 15, 30, tzinfo=UTC))  # 10:30 AM CDT
    night = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # 10 PM on the 10th in Chicago
    d = decide(appointment, patient(mobile()), clinic, night)
    assert d.action == "defer" and d.reason is SkipReason.QUIET_HOURS
    assert d.send_at == datetime(2026, 3, 11, 13, 0, tzinfo=UTC)  # 08:00 CDT
    early = clinical_appointment(start=datetime(2026, 3, 11, 12, 45, tzinfo=UTC))  # 7:45 AM: before quiet hours end
    assert decide(early, patient(mobile()), clinic, night).reason is SkipReason.TOO_LATE
    day = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    assert decide(appointment, patient(mobile()), clinic, day).action == "send"


def test_decide_skips() -> None:
    clinic = policy().clinic_for(None, "Midtown Clinic")
    now = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    a = clinical_appointment()
    home = PatientPhone(number=num("+13125550199"), use=PhoneUse.HOME)
    cases = [
        (decide(a, patient(home), clinic, now), SkipReason.NO_MOBILE),
        (decide(a, patient(mobile(current=False)), clinic, now), SkipReason.NO_MOBILE),
        (decide(a, patient(mobile()), clinic, now, opted_out=True), SkipReason.OPTED_OUT),
        (decide(a, patient(mobile()), clinic, now, already_sent=True), SkipReason.ALREADY_SENT),
        (decide(a, patient(mobile(), deceased=True), clinic, now), SkipReason.INACTIVE),
        (decide(clinical_appointment(status="cancelled"), patient(mobile()), clinic, now), SkipReason.NOT_BOOKED),
        (decide(a, patient(mobile()), clinic, a.start + timedelta(minutes=1)), SkipReason.TOO_LATE),  # type: ignore
    ]
    for decision, reason in cases:
        assert decision.action == "skip" and decision.reason is reason, (decision, reason)


def test_mobile_number_prefers_rank() -> None:
    p = patient(mobile("+13125550101", rank=2), mobile("+13125550102", rank=1), mobile("+13125550103", current=False))
    assert mobile_number(p) == num("+13125550102")


# --------------------------------------------------------------------------- keys, reprs, summaries
def test_keys_and_reprs_hold_no_phi() -> None:
    assert reminder_key("ap-1", date(2026, 3, 11)) == "reminder:ap-1:2026-03-11" == reminder_key("ap-1", "2026-03-11")
    text = SmsText.of("Midtown Clinic reminder: secret body")
    assert "secret" not in repr(text) and "secret" not in str(text)
    outcome = ReplyOutcome(kind=ReplyKind.MESSAGE, sid="SM" + "0" * 32, number=num(MOBILE), text="my HIV meds?")
    for shown in (repr(outcome), str(outcome)):
        assert MOBILE not in shown and "5550147" not in shown and "HIV" not in shown
    clinic = policy().clinic_for(None, "X")
    d = decide(clinical_appointment(), patient(mobile()), clinic, datetime(2026, 3, 10, 17, tzinfo=UTC))
    assert MOBILE not in repr(d) and "reminder" not in repr(d)


def test_parse_day() -> None:
    today = date(2026, 3, 10)
    assert parse_day("tomorrow", today) == date(2026, 3, 11)
    assert parse_day(" Today ", today) == today
    assert parse_day("2026-04-01", today) == date(2026, 4, 1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("next week", today)


def test_summary_lines_and_exit_code() -> None:
    r = lambda i, **kw: SendResult(appointment_id=f"ap-{i}", patient_id=f"pt-{i}", **kw)  # noqa: E731
    at13 = datetime(2026, 3, 11, 13, tzinfo=UTC)
    summary = BatchSummary(
        day=date(2026, 3, 11),
        found=6,
        results=(
            r(1, outcome=SendOutcome.SENT, sid="SM1", status="delivered"),
            r(2, outcome=SendOutcome.SENT, sid="SM2", status="sent"),
            r(3, outcome=SendOutcome.SKIPPED, reason=SkipReason.OPTED_OUT),
            r(4, outcome=SendOutcome.SKIPPED, reason=SkipReason.NO_MOBILE),
            r(5, outcome=SendOutcome.DEFERRED, reason=SkipReason.QUIET_HOURS, send_at=at13),
            r(6, outcome=SendOutcome.FAILED, detail="Twilio: the number is a landline or cannot receive texts (30006)"),
        ),
    )
    lines = format_summary(summary)
    assert lines[0] == "Reminders for Wed 2026-03-11 (all clinics): 6 booked appointments"
    assert "Sent: 2 (delivered 1, awaiting delivery report 1)" in lines
    assert any(line.startswith("Deferred: 1 (quiet hours; due from 2026-03-11 13:00 UTC") for line in lines)
    assert "Skipped: 2" in lines and "  opted out (replied STOP): 1" in lines and "  no mobile number: 1" in lines
    assert "Failed: 1" in lines and "  ap-6: Twilio: the number is a landline or cannot receive texts (30006)" in lines
    assert summary.exit_code == 1
    ok = summary.model_copy(update={"results": summary.results[:5]})
    assert ok.exit_code == 0


def test_model_does_no_io() -> None:
    code = (
        "import sys, pa_tui.reminders.model\n"
        "io = ('httpx', 'websockets', 'sqlite3', 'psycopg', 'uvicorn', 'starlette', 'keyring', 'textual')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in io)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
