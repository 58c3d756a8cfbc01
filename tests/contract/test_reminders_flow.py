"""Reminders end to end over loopback: the FHIR sandbox and the Twilio simulator (SimulatorHost), the
inbound listener receiving the simulator's signed webhooks, a SQLite Store.

Sends once per appointment and day (also after a crash mid-batch), STOP honoured before anything is
attempted, quiet hours deferring through the outbox, delivery reports, replies C / R / other,
confirmation-call key presses, and no clinical detail in any text.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio_fixtures import eventually

from pa_tui.backends.base import Unavailable
from pa_tui.backends.fhir import FhirClient, FhirEhr
from pa_tui.backends.inbound import (
    APP_CONFIRM_PATH,
    INBOUND_SMS_PATH,
    ConfirmationDigits,
    DeliveryStatus,
    InboundListener,
    InboundSms,
)
from pa_tui.backends.store import SqliteStore
from pa_tui.backends.twilio import SIGNATURE_HEADER, MessageStatus, TwilioClient, compute_signature
from pa_tui.config import ReminderSettings
from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population
from pa_tui.demo.twilio_sim import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_NUMBER, TwilioSimulator
from pa_tui.domain.outbox import OutboxStatus
from pa_tui.domain.patients import PatientSummary
from pa_tui.domain.records import Section
from pa_tui.reminders import (
    KIND_CONFIRM,
    DueAppointment,
    ReminderPolicy,
    ReminderService,
    ReplyKind,
    SendOutcome,
    SkipReason,
    mobile_number,
    reminder_key,
)
from pa_tui.reminders.runner import format_summary, run_batch
from pa_tui.reminders.source import FhirAppointmentSource

AS_OF = date(2026, 3, 10)
DAY = AS_OF + timedelta(days=1)
NOON = datetime(2026, 3, 10, 19, 0, tzinfo=UTC)  # daytime in every US zone (09:00 in Honolulu)
NIGHT = datetime(2026, 3, 11, 6, 0, tzinfo=UTC)  # quiet hours in every US zone (20:00 in Honolulu)
OURS = DEFAULT_NUMBER


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Switch:
    """Forwards to the current test's Twilio simulator, so one host serves the module."""

    target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


@dataclass
class World:
    population: Population
    sandbox: FhirSandbox
    host: SimulatorHost
    switch: Switch

    @property
    def fhir_url(self) -> str:
        return self.sandbox.url(self.host.url("fhir"))


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    population = Population.generate(300, seed=7, as_of=AS_OF)
    sandbox = FhirSandbox(population)
    switch = Switch()
    host = SimulatorHost()
    host.add("fhir", sandbox.app)
    host.add("twilio", switch)
    host.start()
    try:
        yield World(population, sandbox, host, switch)
    finally:
        host.stop()


