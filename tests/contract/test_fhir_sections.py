"""FhirEhr end to end against the demo FHIR sandbox over loopback HTTP: every section of the
synthetic record, notes written back, appointment confirmations, households with guarantors,
and each vendor profile's rules on a real server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pa_tui.backends.fhir import FhirClient, FhirEhr, RecordSummary
from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population
from pa_tui.domain.notes import Note
from pa_tui.domain.phones import PhoneNumber, parse_phone
from pa_tui.domain.records import (
    Appointment,
    Billing,
    CareTeamMember,
    ClinicalNote,
    Prescription,
    Referral,
    Section,
    SectionUnavailable,
)

pytestmark = pytest.mark.skipif(
    not hasattr(Population, "records") or not hasattr(FhirSandbox, "register_client"),
    reason="the sandbox does not serve the synthetic record yet",
)


def _num(text: str) -> PhoneNumber:
    n = parse_phone(text)
    assert isinstance(n, PhoneNumber)
    return n


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.generate(400, seed=11)


@pytest.fixture(scope="module")
def served(population: Population) -> Iterator[tuple[FhirSandbox, str]]:
    sb = FhirSandbox(population)
    host = SimulatorHost()
    host.add("fhir", sb.app)
    host.start()
    try:
        yield sb, sb.url(host.url("fhir"))
    finally:
        host.stop()


@pytest.fixture
def sandbox(served: tuple[FhirSandbox, str]) -> FhirSandbox:
    sb = served[0]
    sb.down, sb.latency, sb.fail_next = False, 0.0, 0
    sb.request_log.clear()
    return sb


def _ehr(url: str, population: Population, vendor: str = "generic", **kwargs: Any) -> FhirEhr:
    client_kwargs = kwargs.pop("client_kwargs", {})
    client = FhirClient(url, vendor=vendor, backoff=0.0, max_backoff=0.0, **client_kwargs)
    return FhirEhr(client, today=population.as_of, **kwargs)


def _live(resources: list[dict]) -> list[dict]:
    return [r for r in resources if r.get("status") != "entered-in-error"]


def _with(population: Population, rtype: str, n: int = 8) -> list[str]:
    """Patients whose record holds ``rtype``."""
    out = []
    for pid in population.by_id:
        if _live(population.records(pid)[rtype]):
            out.append(pid)
            if len(out) >= n:
                break
    assert out, rtype
    return out


# --------------------------------------------------------------------------- every section, against the record
async def test_every_section_of_many_records(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    ehr = _ehr(served[1], population)
    pids = list(population.by_id)[:12]
    for pid in pids:
        views = await asyncio.gather(*(ehr.load_section(pid, s) for s in Section))
        got = dict(zip(Section, views, strict=True))
        rec = population.records(pid)
        appts = got[Section.APPOINTMENTS]
        assert isinstance(appts, tuple) and all(isinstance(a, Appointment) for a in appts)
        assert sorted(a.id for a in appts) == sorted(r["id"] for r in _live(rec["Appointment"]))
        assert all(a.practitioner and a.location for a in appts), "names from the references' displays"
        assert all(a.patient_status for a in appts)
        assert all(isinstance(r, Referral) for r in got[Section.REFERRALS])
        assert len(got[Section.REFERRALS]) == len(_live(rec["ServiceRequest"]))  # type: ignore[arg-type]
        billing = got[Section.BILLING]
        assert isinstance(billing, Billing) and billing.accounts and billing.balance is not None
        rx = got[Section.PRESCRIPTIONS]
        assert sorted(p.id for p in rx) == sorted(r["id"] for r in _live(rec["MedicationRequest"]))  # type: ignore[attr-defined]
        statuses = [p.status for p in rx]  # type: ignore[attr-defined]
        assert statuses == sorted(statuses, key=lambda s: s != "active"), "active first"
        assert all(isinstance(m, CareTeamMember) for m in got[Section.CARE_TEAM])  # type: ignore[attr-defined]
        notes = got[Section.NOTES]
        assert all(isinstance(n, ClinicalNote) for n in notes)  # type: ignore[attr-defined]
        summary = got[Section.SUMMARY]
        assert isinstance(summary, RecordSummary) and summary.patient.id == pid
        assert summary.balance == billing.balance
    await ehr.aclose()


async def test_upcoming_appointments_first_on_the_populations_day(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    ehr = _ehr(served[1], population)
    now = ehr.now()
    checked = 0
    for pid in _with(population, "Appointment", 20):
        appts = await ehr.load_section(pid, Section.APPOINTMENTS)
        starts = [a.start for a in appts]  # type: ignore[attr-defined]
        upcoming = [s for s in starts if s and s >= now]
        past = [s for s in starts if s and s < now]
        assert starts[: len(upcoming)] == sorted(upcoming) and starts[len(upcoming) :] == sorted(past, reverse=True)
        summary = await ehr.load_section(pid, Section.SUMMARY)
        booked = [a for a in appts if a.start and a.start >= now and a.status == "booked"]  # type: ignore[attr-defined]
        if booked:
            assert summary.next_appointment == booked[0]  # type: ignore[attr-defined]
            checked += 1
    await ehr.aclose()
    assert checked


async def test_referrals_billing_prescriptions_care_team_notes_detail(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    ehr = _ehr(served[1], population)
    pid = _with(population, "ServiceRequest", 1)[0]
    (ref, *_) = await ehr.load_section(pid, Section.REFERRALS)  # type: ignore[misc]
    assert ref.category == "Referral" and ref.code and ref.requester and (ref.performer or ref.reason)
    assert any("category=http%3A%2F%2Fsnomed.info%2Fsct%7C3457005" in line for line in sandbox.request_log)
    for pid in _with(population, "ExplanationOfBenefit", 5):
        billing = await ehr.load_section(pid, Section.BILLING)
        acct = population.records(pid)["Account"][0]
        amount = next(e for e in acct["extension"][0]["extension"] if e["url"] == "amount")["valueMoney"]["value"]
        assert billing.balance.value == Decimal(str(amount))  # type: ignore[union-attr]
        assert billing.coverages and billing.claims and all(c.total for c in billing.claims)  # type: ignore[union-attr]
    pid = next(p for p in _with(population, "MedicationRequest", 30) if any(
        r["status"] == "active" for r in population.records(p)["MedicationRequest"]))
    rx = await ehr.load_section(pid, Section.PRESCRIPTIONS)
    active = [p for p in rx if p.is_active]  # type: ignore[attr-defined]
    assert active and all(p.dosage and p.prescriber and p.refills is not None for p in active)
    pid = _with(population, "CareTeam", 1)[0]
    team = await ehr.load_section(pid, Section.CARE_TEAM)
    assert team and all(m.name and m.team for m in team) and any(m.phone for m in team)  # type: ignore[attr-defined]
    pid = _with(population, "DocumentReference", 1)[0]
    notes = await ehr.load_section(pid, Section.NOTES)
    dates = [n.date for n in notes]  # type: ignore[attr-defined]
    assert dates == sorted(dates, reverse=True)
    texts = {
        base64.b64decode(r["content"][0]["attachment"]["data"]).decode().strip()
        for r in _live(population.records(pid)["DocumentReference"])
    }
    assert {n.text for n in notes} <= texts | {None} and any(n.text for n in notes)  # type: ignore[attr-defined]
    await ehr.aclose()


# --------------------------------------------------------------------------- writes
async def test_notes_are_written_once_and_read_back(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    ehr = _ehr(served[1], population)
    pid = population.patients[5]["id"]
    now = datetime(2026, 1, 1, 15, 30, tzinfo=UTC)
    note = Note(id="n-e2e-1", patient_id=pid, call_id="c-1", agent_id="agent-9", text="Asked for a refill ✓",
                created_at=now, updated_at=now)
    doc_id = await ehr.write_note(note)
    assert await ehr.write_note(note) == doc_id, "a retry finds the note, it does not write it again"
    posts = [line for line in sandbox.request_log if line.startswith("POST ")]
    assert len(posts) == 1
    notes = await ehr.load_section(pid, Section.NOTES)
    mine = [n for n in notes if n.id == doc_id]  # type: ignore[attr-defined]
    assert mine and mine[0].text == "Asked for a refill ✓" and mine[0].author == "agent-9" and mine[0].type == "Note"
    await ehr.aclose()


async def test_appointment_confirmations(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    generic = _ehr(served[1], population)
    epic = _ehr(served[1], population, "epic")
    now = generic.now()
    target = None
    for pid in _with(population, "Appointment", 60):
        for a in population.records(pid)["Appointment"]:
            patient_status = next(x["status"] for x in a["participant"] if x["actor"]["reference"] == f"Patient/{pid}")
            if a["status"] == "booked" and patient_status == "needs-action" and datetime.fromisoformat(a["start"]) > now:
                target = (pid, a["id"])
                break
        if target:
            break
    assert target
    pid, aid = target
    assert await epic.confirm_appointment(aid) is False
    assert not any(line.startswith("PUT ") for line in sandbox.request_log)
    assert await generic.confirm_appointment(aid) is True
    appts = await generic.load_section(pid, Section.APPOINTMENTS)
    assert next(a for a in appts if a.id == aid).patient_status == "accepted"  # type: ignore[attr-defined]
    assert await generic.confirm_appointment(aid) is True
    assert sum(line.startswith("PUT ") for line in sandbox.request_log) == 1
    past = next(
        a["id"]
        for p in _with(population, "Appointment", 60)
        for a in population.records(p)["Appointment"]
        if a["status"] in ("fulfilled", "cancelled", "noshow")
    )
    assert await generic.confirm_appointment(past) is False
    await generic.aclose()
    await epic.aclose()


# --------------------------------------------------------------------------- households and masking
async def test_households_with_guarantors_and_minors(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    ehr = _ehr(served[1], population, minor_age=18)
    seen_minor = seen_labels = 0
    for number in population.household_numbers()[:40]:
        match = await ehr.find_by_phone(_num(number))
        assert sorted(c.id for c in match.candidates) == sorted(population.households[number])
        for c in match.candidates:
            age = c.age(population.as_of)
            if c.restricted_reason == "minor":
                assert age is not None and age < 18
                seen_minor += 1
            elif age is not None and age < 18:
                assert c.restricted_reason in ("restricted record", "very restricted record")
            seen_labels += c.relationship is not None
    await ehr.aclose()
    assert seen_minor and seen_labels
    assert any(line.startswith("GET /fhir/Account?patient=") and "%2C" in line for line in sandbox.request_log)


# --------------------------------------------------------------------------- profiles on a real server
async def test_generic_reads_the_capability_statement_once(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    ehr = _ehr(served[1], population)
    for number in population.single_caller_numbers()[:5]:
        assert (await ehr.find_by_phone(_num(number))).kind == "single"
    await ehr.aclose()
    assert sum(line.startswith("GET /fhir/metadata") for line in sandbox.request_log) == 1
    assert sum("/fhir/Patient?phone=" in line for line in sandbox.request_log) == 5


async def test_epic_identifies_with_the_form_only(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    ehr = _ehr(served[1], population, "epic")
    number = population.single_caller_numbers()[0]
    assert (await ehr.find_by_phone(_num(number))).phone_search_supported is False
    p = population.by_id[population.holders(number)[0]]
    name = p["name"][0]
    match = await ehr.search_identify(name["given"][0], name["family"], date.fromisoformat(p["birthDate"]))
    assert p["id"] in [c.id for c in match.candidates]
    match = await ehr.search_identify(name["given"][0], name["family"], None, gender=p["gender"], phone=number)
    assert p["id"] in [c.id for c in match.candidates]
    await ehr.aclose()
    patient_searches = [line for line in sandbox.request_log if line.startswith("GET /fhir/Patient?")]
    assert len(patient_searches) == 2
    assert not any("phone=" in line and "given=" not in line for line in patient_searches)


async def test_oracle_rules_on_a_real_server(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    ehr = _ehr(served[1], population, "oracle-health")
    number = population.household_numbers()[0]
    match = await ehr.find_by_phone(_num(number))
    assert sorted(c.id for c in match.candidates) == sorted(population.households[number])
    family = population.by_id[population.households[number][0]]["name"][0]["family"]
    assert await ehr.search(family)
    await ehr.aclose()
    assert not any("metadata" in line for line in sandbox.request_log)
    for line in sandbox.request_log:
        if line.startswith("GET /fhir/Patient?"):
            assert not ("name=" in line and ("family=" in line or "given=" in line)), line


class AthenaGateway(httpx.AsyncBaseTransport):
    """athenahealth's API gateway, in front of the sandbox: refuses any call without the practice,
    strips it, and forwards."""

    def __init__(self, practice: str) -> None:
        self.practice = practice
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(str(request.url))
        if request.url.params.get_list("ah-practice") != [self.practice]:
            return httpx.Response(400, json={"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "required", "diagnostics": "ah-practice is required"}]})
        params = [(k, v) for k, v in request.url.params.multi_items() if k != "ah-practice"]
        forwarded = httpx.Request(
            request.method, request.url.copy_with(params=params), headers=request.headers, content=request.content
        )
        return await self.inner.handle_async_request(forwarded)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_athena_through_its_gateway(
    sandbox: FhirSandbox, served: tuple[FhirSandbox, str], population: Population
) -> None:
    gateway = AthenaGateway("Organization/a-1.Practice-195900")
    ehr = _ehr(served[1], population, "athena", client_kwargs={"practice_id": "195900", "transport": gateway})
    p = population.patients[9]
    name = p["name"][0]
    match = await ehr.search_identify(name["given"][0], name["family"], date.fromisoformat(p["birthDate"]))
    assert p["id"] in [c.id for c in match.candidates]
    views = {s: await ehr.load_section(p["id"], s) for s in Section}
    assert isinstance(views[Section.BILLING], SectionUnavailable)
    assert isinstance(views[Section.APPOINTMENTS], SectionUnavailable)
    assert all(isinstance(v, Prescription) for v in views[Section.PRESCRIPTIONS])  # type: ignore[attr-defined]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    await ehr.write_note(Note(id="n-athena", patient_id=p["id"], agent_id="a", text="x", created_at=now, updated_at=now))
    await ehr.aclose()
    assert len(gateway.seen) >= 8
    assert not any("Account" in u or "Appointment" in u for u in gateway.seen)
