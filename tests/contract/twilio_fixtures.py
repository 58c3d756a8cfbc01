"""Helpers for the Twilio contract tests: the official spec (openapi-core), a recording transport,
and a loopback environment (simulator + a webhook receiver served by SimulatorHost).

Imported explicitly by the test modules (``from twilio_fixtures import …``); this is not a conftest.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pa_tui.backends.twilio import TwilioClient
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.twilio_sim import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_NUMBER, TwilioSimulator

T = TypeVar("T")

SPECS_DIR = Path(os.environ.get("PA_TUI_SPECS_DIR", Path(__file__).resolve().parents[3] / "shared" / "specs"))
TWILIO_SPEC = SPECS_DIR / "twilio_api_v2010.json"
SPEC_HOST = "https://api.twilio.com"

AC = DEFAULT_ACCOUNT_SID
TOKEN = DEFAULT_AUTH_TOKEN
OURS = DEFAULT_NUMBER
MG = "MG" + "d" * 32
SK = "SK" + "e" * 32
KEY_SECRET = "sim-key-secret-0123"
PATIENT = "+14085551212"
LANDLINE = "+12025550143"
UNREGISTERED = "+13035550111"


# --------------------------------------------------------------------------- spec
@dataclass
class TwilioSpec:
    """The official OpenAPI document, loaded twice: strict for requests, tolerant of uri-maps for responses."""

    document: dict[str, Any]
    requests: Any  # openapi_core.OpenAPI, unknown form fields forbidden
    responses: Any  # openapi_core.OpenAPI, every documented property required

    def operation(self, path: str, method: str) -> dict[str, Any]:
        return self.document["paths"][path][method.lower()]

    def form_schema(self, path: str) -> dict[str, Any]:
        return self.operation(path, "post")["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]

    def component(self, name: str) -> dict[str, Any]:
        return self.document["components"]["schemas"][name]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return self.component(ref.rsplit("/", 1)[-1]) if ref else schema

    def request_errors(self, request: httpx.Request) -> list[Exception]:
        result = self.requests.unmarshal_request(to_openapi_request(request))
        return list(result.errors)

    def response_errors(self, request: httpx.Request, response: httpx.Response) -> list[Exception]:
        result = self.responses.unmarshal_response(to_openapi_request(request), to_openapi_response(response))
        return list(result.errors)


def load_spec() -> TwilioSpec:
    from openapi_core import Config, OpenAPI

    if not TWILIO_SPEC.is_file():
        pytest.skip(f"Twilio OpenAPI document not found at {TWILIO_SPEC} (set PA_TUI_SPECS_DIR)")
    document = json.loads(TWILIO_SPEC.read_text())
    strict = OpenAPI.from_dict(
        document, config=Config(spec_validator_cls=None, additional_properties_default_policy="forbid")
    )
    tolerant = OpenAPI.from_dict(
        document, config=Config(spec_validator_cls=None, response_properties_default_policy="required")
    )
    return TwilioSpec(document=document, requests=strict, responses=tolerant)


def to_openapi_request(request: httpx.Request) -> Any:
    """An httpx request as openapi-core sees it, moved onto the spec's server (https://api.twilio.com)."""
    from openapi_core.testing import MockRequest
    from werkzeug.datastructures import ImmutableMultiDict

    content_type = request.headers.get("content-type", "")
    mock = MockRequest(
        SPEC_HOST,
        request.method,
        request.url.path,
        headers=dict(request.headers),
        data=request.content or None,
        content_type=content_type.split(";")[0] if content_type else "application/json",
    )
    mock.parameters.query = ImmutableMultiDict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
    return mock


def to_openapi_response(response: httpx.Response) -> Any:
    from openapi_core.testing import MockResponse

    return MockResponse(
        response.content,
        status_code=response.status_code,
        headers=dict(response.headers),
        content_type=response.headers.get("content-type", "application/json").split(";")[0],
    )


# --------------------------------------------------------------------------- recording transport
@dataclass
class Exchange:
    request: httpx.Request
    response: httpx.Response


class Recorder(httpx.AsyncBaseTransport):
    """Wraps a transport and keeps every request with its (fully read) response."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        recorded = httpx.Response(response.status_code, headers=response.headers, content=content, request=request)
        self.exchanges.append(Exchange(request, recorded))
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# --------------------------------------------------------------------------- webhook receiver
@dataclass
class Received:
    path: str
    url: str
    method: str
    headers: dict[str, str]
    params: list[tuple[str, str]]

    @property
    def form(self) -> dict[str, str]:
        return dict(self.params)


@dataclass
class Receiver:
    """A small Starlette app standing in for pa-tui's inbound listener: records what arrives."""

    received: list[Received] = field(default_factory=list)
    status_code: int = 200
    twiml: str = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    async def _handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        params = parse_qsl(body, keep_blank_values=True)
        if request.method == "GET":
            params = parse_qsl(request.url.query, keep_blank_values=True)
        with self._lock:
            self.received.append(
                Received(
                    path=request.url.path,
                    url=str(request.url),
                    method=request.method,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    params=params,
                )
            )
        return Response(self.twiml, status_code=self.status_code, media_type="text/xml")

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]


@dataclass
class TwilioEnv:
    """A simulator and a webhook receiver, both on loopback in one SimulatorHost."""

    sim: TwilioSimulator
    receiver: Receiver
    host: SimulatorHost

    @property
    def base_url(self) -> str:
        return self.host.url("twilio")

    def hook(self, path: str) -> str:
        return f"{self.host.url('receiver')}{path}"

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a simulator control coroutine on the simulator's own loop."""
        return await self.host.acall(coro)

    def client(self, **kwargs: Any) -> TwilioClient:
        if "api_key" not in kwargs:
            kwargs.setdefault("auth_token", TOKEN)
        kwargs.setdefault("backoff_initial", 0.01)
        kwargs.setdefault("backoff_max", 0.05)
        return TwilioClient(account_sid=AC, base_url=self.base_url, **kwargs)


def make_simulator(**kwargs: Any) -> TwilioSimulator:
    kwargs.setdefault("api_keys", {SK: KEY_SECRET})
    kwargs.setdefault("messaging_service_sid", MG)
    kwargs.setdefault("fail_numbers", {LANDLINE: 30006, UNREGISTERED: 30034})
    kwargs.setdefault("callback_delay", 0.01)
    return TwilioSimulator(**kwargs)


@pytest.fixture
def twilio_env() -> Iterator[TwilioEnv]:
    sim = make_simulator()
    receiver = Receiver()
    host = SimulatorHost()
    host.add("twilio", sim.app)
    host.add("receiver", receiver.app)
    host.start()
    try:
        yield TwilioEnv(sim=sim, receiver=receiver, host=host)
    finally:
        host.call(sim.aclose())
        host.stop()


async def eventually(check: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> None:
    """Wait until ``check()`` holds (for state written on the simulator's thread)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


def without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
