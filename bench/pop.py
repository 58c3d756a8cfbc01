"""Screen-pop latency vs the floor, with the FHIR sandbox at 1k, 10k and 100k patients.

Per sample: the simulator rings the agent (``DialpadSimulator.ring``); the clock
starts when its loop hands the ``ringing`` frame to the websocket (``_send`` hook)
and stops at the first screen refresh after the App handled ``CallerIdentified``
with the PatientCard's ``match`` set (one patient's card, or a household's list).
The call is then hung up, and the next ring waits until the console is idle
(nothing queued on the App or its screen, no refresh for 40 ms), so pops do not
overlap and each starts from a quiet console. Numbers: 4 in 5 identify one patient, 1 in 5 a household sharing the
number (which also needs RelatedPerson and Account).

The floor, in the same run and the same process: the FHIR requests that pop sent
(captured from the App's own httpx client), replayed with a plain httpx client in
the same order — one after another where the App waited for an answer, side by
side where it did not — right after each pop.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import MS, Budget, Dist, Row, progress, standalone
from bench._console import (
    Frames,
    Hooks,
    RequestLog,
    connected,
    floor_client,
    make_console,
    quiet,
    replay,
    until,
    waves,
)
from bench._sim import SimProcess

SIZES = (1_000, 10_000, 100_000)
RATIO = 1.3
FLAT = 1.25  # p95 at 100k within 1.25 x p95 at 1k


async def _measure(sim: SimProcess, reps: int, warmup: int, budget: Budget) -> dict[str, Any]:
    from pa_tui.messages import CallerIdentified
    from pa_tui.widgets.patient_card import PatientCard

    singles = await sim.acall("numbers", kind="single", count=reps + warmup)
    households = await sim.acall("numbers", kind="household", count=(reps + warmup) // 4 + 1)
    numbers: list[str] = []
    for i in range(reps + warmup):
        numbers.append(households[i // 5 % len(households)] if i % 5 == 4 else singles[i % len(singles)])

    folder = Path(tempfile.mkdtemp(prefix="pa-tui-bench-pop-"))
    app = make_console(sim.info, folder)
    hooks = Hooks()
    identified: list[str] = []  # call ids whose CallerIdentified was handled, newest last
    shown: dict[str, float] = {}  # call id -> first refresh after that, with the card's match set

    def on_identified(message: Any) -> None:
        identified.append(message.call_id)

    hooks.on(CallerIdentified, on_identified)
    pops: list[float] = []
    floors: list[float] = []
    ratios: list[float] = []
    household_pops: list[float] = []
    wave_counts: list[int] = []
    unquiet = 0  # times the console was still busy after 10 s of waiting for it to go idle
    request_counts: list[int] = []
    async with app.run_test(headless=True, size=(160, 48), message_hook=hooks):
        frames = Frames(app)
        card = app.screen.query_one(PatientCard)

        def on_frame(now: float) -> None:
            if identified and identified[-1] not in shown and card.match is not None:
                shown[identified[-1]] = now

        frames.listeners.append(on_frame)
        await connected(app, sim)
        log = RequestLog(app.backends.ehr.client._http)
        async with floor_client() as client:
            for i, number in enumerate(numbers):
                if budget.over():
                    progress(f"time budget reached after {len(pops)} pops")
                    break
                if not await quiet(app, frames):
                    unquiet += 1
                log.take()
                # (the pop can be on screen before the RPC's answer is back: shown is keyed by call id)
                call_id, t_ring = await sim.acall("ring", number=number)
                if not await until(lambda: call_id in shown, 10.0):
                    raise RuntimeError(f"pop {i} never showed (call {call_id})")
                requests = log.take()
                await sim.acall("hangup", call_id=call_id)
                await until(lambda: (c := app.book.calls.get(call_id)) is not None and c.is_ended, 5.0, 0.002)
                if not await quiet(app, frames):  # the floor is timed on an idle console's loop
                    unquiet += 1
                groups = waves(requests)
                floor = await replay(client, groups)
                if i < warmup:
                    continue
                pop = shown[call_id] - t_ring
                pops.append(pop * MS)
                floors.append(floor * MS)
                ratios.append(pop / floor if floor else float("nan"))
                wave_counts.append(len(groups))
                request_counts.append(sum(len(g) for g in groups))
                if i % 5 == 4:
                    household_pops.append(pop * MS)
    return {
        "pop": pops, "floor": floors, "ratio": ratios, "household": household_pops,
        "waves": wave_counts, "requests": request_counts, "frames": frames.count, "unquiet": unquiet,
    }


def run(quick: bool) -> list[Row]:
    reps, warmup = (12, 2) if quick else (200, 3)
    total = Budget(45 if quick else 140)
    rows: list[Row] = []
    p95s: dict[int, float] = {}
    for n, size in enumerate(SIZES):
        progress(f"screen pop: starting the simulators with {size:,} patients")
        t0 = time.perf_counter()
        with SimProcess(size) as sim:
            share = max(10.0, total.left() / (len(SIZES) - n))
            progress(f"  population ready in {sim.info['population_s']:.1f} s (simulators up in "
                     f"{time.perf_counter() - t0:.1f} s); up to {reps} pops in {share:.0f} s")
            result = asyncio.run(_measure(sim, reps, warmup, Budget(share)))
        pop, floor = Dist.of(result["pop"]), Dist.of(result["floor"])
        p95s[size] = pop.p95
        limit = RATIO * floor.p95
        label = f"{size // 1000}k"
        rows.append(Row(
            figure=f"screen pop, {label} patients",
            dist=pop,
            target=f"p95 ≤ 1.3 × floor = {limit:.1f} ms",
            met=pop.p95 <= limit,
            note=(f"p95/floor p95 = {pop.p95 / floor.p95:.2f}; households p95 {Dist.of(result['household']).p95:.1f} ms; "
                  f"{sum(result['requests']) / max(1, len(result['requests'])):.1f} FHIR requests in "
                  f"{sum(result['waves']) / max(1, len(result['waves'])):.1f} rounds a pop"
                  + (f"; console still busy after 10 s {result['unquiet']} times" if result["unquiet"] else "")),
            extra={"ratio": Dist.of(result["ratio"], unit="x").__dict__},
        ))
        rows.append(Row(figure=f"  floor, {label} (same FHIR requests, httpx)", dist=floor))
    if SIZES[0] in p95s and SIZES[-1] in p95s:
        first, last = p95s[SIZES[0]], p95s[SIZES[-1]]
        rows.append(Row(
            figure="screen pop flat 1k → 100k",
            value=f"p95 {first:.1f} → {last:.1f} ms (×{last / first:.2f})",
            target=f"p95(100k) ≤ {FLAT} × p95(1k)",
            met=last <= FLAT * first,
        ))
    return rows


if __name__ == "__main__":
    standalone(run, "pop")
