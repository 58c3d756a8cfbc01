"""`pa-tui demo`: the simulators on loopback, the real clients pointed at them, the console.

One code path: :meth:`DemoEnvironment.backends` builds the same Dialpad and
FHIR backends production uses; only their base URLs and keys differ.
"""

from __future__ import annotations

import asyncio
import logging
import secrets as pysecrets
from dataclasses import dataclass, field
from collections.abc import Callable
import contextlib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pa_tui.backends.base import BackendSet, Store
from pa_tui.backends.dialpad.client import DialpadClient
from pa_tui.backends.dialpad.telephony import DialpadTelephony
from pa_tui.backends.fhir.client import FhirClient
from pa_tui.backends.fhir.ehr import FhirEhr
from pa_tui.backends.inbound import INBOUND_SMS_PATH, InboundListener
from pa_tui.backends.store import SqliteStore
from pa_tui.config import data_dir
from pa_tui.demo.dialpad_sim import DialpadSimulator, default_roster
from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population
from pa_tui.domain.audit import Verification as AuditState
from pa_tui.domain.handoff import Handoff
from pa_tui.demo.scenario import Scenario, ScenarioRunner, load_scenario
from pa_tui.demo.twilio_sim import TwilioSimulator

DEMO_SMS_NUMBER = "+14155550142"  # the clinic's texting number in the demo (555-01xx: fictional)

log = logging.getLogger(__name__)


