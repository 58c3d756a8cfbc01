"""Cost per event at 10, 100 and 1,000 active calls: flat, or work proportional to the calls?

One console; the simulator opens calls (preanswer, ringing, connected) until 10,
then 100, then 1,000 are up, and the console's EHR look-ups for them are left to
finish. Then, at each level, it sends hold/connected toggles on random live calls
at a gentle 200 events/s (the console keeps up, so each event is measured alone):

- **handler**: time inside ``PaTuiApp.on_call_event_received`` (timed by wrapping
  the method on the class in this process; the App is otherwise untouched);
- **CPU per event**: the console process's CPU time over the run ÷ events: the
  websocket read, JWT check, parse, both CallBooks, the handler, the refresh.

Flat = the median at 1,000 calls within 1.25 × the median at 10 calls.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import MS, Budget, Dist, Row, progress, standalone
from bench._console import Frames, Hooks, connected, event_key, make_console, quiet, until
from bench._sim import SimProcess

SIZE = 10_000
LEVELS = (10, 100, 1000)
RATE = 200
FLAT = 1.25


async def _measure(sim: SimProcess, events: int, budget: Budget, levels: tuple[int, ...] = LEVELS
                   ) -> dict[int, dict[str, Any]]:
    from pa_tui.app import PaTuiApp
    from pa_tui.messages import CallEventReceived

    handler_us: list[float] = []
    original = PaTuiApp.__dict__["on_call_event_received"]

    def timed(self: Any, message: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, message)
        finally:
            handler_us.append((time.perf_counter() - t0) * 1e6)

    PaTuiApp.on_call_event_received = timed  # type: ignore[method-assign]
    folder = Path(tempfile.mkdtemp(prefix="pa-tui-bench-per-event-"))
    app = make_console(sim.info, folder)
    hooks = Hooks()
    handled: dict[tuple[str, str, int], float] = {}
    pending: list[tuple[str, str, int]] = []
    shown: dict[tuple[str, str, int], float] = {}

    def on_event(message: Any) -> None:
        key = event_key(message.event)
        handled[key] = time.perf_counter()
        pending.append(key)

    hooks.on(CallEventReceived, on_event)
    out: dict[int, dict[str, Any]] = {}
    try:
        async with app.run_test(headless=True, size=(160, 48), message_hook=hooks):
            frames = Frames(app)

            def on_frame(now: float) -> None:
                for key in pending:
                    shown[key] = now
                pending.clear()

            frames.listeners.append(on_frame)
            await connected(app, sim)
            await sim.acall("traffic_start", numbers=3000)
            for level in levels:
                have = sum(1 for c in app.book.calls.values() if c.is_active)
                progress(f"  opening calls: {have} → {level}")
                job = await sim.acall("open_calls", count=level - have)
                await sim.acall("wait", job=job, timeout=300)
                ok = await until(
                    lambda: sum(1 for c in app.book.calls.values() if c.is_active) >= level
                    and not app.lookup_started_at,
                    max(10.0, budget.left() - events / RATE - 5),
                    0.1,
                )
                if not ok:
                    progress(f"  time budget: the console shows "
                             f"{sum(1 for c in app.book.calls.values() if c.is_active)} of {level} calls; measuring there")
                await quiet(app, frames, timeout=10.0)
                handler_us.clear()
                await sim.acall("record", on=True)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                job = await sim.acall("paced", rate=RATE, seconds=events / RATE + 5, concurrent=level, churn=False,
                                      max_events=events)
                stats = await sim.acall("wait", job=job, timeout=events / RATE + 60)
                sent = await sim.acall("take_sent")
                await sim.acall("record", on=False)
                await until(lambda: all(k in shown for k in sent), 30.0, 0.1)
                cpu = time.process_time() - cpu0
                wall = time.perf_counter() - wall0
                active = sum(1 for c in app.book.calls.values() if c.is_active)
                out[level] = {
                    "reached": active,
                    "handler_us": list(handler_us),
                    "cpu_ms_per_event": cpu / max(1, len(sent)) * MS,
                    "latency": [(shown[k] - t) * MS for k, t in sent.items() if k in shown],
                    "events": len(sent),
                    "active": active,
                    "rate": stats["rate"],
                    "cpu_share": cpu / wall,
                }
                progress(f"  {level} calls: handler p50 {Dist.of(handler_us).p50:.0f} µs, "
                         f"CPU {out[level]['cpu_ms_per_event']:.2f} ms/event")
    finally:
        PaTuiApp.on_call_event_received = original  # type: ignore[method-assign]
    return out


def run(quick: bool) -> list[Row]:
    events = 200 if quick else 400
    levels = (10, 100, 300) if quick else LEVELS
    progress(f"cost per event: starting the simulators with {SIZE:,} patients")
    with SimProcess(SIZE) as sim:
        result = asyncio.run(_measure(sim, events, Budget(60 if quick else 100), levels))
    rows: list[Row] = []
    first, last = result[levels[0]], result[levels[-1]]
    h0, h1 = Dist.of(first["handler_us"], "µs").p50, Dist.of(last["handler_us"], "µs").p50
    c0, c1 = first["cpu_ms_per_event"], last["cpu_ms_per_event"]
    for level in levels:
        r = result[level]
        rows.append(Row(
            figure=f"cost per event, {level:,} active calls: handler"
            + ("" if r["reached"] >= level else f" (only {r['reached']:,} reached in time)"),
            dist=Dist.of(r["handler_us"], "µs"),
            note=(f"CPU {r['cpu_ms_per_event']:.2f} ms/event all in (ws, parse, books, handler, refresh); "
                  f"event→screen p50 {Dist.of(r['latency']).p50:.0f} ms; {r['events']} events at {r['rate']:.0f}/s"),
        ))
    rows.append(Row(
        figure=f"cost per event flat {levels[0]:,} → {levels[-1]:,} calls",
        value=f"handler p50 ×{h1 / h0:.2f}, CPU/event ×{c1 / c0:.2f}",
        target=f"both ≤ ×{FLAT}",
        met=h1 / h0 <= FLAT and c1 / c0 <= FLAT,
    ))
    return rows


if __name__ == "__main__":
    standalone(run, "per_event")
