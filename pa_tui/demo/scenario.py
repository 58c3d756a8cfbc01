"""Scenario files: a timeline of calls and events that drives the simulators.

A scenario is TOML::

    name = "walkthrough"
    loop = true
    [[steps]]
    at = 1.0            # seconds from start (divided by --speed)
    action = "ring"     # ring | answer | hangup | status
    call = "first"      # a label later steps use to refer to this call
    caller = "single"   # single | household | unknown | withheld | an explicit number
    to = "agent"        # agent (the demo agent) | callcenter:<name or id> | user:<name or id>

The runner resolves "single"/"household" to real numbers of the synthetic
population, so every demo rings from a patient the FHIR sandbox knows.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

log = logging.getLogger(__name__)

Action = Literal[
    "ring",  # an inbound call: caller, to
    "answer",  # call, to (the answering agent; default: the one it rings)
    "hangup",  # call
    "status",  # to, status, reason: a duty-status change
    "drop-websocket",  # fault: every event stream connection drops
    "ehr-down",  # fault: the FHIR server answers 503
    "ehr-up",  # the FHIR server recovers (and its latency resets)
    "ehr-slow",  # fault: every FHIR request takes `seconds`
    "transfer",  # call, to; with handoff = true the patient context goes with it
    "key-expire",  # fault: Dialpad stops accepting the API key (401 from now on)
    "sms-reply",  # caller (a patient's number, "single"…), text: a patient texts the clinic
]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the problem."""


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float = Field(ge=0)
    action: Action
    call: str | None = None
    caller: str | None = None
    to: str = "agent"
    status: str | None = None
    reason: str | None = None
    seconds: float = Field(default=2.0, ge=0, le=120)
    handoff: bool = False  # transfer: write the patient context, as the sending agent's console does
    text: str | None = None  # sms-reply: what the patient texts
    snapshot: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    settle: float = Field(default=1.5, ge=0, le=30)  # real seconds before the snapshot is taken

    @model_validator(mode="after")
    def _needs(self) -> Step:
        if self.action in ("ring", "answer", "hangup") and not self.call:
            raise ValueError(f"a '{self.action}' step needs a 'call' label")
        if self.action == "ring" and not self.caller:
            raise ValueError("a 'ring' step needs a 'caller'")
        if self.action == "status" and not self.status:
            raise ValueError("a 'status' step needs a 'status'")
        if self.action == "transfer" and not self.call:
            raise ValueError("a 'transfer' step needs a 'call'")
        if self.action == "sms-reply" and (not self.caller or not self.text):
            raise ValueError("an 'sms-reply' step needs a 'caller' and a 'text'")
        if self.action == "answer" and self.to.startswith("callcenter:"):
            raise ValueError("an 'answer' step is answered by an agent: to = \"agent\" or \"user:<id>\"")
        return self


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    loop: bool = False
    steps: tuple[Step, ...]

    @model_validator(mode="after")
    def _ordered(self) -> Scenario:
        if not self.steps:
            raise ValueError("a scenario needs at least one step")
        labels: set[str] = set()
        for i, step in enumerate(self.steps):
            if step.action == "ring":
                labels.add(step.call or "")
            elif step.call and step.call not in labels:
                raise ValueError(f"step {i + 1} ({step.action}) refers to call '{step.call}' before it rings")
        return self

    @property
    def duration(self) -> float:
        return max(step.at for step in self.steps)


def builtin_names() -> list[str]:
    folder = resources.files("pa_tui.demo") / "scenarios"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A bundled scenario by name, or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        label = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{label}: cannot read the scenario file ({exc.strerror})") from None
    else:
        res = resources.files("pa_tui.demo") / "scenarios" / f"{name_or_path}.toml"
        if not res.is_file():
            names = ", ".join(builtin_names())
            raise ScenarioError(f"no scenario named '{name_or_path}' (bundled: {names}; or give a .toml path)")
        label = f"scenario '{name_or_path}'"
        text = res.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{label}: not valid TOML ({exc})") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ScenarioError(f"{label}: {where}: {first['msg']}") from None


class TelephonyDriver(Protocol):
    """What the runner needs of the Dialpad simulator."""

    async def ring(
        self, from_number: str, *, user_id: str | None = None, call_center_id: str | None = None
    ) -> str: ...

    async def answer(self, call_id: str, user_id: str | None = None) -> None: ...

    async def hangup(self, call_id: str) -> None: ...

    async def set_duty_status(self, user_id: str, status: str, reason: str | None = None) -> None: ...

    async def drop_websockets(self) -> int: ...

    async def transfer(self, call_id: str, **kwargs: Any) -> Any: ...

    async def expire_key(self) -> None: ...


class EhrFaults(Protocol):
    """The FHIR sandbox's fault knobs."""

    latency: float
    down: bool


class CallerSource(Protocol):
    def single_caller_numbers(self) -> list[str]: ...

    def household_numbers(self) -> list[str]: ...


