"""Record load: opening a patient until every tab's data is on screen, vs the same requests at once.

Per sample, a different patient (the sandbox has built every sampled patient's
record beforehand, so no timed request pays for generating one): the App opens
the record as a manual search does (``PaTuiApp.open_record(patient, call_id=None)``:
PHI allowed, no verification step), and the clock stops at the first screen
refresh after every tab's SectionView — Appointments, Referrals, Billing,
Prescriptions, Care team and the EHR notes under Notes — is ``ready`` (or
``unavailable``/``error``: settled). The Summary tab is built from the
Appointments and Billing results, so it is settled with them.

Two ways of opening are timed:

- **as built**: nothing but ``open_record``; sections the screen does not request
  on mount never settle, and the sample is cut at ``AS_BUILT_WAIT`` seconds;
- **every tab requested at open**: right after the screen mounts, the bench posts
  ``PatientScreen.SectionRequested`` for the tabs the screen left idle — what an
  agent clicking through every tab at once would do, and what the recommended fix
  (request them all on mount) does.

The floor: every FHIR request the App sent for that record (captured from its own
httpx client), sent again with a plain httpx client, all at once.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import MS, Budget, Dist, Row, progress, standalone
from bench._console import Frames, RequestLog, connected, floor_client, make_console, quiet, until, waves
from bench._sim import SimProcess

SIZE = 10_000
RATIO = 1.3
AS_BUILT_WAIT = 2.0
SETTLED = ("ready", "unavailable", "error")


async def _measure(sim: SimProcess, reps: int, warmup: int, budget: Budget) -> dict[str, Any]:
    from pa_tui.domain.records import Section
    from pa_tui.screens.patient import PatientScreen
    from pa_tui.widgets.section_view import SectionView

    tabs = (Section.APPOINTMENTS, Section.REFERRALS, Section.BILLING, Section.PRESCRIPTIONS, Section.CARE_TEAM,
            Section.NOTES)
    as_built_n = 3
    ids: list[str] = await sim.acall("patients", count=reps + warmup + as_built_n)
    await sim.acall("warm_records", patient_ids=ids, timeout=300)
    folder = Path(tempfile.mkdtemp(prefix="pa-tui-bench-record-"))
    app = make_console(sim.info, folder)
    out: dict[str, Any] = {"prefetch": [], "floor": [], "waves": [], "requests": [], "as_built": [],
                           "as_built_settled": []}
    async with app.run_test(headless=True, size=(160, 48)):
        frames = Frames(app)
        await connected(app, sim)
        log = RequestLog(app.backends.ehr.client._http)
        watch: dict[str, Any] = {"screen": None, "done": None}

        def settled(screen: Any) -> list[str]:
            return [
                s.value for s in tabs
                if screen.query_one(f"#section-{s.value}", SectionView).state.status not in SETTLED
            ]

        def on_frame(now: float) -> None:
            screen = watch["screen"]
            if screen is not None and watch["done"] is None and screen.is_mounted and app.screen is screen:
                if not settled(screen):
                    watch["done"] = now

        frames.listeners.append(on_frame)
        async with floor_client() as client:

            async def open_one(pid: str, prefetch: bool, wait: float) -> tuple[float | None, list[Any], list[str]]:
                summary = await app.backends.ehr.patient(pid)
                await asyncio.sleep(0.02)
                log.take()
                watch.update(screen=None, done=None)
                t0 = time.perf_counter()
                app.open_record(summary, call_id=None)
                screen = app.screen_stack[-1]
                assert isinstance(screen, PatientScreen)
                watch["screen"] = screen
                if prefetch:
                    await until(lambda: screen.is_mounted, 5.0, 0.0002)
                    for section in tabs:
                        view = screen.query_one(f"#section-{section.value}", SectionView)
                        if view.state.status == "idle":
                            screen.post_message(PatientScreen.SectionRequested(pid, section))
                ok = await until(lambda: watch["done"] is not None, wait, 0.001)
                left = settled(screen)
                took = (watch["done"] - t0) if ok else None
                await asyncio.sleep(0.05)  # let the audit and notes workers finish too
                requests = log.take()
                app.pop_screen()
                await until(lambda: app.screen is app.home, 5.0, 0.002)
                await quiet(app, frames)
                return took, requests, left

            for pid in ids[reps + warmup:]:
                took, _requests, left = await open_one(pid, prefetch=False, wait=AS_BUILT_WAIT)
                out["as_built"].append(took * MS if took is not None else None)
                out["as_built_settled"].append(left)
            for i, pid in enumerate(ids[:reps + warmup]):
                if budget.over():
                    progress(f"time budget reached after {len(out['prefetch'])} records")
                    break
                took, requests, left = await open_one(pid, prefetch=True, wait=10.0)
                if took is None:
                    raise RuntimeError(f"record {pid} never settled: {left}")
                urls = [u for g in waves(requests) for u in g]
                t0 = time.perf_counter()
                answers = await asyncio.gather(*(client.get(u) for u in urls))
                floor = time.perf_counter() - t0
                if any(r.status_code >= 400 for r in answers):
                    raise RuntimeError("a floor request failed")
                if i < warmup:
                    continue
                out["prefetch"].append(took * MS)
                out["floor"].append(floor * MS)
                out["waves"].append(len(waves(requests)))
                out["requests"].append(len(urls))
    return out


def run(quick: bool) -> list[Row]:
    reps, warmup = (6, 1) if quick else (80, 8)
    progress(f"record load: starting the simulators with {SIZE:,} patients")
    with SimProcess(SIZE) as sim:
        result = asyncio.run(_measure(sim, reps, warmup, Budget(25 if quick else 45)))
    prefetch, floor = Dist.of(result["prefetch"]), Dist.of(result["floor"])
    limit = RATIO * floor.p95
    never = [x for x in result["as_built"] if x is None]
    left = sorted({s for group in result["as_built_settled"] for s in group})
    rows = [
        Row(
            figure="record load, as built",
            value=(f"never: {len(never)}/{len(result['as_built'])} opens" if never
                   else f"p95 {Dist.of([x for x in result['as_built'] if x]).p95:.0f} ms"),
            target=f"≤ 1.3 × floor = {limit:.0f} ms",
            met=False if never else Dist.of([x for x in result["as_built"] if x]).p95 <= limit,
            note=(f"still idle after {AS_BUILT_WAIT:.0f} s: {', '.join(left)} (load only when their tab is opened)"
                  if never else ""),
        ),
        Row(
            figure="record load, every tab requested at open",
            dist=prefetch,
            target=f"p95 ≤ 1.3 × floor = {limit:.0f} ms",
            met=prefetch.p95 <= limit,
            note=(f"p95/floor p95 = {prefetch.p95 / floor.p95:.2f}; "
                  f"{sum(result['requests']) / max(1, len(result['requests'])):.0f} FHIR requests in "
                  f"{sum(result['waves']) / max(1, len(result['waves'])):.1f} rounds"),
        ),
        Row(figure="  floor (same requests, all at once, httpx)", dist=floor),
    ]
    return rows


if __name__ == "__main__":
    standalone(run, "record")
