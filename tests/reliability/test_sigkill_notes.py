"""SIGKILL a console while the agent types and saves notes: nothing saved is lost, and the
draft survives up to the last second before the kill."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pa_tui.backends.store import SqliteStore


def test_sigkill_while_typing_loses_no_saved_note_and_at_most_a_second_of_draft(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("notes_typist.py")), str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    lines: list[tuple[float, str]] = []
    saved_seen = 0
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append((time.monotonic(), line.rstrip("\n")))
        if line.startswith("SAVED"):
            saved_seen += 1
        if saved_seen >= 2 and line.startswith("TYPED") and "note 5" in line:
            break
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    proc.wait(timeout=10)
    assert saved_seen >= 2, f"the typist never got going: {proc.stderr.read() if proc.stderr else ''}"[:2000]

    patient, agent, call = next(line for _, line in lines if line.startswith("PATIENT")).split()[1:4]
    saved = [line.split(" ", 1)[1] for _, line in lines if line.startswith("SAVED")]

    async def read() -> tuple[list[str], str | None]:
        async with SqliteStore(db) as store:
            notes = [n.text for n in await store.notes_for(patient)]
            draft = await store.latest_draft(agent, patient, call)
            return notes, draft.text if draft else None

    notes, draft = asyncio.run(read())
    for text in saved:
        assert text in notes, f"a saved note is missing after SIGKILL: {text!r}"
    # What the editor held a second before the kill is in the Store: as the draft, or inside a
    # note saved since then.
    timeline = [(at, line) for at, line in lines if at <= killed_at - 1.0]
    last_typed = next(line for at, line in reversed(timeline) if line.startswith("TYPED"))
    held = last_typed.split(" ", 1)[1].rsplit(" ", 1)[0]
    saved_after = [line for at, line in lines if at > killed_at - 1.0 and line.startswith("SAVED")]
    if saved_after:
        assert any(held.strip() in note for note in notes)
    else:
        assert draft is not None, "the draft typed a second before the kill is gone"
        assert draft.startswith(held), (draft, held)
