"""A small client of the Store API, run in subprocesses by the durability tests.

    python store_proc.py [--procs N] MODE BACKEND TARGET [ARGS...]

With ``--procs N`` the script imports everything once, then forks N independent
processes (before any thread, event loop or database connection exists), each
running MODE with ``{n}`` in its arguments replaced by its number; it exits
non-zero if any of them failed. That spares N interpreter start-ups (about a
second of CPU each) while every child still opens the store on its own.

BACKEND is "sqlite" (TARGET a file) or "postgres" (TARGET a DSN). Modes:

- ``notes-loop PATIENT``: saves a draft and, every third turn, a note, forever;
  prints ``draft N`` / ``note ID`` only after each save has returned. The test
  kills it with SIGKILL.
- ``writer NAME COUNT GOFILE``: prints ``ready`` once open, waits for GOFILE, then
  saves COUNT notes and COUNT audit rows, and prints ``done``.
- ``drain NAME LOGFILE GOFILE``: waits for GOFILE, then drains the outbox with an
  OutboxWorker whose sender appends each item's idempotency key to LOGFILE.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
from datetime import UTC, datetime

from pa_tui.backends.store import OutboxWorker, PostgresStore, SqliteStore
from pa_tui.domain.notes import Note
from pa_tui.domain.outbox import OutboxItem


def make(backend: str, target: str) -> SqliteStore | PostgresStore:
    return SqliteStore(target) if backend == "sqlite" else PostgresStore(target, max_size=2)


def say(line: str) -> None:
    """One line in one write(2): lines from forked siblings sharing the pipe never interleave
    (print() makes two writes when PYTHONUNBUFFERED is set)."""
    os.write(1, (line + "\n").encode())


def wait_for(path: str) -> None:
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the go file")
        time.sleep(0.005)


async def notes_loop(store: SqliteStore | PostgresStore, patient: str) -> None:
    created = datetime.now(UTC)
    say("ready")
    i = 0
    while True:
        now = datetime.now(UTC)
        draft = Note(
            id="draft-1",
            agent_id="agent-k",
            patient_id=patient,
            call_id="call-k",
            text=f"draft {i}",
            created_at=created,
            updated_at=now,
        )
        await store.save_draft(draft)
        say(f"draft {i}")
        if i % 3 == 0:
            note = Note(
                id=f"note-{os.getpid()}-{i}",
                agent_id="agent-k",
                patient_id=patient,
                call_id=f"call-{i}",
                text=f"note {i}",
                created_at=now,
                updated_at=now,
            )
            await store.save_note(note)
            say(f"note {note.id}")
        i += 1


async def writer(store: SqliteStore | PostgresStore, name: str, count: int, gofile: str) -> None:
    say("ready")
    await asyncio.to_thread(wait_for, gofile)
    for i in range(count):
        now = datetime.now(UTC)
        await store.save_note(
            Note(
                id=f"{name}-{i}",
                agent_id=name,
                patient_id=f"p-{name}",
                text=f"note {i}",
                created_at=now,
                updated_at=now,
            )
        )
        await store.audit(
            agent_id=name, action="view", patient_id=f"p-{name}", reason=f"call-{i}", sections=("summary",)
        )
    say("done")


async def drain(store: SqliteStore | PostgresStore, name: str, logfile: str, gofile: str) -> None:
    async def send(item: OutboxItem) -> str:
        fd = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{item.idempotency_key} {name}\n".encode())
        finally:
            os.close(fd)
        await asyncio.sleep(0.001)
        return f"remote-{item.id}"

    say("ready")
    await asyncio.to_thread(wait_for, gofile)
    report = await OutboxWorker(store, send, batch=5).drain()
    say(f"done {report.sent}")


async def main(argv: list[str]) -> None:
    mode, backend, target, *args = argv
    store = make(backend, target)
    await store.open()
    try:
        if mode == "notes-loop":
            await notes_loop(store, args[0])
        elif mode == "writer":
            await writer(store, args[0], int(args[1]), args[2])
        elif mode == "drain":
            await drain(store, args[0], args[1], args[2])
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        await store.aclose()


def fork_many(count: int, argv: list[str]) -> int:
    if argv[1] == "postgres":
        import pa_tui.backends.store.postgres  # noqa: F401 - import once, before forking
    pids = []
    for n in range(count):
        pid = os.fork()
        if pid == 0:  # the child: a process of its own with its own store and connections
            code = 0
            try:
                asyncio.run(main([a.replace("{n}", f"{n:02d}") for a in argv]))
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    failed = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--procs"]:
        sys.exit(fork_many(int(args[1]), args[2:]))
    asyncio.run(main(args))
