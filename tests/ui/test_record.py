"""`pa-tui demo --record`: a scripted demo, headless, writing SVGs at the marked steps."""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path


def test_family_line_recording_shows_the_household_chooser(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "pa_tui", "demo", "--scenario", "family-line", "--speed", "6",
         "--patients", "200", "--record", str(out), "--size", "120x36"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    svgs = sorted(out.glob("*.svg"))
    assert [p.name for p in svgs] == [
        "01-household-chooser.svg", "02-household-on-call.svg", "03-second-household.svg", "04-after-hangup.svg"
    ]
    first = html.unescape(svgs[0].read_text()).replace("\u00a0", " ")
    assert "patients share" in first and "DOB" in first
    assert "Ringing" in first
    assert "Connected" in html.unescape(svgs[1].read_text()).replace("\u00a0", " ")
    # What was written is listed on stdout, one path a line.
    assert [Path(line).name for line in result.stdout.split()] == [p.name for p in svgs]


def test_transfer_handoff_recording_shows_the_context_arriving_with_the_call(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "pa_tui", "demo", "--scenario", "transfer-handoff", "--speed", "3",
         "--patients", "200", "--record", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    first = html.unescape((out / "01-transfer-arrives.svg").read_text()).replace("\u00a0", " ")
    assert "Caller verified" in first and "before transfer" in first