@dataclass
class ScenarioRunner:
    """Plays a scenario against the simulators, on the simulators' loop."""

    scenario: Scenario
    telephony: TelephonyDriver
    callers: CallerSource
    agent_id: str
    call_centers: dict[str, str] = field(default_factory=dict)  # name (lower) -> id
    agents: dict[str, str] = field(default_factory=dict)  # name (lower) -> id
    ehr: EhrFaults | None = None
    handoffs: Any = None  # async (call_id, number, from_agent, to_agent, verified) -> ref | None
    sms: Any = None  # async (from_number, text) -> None: a patient's text to the clinic
    speed: float = 1.0
    ready: Any = None  # an awaitable factory: wait until the console listens
    snapshot: Any = None  # async callable(name): take a screenshot (for --record)
    rounds: int | None = None  # stop a looping scenario after this many rounds
    _calls: dict[str, str] = field(default_factory=dict)
    _numbers: dict[str, str] = field(default_factory=dict)  # call label -> the caller's number
    _answered_by: dict[str, str] = field(default_factory=dict)  # call label -> user id
    _cursor: dict[str, int] = field(default_factory=dict)
    _unknown_counter: int = 0
    steps_done: int = 0

    async def run(self) -> None:
        if self.ready is not None:
            await self.ready()
        rounds = 0
        while True:
            start = asyncio.get_running_loop().time()
            for step in self.scenario.steps:
                delay = start + step.at / self.speed - asyncio.get_running_loop().time()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    await self._do(step)
                except Exception:  # a scenario step must never kill the simulators
                    log.warning("scenario step %s (%s) failed", self.steps_done + 1, step.action, exc_info=True)
                self.steps_done += 1
                if step.snapshot and self.snapshot is not None:
                    await asyncio.sleep(step.settle)
                    await self.snapshot(step.snapshot)
            rounds += 1
            if not self.scenario.loop or (self.rounds is not None and rounds >= self.rounds):
                return
            await asyncio.sleep(4.0 / self.speed)

    async def _do(self, step: Step) -> None:
        if step.action == "ring":
            number = self._caller_number(step.caller or "single")
            user_id, center_id = self._target(step.to)
            self._calls[step.call or ""] = await self.telephony.ring(
                number, user_id=user_id, call_center_id=center_id
            )
            self._numbers[step.call or ""] = number
        elif step.action == "answer":
            user_id, _ = self._target(step.to)
            await self.telephony.answer(self._calls[step.call or ""], user_id=user_id)
            if user_id:
                self._answered_by[step.call or ""] = user_id
        elif step.action == "transfer":
            label = step.call or ""
            user_id, center_id = self._target(step.to)
            ref = None
            if step.handoff and self.handoffs is not None:
                ref = await self.handoffs(self._calls[label], self._numbers.get(label, ""),
                                          self._answered_by.get(label, ""), user_id, True)
            await self.telephony.transfer(self._calls[label], user_id=user_id, call_center_id=center_id,
                                          custom_data=ref)
        elif step.action == "key-expire":
            await self.telephony.expire_key()
        elif step.action == "sms-reply":
            if self.sms is None:
                raise ScenarioError("'sms-reply' needs the Twilio simulator")
            await self.sms(self._caller_number(step.caller or "single"), step.text or "")
        elif step.action == "hangup":
            await self.telephony.hangup(self._calls[step.call or ""])
        elif step.action == "status":
            user_id, _ = self._target(step.to)
            await self.telephony.set_duty_status(user_id or self.agent_id, step.status or "", step.reason)
        elif step.action == "drop-websocket":
            await self.telephony.drop_websockets()
        elif step.action in ("ehr-down", "ehr-up", "ehr-slow"):
            if self.ehr is None:
                raise ScenarioError(f"'{step.action}' needs the FHIR sandbox")
            self.ehr.down = step.action == "ehr-down"
            self.ehr.latency = step.seconds if step.action == "ehr-slow" else 0.0

    def _target(self, to: str) -> tuple[str | None, str | None]:
        if to == "agent":
            return self.agent_id, None
        kind, _, value = to.partition(":")
        if kind == "user":
            return self.agents.get(value.lower(), value), None
        if kind == "callcenter":
            return None, self.call_centers.get(value.lower(), value)
        raise ScenarioError(f"unknown call target '{to}' (agent, user:<id> or callcenter:<name>)")

    def _caller_number(self, caller: str) -> str:
        if caller in ("single", "household"):
            pool = self.callers.single_caller_numbers() if caller == "single" else self.callers.household_numbers()
            if not pool:
                raise ScenarioError(f"the population has no {caller} numbers")
            i = self._cursor.get(caller, 0)
            self._cursor[caller] = i + 1
            return pool[i % len(pool)]
        if caller == "unknown":
            self._unknown_counter += 1
            return f"+1202555{100 + self._unknown_counter % 100:04d}"  # 555-01xx: fictional
        if caller == "withheld":
            return "anonymous"
        return caller
