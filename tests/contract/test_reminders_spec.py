"""Every Twilio request the reminders make validates against Twilio's official OpenAPI document.

The batch (message creates with a status callback, then delivery-status fetches) and the
confirmation call, recorded on their way to the simulator and checked with openapi-core:
requests against the spec (no undefined form field), responses against its schemas.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from twilio_fixtures import AC, OURS, TOKEN, Recorder, TwilioSpec, load_spec, make_simulator

from pa_tui.backends.store import SqliteStore
from pa_tui.backends.twilio import TwilioClient
from pa_tui.config import ReminderSettings
from pa_tui.domain.patients import PatientPhone, PatientSummary, PhoneUse
from pa_tui.domain.phones import PhoneNumber, parse_phone
from pa_tui.domain.records import Appointment
from pa_tui.reminders import DueAppointment, ReminderPolicy, ReminderService
from pa_tui.reminders.runner import run_batch

DAY = date(2026, 3, 11)
NOW = datetime(2026, 3, 10, 19, 0, tzinfo=UTC)
PATIENTS = ("+14085551212", "+14085551213", "+12025550143")  # the last one is the simulator's landline


def phone(text: str) -> PhoneNumber:
    n = parse_phone(text)
    assert isinstance(n, PhoneNumber)
    return n


class MemorySource:
    """Three booked appointments tomorrow at one clinic (no EHR needed to exercise Twilio)."""

    def __init__(self) -> None:
        self.due = [
            DueAppointment(
                appointment=Appointment(
                    id=f"ap-{i}", status="booked", start=datetime(2026, 3, 11, 15 + i, 0, tzinfo=UTC),
                    location="Midtown Clinic, Chicago", service="Cardiology",
                ),
                patient_id=f"pt-{i}",
                location_id="loc-chicago-il",
                location_name="Midtown Clinic, Chicago",
                location_address="2462 Washington Blvd, Suite 225",
            )
            for i in range(len(PATIENTS))
        ]
        self.patients = {
            f"pt-{i}": PatientSummary(id=f"pt-{i}", phones=(PatientPhone(number=phone(n), use=PhoneUse.MOBILE),))
            for i, n in enumerate(PATIENTS)
        }

    async def appointments_on(self, day: date) -> list[DueAppointment]:
        return list(self.due) if day == DAY else []

    async def patient(self, patient_id: str) -> PatientSummary:
        return self.patients[patient_id]


@pytest.fixture(scope="module")
def spec() -> TwilioSpec:
    return load_spec()


async def test_reminder_requests_validate_against_the_spec(spec: TwilioSpec, tmp_path: Path) -> None:
    sim = make_simulator(webhook_transport=httpx.MockTransport(lambda r: httpx.Response(204)), callback_delay=0.0)
    recorder = Recorder(httpx.ASGITransport(app=sim.app))
    client = TwilioClient(account_sid=AC, auth_token=TOKEN, base_url="http://twilio.sim", transport=recorder)
    policy = ReminderPolicy.from_settings(ReminderSettings(timezone="America/Chicago"), default_from=OURS)
    async with SqliteStore(tmp_path / "r.db") as store:
        service = ReminderService(
            store, client, policy, clock=lambda: NOW, public_base_url="https://pa.clinic.example"
        )
        source = MemorySource()
        summary = await run_batch(service, source, DAY, wait=2)
        assert summary.sent == 2 and [r.appointment_id for r in summary.failed] == ["ap-2"]
        assert summary.failed[0].error_code == 30006
        call_sid = await service.start_confirmation_call(source.due[0].appointment, source.patients["pt-0"])
        assert call_sid.startswith("CA")
    await client.aclose()
    await sim.aclose()

    kinds = [(x.request.method, x.request.url.path.rsplit("/", 1)[-1]) for x in recorder.exchanges]
    assert kinds.count(("POST", "Messages.json")) == 3 and kinds.count(("POST", "Calls.json")) == 1
    assert sum(1 for m, p in kinds if m == "GET" and p.startswith("SM")) >= 3
    for exchange in recorder.exchanges:
        assert spec.request_errors(exchange.request) == [], exchange.request.url.path
        assert exchange.response.is_success
        assert spec.response_errors(exchange.request, exchange.response) == [], exchange.request.url.path
    created = [x for x in recorder.exchanges if x.request.url.path.endswith("/Messages.json")]
    form = dict(httpx.QueryParams(created[0].request.content.decode()))
    assert set(form) == {"To", "From", "Body", "StatusCallback"}
    assert form["StatusCallback"] == "https://pa.clinic.example/twilio/status"
    assert "Cardiology" not in form["Body"] and "10:00 AM" in form["Body"]  # 15:00 UTC, in Chicago (CDT)
    call = next(x for x in recorder.exchanges if x.request.url.path.endswith("/Calls.json"))
    call_form = dict(httpx.QueryParams(call.request.content.decode()))
    assert call_form["Url"] == "https://pa.clinic.example/app_confirm"
    assert call_form["StatusCallback"] == "https://pa.clinic.example/twilio/call-status"
