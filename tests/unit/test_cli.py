"""pa_tui.cli: options, one-line errors, exit codes, hand-off to wiring/demo."""

from __future__ import annotations

import logging
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import keyring
import keyring.errors
import platformdirs
import pytest
from click.testing import CliRunner
from keyring.backend import KeyringBackend
from keyring.backends import null

from pa_tui import __version__
from pa_tui.cli import cli, main
from pa_tui.config import Settings
from pa_tui.logs import reset_logging
from pa_tui.secrets import SecretMissing

VALUE = "sk_live_TOPSECRET_0123456789"


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not found")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    for name in list(os.environ):
        if name.upper().startswith("PA_TUI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for fn, sub in (("user_config_path", "config"), ("user_data_path", "data"), ("user_log_path", "log")):
        monkeypatch.setattr(platformdirs, fn, lambda *a, _s=sub, **k: tmp_path / _s / "pa-tui")
    fake = MemoryKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", None, raising=False)
    keyring.set_keyring(fake)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield fake
    reset_logging()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def log_text(tmp_path: Path) -> str:
    for h in logging.getLogger().handlers:
        h.flush()
    path = tmp_path / "log" / "pa-tui" / "pa-tui.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def configured(tmp_path: Path) -> Path:
    path = tmp_path / "pa.toml"
    path.write_text('[dialpad]\nuser_id = "42"\n[fhir]\nbase_url = "https://fhir.example.org/r4"\n')
    return path


@pytest.fixture
def fake_wiring(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    module = types.ModuleType("pa_tui.wiring")

    def run_console(settings: Settings) -> int:
        calls.append(settings)
        return 0

    module.run_console = run_console  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pa_tui.wiring", module)
    return calls


@pytest.fixture
def fake_demo(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    module = types.ModuleType("pa_tui.demo.launch")

    def run_demo(settings: Settings, **kwargs: Any) -> int:
        calls.append({"settings": settings, **kwargs})
        return 0

    module.run_demo = run_demo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pa_tui.demo.launch", module)
    return calls


# --------------------------------------------------------------------------- help
def _commands() -> list[tuple[list[str], click.Command]]:
    out: list[tuple[list[str], click.Command]] = []

    def walk(prefix: list[str], cmd: click.Command) -> None:
        out.append((prefix, cmd))
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk([*prefix, name], sub)

    walk([], cli)
    return out


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p) or "pa-tui")
def test_help_describes_every_option(runner: CliRunner, path: list[str]) -> None:
    cmd = dict((tuple(p), c) for p, c in _commands())[tuple(path)]
    result = runner.invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert cmd.help, f"{path} has no help text"
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"{param.name} has no help"
            for opt in param.opts:
                assert opt in result.output, (path, opt)


def test_main_help_lists_commands_and_demo_help_lists_options(runner: CliRunner) -> None:
    out = runner.invoke(cli, ["--help"]).output
    for word in ("--config", "--log-level", "--version", "demo", "auth", "config"):
        assert word in out
    out = runner.invoke(cli, ["demo", "--help"]).output
    for word in ("--scenario", "--speed", "--patients", "--seed", "--record", "--size"):
        assert word in out
    out = runner.invoke(cli, ["auth", "--help"]).output
    for word in ("set", "status", "delete"):
        assert word in out
    out = runner.invoke(cli, ["auth", "set", "--help"]).output
    for word in ("--from-env", "--from-file", "PA_TUI_DIALPAD_API_KEY", "dialpad-webhook"):
        assert word in out


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"pa-tui {__version__}"


# --------------------------------------------------------------------------- console
def test_unconfigured_prints_one_line_and_exits_2(runner: CliRunner, tmp_path: Path, fake_wiring: list[Any]) -> None:
    result = runner.invoke(cli, [])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("pa-tui is not configured (missing: ")
    assert "dialpad.user_id" in line and "fhir.base_url" in line
    assert "pa-tui auth set dialpad" in line and "pa-tui demo" in line
    assert str(tmp_path / "config" / "pa-tui" / "config.toml") in line
    assert fake_wiring == []


def test_configured_runs_console(
    runner: CliRunner, tmp_path: Path, fake_wiring: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PA_TUI_DIALPAD_API_KEY", VALUE)
    result = runner.invoke(cli, ["--config", str(configured(tmp_path))])
    assert result.exit_code == 0, result.output
    assert len(fake_wiring) == 1
    settings = fake_wiring[0]
    assert isinstance(settings, Settings) and settings.dialpad.user_id == "42"
    assert VALUE not in result.output


def test_console_exit_code_and_errors(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PA_TUI_DIALPAD_API_KEY", VALUE)
    module = types.ModuleType("pa_tui.wiring")
    monkeypatch.setitem(sys.modules, "pa_tui.wiring", module)
    cfg = str(configured(tmp_path))

    module.run_console = lambda s: 5  # type: ignore[attr-defined]
    assert runner.invoke(cli, ["--config", cfg]).exit_code == 5

    def missing(s: Settings) -> int:
        raise SecretMissing("Twilio auth token is not set: run `pa-tui auth set twilio`")

    module.run_console = missing  # type: ignore[attr-defined]
    result = runner.invoke(cli, ["--config", cfg])
    assert result.exit_code == 2
    assert result.stderr.strip() == "pa-tui: Twilio auth token is not set: run `pa-tui auth set twilio`"

    def crash(s: Settings) -> int:
        raise RuntimeError(f"boom for {VALUE}")

    module.run_console = crash  # type: ignore[attr-defined]
    result = runner.invoke(cli, ["--config", cfg])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unexpected error: RuntimeError" in lines[0] and "pa-tui.log" in lines[0]
    assert "Traceback" not in result.output and VALUE not in result.output
    text = log_text(tmp_path)
    assert "Traceback" in text and "RuntimeError" in text


def test_config_error_is_one_line_exit_2(runner: CliRunner, tmp_path: Path, fake_wiring: list[Any]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[dialpad]\nenvironment = "prod"\n')
    for args in (["--config", str(bad)], ["--config", str(bad), "config", "check"], ["--config", str(bad), "demo"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert str(bad) in lines[0] and "dialpad.environment" in lines[0] and "'production'" in lines[0]
    result = runner.invoke(cli, ["--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "config file not found" in result.stderr


# --------------------------------------------------------------------------- demo
def test_demo_passes_options(runner: CliRunner, tmp_path: Path, fake_demo: list[dict[str, Any]]) -> None:
    result = runner.invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    call = fake_demo[-1]
    assert isinstance(call.pop("settings"), Settings)
    assert call == {"scenario": None, "speed": 1.0, "patients": 500, "seed": 7, "record": None, "size": None,
                    "fhir_bundle": None}

    rec = tmp_path / "rec"
    args = ["demo", "--scenario", "busy-morning", "--speed", "2.5", "--patients", "50", "--seed", "3",
            "--record", str(rec), "--size", "120x40"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    call = fake_demo[-1]
    call.pop("settings")
    assert call == {"scenario": "busy-morning", "speed": 2.5, "patients": 50, "seed": 3, "record": rec, "size": (120, 40),
                    "fhir_bundle": None}


def test_demo_exit_code_and_bad_options(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, fake_demo: list[dict[str, Any]]
) -> None:
    sys.modules["pa_tui.demo.launch"].run_demo = lambda settings, **kw: 3  # type: ignore[attr-defined]
    assert runner.invoke(cli, ["demo"]).exit_code == 3
    for args in (["demo", "--speed", "0"], ["demo", "--patients", "0"], ["demo", "--size", "120x40"],
                 ["demo", "--record", "out", "--size", "big"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output


def test_log_level_option_and_file_only_logging(runner: CliRunner, tmp_path: Path, fake_demo: list[dict[str, Any]]) -> None:
    result = runner.invoke(cli, ["--log-level", "debug", "demo"])
    assert result.exit_code == 0
    assert result.output == ""  # nothing but the command's own output on the terminal
    assert fake_demo[-1]["settings"].log_level == "DEBUG"
    assert "starting: demo" in log_text(tmp_path)
    assert logging.getLogger().level == logging.DEBUG


def test_log_level_from_settings_file(runner: CliRunner, tmp_path: Path, fake_demo: list[dict[str, Any]]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('log_level = "WARNING"\n')
    assert runner.invoke(cli, ["--config", str(cfg), "demo"]).exit_code == 0
    assert logging.getLogger().level == logging.WARNING


# --------------------------------------------------------------------------- auth
def test_auth_set_prompt_env_and_file(
    runner: CliRunner, isolated: MemoryKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(cli, ["auth", "set", "dialpad"], input=f"{VALUE}\n")
    assert result.exit_code == 0, result.output
    assert isolated.items[("pa-tui", "dialpad")] == VALUE
    assert VALUE not in result.output  # hidden prompt, no echo

    monkeypatch.setenv("MY_TWILIO", "twilio-secret-value")
    result = runner.invoke(cli, ["auth", "set", "twilio", "--from-env", "MY_TWILIO"])
    assert result.exit_code == 0 and isolated.items[("pa-tui", "twilio")] == "twilio-secret-value"
    assert "twilio-secret-value" not in result.output

    pem = tmp_path / "key.pem"
    pem.write_text("-----BEGIN PRIVATE KEY-----\nMIIBVQ\n-----END PRIVATE KEY-----\n")
    result = runner.invoke(cli, ["auth", "set", "fhir", "--from-file", str(pem)])
    assert result.exit_code == 0
    assert isolated.items[("pa-tui", "fhir")].startswith("-----BEGIN PRIVATE KEY-----")
    assert "MIIBVQ" not in result.output

    result = runner.invoke(cli, ["auth", "set", "twilio", "--from-env", "NOT_SET_ANYWHERE"])
    assert result.exit_code == 2 and "NOT_SET_ANYWHERE" in result.stderr
    result = runner.invoke(cli, ["auth", "set", "nope"])
    assert result.exit_code == 2
    result = runner.invoke(cli, ["auth", "set", "fhir", "--from-env", "MY_TWILIO", "--from-file", str(pem)])
    assert result.exit_code == 2


def test_auth_set_postgres_uses_configured_item(runner: CliRunner, isolated: MemoryKeyring, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[store]\nbackend = "postgres"\ndsn_keyring_item = "pg-site-a"\n')
    result = runner.invoke(cli, ["--config", str(cfg), "auth", "set", "postgres"], input="postgresql://u:p@h/db\n")
    assert result.exit_code == 0, result.output
    assert ("pa-tui", "pg-site-a") in isolated.items
    result = runner.invoke(cli, ["--config", str(cfg), "auth", "status"])
    assert "postgres" in result.output and "postgresql://" not in result.output


def test_auth_set_without_keyring(runner: CliRunner) -> None:
    keyring.set_keyring(null.Keyring())
    result = runner.invoke(cli, ["auth", "set", "dialpad"], input=f"{VALUE}\n")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PA_TUI_DIALPAD_API_KEY" in lines[0] and "keyring" in lines[0]
    assert "Dialpad API key:" not in result.output  # refused before prompting
    assert VALUE not in result.output


def test_auth_status_never_shows_values(
    runner: CliRunner, isolated: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated.set_password("pa-tui", "dialpad", VALUE)
    monkeypatch.setenv("PA_TUI_TWILIO_AUTH_TOKEN", "env-token-value-123")
    result = runner.invoke(cli, ["auth", "status"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert VALUE not in out and "env-token-value-123" not in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:6]}
    assert rows == {
        "dialpad": "keyring",
        "dialpad-webhook": "missing",
        "twilio": "env",
        "fhir": "missing",
        "postgres": "missing",
    }
    assert "Keyring: available" in out

    keyring.set_keyring(null.Keyring())
    out = runner.invoke(cli, ["auth", "status"]).output
    assert "Keyring: not available" in out and "environment variables" in out


def test_auth_delete(runner: CliRunner, isolated: MemoryKeyring) -> None:
    isolated.set_password("pa-tui", "dialpad-webhook", VALUE)
    result = runner.invoke(cli, ["auth", "delete", "dialpad-webhook"])
    assert result.exit_code == 0 and "Deleted" in result.output
    assert ("pa-tui", "dialpad-webhook") not in isolated.items
    result = runner.invoke(cli, ["auth", "delete", "dialpad-webhook"])
    assert result.exit_code == 0 and "nothing deleted" in result.output


# --------------------------------------------------------------------------- config
def test_config_path(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(cli, ["config", "path"])
    assert result.exit_code == 0
    assert result.output.strip() == str(tmp_path / "config" / "pa-tui" / "config.toml")
    result = runner.invoke(cli, ["--config", str(tmp_path / "x.toml"), "config", "path"])
    assert result.output.strip() == str(tmp_path / "x.toml")
    monkeypatch.setenv("PA_TUI_CONFIG_FILE", str(tmp_path / "y.toml"))
    assert runner.invoke(cli, ["config", "path"]).output.strip() == str(tmp_path / "y.toml")


def test_config_check(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["config", "check"])
    assert result.exit_code == 0 and result.output.startswith("OK: ")
    assert "using defaults" in result.output and "dialpad.user_id" in result.output

    cfg = configured(tmp_path)
    with cfg.open("a") as fh:
        fh.write('[listen]\nhost = "0.0.0.0"\n')
    result = runner.invoke(cli, ["--config", str(cfg), "config", "check"])
    assert result.exit_code == 0
    assert f"OK: {cfg}" in result.output and "warning: listen.host" in result.output


def test_main_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["config", "path"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip().endswith("config.toml")


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("PA_TUI_")}
    env["HOME"] = str(tmp_path / "home")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    proc = subprocess.run(
        [sys.executable, "-m", "pa_tui", "--version"], capture_output=True, text=True, env=env, timeout=30
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"pa-tui {__version__}" and proc.stderr == ""
