"""The simulators in a process of their own, driven over a pipe.

In production the EHR and Dialpad are other machines; here they run in a child
process (``multiprocessing`` spawn) on 127.0.0.1, so the console under test does
not share its interpreter, GIL or garbage collector with them and its RSS is its
own. The child builds what :meth:`DemoEnvironment.start` builds (Dialpad
simulator, FHIR sandbox over a synthetic population, Twilio simulator, all under
one :class:`SimulatorHost`), with the population from ``Population.cached`` when
that exists, then answers commands.

Timestamps are taken *in the simulator's loop* with ``time.perf_counter()``
(CLOCK_MONOTONIC, shared by every process on the machine): a hook on the
simulator's ``_send`` notes when each call-event frame is handed to the
websocket writers, keyed by ``(leg id, state, event_timestamp)``.

Synthetic call traffic (bursts, many active calls, 10,000 calls) goes through
the simulator's own call records and ``_emit`` — the same code that emits a real
ringing call — so every frame is in Dialpad's payload shape, reaches the console
through its real websocket subscription, and the simulator's ``_calls`` hold the
truth the console's ``CallBook`` is compared with.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing as mp
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str, int]  # (leg call id, state, event_timestamp ms)


# =========================================================================== child side
def _load_population(size: int, seed: int) -> Any:
    from pa_tui.demo.population import Population

    if hasattr(Population, "cached"):
        return Population.cached(size=size, seed=seed)
    return Population.generate(size=size, seed=seed)


@dataclass
class _Traffic:
    """Synthetic inbound calls to one agent, moved one Dialpad event at a time."""

    sim: Any
    agent_id: str
    numbers: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    live: list[tuple[Any, Any, list[str]]] = field(default_factory=list)  # (call, leg, remaining states)
    started: int = 0
    finished: int = 0
    emitted: int = 0
    _n: int = 0

    def _plan(self, holds: tuple[int, int], end: bool) -> list[str]:
        plan = ["preanswer", "ringing", "connected"]
        for _ in range(self.rng.randint(*holds)):
            plan += ["hold", "connected"]
        if end:
            plan += ["hangup", "postcall"]
        return plan

    async def new_call(self, holds: tuple[int, int] = (2, 12), end: bool = True) -> None:
        from pa_tui.demo.dialpad_sim.simulator import _Call, _Leg

        sim = self.sim
        agent = sim.agents[self.agent_id]
        number = self.numbers[self._n % len(self.numbers)]
        self._n += 1
        now = sim._ms()
        call_id = sim._new_call_id()
        target = sim._user_target(agent)
        call = _Call(
            id=call_id, from_number=number, internal_number=agent.phone, entry_point_target=target,
            call_center_id=None, direct_user_id=agent.id, date_started=now,
        )
        leg = _Leg(call_id=call_id, master_call_id=None, target=target, user_id=agent.id, date_started=now)
        sim._add(call, leg)
        self.started += 1
        entry = (call, leg, self._plan(holds, end))
        self.live.append(entry)
        await self.step(entry)

    async def step(self, entry: tuple[Any, Any, list[str]]) -> bool:
        """Emit the call's next event. False when it has none left (it stays as it is)."""
        call, leg, plan = entry
        if not plan:
            return False
        state = plan.pop(0)
        sim = self.sim
        if state == "ringing":
            leg.date_rang = leg.date_first_rang = sim._ms()
        elif state == "connected" and leg.date_connected is None:
            leg.date_connected = sim._ms()
            call.answered_by = self.agent_id
            call.operator_leg = leg.call_id
        elif state == "hangup":
            leg.date_ended = sim._ms()
            call.ended = True
        await sim._emit(call, leg, state)
        self.emitted += 1
        if state == "postcall" or (state == "hangup" and not plan):
            self.live.remove(entry)
            self.finished += 1
        return True

    async def step_random(self) -> None:
        entry = self.live[self.rng.randrange(len(self.live))]
        if not await self.step(entry):
            # a call with nothing left to do (end=False): toggle hold/connected on it
            call, leg, plan = entry
            plan.append("hold" if leg.state == "connected" else "connected")
            await self.step(entry)

    def truth(self) -> dict[str, str]:
        """Every synthetic call's final state as the simulator has it (the entry leg's state)."""
        return {cid: c.entry.state for cid, c in self.sim._calls.items() if c.entry.state}


