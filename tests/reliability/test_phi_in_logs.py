"""No PHI and no secret in any log line, at DEBUG, through a whole scripted demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pa_tui.demo.population import Population
from pa_tui.domain.phones import PhoneNumber, try_parse_phone


def _phi_of(population: Population) -> set[str]:
    needles: set[str] = set()
    for patient in population.patients:
        for name in patient.get("name", []):
            family = name.get("family")
            given = name.get("given", [])
            if family and len(family) >= 5:
                needles.add(family)
            if family and given:
                needles.add(f"{given[0]} {family}")
        dob = patient.get("birthDate")
        if dob:
            y, m, d = dob.split("-")
            needles.update({dob, f"{m}/{d}/{y}"})
        for ident in patient.get("identifier", []):
            value = ident.get("value")
            if value and len(value) >= 5:
                needles.add(value)
        for telecom in patient.get("telecom", []):
            number = try_parse_phone(telecom.get("value"))
            if isinstance(number, PhoneNumber):
                needles.update({number.e164, number.national_digits, number.human})
        for address in patient.get("address", []):
            for line in address.get("line", []):
                if len(line) >= 8:
                    needles.add(line)
    return needles


def test_a_full_scenario_at_debug_leaks_no_phi_or_secret(tmp_path: Path) -> None:
    env = os.environ.copy()
    env["HOME"] = str(tmp_path)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(tmp_path / var.lower())
    result = subprocess.run(
        [sys.executable, "-m", "pa_tui", "--log-level", "DEBUG", "demo", "--scenario", "family-line",
         "--speed", "6", "--patients", "150", "--seed", "7", "--record", str(tmp_path / "shots")],
        capture_output=True, text=True, timeout=180, env=env,
    )
    assert result.returncode == 0, result.stderr
    logs = list(Path(env["XDG_STATE_HOME"]).rglob("*.log*")) + list(tmp_path.rglob("pa-tui.log*"))
    assert logs, "the run wrote no log file"
    text = "\n".join(p.read_text(errors="replace") for p in set(logs)) + "\n" + result.stderr
    assert "DEBUG" in text or len(text.splitlines()) > 10, "logging at DEBUG wrote next to nothing"
    leaks = sorted(n for n in _phi_of(Population.generate(size=150, seed=7)) if n in text)
    assert leaks == [], f"PHI in logs/stderr: {leaks[:10]}"
    # Secrets: the demo's generated Dialpad key starts "sim_"; bearer tokens and JWTs never appear.
    assert "sim_" not in text
    assert not re.search(r"Bearer\s+[A-Za-z0-9._-]{8,}", text)
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.", text)
