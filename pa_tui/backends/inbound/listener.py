"""Serve the inbound app with uvicorn inside the console's own asyncio loop, and hand its facts over.

::

    listener = InboundListener.from_settings(settings)
    url = await listener.start()          # binds, serves, writes the pop endpoint file
    async for fact in listener.events():  # CallEvent, PopRequested, InboundSms, …
        ...
    await listener.stop()                 # stops serving, removes the file, ends events()

``start()`` and the consumer of ``events()`` must run on the same event loop
(the Textual App's). Facts wait in a bounded queue; when it is full a new fact
is dropped with a log line (no PHI) and the HTTP answer is not delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets as _secrets
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import uvicorn
from pydantic import SecretStr

from pa_tui.backends.base import BackendError
from pa_tui.backends.inbound.app import DRAIN_LIMIT, MAX_BODY, InboundConfig, build_app
from pa_tui.backends.inbound.endpoint import remove_pop_endpoint, write_pop_endpoint
from pa_tui.backends.inbound.facts import InboundFact, fact_kind
from pa_tui.domain.phones import DEFAULT_REGION

if TYPE_CHECKING:
    from pa_tui.config import ListenSettings, Settings

__all__ = ["FROM_SECRETS", "InboundError", "InboundListener"]

log = logging.getLogger("pa_tui.backends.inbound")


class _FromSecrets:
    def __repr__(self) -> str:
        return "FROM_SECRETS"


#: Default for a secret argument: read it from the keyring / environment (``pa_tui.secrets``) at start.
FROM_SECRETS: Final = _FromSecrets()
_CLOSED: Final = object()
_HEADER_LIMIT: Final = 16 * 1024


class InboundError(BackendError):
    """The listener cannot start (port taken, bad address)."""

    area = "inbound"


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    """How a local client reaches a listener bound to ``host``."""
    bare = host.strip("[]")
    if bare in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bare == "::":
        return "[::1]"
    return f"[{bare}]" if ":" in bare else bare


def _protocol_class(header_timeout: float) -> Any:
    """uvicorn's h11 protocol, plus deadlines for slow clients and a bound on discarded bodies.

    uvicorn bounds idle keep-alive connections but not a client trickling its
    headers; this closes a connection whose next request has not fully arrived
    ``header_timeout`` seconds after it connected or after its last response.
    After an early answer (413 while the body is still coming), uvicorn reads
    and discards the rest of the body so the client gets to read the answer;
    this stops that after :data:`DRAIN_LIMIT` bytes or ``header_timeout`` seconds.
    """
    try:
        import h11
        from uvicorn.protocols.http.h11_impl import H11Protocol
    except ImportError:  # pragma: no cover - uvicorn moved things: fall back to its plain h11
        return "h11"

    class _DeadlineH11(H11Protocol):  # type: ignore[misc]
        _pa_timer: asyncio.TimerHandle | None = None
        _pa_drained: int = 0

        def _pa_draining(self) -> bool:
            return self.cycle is not None and self.cycle.response_complete and self.conn.their_state is h11.SEND_BODY

        def _pa_arm(self) -> None:
            if self._pa_timer is not None:
                self._pa_timer.cancel()
            self._pa_timer = self.loop.call_later(header_timeout, self._pa_deadline)

        def _pa_deadline(self) -> None:
            self._pa_timer = None
            if self.transport.is_closing():
                return
            if self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete):
                log.info("inbound: request headers not received in %.1f s; connection closed", header_timeout)
                self.transport.close()
            elif self._pa_draining():
                log.info("inbound: unwanted request body still coming after %.1f s; connection closed", header_timeout)
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._pa_draining():
                self._pa_drained += len(data)
                if self._pa_drained > DRAIN_LIMIT:
                    log.info("inbound: unwanted request body over %d bytes; connection closed", DRAIN_LIMIT)
                    self.transport.close()
                    return
            super().data_received(data)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._pa_arm()

        def on_response_complete(self) -> None:
            self._pa_drained = 0
            super().on_response_complete()
            if not self.transport.is_closing():
                self._pa_arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._pa_timer is not None:
                self._pa_timer.cancel()
                self._pa_timer = None
            super().connection_lost(exc)

    return _DeadlineH11


class InboundListener:
    """The console's one small HTTP listener: Dialpad webhooks, Twilio callbacks, 8x8 and CLI pops.

    Arguments:
        host, port: where to listen (``127.0.0.1`` by default; port ``0`` picks a free one).
        public_base_url: the URL Twilio was configured with, e.g. ``https://pa.clinic.example``
            for a site behind a TLS reverse proxy; Twilio signatures are checked against it.
            Without it they are checked against the request's own URL.
        trust_proxy: honour ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` when rebuilding that
            URL (only with a reverse proxy in front). Also makes 8x8 pops need ``pop_token``.
        pop_token: the ``pop_token`` query parameter 8x8 pops must carry when the listener is
            reachable from outside this machine.
        require_pop_token: force (``True``) or waive (``False``) that check; by default it is
            required when bound to a non-loopback address or ``trust_proxy`` is set.
        dialpad_secret, twilio_auth_token: the Dialpad webhook secret and Twilio auth token;
            by default read from the keyring / environment at :meth:`start`
            (``pa-tui auth set dialpad-webhook`` / ``twilio``). ``None``: not configured
            (those routes answer 503).
        endpoint_file: where to write the ``pa-tui pop`` endpoint file; ``True`` for the
            default per-user location, ``False`` for none.
        queue_size: facts waiting for the App before new ones are dropped.
        max_body, body_timeout, header_timeout, timeout_keep_alive, limit_concurrency:
            request hardening (bytes and seconds).
        replay_window: seconds a Twilio request (or a Dialpad JWT without ``exp``) is remembered.
        region: the home region for national-format numbers in pops.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        public_base_url: str | None = None,
        trust_proxy: bool = False,
        pop_token: str | SecretStr | None = None,
        require_pop_token: bool | None = None,
        dialpad_secret: str | SecretStr | None | _FromSecrets = FROM_SECRETS,
        twilio_auth_token: str | SecretStr | None | _FromSecrets = FROM_SECRETS,
        endpoint_file: Path | bool = True,
        queue_size: int = 256,
        max_body: int = MAX_BODY,
        body_timeout: float = 10.0,
        header_timeout: float = 10.0,
        timeout_keep_alive: int = 5,
        limit_concurrency: int = 64,
        replay_window: float = 600.0,
        region: str = DEFAULT_REGION,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError("port must be 0..65535")
        if public_base_url is not None:
            public_base_url = _check_base_url(public_base_url)
        self.host = host
        self.port = port
        self.public_base_url = public_base_url
        self.trust_proxy = trust_proxy
        self.loopback = _is_loopback(host)
        self.pop_token_required = (
            require_pop_token if require_pop_token is not None else (not self.loopback or trust_proxy)
        )
        if isinstance(pop_token, SecretStr):
            pop_token = pop_token.get_secret_value()
        self._dialpad_arg = dialpad_secret
        self._twilio_arg = twilio_auth_token
        self._dialpad_secret: SecretStr | None = None
        self._twilio_token: SecretStr | None = None
        self._cli_token = _secrets.token_urlsafe(32)
        self._endpoint_arg = endpoint_file
        self.endpoint_path: Path | None = None
        self.queue_size = max(1, queue_size)
        # One spare slot so the end-of-stream marker always fits.
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=self.queue_size + 1)
        self._closed = False
        self.dropped = 0
        self.header_timeout = header_timeout
        self.timeout_keep_alive = timeout_keep_alive
        self.limit_concurrency = limit_concurrency
        self.config = InboundConfig(
            dialpad_secret=lambda: self._dialpad_secret,
            twilio_auth_token=lambda: self._twilio_token,
            cli_token=self._cli_token,
            pop_token=pop_token or None,
            require_pop_token=self.pop_token_required,
            public_base_url=public_base_url,
            trust_proxy=trust_proxy,
            max_body=max_body,
            body_timeout=body_timeout,
            replay_window=replay_window,
            region=region,
        )
        self.app = build_app(self.config, self._emit)
        self.url: str | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        if self.pop_token_required and not self.config.pop_token:
            log.warning("inbound: 8x8 pops need a pop_token here and none is configured; they will be refused")

    @classmethod
    def from_settings(cls, settings: Settings | ListenSettings, **overrides: Any) -> InboundListener:
        """From ``Settings`` (or its ``listen`` section). Knows ``host`` and ``port``, and picks up
        ``public_base_url``, ``trust_proxy`` and ``pop_token`` should the section grow them."""
        listen = getattr(settings, "listen", settings)
        kwargs: dict[str, Any] = {"host": listen.host, "port": listen.port}
        for name in ("public_base_url", "trust_proxy", "pop_token", "require_pop_token"):
            value = getattr(listen, name, None)
            if value is not None:
                kwargs[name] = value
        region = getattr(settings, "region", None)
        if isinstance(region, str):
            kwargs["region"] = region
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------------ facts
    def _emit(self, fact: object) -> None:
        if self._closed:
            log.info("inbound: %s arrived after stop; dropped", fact_kind(fact))
            return
        if self._queue.qsize() >= self.queue_size:
            self.dropped += 1
            log.warning(
                "inbound: dropped a %s fact: the console is not keeping up (%d waiting, %d dropped so far)",
                fact_kind(fact), self.queue_size, self.dropped,
            )
            return
        self._queue.put_nowait(fact)

    @property
    def queue(self) -> asyncio.Queue[Any]:
        """The facts waiting (prefer :meth:`events`, which also ends at :meth:`stop`)."""
        return self._queue

    async def events(self) -> AsyncIterator[InboundFact]:
        """Each fact as it arrives; ends after :meth:`stop`."""
        while True:
            fact = await self._queue.get()
            if fact is _CLOSED:
                self._queue.put_nowait(_CLOSED)  # for any other consumer; the slot just freed
                return
            yield fact

    def _close_queue(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_CLOSED)

    # ------------------------------------------------------------------ secrets
    async def reload_secrets(self) -> None:
        """Read the Dialpad webhook secret and Twilio auth token again (after ``pa-tui auth set``)."""
        self._dialpad_secret = await self._resolve(self._dialpad_arg, "dialpad-webhook")
        self._twilio_token = await self._resolve(self._twilio_arg, "twilio")

    @staticmethod
    async def _resolve(arg: str | SecretStr | None | _FromSecrets, name: str) -> SecretStr | None:
        if isinstance(arg, _FromSecrets):
            from pa_tui.secrets import get_secret

            try:
                return await asyncio.to_thread(get_secret, name)
            except Exception as exc:  # a broken keyring must not stop the console
                log.warning("inbound: could not read secret %s (%s)", name, type(exc).__name__)
                return None
        if isinstance(arg, SecretStr):
            return arg if arg.get_secret_value() else None
        return SecretStr(arg) if arg else None

    @property
    def cli_token(self) -> str:
        """The bearer token ``POST /pop`` expects (also in the endpoint file)."""
        return self._cli_token

    # ------------------------------------------------------------------ run
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> str:
        """Bind and serve on the running loop; returns the local URL (``http://127.0.0.1:PORT``)."""
        if self._task is not None:
            raise RuntimeError("the inbound listener is already running")
        if self._closed:  # started again after a stop: a fresh stream of facts
            self._queue = asyncio.Queue(maxsize=self.queue_size + 1)
            self._closed = False
        await self.reload_secrets()
        sock = self._bind()
        port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            host=self.host.strip("[]"),
            port=port,
            http=_protocol_class(self.header_timeout),
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            access_log=False,
            proxy_headers=False,  # X-Forwarded-* are handled by the app, and only with trust_proxy
            server_header=False,
            timeout_keep_alive=self.timeout_keep_alive,
            timeout_graceful_shutdown=2,
            limit_concurrency=self.limit_concurrency,
            h11_max_incomplete_event_size=_HEADER_LIMIT,
        )
        server = uvicorn.Server(config)
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # the console owns signals
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="pa-tui-inbound")
        try:
            while not server.started:
                if self._task.done():
                    exc = self._task.exception() if not self._task.cancelled() else None
                    raise InboundError(
                        f"the inbound listener failed to start ({type(exc).__name__ if exc else 'stopped'})",
                        "see the log file for details",
                    )
                await asyncio.sleep(0.01)
        except BaseException:
            await self._shutdown_server()
            with contextlib.suppress(OSError):
                sock.close()
            raise
        self.url = f"http://{_url_host(self.host)}:{port}"
        self.port = port
        if self._endpoint_arg is not False:
            target = None if self._endpoint_arg is True else Path(self._endpoint_arg)
            try:
                self.endpoint_path = await asyncio.to_thread(write_pop_endpoint, self.url, self._cli_token, target)
            except OSError as exc:
                log.warning("inbound: `pa-tui pop` will not find this console (%s)", exc)
        log.info("inbound listener serving on port %d (loopback=%s)", port, self.loopback)
        return self.url

    def _bind(self) -> socket.socket:
        host = self.host.strip("[]")
        try:
            infos = socket.getaddrinfo(host or None, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror:
            raise InboundError(
                f"cannot listen on {self.host!r}: not an address of this machine",
                "set listen.host to 127.0.0.1 (the default)",
            ) from None
        family, _, proto, _, address = infos[0]
        # proto must be IPPROTO_TCP, not 0: asyncio only turns Nagle off (TCP_NODELAY) on sockets that
        # say so, and with Nagle on, every keep-alive response waits out the client's delayed ACK (40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
        try:
            if sys.platform != "win32":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise InboundError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or type(exc).__name__}",
                "another pa-tui console or program may use this port; set listen.port "
                "(or PA_TUI_LISTEN__PORT) to a free one",
            ) from None
        return sock

    async def _shutdown_server(self, timeout: float = 5.0) -> None:
        server, task = self._server, self._task
        self._server, self._task = None, None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except asyncio.CancelledError:
            server.force_exit = True
            task.cancel()
            raise
        except Exception as exc:
            log.warning("inbound: listener stopped with %s", type(exc).__name__)

    async def stop(self) -> None:
        """Stop serving, remove the endpoint file and end :meth:`events`. Safe to call twice."""
        try:
            await self._shutdown_server()
        finally:
            if self.endpoint_path is not None:
                path, self.endpoint_path = self.endpoint_path, None
                await asyncio.to_thread(remove_pop_endpoint, path, self._cli_token)
            self._close_queue()
            if self.url:
                log.info("inbound listener stopped")

    async def serve(self) -> None:
        """Start, then serve until cancelled (or until :meth:`stop` is called elsewhere)."""
        await self.start()
        task = self._task
        try:
            if task is not None:
                await asyncio.shield(task)
        finally:
            await self.stop()

    async def __aenter__(self) -> InboundListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"InboundListener(url={self.url!r}, loopback={self.loopback})"


def _check_base_url(url: str) -> str:
    from urllib.parse import urlsplit

    text = url.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("public_base_url is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("public_base_url must be an http(s) URL such as https://pa.clinic.example (no query)")
    return text