class _Child:
    def __init__(self, size: int, seed: int) -> None:
        import secrets as pysecrets

        from pa_tui.demo.dialpad_sim import DialpadSimulator, default_roster
        from pa_tui.demo.fhir_sandbox import FhirSandbox
        from pa_tui.demo.host import SimulatorHost
        from pa_tui.demo.launch import DEMO_SMS_NUMBER, DemoEnvironment
        from pa_tui.demo.twilio_sim import TwilioSimulator

        t0 = time.perf_counter()
        population = _load_population(size, seed)
        self.population_s = time.perf_counter() - t0
        api_key = "sim_" + pysecrets.token_urlsafe(24)
        roster = default_roster()
        agents, centers = list(roster.agents), list(roster.call_centers)
        # ring_timeout None: a synthetic call rings until the bench moves it on.
        dialpad = DialpadSimulator(api_key, agents, centers, websocket_lifetime=3600.0, ring_timeout=None)
        fhir = FhirSandbox(population)
        twilio = TwilioSimulator("AC" + pysecrets.token_hex(16), pysecrets.token_hex(16), numbers=(DEMO_SMS_NUMBER,))
        host = SimulatorHost()
        host.add("dialpad", dialpad.app)
        host.add("fhir", fhir.app)
        host.add("twilio", twilio.app)
        host.start()
        dialpad.base_url = host.url("dialpad")
        self.env = DemoEnvironment(
            population=population, dialpad=dialpad, fhir=fhir, twilio=twilio, host=host,
            api_key=api_key, agent_id=agents[0].id,
        )
        self.sent: dict[Key, float] = {}
        self.recording = False
        self.ring_at: dict[str, float] = {}
        self._install_hook()
        self.traffic: _Traffic | None = None
        self.jobs: dict[int, Any] = {}
        self._job_ids = 0
        # The population is millions of long-lived dicts: keep the simulator's collector off them,
        # so a GC pass in the *simulator* never shows up as console latency.
        gc.collect()
        gc.freeze()

    def _install_hook(self) -> None:
        sim = self.env.dialpad
        original = sim._send

        def send(endpoint: Any, payload: dict[str, Any]) -> None:
            now = time.perf_counter()
            if "call_id" in payload and "state" in payload:
                if payload["state"] == "ringing":
                    self.ring_at[str(payload["call_id"])] = now
                if self.recording:
                    self.sent[(str(payload["call_id"]), payload["state"], int(payload["event_timestamp"]))] = now
            original(endpoint, payload)

        sim._send = send  # instance attribute: the simulator calls self._send(...)

    # ------------------------------------------------------------------ commands
    def info(self) -> dict[str, Any]:
        env = self.env
        return {
            "api_key": env.api_key,
            "dialpad_url": env.dialpad_url,
            "fhir_url": env.fhir_url,
            "twilio_url": env.twilio_url,
            "twilio_auth_token": env.twilio.auth_token,
            "agent_id": env.agent_id,
            "patients": env.population.size,
            "population_s": self.population_s,
        }

    def numbers(self, kind: str, count: int) -> list[str]:
        pop = self.env.population
        items = pop.household_numbers() if kind == "household" else pop.single_caller_numbers()
        step = max(1, len(items) // max(1, count))
        return items[::step][:count]

    def patients(self, count: int, seed: int = 5) -> list[str]:
        pop = self.env.population
        numbers = self.numbers("single", count * 3)
        rng = random.Random(seed)
        rng.shuffle(numbers)
        out: list[str] = []
        for n in numbers:
            out.extend(pop.holders(n)[:1])
            if len(out) >= count:
                break
        return out

    def warm_records(self, patient_ids: list[str]) -> int:
        """Generate these patients' records in the sandbox now, so no timed request pays for it."""
        pop = self.env.population
        for pid in patient_ids:
            pop.records(pid)
        return len(patient_ids)

    def wait_listener(self, timeout: float = 20.0) -> bool:
        env = self.env
        return bool(env.host.call(env.dialpad.wait_for_listener(env.agent_id, timeout), timeout + 2))

    def ring(self, number: str) -> tuple[str, float]:
        env = self.env
        call_id = env.host.call(env.dialpad.ring(number, user_id=env.agent_id))
        return call_id, self.ring_at.pop(call_id, float("nan"))

    def hangup(self, call_id: str) -> None:
        env = self.env
        env.host.call(env.dialpad.hangup(call_id))

    def record(self, on: bool) -> int:
        self.recording = on
        if on:
            self.sent = {}
        return len(self.sent)

    def take_sent(self) -> dict[Key, float]:
        sent, self.sent = self.sent, {}
        return sent

    def traffic_numbers(self, count: int) -> list[str]:
        singles = self.numbers("single", count)
        households = self.numbers("household", max(1, count // 10))
        unknown = self.env.population.unlisted_numbers(max(1, count // 20))
        out = singles + households + unknown
        random.Random(3).shuffle(out)
        return out

    def traffic_start(self, numbers: int = 2000) -> None:
        self.traffic = _Traffic(self.env.dialpad, self.env.agent_id, self.traffic_numbers(numbers))

    def _job(self, coro: Any) -> int:
        self._job_ids += 1
        self.jobs[self._job_ids] = self.env.host.submit(coro)
        return self._job_ids

    def wait(self, job: int, timeout: float = 120.0) -> Any:
        return self.jobs.pop(job).result(timeout)

    # -- open N calls and leave them connected (no end): for cost-per-event at N active calls
    def open_calls(self, count: int, batch: int = 50, pause: float = 0.02) -> int:
        assert self.traffic is not None
        traffic = self.traffic

        async def go() -> int:
            for i in range(count):
                await traffic.new_call(holds=(0, 0), end=False)
                entry = traffic.live[-1]
                await traffic.step(entry)  # ringing
                await traffic.step(entry)  # connected
                if (i + 1) % batch == 0:
                    await asyncio.sleep(pause)
            return len(traffic.live)

        return self._job(go())

    # -- paced events: a fixed rate for a fixed time (or count), each moving one random live call
    def paced(self, rate: float, seconds: float, concurrent: int, churn: bool = True, max_events: int = 10**7) -> int:
        assert self.traffic is not None
        traffic = self.traffic

        async def go() -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            # Fill up to `concurrent` live calls first (these events count too).
            start = loop.time()
            done = 0
            tick = 0.005
            lag_max = 0.0
            while done < max_events:
                now = loop.time()
                elapsed = now - start
                if elapsed >= seconds:
                    break
                due = min(int(elapsed * rate) + 1, max_events) - done
                for _ in range(max(0, due)):
                    if len(traffic.live) < concurrent:
                        await traffic.new_call(end=churn)
                    else:
                        await traffic.step_random()
                    done += 1
                lag_max = max(lag_max, loop.time() - now)
                await asyncio.sleep(tick)
            took = loop.time() - start
            return {"events": done, "seconds": took, "rate": done / took if took else 0.0,
                    "started": traffic.started, "finished": traffic.finished, "live": len(traffic.live),
                    "max_tick_s": lag_max}

        return self._job(go())

    # -- whole calls (preanswer, ringing, connected, hangup, postcall) at a call rate: the memory run
    def calls(self, count: int, per_second: float, concurrent: int = 20) -> int:
        assert self.traffic is not None
        traffic = self.traffic

        async def go() -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            start = loop.time()
            emitted0 = traffic.emitted
            opened = 0
            while opened < count or traffic.live:
                elapsed = loop.time() - start
                if elapsed > 600:
                    break
                due = min(count, int(elapsed * per_second) + 1) - opened
                for _ in range(max(0, due)):
                    if len(traffic.live) >= concurrent:
                        break
                    await traffic.new_call(holds=(0, 0), end=True)
                    opened += 1
                # move every live call one step per tick
                for entry in list(traffic.live):
                    await traffic.step(entry)
                await asyncio.sleep(0.004)
            return {"calls": opened, "events": traffic.emitted - emitted0, "seconds": loop.time() - start}

        return self._job(go())

    def truth(self) -> dict[str, str]:
        assert self.traffic is not None
        return self.traffic.truth()

    def stop(self) -> None:
        self.env.stop()


def _child_main(conn: Any, size: int, seed: int) -> None:
    import logging

    logging.disable(logging.WARNING)
    try:
        child = _Child(size, seed)
    except BaseException as exc:  # noqa: BLE001 - report any start-up failure to the parent
        conn.send(("err", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", child.info()))
    while True:
        try:
            op, kwargs = conn.recv()
        except (EOFError, OSError):
            break
        try:
            result = getattr(child, op)(**kwargs)
        except BaseException as exc:  # noqa: BLE001
            conn.send(("err", f"{type(exc).__name__}: {exc}"))
        else:
            conn.send(("ok", result))
        if op == "stop":
            break
    try:
        child.stop()
    except Exception:  # noqa: BLE001
        pass


# =========================================================================== parent side
class SimError(RuntimeError):
    pass


class SimProcess:
    """The child process and a blocking/async command channel to it."""

    def __init__(self, size: int, seed: int = 7, *, start_timeout: float = 240.0) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_child_main, args=(child_conn, size, seed), name=f"bench-sim-{size}", daemon=True)
        self.process.start()
        child_conn.close()
        self._lock = threading.Lock()
        if not self._conn.poll(start_timeout):
            self.process.kill()
            raise SimError(f"simulators did not start within {start_timeout:.0f} s")
        status, value = self._conn.recv()
        if status != "ok":
            raise SimError(value)
        self.info: dict[str, Any] = value

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def call(self, op: str, timeout: float = 120.0, **kwargs: Any) -> Any:
        with self._lock:
            self._conn.send((op, kwargs))
            if not self._conn.poll(timeout):
                raise SimError(f"simulator command {op} timed out after {timeout:.0f} s")
            status, value = self._conn.recv()
        if status != "ok":
            raise SimError(f"{op}: {value}")
        return value

    async def acall(self, op: str, timeout: float = 120.0, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self.call, op, timeout, **kwargs)

    def close(self) -> None:
        if self.process.is_alive():
            try:
                self.call("stop", timeout=15)
            except Exception:  # noqa: BLE001
                pass
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        self._conn.close()

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


__all__ = ["Key", "SimError", "SimProcess"]
