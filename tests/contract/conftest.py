"""Fixtures for the Dialpad contract tests: a live simulator on loopback and the official spec."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import pytest

from pa_tui.backends.dialpad.client import DialpadClient
from pa_tui.demo.dialpad_sim import DialpadSimulator
from pa_tui.demo.host import SimulatorHost

T = TypeVar("T")

DIALPAD_KEY = "sim-dialpad-key-0123456789abcdef"
SPECS_DIR = Path(os.environ.get("PA_TUI_SPECS_DIR", Path(__file__).resolve().parents[3] / "shared" / "specs"))
DIALPAD_SPEC = SPECS_DIR / "dialpad_api_spec.json"


# --------------------------------------------------------------------------- simulator
@dataclass
class DialpadEnv:
    """A running simulator and how to reach it."""

    sim: DialpadSimulator
    host: SimulatorHost

    @property
    def base_url(self) -> str:
        return self.host.url("dialpad")

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a simulator control coroutine on the simulator's own loop."""
        return await self.host.acall(coro)

    def client(self, key: str = DIALPAD_KEY, **kwargs: Any) -> DialpadClient:
        kwargs.setdefault("backoff_initial", 0.01)
        kwargs.setdefault("backoff_max", 0.05)
        return DialpadClient(key, self.base_url, **kwargs)

    @property
    def agent_ids(self) -> list[str]:
        return list(self.sim.agents)


class _SwitchApp:
    """Forwards to whichever simulator the current test made, so one host serves the session."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


@pytest.fixture(scope="session")
def _dialpad_host() -> Iterator[tuple[SimulatorHost, _SwitchApp]]:
    switch = _SwitchApp()
    host = SimulatorHost()
    host.add("dialpad", switch)
    host.start()
    yield host, switch
    host.stop()


@pytest.fixture
def dialpad_env_factory(_dialpad_host: tuple[SimulatorHost, _SwitchApp]) -> Iterator[Callable[..., DialpadEnv]]:
    """Make a fresh simulator (default roster, ``kwargs`` to its constructor) served on loopback.

    Each is shut down after the test (its ring, answer and delivery timers cancelled).
    """
    host, switch = _dialpad_host
    made: list[DialpadSimulator] = []

    def make(**kwargs: Any) -> DialpadEnv:
        sim = DialpadSimulator.with_default_roster(DIALPAD_KEY, **kwargs)
        made.append(sim)
        switch.target = sim.app
        return DialpadEnv(sim=sim, host=host)

    yield make
    for sim in made:
        host.call(sim.shutdown())


class FakeClock:
    """A clock tests move by hand; callable, so it plugs in wherever ``time.time`` / ``monotonic`` would."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dialpad_env(dialpad_env_factory: Callable[..., DialpadEnv]) -> DialpadEnv:
    return dialpad_env_factory()


@pytest.fixture
def dialpad_key() -> str:
    """The API key the simulator accepts."""
    return DIALPAD_KEY


# --------------------------------------------------------------------------- spec
class DialpadSpec:
    """JSON Schemas (draft 7) derived from the official OpenAPI 3.0 document.

    OpenAPI 3.0 is not quite JSON Schema, so the conversion:
    - inlines ``$ref`` (siblings of a ``$ref`` are ignored, as OpenAPI 3.0 says,
      except ``nullable``);
    - turns ``nullable: true`` into "or null";
    - lets ``format: int64`` integers also be strings of digits: that is the
      proto3 JSON encoding of int64, and how Dialpad's own examples send ids;
    - with ``strict``, forbids properties the spec does not list, so a typo in
      a field name fails the test instead of being silently ignored.
    """

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = document["components"]["schemas"]

    def schema(self, name: str, *, strict: bool = True) -> dict[str, Any]:
        return self._convert({"$ref": f"#/components/schemas/{name}"}, strict, ())

    def operation(self, path: str, method: str) -> dict[str, Any]:
        return self.document["paths"][path][method.lower()]

    def request_schema(self, path: str, method: str, *, strict: bool = True) -> dict[str, Any]:
        body = self.operation(path, method)["requestBody"]["content"]["application/json"]["schema"]
        return self._convert(body, strict, ())

    def response_schema(self, path: str, method: str, *, strict: bool = True) -> dict[str, Any]:
        body = self.operation(path, method)["responses"]["200"]["content"]["application/json"]["schema"]
        return self._convert(body, strict, ())

    def convert(self, schema: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
        """Any OpenAPI schema fragment (a parameter's, say) as JSON Schema."""
        return self._convert(schema, strict, ())

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        jsonschema.Draft7Validator(schema).validate(instance)

    def errors(self, instance: Any, schema: dict[str, Any]) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(instance)
        ]

    def _convert(self, node: Any, strict: bool, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self._convert(x, strict, seen) for x in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            name = ref.rsplit("/", 1)[-1]
            if name in seen:  # recursive schema: stop here, accept anything
                return {}
            target = self._convert(copy.deepcopy(self.components[name]), strict, (*seen, name))
            if node.get("nullable"):
                target = {"anyOf": [target, {"type": "null"}]}
            return target
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("description", "example", "examples", "title", "nullable", "deprecated", "readOnly", "writeOnly"):
                continue
            if key == "properties":
                out[key] = {k: self._convert(v, strict, seen) for k, v in value.items()}
            elif key in ("items", "additionalProperties", "not"):
                out[key] = self._convert(value, strict, seen) if isinstance(value, dict) else value
            elif key in ("allOf", "anyOf", "oneOf"):
                out[key] = [self._convert(v, strict, seen) for v in value]
            elif key == "format":
                continue
            else:
                out[key] = value
        if node.get("type") == "integer" and node.get("format") == "int64":
            out = {"anyOf": [out, {"type": "string", "pattern": r"^-?\d+$"}]}
        if node.get("type") == "object" and strict and "properties" in node and "additionalProperties" not in node:
            out["additionalProperties"] = False
        if node.get("nullable"):
            out = {"anyOf": [out, {"type": "null"}]}
        return out


@pytest.fixture(scope="session")
def dialpad_spec() -> DialpadSpec:
    if not DIALPAD_SPEC.is_file():
        pytest.skip(f"Dialpad OpenAPI document not found at {DIALPAD_SPEC} (set PA_TUI_SPECS_DIR)")
    return DialpadSpec(json.loads(DIALPAD_SPEC.read_text()))
