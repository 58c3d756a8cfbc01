"""Store: note save latency with 20 concurrent writer processes, SQLite and PostgreSQL.

Twenty processes (forked after the imports, before any thread, loop or
connection exists, each then opening its own Store — as twenty consoles on one
SSH host would) save notes: ``await store.save_note(note)`` timed one by one,
after a few untimed ones and a common start signal. Each note is a new
~400-character note for its own patient and call, as an agent saves it.

The figure: each writer saves at random (Poisson) moments, 5 a second — 100
saves a second in all, far above what twenty agents type, so saves collide
often. Also shown: the same twenty saving back to back (a stress run: on two
cores, twenty busy processes measure the CPU queue as much as the store).

- SQLite: one WAL file shared by all twenty (the Store's defaults: WAL,
  ``synchronous=FULL`` — a saved note survives a power cut).
- PostgreSQL: a throwaway cluster started here (``initdb`` + ``pg_ctl`` from
  /usr/lib/postgresql/*/bin, as tests/contract/store/conftest.py does, but with
  PostgreSQL's durable defaults: ``fsync`` and ``synchronous_commit`` on),
  listening on 127.0.0.1 only, removed afterwards. Each writer has a pool of 2.
  Skipped with a note when the binaries (or, as root, ``runuser`` and a
  ``postgres`` user) are missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import multiprocessing as mp
import os
import random
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import MS, Dist, Row, progress, standalone

WRITERS = 20
TARGET_MS = 20.0
RATE = 5.0  # saves a second per writer, Poisson: 100 saves/s in all


# --------------------------------------------------------------------------- the writers
def _writer(n: int, backend: str, target: str, count: int, warmup: int, ready: Any, go: Any, out: Any,
            rate: float | None = None) -> None:
    from pa_tui.backends.store import PostgresStore, SqliteStore
    from pa_tui.domain.notes import Note

    async def main() -> list[float]:
        store = SqliteStore(target) if backend == "sqlite" else PostgresStore(target, max_size=2)
        await store.open()
        text = ("Caller asked to move the follow-up to next week; confirmed address and insurance. " * 5)[:400]
        times: list[float] = []
        rng = random.Random(n)
        try:
            next_at = 0.0
            for i in range(warmup + count):
                if i == warmup:
                    ready.release()
                    await asyncio.to_thread(go.wait, 120)
                    next_at = time.perf_counter() + rng.random() / (rate or 1.0)
                if rate and i >= warmup:
                    # open loop: Poisson arrivals, so saves from different consoles collide at random
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += rng.expovariate(rate)
                now = datetime.now(UTC)
                note = Note(
                    id=f"bench-{n}-{i}-{uuid.uuid4().hex[:8]}",
                    patient_id=f"pt-{n:03d}{i:04d}",
                    call_id=f"call-{n}-{i}",
                    agent_id=f"agent-{n:02d}",
                    text=text,
                    created_at=now,
                    updated_at=now,
                )
                t0 = time.perf_counter()
                await store.save_note(note)
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * MS)
        finally:
            await store.aclose()
        return times

    try:
        out.put((n, asyncio.run(main()), None))
    except BaseException as exc:  # noqa: BLE001
        ready.release()
        out.put((n, [], f"{type(exc).__name__}: {exc}"))


def _contend(backend: str, target: str, count: int, rate: float | None, warmup: int = 3
             ) -> tuple[list[float], list[str], float]:
    ctx = mp.get_context("fork")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(n, backend, target, count, warmup, ready, go, out, rate), daemon=True)
             for n in range(WRITERS)]
    # The schema is created by the first opener: do it once before the crowd arrives.
    first = ctx.Process(target=_writer, args=(99, backend, target, 1, 0, ctx.Semaphore(0), _Set(), out), daemon=True)
    first.start()
    first.join(60)
    out.get(timeout=10)
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire(timeout=120)
    t0 = time.perf_counter()
    go.set()
    samples: list[float] = []
    errors: list[str] = []
    for _ in procs:
        _n, times, error = out.get(timeout=300)
        samples.extend(times)
        if error:
            errors.append(error)
    took = time.perf_counter() - t0
    for p in procs:
        p.join(30)
        if p.is_alive():
            p.kill()
    return samples, errors, took


class _Set:
    """A stand-in for an already-set Event (the schema-creating writer never waits)."""

    def wait(self, timeout: float | None = None) -> bool:
        return True


# --------------------------------------------------------------------------- a throwaway PostgreSQL
def _pg_bin() -> Path | None:
    def version(path: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([\d.]+)/", path)
        return tuple(int(p) for p in m.group(1).split(".")) if m else (0,)

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NoPostgres(Exception):
    pass


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A DSN to a fresh PostgreSQL on 127.0.0.1, stopped and deleted on exit."""
    bindir = _pg_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        raise NoPostgres("no initdb/pg_ctl (install Debian's postgresql)")
    run_as: list[str] = []
    owner = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            raise NoPostgres("running as root needs runuser and a postgres OS user")
        run_as = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="pa-tui-bench-pg-"))
    data = root / "data"
    password = secrets.token_urlsafe(16)
    (root / "pw").write_text(password + "\n")
    if owner is not None:
        for p in (root, root / "pw"):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    try:
        init = subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "patui", "-E", "UTF8", "--locale=C",
             "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={root / 'pw'}"],
            capture_output=True, text=True, timeout=120,
        )
        if init.returncode != 0:
            raise NoPostgres(f"initdb failed: {init.stderr.strip()[-300:]}")
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200 -c shared_buffers=64MB"
        start = subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                                "-w", "-t", "30", "-o", opts, "start"], capture_output=True, text=True, timeout=60)
        if start.returncode != 0:
            raise NoPostgres(f"pg_ctl start failed: {start.stderr.strip()[-300:]}")
        try:
            yield f"postgresql://patui:{password}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                           capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- the figure
