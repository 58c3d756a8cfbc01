"""Serve simulator ASGI apps on 127.0.0.1, each on its own port, in a background thread.

The simulators run on their own event loop so that, seen from the console,
they are a remote service: the console's loop never does their work, and the
console reaches them only over real HTTP and websockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn

log = logging.getLogger(__name__)

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


@dataclass
class _Served:
    name: str
    app: Any
    sock: socket.socket
    server: uvicorn.Server | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


@dataclass
class SimulatorHost:
    """Runs ASGI apps on loopback. Use as a context manager or call start()/stop()."""

    host: str = LOOPBACK
    _apps: dict[str, _Served] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _startup_error: BaseException | None = None
    _on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def add(self, name: str, app: Any, port: int = 0) -> None:
        if self._thread is not None:
            raise RuntimeError("add() every app before start()")
        if self.host not in (LOOPBACK, "localhost", "::1") and not self.host.startswith("127."):
            log.warning("simulator %s bound to a non-loopback address", name)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets of a TCP
        # listener it recognises, and without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen for the {name} simulator on {self.host}:{port}: {exc.strerror}") from None
        sock.listen(512)
        sock.setblocking(False)
        self._apps[name] = _Served(name=name, app=app, sock=sock)

    def on_start(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn()`` on the host loop once every server listens (e.g. a scenario)."""
        self._on_start.append(fn)

    def url(self, name: str, scheme: str = "http") -> str:
        served = self._apps[name]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{served.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("host not started")
        return self._loop

    def start(self, timeout: float = 10.0) -> SimulatorHost:
        self._thread = threading.Thread(target=self._run, name="pa-tui-simulators", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("simulators did not start in time")
        if self._startup_error is not None:
            raise RuntimeError(f"simulators failed to start: {self._startup_error}") from self._startup_error
        return self

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run a coroutine on the simulators' loop from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return self.submit(coro).result(timeout)

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine on the simulators' loop from another running loop."""
        return await asyncio.wrap_future(self.submit(coro))

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        for served in self._apps.values():
            if served.server is not None:
                served.server.should_exit = True
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> SimulatorHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() if it happens before ready
            self._startup_error = exc
            self._ready.set()
        finally:
            with contextlib.suppress(Exception):
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        tasks = []
        for served in self._apps.values():
            config = uvicorn.Config(
                served.app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ws_ping_interval=None,
                timeout_graceful_shutdown=1,
            )
            server = uvicorn.Server(config)
            server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            served.server = server
            tasks.append(asyncio.create_task(server.serve(sockets=[served.sock]), name=f"sim-{served.name}"))
        while not all(s.server is not None and s.server.started for s in self._apps.values()):
            if any(t.done() for t in tasks):
                for t in tasks:
                    if t.done() and t.exception():
                        raise t.exception()  # type: ignore[misc]
                raise RuntimeError("a simulator stopped during start-up")
            await asyncio.sleep(0.01)
        for fn in self._on_start:
            tasks.append(asyncio.create_task(fn(), name="sim-on-start"))
        self._ready.set()
        await asyncio.gather(*tasks[: len(self._apps)], return_exceptions=True)