@dataclass
class DemoEnvironment:
    """Everything `pa-tui demo` runs besides the console itself."""

    population: Population
    dialpad: DialpadSimulator
    fhir: FhirSandbox
    twilio: TwilioSimulator
    host: SimulatorHost
    api_key: str
    agent_id: str
    scenario: Scenario | None = None
    runner: ScenarioRunner | None = None
    on_finished: Callable[[], None] | None = field(default=None, repr=False)
    store_path: Path | None = None  # the console's store, for hand-offs a scenario writes
    inbound: InboundListener | None = None  # the console's listener, for SMS replies a scenario sends
    _handoff_store: SqliteStore | None = field(default=None, repr=False)

    @classmethod
    def start(
        cls,
        *,
        patients: int = 500,
        seed: int = 7,
        scenario: str | Scenario | None = "walkthrough",
        speed: float = 1.0,
        websocket_lifetime: float = 3600.0,
        bind: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        fhir_bundle: str | Path | None = None,
        as_of: date | None = None,
    ) -> DemoEnvironment:
        """``as_of``: the population's "today" (appointments tomorrow, recent claims…); the
        default is a fixed date, so tests and recordings are the same every day."""
        population = Population.generate(size=patients, seed=seed, as_of=as_of)
        api_key = "sim_" + pysecrets.token_urlsafe(24)
        roster = default_roster()
        agents, centers = list(roster.agents), list(roster.call_centers)
        dialpad = DialpadSimulator(api_key, agents, centers, websocket_lifetime=websocket_lifetime)
        fhir = FhirSandbox(population)
        if fhir_bundle is not None:
            fhir.load(fhir_bundle)
        twilio = TwilioSimulator(
            "AC" + pysecrets.token_hex(16), pysecrets.token_hex(16), numbers=(DEMO_SMS_NUMBER,)
        )
        ports = ports or {}
        host = SimulatorHost(host=bind)
        host.add("dialpad", dialpad.app, ports.get("dialpad", 0))
        host.add("fhir", fhir.app, ports.get("fhir", 0))
        host.add("twilio", twilio.app, ports.get("twilio", 0))
        env = cls(
            population=population,
            dialpad=dialpad,
            fhir=fhir,
            twilio=twilio,
            host=host,
            api_key=api_key,
            agent_id=agents[0].id,
        )
        if scenario is not None:
            env.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
            env.runner = ScenarioRunner(
                scenario=env.scenario,
                telephony=dialpad,
                callers=population,
                agent_id=env.agent_id,
                call_centers={c.name.lower(): c.id for c in centers},
                agents={a.name.lower(): a.id for a in agents},
                ehr=fhir,
                handoffs=lambda *args: env._write_handoff(*args),
                sms=lambda number, text: env._send_sms(number, text),
                speed=speed,
                ready=lambda: dialpad.wait_for_listener(env.agent_id),
            )
            host.on_start(env._play)
        host.start()
        dialpad.base_url = host.url("dialpad")
        return env

    @property
    def dialpad_url(self) -> str:
        return self.host.url("dialpad")

    @property
    def twilio_url(self) -> str:
        return self.host.url("twilio")

    @property
    def fhir_url(self) -> str:
        return self.fhir.url(self.host.url("fhir"))

    def backends(
        self,
        *,
        agent_id: str | None = None,
        store_path: Path | None = None,
        store: Store | None = None,
        listen_port: int = 0,
    ) -> BackendSet:
        """The production backends, pointed at the simulators.

        The demo keeps its notes in a store of its own (``demo.db`` beside the
        real one), so synthetic patients never mix with a site's real notes.
        """
        client = DialpadClient(api_key=self.api_key, base_url=self.dialpad_url)
        telephony = DialpadTelephony(client, user_id=agent_id or self.agent_id)
        ehr = FhirEhr(FhirClient(self.fhir_url, vendor="generic"))
        if store is None:
            self.store_path = store_path or data_dir() / "demo.db"
            store = SqliteStore(self.store_path)
        inbound = InboundListener(
            port=listen_port, dialpad_secret=None, twilio_auth_token=self.twilio.auth_token
        )
        self.inbound = inbound
        return BackendSet(telephony, ehr, store=store, inbound=inbound)

    async def _write_handoff(
        self, call_id: str, number: str, from_agent: str, to_agent: str | None, verified: bool
    ) -> str | None:
        """What the sending colleague's console writes on transfer (runs on the simulators' loop)."""
        if self.store_path is None:
            return None
        holders = self.population.holders(number) if number else []
        if not holders:
            return None
        if self._handoff_store is None:
            self._handoff_store = SqliteStore(self.store_path)
            await self._handoff_store.open()
        return await self._handoff_store.put_handoff(
            Handoff(
                call_id=call_id,
                from_agent=from_agent or "colleague",
                to_agent=to_agent,
                patient_id=holders[0],
                verification=AuditState.VERIFIED if verified else AuditState.UNVERIFIED,
                created_at=datetime.now(UTC),
            )
        )

    async def _send_sms(self, number: str, text: str) -> None:
        url = self.inbound.url if self.inbound is not None else None
        await self.twilio.reply(number, text, (url + INBOUND_SMS_PATH) if url else None)

    async def _play(self) -> None:
        assert self.runner is not None
        try:
            await self.runner.run()
        finally:
            if self.on_finished is not None:
                self.on_finished()

    def stop(self) -> None:
        if self._handoff_store is not None:
            with contextlib.suppress(Exception):
                self.host.call(self._handoff_store.aclose())
        self.host.stop()

    def __enter__(self) -> DemoEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_demo(
    settings: Any,
    *,
    scenario: str | None = None,
    speed: float = 1.0,
    patients: int = 500,
    seed: int = 7,
    record: Path | None = None,
    size: tuple[int, int] | None = None,
    fhir_bundle: Path | None = None,
) -> int:
    """Run the console against the simulators until the agent quits. Returns the exit code.

    With ``record``, run headless instead: play the scenario once, write an SVG
    screenshot into ``record`` at every step that names a ``snapshot``, and exit.
    """
    from pa_tui.app import make_app

    env = DemoEnvironment.start(
        patients=patients, seed=seed, scenario=scenario or "walkthrough", speed=speed,
        as_of=None if record is not None else date.today(), fhir_bundle=fhir_bundle,
    )
    # The sandbox takes notes back: show the whole path (Store first, then the EHR via the outbox).
    settings = settings.model_copy(update={"fhir": settings.fhir.model_copy(update={"write_notes": True})})
    try:
        app = make_app(settings, env.backends())
        if record is None:
            return int(app.run() or 0)
        return _record(app, env, Path(record), size or (160, 48))
    finally:
        env.stop()


def _record(app: Any, env: DemoEnvironment, folder: Path, size: tuple[int, int]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    assert env.runner is not None
    env.runner.rounds = 1
    taken: list[Path] = []

    async def snapshot(name: str) -> None:
        path = folder / f"{len(taken) + 1:02d}-{name}.svg"
        await asyncio.to_thread(app.call_from_thread, app.save_screenshot, path.name, str(folder))
        taken.append(path)

    def finished() -> None:
        app.call_from_thread(app.exit, 0)

    env.runner.snapshot = snapshot
    env.on_finished = finished
    code = int(app.run(headless=True, size=size) or 0)
    for path in taken:
        print(path)
    if not taken:
        print(f"pa-tui: scenario '{env.scenario.name if env.scenario else '?'}' marks no snapshot steps")
    return code
