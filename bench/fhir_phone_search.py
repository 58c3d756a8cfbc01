"""How fast the FHIR sandbox finds a household by phone number, over real HTTP.

Builds (or loads from the on-disk cache) a synthetic population — 100,000 patients by
default — serves it with the FHIR sandbox on 127.0.0.1 through SimulatorHost, and times
``GET /fhir/Patient?phone=<number>`` with httpx for numbers that several household members
share, checking every answer holds exactly the household. Prints p50/p95/p99 in ms and the
machine. The target is under 20 ms; nothing is asserted.

    python -m bench.fhir_phone_search                      # 100,000 patients, 400 requests
    python -m bench.fhir_phone_search --patients 20000 --requests 1000 --no-cache
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from typing import Any

import httpx

from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population

TARGET_MS = 20.0


class ProgressBar:
    """A one-line progress bar on stderr (redrawn in place on a terminal, every 10 % otherwise)."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label = label
        self.width = width
        self.started = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        step = int(fraction * 100)
        if not self.tty and step // 10 == self._last // 10 and done < total:
            return
        if step == self._last and done < total:
            return
        self._last = step
        filled = int(fraction * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self.started
        line = f"{self.label} [{bar}] {step:3d}% {done:,}/{total:,} {elapsed:5.1f} s"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if done >= total and self.tty:
            sys.stderr.write("\n")
        sys.stderr.flush()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000, help="population size (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--requests", type=int, default=400, help="timed requests (default 400)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first (default 20)")
    parser.add_argument("--no-cache", action="store_true", help="generate the population even if cached")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    bar = ProgressBar("population")
    if args.no_cache:
        population = Population.generate(args.patients, args.seed, progress=bar)
        how = "generated"
    else:
        from pa_tui.demo.population import _cache

        path = _cache.cache_file(args.patients, args.seed, population_as_of())
        how = "loaded from cache" if path.is_file() else "generated (now cached)"
        population = Population.cached(args.patients, args.seed, progress=bar)
    population_s = time.perf_counter() - started
    gc.collect()
    gc.freeze()  # millions of long-lived dicts: keep the collector from walking them during the timing

    started = time.perf_counter()
    sandbox = FhirSandbox(population)
    host = SimulatorHost()
    host.add("fhir", sandbox.app)
    host.start()
    sandbox_s = time.perf_counter() - started
    numbers = population.household_numbers()
    if not numbers:
        print("the population has no shared household numbers; use more patients", file=sys.stderr)
        return 2
    base = sandbox.url(host.url("fhir"))
    durations: list[float] = []
    members = 0
    try:
        with httpx.Client(base_url=base, headers={"Accept": "application/fhir+json"}, timeout=30) as client:
            started = time.perf_counter()
            first_ok = _check(client, numbers[0], population)
            first_s = time.perf_counter() - started
            for i in range(args.warmup):
                _check(client, numbers[i % len(numbers)], population)
            for i in range(args.requests):
                number = numbers[(i * 7919) % len(numbers)]
                t0 = time.perf_counter()
                found = _check(client, number, population)
                durations.append((time.perf_counter() - t0) * 1000)
                members += found
    finally:
        host.stop()

    p50, p95, p99 = (percentile(durations, p) for p in (50, 95, 99))
    print("pa-tui FHIR sandbox: GET /fhir/Patient?phone=<household number> over HTTP (127.0.0.1, httpx keep-alive)")
    print(f"  population   {population.size:,} patients, seed {args.seed}: {how} in {population_s:.1f} s")
    print(
        f"  sandbox      ready in {sandbox_s:.2f} s; first search (builds the phone index) {first_s * 1000:.0f} ms"
        f"{'' if first_ok else ' (FAILED)'}"
    )
    print(
        f"  requests     {len(durations)} timed after {args.warmup} warm-up, {members / max(1, len(durations)):.2f} "
        f"household members per answer, all checked"
    )
    print(
        f"  latency ms   p50 {p50:.2f}   p95 {p95:.2f}   p99 {p99:.2f}   mean {statistics.fmean(durations):.2f}   "
        f"max {max(durations):.2f}"
    )
    verdict = "within" if p95 < TARGET_MS else "OVER"
    print(f"  target       p95 < {TARGET_MS:.0f} ms: {verdict}")
    print(f"  machine      {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}")
    print(f"  python       {platform.python_implementation()} {platform.python_version()}")
    return 0


def population_as_of() -> Any:
    from pa_tui.demo.population import REFERENCE_DATE

    return REFERENCE_DATE


def _check(client: httpx.Client, number: str, population: Population) -> int:
    r = client.get("/Patient", params={"phone": number[2:], "_count": "50"})
    if r.status_code != 200:
        raise SystemExit(f"phone search answered {r.status_code}: {r.text[:200]}")
    ids = sorted(e["resource"]["id"] for e in r.json().get("entry", []))
    expected = sorted(population.households[number])
    if ids != expected:
        raise SystemExit(f"phone search for a household returned {len(ids)} patients, expected {len(expected)}")
    return len(ids)


if __name__ == "__main__":
    raise SystemExit(main())