def _row(name: str, samples: list[float], errors: list[str], took: float, extra: str, stress: bool) -> Row:
    d = Dist.of(samples)
    ok = not errors and d.n > 0
    if stress:
        return Row(figure=f"  {name}, back to back (stress: 2 cores, 20 writers)", dist=d,
                   note=f"{d.n / took:.0f} saves/s overall" + (f"; {len(errors)} writers failed: {errors[0]}" if errors else ""))
    return Row(
        figure=f"Store: note save, {WRITERS} writer processes at {RATE:g}/s each, {name}",
        dist=d,
        target=f"p99 ≤ {TARGET_MS:.0f} ms",
        met=ok and d.p99 <= TARGET_MS,
        note=(f"{d.n / took:.0f} saves/s overall; {extra}" + (f"; {len(errors)} writers failed: {errors[0]}" if errors else "")),
    )


def run(quick: bool) -> list[Row]:
    count = 10 if quick else 30
    stress_count = 6 if quick else 15
    rows: list[Row] = []
    progress(f"store: {WRITERS} writers × {count} notes at {RATE:g}/s each, SQLite")
    folder = Path(tempfile.mkdtemp(prefix="pa-tui-bench-store-"))
    try:
        samples, errors, took = _contend("sqlite", str(folder / "pa-tui.db"), count, RATE)
        rows.append(_row("SQLite", samples, errors, took, "WAL, synchronous=FULL (the Store's defaults)", False))
        samples, errors, took = _contend("sqlite", str(folder / "pa-tui.db"), stress_count, None)
        rows.append(_row("SQLite", samples, errors, took, "", True))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    progress(f"store: {WRITERS} writers × {count} notes at {RATE:g}/s each, PostgreSQL")
    try:
        with postgres() as dsn:
            samples, errors, took = _contend("postgres", dsn, count, RATE)
            rows.append(_row("PostgreSQL", samples, errors, took,
                             "throwaway local cluster, fsync + synchronous_commit on, pool of 2 per writer", False))
            samples, errors, took = _contend("postgres", dsn, stress_count, None)
            rows.append(_row("PostgreSQL", samples, errors, took, "", True))
    except NoPostgres as exc:
        rows.append(Row(figure=f"Store: note save, {WRITERS} writer processes, PostgreSQL",
                        value="skipped", note=f"PostgreSQL not available here: {exc}"))
    return rows


if __name__ == "__main__":
    standalone(run, "store")