@dataclass
class Env:
    world: World
    sim: TwilioSimulator
    store: SqliteStore
    ehr: FhirEhr
    twilio: TwilioClient
    clock: Clock
    expected: dict[str, tuple[str, PatientSummary]]
    listener: InboundListener | None = None

    @property
    def host(self) -> SimulatorHost:
        return self.world.host

    def service(self, *, twilio: TwilioClient | None = None, listen: bool = False, **settings: Any) -> ReminderService:
        policy = ReminderPolicy.from_settings(ReminderSettings(**settings), default_from=OURS)
        return ReminderService(
            self.store,
            twilio or self.twilio,
            policy,
            ehr=self.ehr,
            clock=self.clock,
            public_base_url=self.listener.url if listen and self.listener else None,
        )

    @property
    def source(self) -> FhirAppointmentSource:
        return FhirAppointmentSource(self.ehr)

    async def batch(self, service: ReminderService | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("wait", 0)
        return await run_batch(service or self.service(), self.source, DAY, **kwargs)

    async def listen(self) -> InboundListener:
        self.listener = InboundListener(
            port=0, twilio_auth_token=self.sim.auth_token, dialpad_secret=None, endpoint_file=False
        )
        await self.listener.start()
        return self.listener

    async def fact(self, kind: type, timeout: float = 5.0) -> Any:
        assert self.listener is not None
        while True:
            fact = await asyncio.wait_for(self.listener.queue.get(), timeout)
            if isinstance(fact, kind):
                return fact

    async def reply(self, number: str, body: str) -> InboundSms:
        assert self.listener is not None
        result = await self.host.acall(self.sim.reply(number, body, self.listener.url + INBOUND_SMS_PATH))
        assert result.status_code == 200, result
        return await self.fact(InboundSms)

    def outbound(self) -> Counter[str]:
        return Counter(m.to for m in self.sim.outbound)


class KeepOpen(httpx.AsyncBaseTransport):
    """The simulator's webhooks still go over loopback HTTP, through one connection pool instead of a new
    client (and TLS context) per webhook, which would stall the simulators' loop for every callback."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:  # the simulator closes its client after each webhook: keep the pool
        pass


@pytest.fixture
async def env(world: World, tmp_path: Path, _expected: dict[str, tuple[str, PatientSummary]]) -> AsyncIterator[Env]:
    sim = TwilioSimulator(numbers=(OURS,), callback_delay=0.005, seed=11, webhook_transport=KeepOpen())
    world.switch.target = sim.app
    store = SqliteStore(tmp_path / "reminders.db")
    await store.open()
    ehr = FhirEhr(FhirClient(world.fhir_url, backoff=0.0, max_backoff=0.0), today=AS_OF)
    twilio = TwilioClient(
        account_sid=DEFAULT_ACCOUNT_SID, auth_token=DEFAULT_AUTH_TOKEN, base_url=world.host.url("twilio")
    )
    e = Env(world, sim, store, ehr, twilio, Clock(NOON), _expected)
    try:
        yield e
    finally:
        if e.listener is not None:
            await e.listener.stop()
        await world.host.acall(sim.aclose())
        await twilio.aclose()
        await ehr.aclose()
        await store.aclose()


@pytest.fixture(scope="module")
def _expected(world: World) -> dict[str, tuple[str, PatientSummary]]:
    async def compute() -> dict[str, tuple[str, PatientSummary]]:
        ehr = FhirEhr(FhirClient(world.fhir_url), today=AS_OF)
        out = {}
        try:
            for due in await FhirAppointmentSource(ehr).appointments_on(DAY):
                patient = await ehr.patient(due.patient_id)
                number = mobile_number(patient)
                if number is not None and patient.active and not patient.deceased:
                    out[due.id] = (number.e164, patient)
        finally:
            await ehr.aclose()
        return out

    out = asyncio.run(compute())
    assert len(out) >= 6, "the population should have reminders to send tomorrow"
    return out


async def expected(env: Env) -> dict[str, tuple[str, PatientSummary]]:
    """Appointment id → (mobile, patient) for every booked appointment on DAY that should be texted."""
    return env.expected


def unique_numbers(exp: dict[str, tuple[str, PatientSummary]]) -> list[tuple[str, str]]:
    counts = Counter(n for n, _ in exp.values())
    return [(a, n) for a, (n, _) in exp.items() if counts[n] == 1]


# --------------------------------------------------------------------------- batches
async def test_batch_sends_each_reminder_once_and_records_it(env: Env) -> None:
    exp = await expected(env)
    summary = await env.batch()
    assert summary.exit_code == 0 and summary.sent == len(exp)
    assert env.outbound() == Counter(n for n, _ in exp.values())
    for appointment_id in exp:
        item = await env.store.outbox_item(reminder_key(appointment_id, DAY))
        assert item is not None and item.status is OutboxStatus.DONE and item.remote_id.startswith("SM")
        assert await env.store.reminder_sent(appointment_id, DAY)
    # everyone texted from the clinic's number, with one segment and nothing but GSM-7
    assert {m.from_ for m in env.sim.outbound} == {OURS}
    assert all(len(m.body) <= 160 for m in env.sim.outbound)

    again = await env.batch()
    assert again.sent == 0 and again.skipped[SkipReason.ALREADY_SENT] == len(exp)
    assert env.outbound() == Counter(n for n, _ in exp.values())  # nothing sent twice


class Killed(BaseException):
    """The process dying: not an Exception, so nothing on the way up handles it."""


class KillAfter(httpx.AsyncBaseTransport):
    """Forwards to the network; dies right after Twilio accepted the ``n``-th message (before pa-tui heard)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sent = 0
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/Messages.json"):
            await response.aread()
            self.sent += 1
            if self.sent == self.n:
                raise Killed()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_crash_mid_batch_then_reruns_send_nothing_twice(env: Env) -> None:
    exp = await expected(env)
    n = 3
    dying = TwilioClient(
        account_sid=DEFAULT_ACCOUNT_SID, auth_token=DEFAULT_AUTH_TOKEN, base_url=env.host.url("twilio"),
        transport=KillAfter(n),
    )
    try:
        with pytest.raises(Killed):
            await env.batch(env.service(twilio=dying))
    finally:
        await dying.aclose()
    assert sum(env.outbound().values()) == n

    # Re-run at once: the reminder that was in flight is still leased to the dead run; the rest go.
    rerun = await env.batch()
    assert rerun.exit_code == 0 and rerun.sent == len(exp) - n
    assert env.outbound() == Counter(num for num, _ in exp.values())

    # Later (the lease has run out) the in-flight one is settled without a second text.
    env.clock.now = NOON + timedelta(minutes=5)
    later = await env.batch()
    assert later.sent == 0 and later.skipped[SkipReason.ALREADY_SENT] == len(exp)
    assert env.outbound() == Counter(num for num, _ in exp.values())
    for appointment_id in exp:
        item = await env.store.outbox_item(reminder_key(appointment_id, DAY))
        assert item is not None and item.status is OutboxStatus.DONE


async def test_texts_carry_no_clinical_detail(env: Env) -> None:
    await env.batch()
    by_sid = {m.sid: m.body for m in env.sim.outbound}
    checked = 0
    for due in await env.source.appointments_on(DAY):
        item = await env.store.outbox_item(reminder_key(due.id, DAY))
        if item is None or item.remote_id not in by_sid:
            continue
        body = by_sid[item.remote_id].lower()
        resource = await env.ehr.client.read("Appointment", due.id)
        clinical = [due.appointment.practitioner, due.appointment.service, due.appointment.description]
        clinical += [c.get("text") for c in resource.get("reasonCode", [])]
        clinical += [c.get("text") for c in resource.get("specialty", [])]
        clinical += [c.get("text") for c in resource.get("serviceType", [])]
        for text in filter(None, clinical):
            assert text.lower() not in body, (due.id, text)
        name = (await env.ehr.patient(due.patient_id)).display_name.lower()
        assert name not in body
        checked += 1
    assert checked >= 6


# --------------------------------------------------------------------------- opt-outs
async def test_stop_is_honoured_and_start_undoes_it(env: Env) -> None:
    exp = await expected(env)
    await env.listen()
    service = env.service()
    appointment_id, number = unique_numbers(exp)[0]

    stop = await env.reply(number, "Stop")
    assert stop.keyword == "STOP"
    outcome = await service.handle_reply(stop)
    assert outcome.kind is ReplyKind.OPTED_OUT and await env.store.is_opted_out(number)

    summary = await env.batch(service)
    result = next(r for r in summary.results if r.appointment_id == appointment_id)
    assert result.outcome is SendOutcome.SKIPPED and result.reason is SkipReason.OPTED_OUT
    assert number not in env.outbound(), "no send to an opted-out number was even attempted"
    assert not any(status == 400 for _, _, status in env.sim.requests)
    assert summary.sent == len(exp) - 1

    start = await env.reply(number, "START")
    assert (await service.handle_reply(start)).kind is ReplyKind.OPTED_IN
    assert not await env.store.is_opted_out(number)


async def test_an_opt_out_only_twilio_knew_of_is_learnt(env: Env) -> None:
    exp = await expected(env)
    appointment_id, number = unique_numbers(exp)[0]
    env.sim.opt_out(number)  # a STOP Twilio handled while no console was listening
    summary = await env.batch()
    result = next(r for r in summary.results if r.appointment_id == appointment_id)
    assert result.outcome is SendOutcome.SKIPPED and result.reason is SkipReason.OPTED_OUT
    assert summary.exit_code == 0 and await env.store.is_opted_out(number)
    assert not await env.store.reminder_sent(appointment_id, DAY)


# --------------------------------------------------------------------------- quiet hours
async def test_quiet_hours_defer_through_the_outbox(env: Env) -> None:
    exp = await expected(env)
    env.clock.now = NIGHT
    dry = await env.batch(dry_run=True)
    quiet = [r for r in dry.results if r.reason is SkipReason.QUIET_HOURS]
    assert quiet and all(r.send_at is not None and r.send_at > NIGHT for r in quiet)
    assert any("quiet hours: refused now; would be sent at" in line for line in format_summary(dry))
    assert await env.store.outbox_counts() == {"pending": 0, "done": 0, "dead": 0}

    summary = await env.batch()
    assert summary.sent == 0 and sum(env.outbound().values()) == 0
    deferred = [r for r in summary.results if r.outcome is SendOutcome.DEFERRED]
    too_late = [r for r in summary.results if r.reason is SkipReason.TOO_LATE]
    assert len(deferred) + len(too_late) == len(exp) and deferred
    for r in deferred:  # held until 08:00 at the clinic
        item = await env.store.outbox_item(reminder_key(r.appointment_id, DAY))
        assert item is not None and item.next_try == r.send_at and r.send_at is not None
        clinic_zone = datetime.fromisoformat(item.payload["start"]).tzinfo  # the clinic's offset, as the EHR wrote it
        local = r.send_at.astimezone(clinic_zone)
        assert (local.hour, local.minute) == (8, 0)

    # At the first clinic's 08:00, exactly the reminders due by then go, once each.
    first = min(r.send_at for r in deferred if r.send_at)
    env.clock.now = first
    sent = await env.service().drain()
    due_now = {r.appointment_id for r in deferred if r.send_at and r.send_at <= first}
    assert {k.split(":")[1] for k, r in sent.items() if r.outcome is SendOutcome.SENT} == due_now
    assert sum(env.outbound().values()) == len(due_now)


async def test_a_reminder_due_by_day_waits_if_quiet_hours_begin_before_it_goes(env: Env) -> None:
    exp = await expected(env)
    service = env.service()
    due = next(d for d in await env.source.appointments_on(DAY) if d.id in exp)
    scheduled = await service.schedule(due, exp[due.id][1])
    assert scheduled.due_now
    env.clock.now = NIGHT  # the console was busy until the evening
    results = await service.drain()
    result = results[reminder_key(due.id, DAY)]
    assert result.outcome is SendOutcome.DEFERRED and sum(env.outbound().values()) == 0
    item = await env.store.outbox_item(reminder_key(due.id, DAY))
    assert item is not None and item.status is OutboxStatus.PENDING and item.next_try == result.send_at


# --------------------------------------------------------------------------- delivery reports
async def test_status_callbacks_update_the_store_and_undelivered_goes_on_the_call_list(env: Env) -> None:
    exp = await expected(env)
    await env.listen()
    service = env.service(listen=True)
    failing, number = unique_numbers(exp)[0]
    env.sim.set_fail_numbers({number: 30006})
    summary = await env.batch(service)
    assert summary.sent == len(exp)
    finals: dict[str, Any] = {}
    while len(finals) < len(exp):
        status = await env.fact(DeliveryStatus)
        outcome = await service.handle_delivery(status)
        if outcome is not None and outcome.final:
            finals[outcome.appointment_id] = outcome
    bad = finals[failing]
    assert bad.failed and bad.status == "undelivered" and bad.to_call
    assert bad.error == "Twilio: the number is a landline or cannot receive texts (30006)"
    assert not await env.store.reminder_sent(failing, DAY)  # undelivered: not counted as sent …
    assert (await env.store.outbox_item(reminder_key(failing, DAY))).status is OutboxStatus.DONE  # … nor re-sent
    for appointment_id, outcome in finals.items():
        if appointment_id != failing:
            assert outcome.status == "delivered" and await env.store.reminder_sent(appointment_id, DAY)
    calls = await service.to_call_list()
    assert [(c.appointment_id, c.reason) for c in calls] == [(failing, "undelivered")]
    # a late, out-of-order "sent" never overwrites "delivered"
    ok = next(o for a, o in finals.items() if a != failing)
    assert await service.handle_delivery(DeliveryStatus(message_sid=ok.sid, status=MessageStatus.SENT)) is None
    assert await service.handle_delivery(DeliveryStatus(message_sid="SM" + "f" * 32, status=MessageStatus.SENT)) is None


async def test_polling_reports_failures_with_twilio_reasons(env: Env) -> None:
    exp = await expected(env)
    failing, number = unique_numbers(exp)[0]
    env.sim.set_fail_numbers({number: 30006})
    summary = await env.batch(wait=5)
    assert summary.exit_code == 1
    (failed,) = summary.failed
    assert failed.appointment_id == failing and failed.error_code == 30006
    assert "landline" in (failed.detail or "")
    assert all(r.status == "delivered" for r in summary.results if r.outcome is SendOutcome.SENT)


# --------------------------------------------------------------------------- replies
async def test_replies_confirm_reschedule_and_other_text(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    exp = await expected(env)
    await env.listen()
    service = env.service()
    await env.batch(service)
    (a, a_number), (b, b_number), (c, c_number) = unique_numbers(exp)[:3]

    confirmed = await service.handle_reply(await env.reply(a_number, "c"))
    assert confirmed.kind is ReplyKind.CONFIRMED and [r.appointment_id for r in confirmed.appointments] == [a]
    assert confirmed.confirmed_in_ehr == (a,) and not confirmed.needs_agent and "EHR" in confirmed.note
    resource = await env.ehr.client.read("Appointment", a)
    patient_part = next(p for p in resource["participant"] if p["actor"]["reference"].startswith("Patient/"))
    assert patient_part["status"] == "accepted"
    assert await service.last_reply(a, DAY) is ReplyKind.CONFIRMED

    reschedule = await service.handle_reply(await env.reply(b_number, "R"))
    assert reschedule.kind is ReplyKind.RESCHEDULE and reschedule.to_call == (b,) and reschedule.needs_agent
    calls = await service.to_call_list()
    assert [(e.appointment_id, e.reason, e.patient_id) for e in calls] == [(b, "reschedule", exp[b][1].id)]
    await service.call_done(calls[0])
    assert await service.to_call_list() == []

    question = "Can I bring my daughter? Also my HIV results?"
    other = await service.handle_reply(await env.reply(c_number, question))
    assert other.kind is ReplyKind.MESSAGE and other.text == question and other.needs_agent
    assert [r.appointment_id for r in other.appointments] == [c] and other.number.e164 == c_number

    stranger = await service.handle_reply(await env.reply("+16175550188", "C"))
    assert stranger.kind is ReplyKind.CONFIRMED and not stranger.matched and stranger.needs_agent

    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (question, "HIV", a_number, b_number, c_number, a_number[2:], exp[a][1].display_name):
        assert secret not in logged


class FakeEhr:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def confirm_appointment(self, appointment_id: str) -> bool:
        self.calls.append(appointment_id)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_confirmations_the_ehr_does_not_take(env: Env) -> None:
    exp = await expected(env)
    await env.listen()
    service = env.service()
    await env.batch(service)
    (a, a_number), (b, b_number) = unique_numbers(exp)[:2]

    service.ehr = FakeEhr([False])  # e.g. a profile without appointment updates
    refused = await service.handle_reply(await env.reply(a_number, "Confirm"))
    assert refused.kind is ReplyKind.CONFIRMED and refused.not_confirmed == (a,) and refused.needs_agent
    assert "record it in the EHR" in refused.note

    flaky = FakeEhr([Unavailable("EHR is down", "later"), True])
    service.ehr = flaky  # type: ignore[assignment]
    later = await service.handle_reply(await env.reply(b_number, "C"))
    assert later.not_confirmed == (b,) and "will be recorded" in later.note
    worker = service.worker()
    report = await worker.drain()
    assert report.sent == 1 and flaky.calls == [b, b]
    item = await env.store.outbox_item(f"confirm:{b}")
    assert item is not None and item.kind == KIND_CONFIRM and item.status is OutboxStatus.DONE


# --------------------------------------------------------------------------- the confirmation call
async def test_confirmation_call_and_key_presses(env: Env) -> None:
    exp = await expected(env)
    listener = await env.listen()
    service = env.service(listen=True)
    (a, _), (b, _) = unique_numbers(exp)[:2]
    views = {}
    for appointment_id in (a, b):
        patient = exp[appointment_id][1]
        section = await env.ehr.load_section(patient.id, Section.APPOINTMENTS)
        views[appointment_id] = (next(v for v in section if v.id == appointment_id), patient)

    async def call_and_press(appointment_id: str, digits: str) -> Any:
        view, patient = views[appointment_id]
        sid = await service.start_confirmation_call(view, patient)
        await eventually(lambda: (c := env.sim.call(sid)) is not None and c.status == "completed")
        call = env.sim.call(sid)
        assert call is not None and call.url == listener.url + APP_CONFIRM_PATH
        assert '<Gather numDigits="1"' in (call.twiml_response or "")
        params = {"CallSid": sid, "AccountSid": env.sim.account_sid, "Digits": digits, "CallStatus": "in-progress"}
        url = listener.url + APP_CONFIRM_PATH
        async with httpx.AsyncClient(trust_env=False) as http:
            response = await http.post(
                url, data=params, headers={SIGNATURE_HEADER: compute_signature(url, params, env.sim.auth_token)}
            )
        assert response.status_code == 200 and "Thank you" in response.text
        fact = await env.fact(ConfirmationDigits)
        assert fact.call_sid == sid
        return await service.handle_confirmation_digits(fact)

    one = await call_and_press(a, "1")
    assert one.kind is ReplyKind.CONFIRMED and one.channel == "voice" and one.confirmed_in_ehr == (a,)
    two = await call_and_press(b, "2")
    assert two.kind is ReplyKind.RESCHEDULE and two.to_call == (b,)
    assert [e.source for e in await service.to_call_list()] == ["voice"]
    unknown = ConfirmationDigits(call_sid="CA" + "0" * 32, digits="1")
    assert await service.handle_confirmation_digits(unknown) is None


# --------------------------------------------------------------------------- the console's key
async def test_send_one_from_the_appointments_tab(env: Env) -> None:
    exp = await expected(env)
    service = env.service()
    appointment_id, number = unique_numbers(exp)[0]
    patient = exp[appointment_id][1]
    section = await env.ehr.load_section(patient.id, Section.APPOINTMENTS)
    view = next(v for v in section if v.id == appointment_id)
    first = await service.send_one(view, patient)
    assert first.outcome is SendOutcome.SENT and first.sid and first.day == DAY
    second = await service.send_one(view, patient)
    assert second.outcome is SendOutcome.SKIPPED and second.reason is SkipReason.ALREADY_SENT
    assert env.outbound() == Counter({number: 1})
    # the batch agrees it was sent
    summary = await env.batch(service)
    assert next(r for r in summary.results if r.appointment_id == appointment_id).reason is SkipReason.ALREADY_SENT
    assert env.outbound()[number] == 1
    assert isinstance(DueAppointment(appointment=view, patient_id=patient.id), DueAppointment)
