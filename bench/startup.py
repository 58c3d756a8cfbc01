"""Start-up: ``pa-tui demo`` to its first frame, vs a bare Textual app that shows one label.

Each run is a real process on a real pseudo-terminal (160×48, TERM=xterm-256color,
a fresh empty HOME so no config, data or cache of the user's is read): the clock
starts just before the process is spawned and stops when the first frame's text
arrives on the terminal — the console's "Live events" pane title for ``pa-tui
demo``, the label for the bare app (``python -m bench._bare_app``). Nothing is
hooked inside either process. The two alternate, after one untimed warm-up each.

Also timed (same way, no terminal): the interpreter importing what each needs,
to split the gap between imports and everything else.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from bench._common import Budget, Dist, Row, progress, standalone

RATIO = 1.5
DEMO_MARKER = b"Live events"
BARE_MARKER = b"bare-textual-ready"


def pa_tui_command() -> list[str]:
    exe = Path(sys.executable).with_name("pa-tui")
    if exe.exists():
        return [str(exe), "demo"]
    found = shutil.which("pa-tui")
    return [found, "demo"] if found else [sys.executable, "-m", "pa_tui", "demo"]


def first_frame(cmd: list[str], marker: bytes, env: dict[str, str], timeout: float = 30.0) -> float | None:
    """Seconds from spawning ``cmd`` on a fresh pty to ``marker`` appearing on it; None on timeout."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                            close_fds=True)
    os.close(slave)
    seen = b""
    found: float | None = None
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            seen = (seen + data)[-65536:]
            if marker in seen:
                found = time.perf_counter() - t0
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
        # drain whatever is left so the child never blocks on a full pty
        try:
            while select.select([master], [], [], 0)[0] and os.read(master, 65536):
                pass
        except OSError:
            pass
        os.close(master)
    return found


def import_time(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - t0


def run(quick: bool) -> list[Row]:
    reps = 3 if quick else 10
    budget = Budget(25 if quick else 45)
    home = Path(tempfile.mkdtemp(prefix="pa-tui-bench-home-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PA_TUI_", "TEXTUAL"))}
    env.update(HOME=str(home), TERM="xterm-256color", XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local/share"), XDG_CACHE_HOME=str(home / ".cache"),
               PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    demo_cmd = pa_tui_command()
    bare_cmd = [sys.executable, "-m", "bench._bare_app"]
    progress(f"start-up: {' '.join(Path(demo_cmd[0]).name for _ in [0])} demo vs a bare Textual app, {reps} runs each")
    first_frame(bare_cmd, BARE_MARKER, env)
    first_frame(demo_cmd, DEMO_MARKER, env)
    demo: list[float] = []
    bare: list[float] = []
    failures = 0
    for _ in range(reps):
        if budget.over():
            break
        b = first_frame(bare_cmd, BARE_MARKER, env)
        d = first_frame(demo_cmd, DEMO_MARKER, env)
        if b is None or d is None:
            failures += 1
            continue
        bare.append(b * 1000)
        demo.append(d * 1000)
    imports_demo = [import_time("import pa_tui.cli, pa_tui.demo.launch, pa_tui.app", env) for _ in range(3)]
    imports_bare = [import_time("import textual.app, textual.widgets", env) for _ in range(3)]
    shutil.rmtree(home, ignore_errors=True)
    d, b = Dist.of(demo), Dist.of(bare)
    limit = RATIO * b.p50
    return [
        Row(
            figure="start-up: pa-tui demo → first frame",
            dist=d,
            target=f"≤ 1.5 × bare = {limit:.0f} ms (p50)",
            met=bool(demo) and d.p50 <= limit,
            note=(f"p50 ×{d.p50 / b.p50:.2f} bare; imports alone {min(imports_demo) * 1000:.0f} ms "
                  f"(bare Textual's {min(imports_bare) * 1000:.0f} ms)" + (f"; {failures} runs timed out" if failures else "")),
        ),
        Row(figure="  bare Textual app, one label → first frame", dist=b),
    ]


if __name__ == "__main__":
    standalone(run, "startup")
