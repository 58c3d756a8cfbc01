"""``python -m bench``: every figure of issue #10, headless, against the simulators on 127.0.0.1.

    python -m bench                 # the full run (under ten minutes on 2 cores)
    python -m bench --quick         # small repetition counts: a smoke run
    python -m bench --only pop      # one figure (repeatable: --only pop --only burst)
    python -m bench --markdown      # the table as Markdown (for BENCHMARKS.md)

Each figure runs in its own process (``python -m bench.<name> --json FILE``), the
simulators in another, so no figure inherits another's memory, caches or threads.
Prints one table and the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import Row, fmt, machine

#: name -> (module, what it measures); in run order.
FIGURES: dict[str, tuple[str, str]] = {
    "pop": ("bench.pop", "screen-pop latency vs the floor at 1k/10k/100k patients"),
    "record": ("bench.record", "record load vs the same requests sent concurrently"),
    "burst": ("bench.burst", "2,000 call events/s for 10 s across 200 calls"),
    "per-event": ("bench.per_event", "cost per event at 10/100/1,000 active calls"),
    "startup": ("bench.startup", "pa-tui demo to first frame vs a bare Textual app"),
    "memory": ("bench.memory", "RSS through 10,000 calls"),
    "wallboard": ("bench.wallboard", "500 agents, 200 status events/s"),
    "store": ("bench.store", "note save with 20 writer processes, SQLite and PostgreSQL"),
}

#: A figure that overruns this is stopped (and reported) so the whole run stays bounded.
TIMEOUT_S = {"pop": 260, "record": 110, "burst": 150, "per-event": 170, "startup": 110, "memory": 150,
             "wallboard": 30, "store": 120}


def render_table(rows: list[Row], info: dict[str, str], markdown: bool = False) -> str:
    head = ["figure", "p50", "p95", "p99", "n", "target", "met", "notes"]
    body: list[list[str]] = []
    for r in rows:
        if r.dist is not None and r.dist.n:
            unit = r.dist.unit
            cells = [f"{fmt(r.dist.p50, unit)} {unit}", f"{fmt(r.dist.p95, unit)} {unit}",
                     f"{fmt(r.dist.p99, unit)} {unit}", str(r.dist.n)]
        else:
            cells = [r.value or "—", "", "", ""]
        met = {True: "yes", False: "NO", None: "—"}[r.met]
        body.append([r.figure, *cells, r.target, met, r.note])
    lines: list[str] = []
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---" for _ in head) + "|")
        for b in body:
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in b) + " |")
    else:
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
        widths[-1] = len(head[-1])  # notes run on
        fmt_row = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
        lines.append(fmt_row(head))
        lines.append(fmt_row(["-" * w for w in widths]))
        for b in body:
            lines.append(fmt_row(b))
    lines.append("")
    lines.append(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, {info['os']}; "
        f"{info['python']}, Textual {info['textual']}; load average at start {info['load']}"
    )
    return "\n".join(lines)


def run_figure(name: str, quick: bool) -> tuple[list[Row], float]:
    module, what = FIGURES[name]
    with tempfile.TemporaryDirectory(prefix="pa-tui-bench-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, "-m", module, "--json", str(out)] + (["--quick"] if quick else [])
        t0 = time.perf_counter()
        print(f"[{name}] {what}", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(cmd, timeout=TIMEOUT_S[name], stdout=sys.stderr, stderr=sys.stderr)
        except subprocess.TimeoutExpired:
            took = time.perf_counter() - t0
            return [Row(figure=name, note=f"stopped after {took:.0f} s (time limit)", met=False)], took
        took = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            return [Row(figure=name, note=f"failed (exit {proc.returncode}); see stderr", met=False)], took
        rows = [Row.from_json(r) for r in json.loads(out.read_text())]
        print(f"[{name}] done in {took:.0f} s", file=sys.stderr, flush=True)
        return rows, took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small repetition counts (a smoke run)")
    parser.add_argument("--only", action="append", choices=sorted(FIGURES), metavar="NAME",
                        help=f"run only this figure (repeatable): {', '.join(FIGURES)}")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--json", type=Path, default=None, help="also write every row as JSON here")
    parser.add_argument("--what-if", dest="what_if", action="append", default=[], metavar="FIX",
                        help="apply a recommended fix in the console's process first (see bench/_whatif.py): "
                             "footer, keybar, other-calls, log-ref")
    args = parser.parse_args(argv)
    from bench._whatif import ENV, PATCHES

    for name in args.what_if:
        if name not in PATCHES:
            parser.error(f"unknown --what-if {name!r}; known: {', '.join(PATCHES)}")
    if args.what_if:
        os.environ[ENV] = ",".join(args.what_if)
    else:
        os.environ.pop(ENV, None)
    info = machine()
    names = [n for n in FIGURES if not args.only or n in args.only]
    started = time.perf_counter()
    rows: list[Row] = []
    for name in names:
        got, _ = run_figure(name, args.quick)
        rows.extend(got)
    total = time.perf_counter() - started
    print(render_table(rows, info, markdown=args.markdown))
    mode = "quick" if args.quick else "full"
    print(f"run: {mode}, {len(names)} figure(s) in {total:.0f} s; command: python -m bench"
          + (" --quick" if args.quick else "") + "".join(f" --only {n}" for n in args.only or [])
          + "".join(f" --what-if {n}" for n in args.what_if))
    if args.what_if:
        print(f"WHAT-IF RUN: {', '.join(args.what_if)} patched into the console's process by bench/_whatif.py "
              "(pa_tui/ unchanged; the start-up figure runs `pa-tui demo` unpatched)")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "rows": [r.to_json() for r in rows], "seconds": total}, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
