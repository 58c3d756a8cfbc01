"""`pa-tui sim`, `pa-tui pop` and `pa-tui audit` from a shell."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
from click.testing import CliRunner

from pa_tui.backends.store import SqliteStore
from pa_tui.cli import cli


def test_sim_serves_every_simulator_on_loopback_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pa_tui", "sim", "--patients", "40"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        lines = [proc.stdout.readline() for _ in range(5)]  # type: ignore[union-attr]
        urls = {line.split()[0]: line.split()[2] for line in lines if "http" in line}
        assert set(urls) == {"Dialpad", "FHIR", "Twilio"}
        assert all(u.startswith("http://127.0.0.1:") for u in urls.values())
        meta = httpx.get(urls["FHIR"] + "/metadata")
        assert meta.status_code == 200 and meta.json()["resourceType"] == "CapabilityStatement"
        assert httpx.get(urls["Dialpad"] + "/api/v2/users").status_code == 401  # no key, as Dialpad answers
        key = lines[0].split("API key: ")[1].split(";")[0]
        ok = httpx.get(urls["Dialpad"] + "/api/v2/users", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200 and ok.json()["items"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0


def test_pop_without_a_running_console_says_so() -> None:
    result = CliRunner().invoke(cli, ["pop", "--ani", "4085551212"])
    assert result.exit_code == 2
    assert "no pa-tui console is running" in result.output.lower()


def test_pop_rejects_a_number_that_is_not_one() -> None:
    result = CliRunner().invoke(cli, ["pop", "--ani", "hello"])
    assert result.exit_code == 2
    assert "no digits" in result.output


def _seed_store(path: Path) -> None:
    async def go() -> None:
        async with SqliteStore(path) as store:
            for i, (agent, patient) in enumerate([("a1", "p1"), ("a1", "p2"), ("a2", "p1")]):
                await store.audit(agent_id=agent, action="view", patient_id=patient, reason=f"call {i}",
                                  sections=("summary",), at=datetime(2026, 11, 1 + i, tzinfo=UTC))

    asyncio.run(go())


def test_audit_exports_filtered_rows_and_audits_the_export(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    _seed_store(db)
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\npath = "{db}"\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "audit", "--patient", "p1", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["agent_id"], r["patient_id"]) for r in rows] == [("a1", "p1"), ("a2", "p1")]
    result = runner.invoke(cli, ["--config", str(config), "audit", "--since", "2026-11-02", "--format", "json"])
    data = json.loads(result.output)
    assert {(r["agent_id"], r["patient_id"]) for r in data if r["action"] == "view"} == {("a1", "p2"), ("a2", "p1")}
    assert any(r["action"] == "export" for r in data)  # the first export was itself audited


def test_demo_refuses_a_file_that_is_not_a_bundle(tmp_path: Path) -> None:
    bad = tmp_path / "patient.json"
    bad.write_text('{"resourceType": "Patient"}')
    result = CliRunner().invoke(cli, ["demo", "--fhir-bundle", str(bad)])
    assert result.exit_code == 2
    assert "patient.json" in result.output and "not a FHIR Bundle" in result.output
