"""The console under test: the real App (``make_app``) on the real backends, headless.

The backends are built by :meth:`DemoEnvironment.backends` itself — the code path
``pa-tui demo`` uses — pointed at the simulators in the child process. Nothing in
the App is replaced; two things are observed:

- ``message_hook`` (``App.run_test``): sees each message just before its handler runs
  (the hook and a synchronous handler run back to back, with no await between them);
- ``App._display``: called once per screen refresh with the compositor's finished
  update (headless, so nothing is written to a terminal). A fact handled before a
  refresh is on screen when that refresh reaches ``_display``.

"On screen" for a message = the first ``_display`` after its handler ran.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

Listener = Callable[[float], None]


def make_console(info: dict[str, Any], folder: Path, **kwargs: Any) -> Any:
    """``make_app(settings, DemoEnvironment.backends(...))`` against the simulator process."""
    from pa_tui.app import make_app
    from pa_tui.config import load_settings
    from pa_tui.demo.launch import DemoEnvironment

    env = SimpleNamespace(
        api_key=info["api_key"],
        dialpad_url=info["dialpad_url"],
        fhir_url=info["fhir_url"],
        twilio_url=info["twilio_url"],
        agent_id=info["agent_id"],
        twilio=SimpleNamespace(auth_token=info["twilio_auth_token"]),
    )
    folder.mkdir(parents=True, exist_ok=True)
    backends = DemoEnvironment.backends(env, store_path=folder / "store.db")  # type: ignore[arg-type]
    return make_app(load_settings(), backends, **kwargs)


class Frames:
    """Calls listeners with ``perf_counter()`` at every refresh of the App's screen."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0
        self.listeners: list[Listener] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            if renderable is not None and not app._batch_count:
                now = time.perf_counter()
                self.count += 1
                for listener in self.listeners:
                    listener(now)
            original(screen, renderable)

        app._display = display  # instance attribute: the screen calls app._display(...)


class Hooks:
    """A ``message_hook`` that fans messages out by type; cheap for every other message."""

    def __init__(self) -> None:
        self.by_type: dict[type, list[Callable[[Any], None]]] = {}

    def on(self, kind: type, fn: Callable[[Any], None]) -> None:
        self.by_type.setdefault(kind, []).append(fn)

    def __call__(self, message: Any) -> None:
        fns = self.by_type.get(type(message))
        if fns:
            for fn in fns:
                fn(message)


class RequestLog:
    """Every request the App's FHIR client sends: (method, url, start, end) with perf_counter times."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.items: list[list[Any]] = []
        self._open: dict[int, list[Any]] = {}

        async def on_request(request: httpx.Request) -> None:
            item = [request.method, str(request.url), time.perf_counter(), None]
            self._open[id(request)] = item
            self.items.append(item)

        async def on_response(response: httpx.Response) -> None:
            item = self._open.pop(id(response.request), None)
            if item is not None:
                item[3] = time.perf_counter()

        client.event_hooks["request"].append(on_request)
        client.event_hooks["response"].append(on_response)

    def take(self) -> list[list[Any]]:
        items, self.items = self.items, []
        return items


def waves(requests: list[list[Any]]) -> list[list[str]]:
    """Group requests as the App sent them: a request that started before every earlier one had
    answered runs beside them (same wave); one that waited for an answer starts a new wave."""
    out: list[list[str]] = []
    wave_end = -1.0
    for method, url, start, end in sorted(requests, key=lambda r: r[2]):
        if method != "GET":
            continue
        if not out or start >= wave_end:
            out.append([url])
            wave_end = end or start
        else:
            out[-1].append(url)
            wave_end = max(wave_end, end or start)
    return out


async def replay(client: httpx.AsyncClient, groups: list[list[str]]) -> float:
    """Send the groups one after another, each group's requests concurrently. Seconds taken."""
    t0 = time.perf_counter()
    for group in groups:
        responses = await asyncio.gather(*(client.get(url) for url in group))
        for r in responses:
            if r.status_code >= 400:
                raise RuntimeError(f"floor request answered {r.status_code}")
    return time.perf_counter() - t0


def floor_client() -> httpx.AsyncClient:
    """A plain httpx client, as the App's FHIR client is set up (keep-alive, FHIR JSON)."""
    return httpx.AsyncClient(
        headers={"Accept": "application/fhir+json", "User-Agent": "pa-tui-bench"},
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=50),
    )


async def until(predicate: Callable[[], bool], timeout: float, step: float = 0.0005) -> bool:
    """Poll ``predicate`` on the App's loop (every ``step`` s) until true or ``timeout``."""
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(step)
    return True


def busy(app: Any) -> bool:
    """True while the App or its screen still has messages or after-refresh callbacks queued."""
    screen = app.screen
    return not app._message_queue.empty() or not screen._message_queue.empty() or bool(screen._callbacks)


async def quiet(app: Any, frames: Frames, settle: float = 0.04, timeout: float = 10.0) -> bool:
    """Wait until the console is idle: nothing queued on the App or its screen and no refresh for
    ``settle`` seconds. False if that did not happen within ``timeout``."""
    deadline = time.perf_counter() + timeout
    seen = frames.count
    since = time.perf_counter()
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
        if frames.count != seen or busy(app):
            seen = frames.count
            since = time.perf_counter()
        elif time.perf_counter() - since >= settle:
            return True
    return False


async def connected(app: Any, sim: Any, timeout: float = 30.0) -> None:
    """Wait until the console's websocket subscription is live and its store is open."""
    from pa_tui.backends.base import LinkStatus

    ok = await sim.acall("wait_listener", timeout=timeout + 5)
    if not ok:
        raise RuntimeError("the console never subscribed to the simulator's events")
    if not await until(
        lambda: app.home.connection is not None and app.home.connection.status is LinkStatus.CONNECTED,
        timeout,
        0.01,
    ):
        raise RuntimeError("the console's event stream never said connected")
    await app._store_ready.wait()


def event_key(event: Any) -> tuple[str, str, int]:
    return (event.call_id, event.raw_state or event.state.value, int(round(event.event_timestamp.timestamp() * 1000)))


__all__ = [
    "Frames",
    "busy",
    "quiet",
    "Hooks",
    "RequestLog",
    "connected",
    "event_key",
    "floor_client",
    "make_console",
    "replay",
    "until",
    "waves",
]
