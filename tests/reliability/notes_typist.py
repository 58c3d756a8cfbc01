"""An agent at work, for the SIGKILL test: a real console (headless) against the simulators,
typing notes and saving some. Prints what it did, flushed, one fact a line:

    SAVED <note text>          the note was saved (the Store confirmed)
    TYPED <draft text> <t>     the editor held <draft text> at monotonic time <t>
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from textual.widgets import TextArea

from pa_tui.app import make_app
from pa_tui.config import load_settings
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.screens.patient import PatientScreen


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(store_path: Path) -> None:
    env = DemoEnvironment.start(patients=60, seed=5, scenario=None)
    app = make_app(load_settings(), env.backends(store_path=store_path))
    async with app.run_test(size=(120, 40)) as pilot:
        while not (env.dialpad.has_listener(env.agent_id) and app.agent_id):
            await pilot.pause(0.05)
        await env.host.acall(env.dialpad.ring(env.population.single_caller_numbers()[0], user_id=env.agent_id))
        while app.home.match is None:
            await pilot.pause(0.05)
        await pilot.press("enter")
        while not isinstance(app.screen, PatientScreen):
            await pilot.pause(0.05)
        screen = app.screen
        say(f"PATIENT {screen.patient_id} {app.agent_id} {screen.call_id}")
        await pilot.press("7")
        editor = screen.query_one("#note-editor", TextArea)
        editor.focus()
        n = 0
        while True:
            n += 1
            for word in f"note {n} caller asked about a refill".split():
                await pilot.press(*word, "space")
                say(f"TYPED {editor.text} {time.monotonic()}")
                await pilot.pause(0.15)
            if n % 2 == 0:  # every other note is saved; the odd ones stay drafts until the next
                await pilot.press("ctrl+s")
                while "Note saved" not in screen.save_status:
                    await pilot.pause(0.02)
                say(f"SAVED note {n - 1} caller asked about a refill note {n} caller asked about a refill ")
                screen.save_status = ""


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
