"""How ``pa-tui pop`` finds the console of the same user: a private runtime file, and the client call.

The listener writes ``pop.json`` at start — its loopback URL and a random
bearer token, mode 0600 in a 0700 directory — and removes it at stop.
``pa-tui pop`` reads it with :func:`read_pop_endpoint` and posts the pop with
:func:`send_pop`. The file lives in the user's runtime directory
(``platformdirs.user_runtime_path``, e.g. ``/run/user/1000/pa-tui``) when
there is one, else in the user's state directory; the reader looks in both.

A file is only believed when it belongs to the current user, is not readable
by anyone else and was written on this host by a process that is still alive,
so another user cannot plant one to receive this user's pops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import platformdirs

from pa_tui.backends.base import BackendError

__all__ = [
    "APP_NAME",
    "ENDPOINT_FILE_NAME",
    "ConsoleNotRunning",
    "PopEndpoint",
    "PopError",
    "default_endpoint_paths",
    "read_pop_endpoint",
    "remove_pop_endpoint",
    "send_pop",
    "write_pop_endpoint",
]

log = logging.getLogger(__name__)

APP_NAME: Final = "pa-tui"
ENDPOINT_FILE_NAME: Final = "pop.json"
POP_PATH: Final = "/pop"
_MAX_FILE: Final = 4096


class PopError(BackendError):
    """``pa-tui pop`` could not hand the pop to a console."""

    area = "pop"


class ConsoleNotRunning(PopError):
    """No console of this user is listening."""

    def __init__(self) -> None:
        super().__init__(
            "no pa-tui console is running for this user",
            "start `pa-tui` (or `pa-tui demo`) in another terminal first, then run `pa-tui pop` again",
        )


@dataclass(frozen=True)
class PopEndpoint:
    """Where the running console listens and the token it expects. ``repr`` hides the token."""

    url: str
    token: str
    pid: int | None = None
    host: str | None = None
    path: Path | None = None

    def __repr__(self) -> str:
        return f"PopEndpoint(url={self.url!r}, pid={self.pid!r})"


# --------------------------------------------------------------------------- file
def _runtime_dir() -> Path | None:
    """The user's private runtime directory for pa-tui, or ``None`` when there is none.

    On Linux and the BSDs this is ``$XDG_RUNTIME_DIR`` (else ``/run/user/UID``) only
    if it exists, belongs to the user and is private: platformdirs would fall back to a
    directory under the shared ``/tmp``, which is no place for a token.
    """
    if os.name == "posix" and sys.platform != "darwin":
        xdg = os.environ.get("XDG_RUNTIME_DIR", "").strip()
        base = Path(xdg) if xdg else Path(f"/run/user/{os.getuid()}")
        try:
            st = base.stat()
        except OSError:
            return None
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            return None
        return base / APP_NAME
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runtime = platformdirs.user_runtime_path(APP_NAME)
    except Exception:
        return None
    return runtime if runtime.parent.is_dir() else None


def default_endpoint_paths() -> list[Path]:
    """Where the endpoint file may be, in the order the writer tries them: runtime dir, then state dir."""
    paths: list[Path] = []
    runtime = _runtime_dir()
    if runtime is not None:
        paths.append(runtime / ENDPOINT_FILE_NAME)
    paths.append(platformdirs.user_state_path(APP_NAME) / ENDPOINT_FILE_NAME)
    return list(dict.fromkeys(paths))


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if sys.platform != "win32":
        st = directory.stat()
        if st.st_uid != os.getuid():
            raise PermissionError("directory belongs to another user")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(directory, 0o700)


def write_pop_endpoint(url: str, token: str, path: Path | None = None) -> Path:
    """Write the endpoint file (atomically, mode 0600); returns where it went."""
    data = json.dumps({"url": url, "token": token, "pid": os.getpid(), "host": socket.gethostname()}).encode()
    candidates = [path] if path is not None else default_endpoint_paths()
    last: OSError | None = None
    for target in candidates:
        try:
            _private_dir(target.parent)
            fd, tmp = tempfile.mkstemp(prefix=".pop-", suffix=".tmp", dir=target.parent)
            try:
                if sys.platform != "win32":
                    os.fchmod(fd, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            last = exc
            log.debug("pop endpoint: cannot write in %s (%s)", target.parent, type(exc).__name__)
            continue
        log.debug("pop endpoint written to %s", target)
        return target
    raise OSError(f"cannot write the pop endpoint file ({type(last).__name__ if last else 'no location'})")


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _load(path: Path) -> PopEndpoint | None:
    """The endpoint in ``path`` if it is trustworthy and current, else ``None``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if sys.platform != "win32":
            if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077 or not stat.S_ISREG(st.st_mode):
                log.warning("ignoring pop endpoint file %s: not private to this user", path)
                return None
        raw = os.read(fd, _MAX_FILE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(raw) > _MAX_FILE:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    url, token, pid, host = data.get("url"), data.get("token"), data.get("pid"), data.get("host")
    if not isinstance(url, str) or not url.startswith("http") or not isinstance(token, str) or not token:
        return None
    if isinstance(host, str) and host != socket.gethostname():
        return None  # a shared home directory: that console runs on another machine
    if isinstance(pid, int) and not isinstance(pid, bool):
        if not _pid_alive(pid):
            return None
    else:
        pid = None
    host = host if isinstance(host, str) else None
    return PopEndpoint(url=url.rstrip("/"), token=token, pid=pid, host=host, path=path)


def read_pop_endpoint(path: Path | None = None) -> PopEndpoint:
    """The running console's endpoint; raises :class:`ConsoleNotRunning` when there is none."""
    for candidate in [path] if path is not None else default_endpoint_paths():
        endpoint = _load(candidate)
        if endpoint is not None:
            return endpoint
    raise ConsoleNotRunning()


def remove_pop_endpoint(path: Path, token: str) -> None:
    """Remove the file at ``path`` if it is still ours (another console may have replaced it)."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(_MAX_FILE + 1))
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.get("token") == token:
        with contextlib.suppress(OSError):
            path.unlink()


# --------------------------------------------------------------------------- client
async def send_pop(
    ani: str,
    dnis: str | None = None,
    *,
    endpoint_file: Path | None = None,
    timeout: float = 5.0,
) -> None:
    """Ask this user's running console to pop the caller ``ani`` (``pa-tui pop --ani … [--dnis …]``).

    Raises :class:`ConsoleNotRunning` when no console listens, :class:`PopError`
    when the console refused the pop (the message says why; it never repeats the number).
    """
    endpoint = read_pop_endpoint(endpoint_file)
    body = {"ani": ani, "dnis": dnis}
    try:
        # trust_env=False: an HTTP(S)_PROXY in the shell must never see a pop. Plain http needs no CA bundle.
        plain = endpoint.url.startswith("http://")
        async with httpx.AsyncClient(
            timeout=timeout, trust_env=False, follow_redirects=False, verify=not plain
        ) as http:
            response = await http.post(
                endpoint.url + POP_PATH,
                json=body,
                headers={"Authorization": f"Bearer {endpoint.token}"},
            )
    except (httpx.ConnectError, httpx.RemoteProtocolError):
        raise ConsoleNotRunning() from None
    except httpx.TimeoutException:
        raise PopError(
            "the pa-tui console did not answer in time",
            "check that the console is not frozen, then try again",
        ) from None
    except httpx.HTTPError as exc:
        raise PopError(f"could not reach the pa-tui console ({type(exc).__name__})", "try again") from None
    if response.status_code in (200, 202):
        return
    message = ""
    with contextlib.suppress(ValueError):
        payload = response.json()
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            message = payload["error"][:300]
    if response.status_code == 401:
        raise PopError(
            "the running console refused the pop: its token does not match",
            "restart the pa-tui console (another one may have replaced its endpoint file)",
            status=401,
        )
    if response.status_code == 400:
        raise PopError(message or "the console rejected the pop", "check the --ani and --dnis values", status=400)
    raise PopError(
        f"the pa-tui console answered HTTP {response.status_code}" + (f": {message}" if message else ""),
        status=response.status_code,
    )
