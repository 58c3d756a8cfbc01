"""``pa-tui remind``: the demo (its own simulators), and a configured site pointed at simulators on loopback.

Output is parsed: the per-appointment dry-run lines, the summary counts, Twilio's reasons for
failures, the exit code. The log file and the output hold no patient number, name or text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pa_tui.cli import cli
from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population
from pa_tui.demo.twilio_sim import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_NUMBER, TwilioSimulator
from pa_tui.logs import reset_logging
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.reminders import demo as demo_module

# The command reckons "now" from the real clock: the configured site's population is built as of today.
AS_OF = date.today()
DAY = AS_OF + timedelta(days=1)
PHONE_RE = re.compile(r"\+?1?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    reset_logging()
    root.handlers[:] = handlers
    root.setLevel(level)


def logs(home: Path) -> str:
    for h in logging.getLogger().handlers:
        h.flush()
    return "\n".join(p.read_text(encoding="utf-8") for p in home.rglob("pa-tui.log*"))


def home_dir() -> Path:
    import os

    return Path(os.environ["HOME"])


def count(output: str, label: str) -> int:
    m = re.search(rf"^{label}: (\d+)", output, re.MULTILINE)
    assert m, f"no {label!r} line in:\n{output}"
    return int(m.group(1))


@pytest.fixture
def demos(monkeypatch: pytest.MonkeyPatch) -> list[DemoEnvironment]:
    """Every demo the command starts (a smaller population, to keep the test quick)."""
    started: list[DemoEnvironment] = []
    original = demo_module.start_demo

    def start(**kwargs: Any) -> DemoEnvironment:
        kwargs.setdefault("patients", 200)
        env = original(**kwargs)
        started.append(env)
        return env

    monkeypatch.setattr(demo_module, "start_demo", start)
    return started


def mobiles(population: Population) -> set[str]:
    out = set()
    for patient in population.patients:
        for t in patient.get("telecom", []):
            if t.get("system") == "phone":
                out.add(re.sub(r"\D", "", t["value"])[-10:])
    return out


# --------------------------------------------------------------------------- demo
def test_demo_dry_run_lists_every_decision_and_sends_nothing(demos: list[DemoEnvironment]) -> None:
    result = CliRunner().invoke(cli, ["--log-level", "DEBUG", "remind", "--demo", "--dry-run", "--date", "tomorrow"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    header = r"^Reminders for \w{3} \d{4}-\d{2}-\d{2} \(all clinics\): (\d+) booked appointments — dry run"
    assert re.search(header, out, re.M)
    lines = [line for line in out.splitlines() if line.startswith("  ap-")]
    would = count(out, "Would send")
    assert would > 0 and would == sum("would send (1 segment)" in line for line in lines)
    found = int(re.search(r"\): (\d+) booked", out).group(1))  # type: ignore[union-attr]
    assert len(lines) == found == would + count(out, "Skipped") + count(out, "Quiet hours") + count(out, "Failed")
    for line in lines:
        assert re.fullmatch(r"  ap-\d{6}-\d{2}  pt-\d{6}  (would send \(1 segment\)|skipped: .+|quiet hours: .+)", line)
    previews = [line for line in out.splitlines() if line.startswith("Preview (")]
    assert previews and all("Reply C to confirm, R to reschedule, STOP to opt out." in p for p in previews)
    (env,) = demos
    assert env.twilio.messages == []
    digits = mobiles(env.population)
    assert not any(re.sub(r"\D", "", m)[-10:] in digits for m in PHONE_RE.findall(out + logs(home_dir())))


def test_demo_sends_then_a_rerun_sends_nothing(demos: list[DemoEnvironment]) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["remind", "--demo", "--wait", "5"])
    assert first.exit_code == 0, first.output
    sent = count(first.stdout, "Sent")
    assert sent > 0 and f"Sent: {sent} (delivered {sent}, awaiting delivery report 0)" in first.stdout
    assert count(first.stdout, "Failed") == 0
    assert len(demos[0].twilio.outbound) == sent
    second = runner.invoke(cli, ["remind", "--demo", "--wait", "0"])
    assert second.exit_code == 0, second.output
    assert count(second.stdout, "Sent") == 0 and f"  already sent: {sent}" in second.stdout
    assert demos[1].twilio.outbound == []


def test_demo_exits_1_when_a_reminder_is_not_delivered(
    demos: list[DemoEnvironment], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = demo_module.start_demo

    def start(**kwargs: Any) -> DemoEnvironment:
        env = original(**kwargs)
        failing: list[str] = []

        def on_message(message: Any) -> None:  # the first patient texted turns out to be a landline
            if not failing:
                failing.append(message.to)
                env.twilio.set_fail_numbers({message.to: 30006})

        env.twilio.on_message = on_message
        return env

    monkeypatch.setattr(demo_module, "start_demo", start)
    result = CliRunner().invoke(cli, ["remind", "--demo", "--wait", "5"])
    assert result.exit_code == 1, result.output
    assert count(result.stdout, "Failed") == 1
    assert re.search(r"^  ap-\d{6}-\d{2}: Twilio: the number is a landline or cannot receive texts \(30006\)$",
                     result.stdout, re.M)


def test_bad_date_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["remind", "--demo", "--date", "someday"])
    assert result.exit_code == 2 and "is not tomorrow, today or a date as YYYY-MM-DD" in result.output


# --------------------------------------------------------------------------- a configured site
@pytest.fixture(scope="module")
def site() -> Iterator[tuple[SimulatorHost, FhirSandbox, TwilioSimulator, Population]]:
    population = Population.generate(200, seed=3, as_of=AS_OF)
    sandbox = FhirSandbox(population)
    sim = TwilioSimulator(numbers=(DEFAULT_NUMBER,), callback_delay=0.005)
    host = SimulatorHost()
    host.add("fhir", sandbox.app)
    host.add("twilio", sim.app)
    host.start()
    try:
        yield host, sandbox, sim, population
    finally:
        host.call(sim.aclose())
        host.stop()


def site_config(tmp_path: Path, host: SimulatorHost, sandbox: FhirSandbox, **extra: str) -> Path:
    path = tmp_path / "pa.toml"
    lines = [
        "[fhir]",
        f'base_url = "{sandbox.url(host.url("fhir"))}"',
        "[twilio]",
        f'account_sid = "{DEFAULT_ACCOUNT_SID}"',
        f'base_url = "{host.url("twilio")}"',
        f'from_number = "{DEFAULT_NUMBER}"',
        "[store]",
        f'path = "{tmp_path / "site.db"}"',
        "[reminders]",
        'quiet_start = "00:00"',  # no quiet hours: whatever the real time, the run sends
        'quiet_end = "00:00"',
        *(f'{k} = "{v}"' for k, v in extra.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_configured_site_sends_with_readable_twilio_reasons(
    site: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, sandbox, sim, population = site
    config = site_config(tmp_path, host, sandbox)
    runner = CliRunner()
    dry = runner.invoke(cli, ["--config", str(config), "remind", "--date", DAY.isoformat(), "--dry-run"])
    assert dry.exit_code == 0, dry.output  # a dry run needs no Twilio secret
    would = count(dry.stdout, "Would send")
    assert would > 0

    missing = runner.invoke(cli, ["--config", str(config), "remind", "--date", DAY.isoformat()])
    assert missing.exit_code == 2
    assert "pa-tui auth set twilio" in missing.output and "PA_TUI_TWILIO_AUTH_TOKEN" in missing.output

    monkeypatch.setenv("PA_TUI_TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN)
    ids = re.findall(r"^  (ap-\d{6}-\d{2})  (pt-\d{6})  would send", dry.stdout, re.M)
    failing_patient = ids[0][1]
    patient = next(p for p in population.patients if p["id"] == failing_patient)
    mobile = next(t["value"] for t in patient["telecom"] if t.get("use") == "mobile")
    sim.set_fail_numbers({mobile: 30006})
    before = len(sim.outbound)
    result = runner.invoke(
        cli, ["--config", str(config), "--log-level", "DEBUG", "remind", "--date", DAY.isoformat(), "--wait", "5"]
    )
    assert result.exit_code == 1, result.output
    assert count(result.stdout, "Sent") == would - 1 and count(result.stdout, "Failed") == 1
    failed_ids = {a for a, p in ids if p == failing_patient}
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("  ap-") and ": Twilio:" in ln]
    assert line.split(":")[0].strip() in failed_ids and "landline" in line and "(30006)" in line
    assert len(sim.outbound) - before == would

    again = runner.invoke(cli, ["--config", str(config), "remind", "--date", DAY.isoformat(), "--wait", "0"])
    assert again.exit_code == 0 and count(again.stdout, "Sent") == 0
    assert len(sim.outbound) - before == would  # nothing twice, the undelivered one included

    text = logs(home_dir()) + result.stdout
    digits = mobiles(population)
    assert not any(re.sub(r"\D", "", m)[-10:] in digits for m in PHONE_RE.findall(text))
    for p in population.patients[:50]:
        assert p["name"][0]["family"] not in text
    assert "Reply C to confirm" not in logs(home_dir())
