"""Crash safety and many processes at once, with real subprocesses using the Store API."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pa_tui.backends.store import SqliteStore


async def _spawn(cmd: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _expect_line(proc: asyncio.subprocess.Process, want: str, timeout: float = 30) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if line.decode().strip() != want:
        err = (await proc.stderr.read()).decode()[-2000:] if proc.stderr else ""
        raise AssertionError(f"expected {want!r}, got {line!r}; stderr: {err}")


async def test_sigkill_while_saving_loses_nothing_reported_saved(store_target: Any, proc_cmd: Any) -> None:
    """A console killed mid-save: every note it reported saved is there, and the draft is
    the last one it reported (or the one in flight when it died)."""
    async with store_target.make():  # create the schema first, like an earlier console did
        pass
    proc = await _spawn(proc_cmd("notes-loop", store_target, "pat-k"))
    assert proc.stdout is not None
    await _expect_line(proc, "ready")
    lines: list[str] = []
    deadline = time.monotonic() + 20
    while sum(line.startswith("note ") for line in lines) < 40 and time.monotonic() < deadline:
        lines.append((await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip())
    await asyncio.sleep(random.uniform(0, 0.05))  # land somewhere inside a save
    proc.send_signal(signal.SIGKILL)
    rest, _ = await proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    lines += rest.decode().split("\n")
    reported_notes = [line.split(" ", 1)[1] for line in lines if line.startswith("note ")]
    drafts = [int(line.split(" ", 1)[1]) for line in lines if line.startswith("draft ")]
    assert len(reported_notes) >= 40 and drafts

    async with store_target.make() as store:
        saved = {n.id for n in await store.notes_for("pat-k")}
        draft = await store.latest_draft("agent-k", "pat-k", "call-k")
    missing = [n for n in reported_notes if n not in saved]
    assert not missing, f"{len(missing)} notes reported saved were lost"
    assert len(saved) - len(reported_notes) <= 1  # at most the one in flight
    assert draft is not None
    stored = int(draft.text.split()[1])
    assert drafts[-1] <= stored <= drafts[-1] + 1


def _run_forked(cmd: list[str], procs: int, go: Path, timeout: float = 120) -> str:
    """Start the launcher, wait until all ``procs`` processes are open, let them go."""
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert launcher.stdout is not None
        for _ in range(procs):  # every process has opened the store (racing on the schema)
            line = launcher.stdout.readline().strip()
            assert line == "ready", f"{line!r}: {launcher.stderr.read() if launcher.stderr else ''}"
        go.touch()
        out, err = launcher.communicate(timeout=timeout)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, err[-3000:]
    assert "locked" not in err.lower() and "busy" not in err.lower(), err[-3000:]
    return out


@pytest.mark.parametrize("store_target", ["sqlite"], indirect=True)
def test_twenty_processes_write_to_one_sqlite_file(store_target: Any, proc_cmd: Any, tmp_path: Path) -> None:
    """Twenty consoles on one machine, one file: every row lands, nobody sees "database is locked"."""
    target, path = store_target, store_target.path
    go, procs, count = tmp_path / "go", 20, 50
    out = _run_forked(proc_cmd("writer", target, "agent{n}", str(count), str(go), procs=procs), procs, go)
    assert out.split() == ["done"] * procs

    async def check() -> None:
        async with SqliteStore(path) as store:
            for n in range(procs):
                notes = await store.notes_for(f"p-agent{n:02d}")
                assert sorted(x.id for x in notes) == sorted(f"agent{n:02d}-{i}" for i in range(count))
            rows = await store.audit_rows()
            assert Counter(r.agent_id for r in rows) == {f"agent{n:02d}": count for n in range(procs)}

    asyncio.run(check())


def test_workers_in_separate_processes_never_send_an_item_twice(
    store_target: Any, proc_cmd: Any, tmp_path: Path
) -> None:
    async def fill() -> None:
        async with store_target.make() as store:
            for i in range(80):
                await store.enqueue("sms.reminder", {"i": i}, f"remind:{i}")

    asyncio.run(fill())
    log, go, procs = tmp_path / "sent.log", tmp_path / "go", 4
    out = _run_forked(proc_cmd("drain", store_target, "w{n}", str(log), str(go), procs=procs), procs, go, 60)
    assert sum(int(line.split()[1]) for line in out.splitlines()) == 80
    keys = [line.split()[0] for line in log.read_text().splitlines()]
    assert Counter(keys) == {f"remind:{i}": 1 for i in range(80)}
    assert len({line.split()[1] for line in log.read_text().splitlines()}) > 1  # the work was shared

    async def check() -> None:
        async with store_target.make() as store:
            assert (await store.outbox_counts())["done"] == 80

    asyncio.run(check())
