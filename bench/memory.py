"""Memory: the console's RSS as calls go through it, up to 10,000 calls.

One console in a process of its own (nothing else of the bench's lives in it but
a list of samples). The simulator runs whole inbound calls to the agent —
preanswer, ringing, connected, hangup, postcall — ten at a time, in batches of
250 calls; after each batch the bench waits until the console has handled every
event and finished every EHR look-up, then reads VmRSS. Callers are a mix of
known patients, households and unknown numbers, so each call is also looked up.

Flat after warm-up = the least-squares slope of RSS over the samples after the
first 2,000 calls is at most 1 MB per 1,000 calls. The run is bounded in time;
if the console cannot take 10,000 calls within it, the table says how many it
took and projects the last RSS to 10,000 calls with the measured slope.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import Budget, Row, progress, rss_mb, standalone
from bench._console import Frames, connected, make_console, quiet, until
from bench._sim import SimProcess

SIZE = 10_000
CALLS = 10_000
FIRST_BATCH = 25
WARMUP = 2_000
LIMIT_MB = 150.0
FLAT_MB_PER_1K = 1.0


async def _measure(sim: SimProcess, calls: int, budget: Budget) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="pa-tui-bench-memory-"))
    app = make_console(sim.info, folder)
    samples: list[tuple[int, float, float]] = []  # (calls, rss MB, seconds since start)
    async with app.run_test(headless=True, size=(160, 48)):
        frames = Frames(app)
        await connected(app, sim)
        await quiet(app, frames)
        await sim.acall("traffic_start", numbers=3000)
        samples.append((0, rss_mb(), 0.0))
        t0 = time.perf_counter()
        done, batch, rate = 0, FIRST_BATCH, 20.0
        while done < calls and not budget.over():
            batch = min(batch, calls - done)
            started = time.perf_counter()
            job = await sim.acall("calls", count=batch, per_second=rate, concurrent=10)
            await sim.acall("wait", job=job, timeout=600)
            # every event handled, every look-up answered, and the screen caught up with it all
            ok = await until(
                lambda: not app.lookup_started_at and not any(c.is_active for c in app.book.calls.values()),
                max(1.0, budget.left()),
                0.02,
            ) and await quiet(app, frames, timeout=max(1.0, budget.left()))
            if not ok:
                progress(f"  time budget reached with the console still busy "
                         f"(screen queue {app.screen._message_queue.qsize():,})")
                break
            done += batch
            samples.append((done, rss_mb(), time.perf_counter() - t0))
            # pace the next batch at what the console just sustained (about 5 s of work a batch)
            sustained = batch / (time.perf_counter() - started)
            rate = max(2.0, min(200.0, sustained * 1.2))
            batch = int(min(1000, max(FIRST_BATCH, sustained * 5)))
            progress(f"  {done:,} calls: RSS {samples[-1][1]:.0f} MB ({sustained:.1f} calls/s sustained)")
        tracked = {
            "matches": len(getattr(app, "matches", {})),
            "lookups_started": len(getattr(app, "lookups_started", ())),
            "book_calls": len(app.book.calls),
            "book_seen": len(app.book.seen),
        }
    return {"samples": samples, "tracked": tracked}


def _slope(points: list[tuple[int, float, float]]) -> float:
    """MB per 1,000 calls, least squares."""
    if len(points) < 2:
        return float("nan")
    xs = [p[0] / 1000 for p in points]
    ys = [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def run(quick: bool) -> list[Row]:
    calls = 2_000 if quick else CALLS
    # PA_TUI_BENCH_MEMORY_SECONDS: a longer budget, to take all 10,000 calls outside `python -m bench`
    budget = Budget(float(os.environ.get("PA_TUI_BENCH_MEMORY_SECONDS", 30 if quick else 40)))
    progress(f"memory: starting the simulators with {SIZE:,} patients; up to {calls:,} calls")
    with SimProcess(SIZE) as sim:
        r = asyncio.run(_measure(sim, calls, budget))
    samples = r["samples"]
    reached, last_rss, took = samples[-1]
    after = [s for s in samples if s[0] >= min(WARMUP, reached // 3)]
    slope = _slope(after)
    projected = last_rss + max(0.0, slope) * (CALLS - reached) / 1000 if reached < CALLS else last_rss
    flat = slope <= FLAT_MB_PER_1K
    full = reached >= CALLS
    step = max(1, len(samples) // 6)
    curve = ", ".join(f"{c:,}: {m:.0f}" for c, m, _ in samples[::step] + samples[-1:])
    t = r["tracked"]
    value = f"{last_rss:.0f} MB after {reached:,} calls" + ("" if full else f" (→ {projected:.0f} MB at 10k, projected)")
    return [
        Row(
            figure="memory: console RSS through 10,000 calls",
            value=value,
            target=f"≤ {LIMIT_MB:.0f} MB and flat (≤ {FLAT_MB_PER_1K:g} MB/1k calls after {WARMUP // 1000}k)",
            met=projected <= LIMIT_MB and flat and (full or quick),
            note=(f"slope {slope:+.1f} MB/1k calls after warm-up; RSS by calls: {curve}; "
                  f"{reached / took if took else 0:.0f} calls/s; "
                  f"app.matches {t['matches']:,}, lookups_started {t['lookups_started']:,}, book {t['book_calls']} calls / "
                  f"{t['book_seen']:,} seen" + ("" if full else f"; time budget reached at {reached:,} calls")),
        )
    ]


if __name__ == "__main__":
    standalone(run, "memory")
