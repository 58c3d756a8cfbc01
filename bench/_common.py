"""What every benchmark shares: distributions, result rows, the machine, RSS, a time budget.

A benchmark module exposes ``run(quick: bool) -> list[Row]``; :mod:`bench.__main__`
runs each one in its own process (``python -m bench.<name> --json FILE``) so that one
figure's leftovers (memory, caches, threads) never colour the next.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MS = 1000.0


# --------------------------------------------------------------------------- statistics
def percentile(samples: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default); NaN for no samples."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Dist:
    """A distribution in one unit: p50/p95/p99 (and max, mean) over ``n`` samples."""

    n: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float
    unit: str = "ms"

    @classmethod
    def of(cls, samples: Sequence[float], unit: str = "ms") -> Dist:
        if not samples:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan, unit)
        return cls(
            n=len(samples),
            p50=percentile(samples, 50),
            p95=percentile(samples, 95),
            p99=percentile(samples, 99),
            max=max(samples),
            mean=sum(samples) / len(samples),
            unit=unit,
        )


@dataclass
class Row:
    """One line of the table. ``met``: True / False / None (no target, or not measured)."""

    figure: str
    dist: Dist | None = None
    target: str = "—"
    met: bool | None = None
    note: str = ""
    value: str = ""  # a single figure instead of a distribution (e.g. "3.1 MB/1k calls")
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        dist = data.get("dist")
        return cls(
            figure=data["figure"],
            dist=Dist(**dist) if dist else None,
            target=data.get("target", "—"),
            met=data.get("met"),
            note=data.get("note", ""),
            value=data.get("value", ""),
            extra=data.get("extra") or {},
        )


def fmt(x: float, unit: str = "ms") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if unit == "ms":
        return f"{x:.1f}" if x >= 10 else f"{x:.2f}"
    if unit == "µs":
        return f"{x:.0f}"
    if unit == "s":
        return f"{x:.2f}"
    if unit == "MB":
        return f"{x:.0f}"
    return f"{x:.3g}"


# --------------------------------------------------------------------------- the machine
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def ram_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return math.nan


def machine() -> dict[str, str]:
    import textual

    try:
        from importlib.metadata import version

        textual_version = version("textual")
    except Exception:  # noqa: BLE001
        textual_version = getattr(textual, "__version__", "?")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": f"{ram_gib():.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "textual": textual_version,
        "os": f"{platform.system()} {platform.release()}",
        "load": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MB (VmRSS from /proc)."""
    path = f"/proc/{pid or 'self'}/status"
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


# --------------------------------------------------------------------------- running
class Budget:
    """A wall-clock budget: every loop in a benchmark is bounded in count *and* time."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def over(self) -> bool:
        return time.monotonic() >= self.deadline


def progress(text: str) -> None:
    """One line on stderr, so a long run shows where it is (the table goes to stdout)."""
    sys.stderr.write(f"  · {text}\n")
    sys.stderr.flush()


def quiet_logs() -> None:
    import logging

    logging.disable(logging.WARNING)  # the simulators and the console log at INFO; figures only here


def standalone(run: Callable[[bool], list[Row]], name: str) -> None:
    """``python -m bench.<name> [--quick] [--json FILE]``: run one benchmark, print or save its rows."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here (used by `python -m bench`)")
    args = parser.parse_args()
    quiet_logs()
    from bench._whatif import apply_from_env

    apply_from_env()  # only when `--what-if` asked for it: patches this process, never pa_tui/
    gc.collect()
    rows = run(args.quick)
    if args.json is not None:
        args.json.write_text(json.dumps([r.to_json() for r in rows]))
    else:
        from bench.__main__ import render_table

        print(render_table(rows, machine()))


__all__ = [
    "MS",
    "Budget",
    "Dist",
    "Row",
    "cpu_model",
    "fmt",
    "machine",
    "percentile",
    "progress",
    "quiet_logs",
    "rss_mb",
    "standalone",
]
