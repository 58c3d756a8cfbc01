"""pa_tui.config: TOML + env settings and their one-line errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import keyring
import keyring.errors
import platformdirs
import pytest
from keyring.backend import KeyringBackend

from pa_tui import config
from pa_tui.config import ConfigError, Settings, load_settings


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
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    """No real user dirs, no real keyring, no PA_TUI_* from the developer's shell."""
    for name in list(os.environ):
        if name.upper().startswith("PA_TUI_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for fn, sub in (
        ("user_config_path", "config"),
        ("user_data_path", "data"),
        ("user_log_path", "log"),
    ):
        monkeypatch.setattr(platformdirs, fn, lambda *a, _s=sub, **k: tmp_path / _s / "pa-tui")
    fake = MemoryKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", None, raising=False)
    keyring.set_keyring(fake)
    return fake


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


VALID = """
agent_name = "Ana"
log_level = "debug"
region = "ca"

[dialpad]
environment = "sandbox"
user_id = 5835806903417856
subscription_scope = "callcenter"
call_center_ids = [123, "456"]
open_mini_dialer_with = "app"

[fhir]
base_url = "https://fhir.example.org/r4/"
vendor = "epic"
auth = "smart-backend"
client_id = "abc"
token_url = "https://fhir.example.org/oauth2/token"
private_key_path = "~/keys/fhir.pem"
timeout = 5

[store]
path = "~/notes.db"

[listen]
port = 9000

[ui]
privacy_mask = true
keymap = { "transfer" = "ctrl+t" }
minor_age = 19
"""


# --------------------------------------------------------------------------- happy paths
def test_valid_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, VALID))
    assert s.agent_name == "Ana"
    assert s.log_level == "DEBUG"
    assert s.region == "CA"
    assert s.dialpad.environment == "sandbox"
    assert s.dialpad.api_base == "https://sandbox.dialpad.com"
    assert s.dialpad.user_id == "5835806903417856"
    assert s.dialpad.call_center_ids == ["123", "456"]
    assert s.fhir.base_url == "https://fhir.example.org/r4"
    assert s.fhir.private_key_path == Path(os.environ["HOME"]) / "keys" / "fhir.pem"
    assert s.fhir.timeout == 5.0
    assert s.store.path == Path(os.environ["HOME"]) / "notes.db"
    assert s.listen.port == 9000 and s.listen.is_loopback
    assert s.ui.keymap == {"transfer": "ctrl+t"}
    assert s.ui.privacy_mask is True and s.ui.minor_age == 19
    assert s.config_file == tmp_path / "config.toml"


def test_defaults_when_default_file_missing(tmp_path: Path) -> None:
    s = load_settings()
    assert s.dialpad.environment == "production"
    assert s.dialpad.api_base == "https://dialpad.com"
    assert s.dialpad.event_mode == "websocket"
    assert s.dialpad.subscription_scope == "user"
    assert s.fhir.vendor == "generic" and s.fhir.auth == "none"
    assert s.store.backend == "sqlite"
    assert s.store.path == tmp_path / "data" / "pa-tui" / "pa-tui.db"
    assert s.listen.host == "127.0.0.1" and s.listen.port == 8765
    assert s.ui.verify_before_phi is True and s.ui.minor_age == 18
    assert s.log_level == "INFO" and s.region == "US"
    assert s.config_file == tmp_path / "config" / "pa-tui" / "config.toml"


def test_base_url_override() -> None:
    s = load_settings(dialpad={"base_url": "http://127.0.0.1:4010/"})
    assert s.dialpad.api_base == "http://127.0.0.1:4010"


def test_env_override_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[dialpad]\nenvironment = "production"\nuser_id = "1"\n')
    monkeypatch.setenv("PA_TUI_DIALPAD__ENVIRONMENT", "sandbox")
    monkeypatch.setenv("PA_TUI_LISTEN__PORT", "9100")
    monkeypatch.setenv("PA_TUI_DIALPAD__CALL_CENTER_IDS", "11, 22")
    s = load_settings(path)
    assert s.dialpad.environment == "sandbox"  # env beats file
    assert s.dialpad.user_id == "1"  # file value kept where env is silent
    assert s.listen.port == 9100
    assert s.dialpad.call_center_ids == ["11", "22"]
    # keyword overrides (the command line) beat env; dotted keys work
    s = load_settings(path, **{"dialpad.environment": "production"}, log_level="ERROR")
    assert s.dialpad.environment == "production" and s.log_level == "ERROR"


def test_config_file_env_switches_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, 'agent_name = "From env file"\n', name="other.toml")
    monkeypatch.setenv("PA_TUI_CONFIG_FILE", str(path))
    assert load_settings().agent_name == "From env file"
    assert Settings().agent_name == "From env file"  # direct construction reads it too
    assert config.config_path() == path


# --------------------------------------------------------------------------- errors
def test_invalid_enum_names_file_key_and_expected(tmp_path: Path) -> None:
    path = write(tmp_path, '[dialpad]\nuser_id = "1"\nenvironment = "prod"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "dialpad.environment" in msg
    assert "expected one of 'production', 'sandbox'" in msg
    assert "line 3" in msg
    assert "\n" not in msg and "Traceback" not in msg
    assert err.value.key == "dialpad.environment" and err.value.file == path and err.value.line == 3


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, 'agent_name = "x"\n[listen\nport = 1\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert str(path) in msg and "TOML syntax error" in msg
    assert "line 2, column" in msg
    assert err.value.line == 2


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, '[dialpad]\nenviroment = "sandbox"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert "dialpad.enviroment" in msg and "unknown key" in msg and "'environment'" in msg
    assert str(path) in msg


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, '[dialpadd]\nuser_id = "1"\n')
    with pytest.raises(ConfigError, match=r"dialpadd: unknown key; did you mean 'dialpad'"):
        load_settings(path)


@pytest.mark.parametrize(
    ("toml", "key", "auth_name"),
    [
        ('[dialpad]\napi_key = "sk_live_TOPSECRET"\n', "dialpad.api_key", "dialpad"),
        ('[twilio]\nauth_token = "TOPSECRET"\n', "twilio.auth_token", "twilio"),
        ('[fhir]\nprivate_key = "TOPSECRET"\n', "fhir.private_key", "fhir"),
        ('[store]\npassword = "TOPSECRET"\n', "store.password", "postgres"),
        ('secret = "TOPSECRET"\n', "secret", "NAME"),
        ('[dialpad]\nwebhook_secret = "TOPSECRET"\n', "dialpad.webhook_secret", "dialpad-webhook"),
    ],
)
def test_secret_in_file_is_refused_without_echoing_it(tmp_path: Path, toml: str, key: str, auth_name: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert "TOPSECRET" not in msg and "TOPSECRET" not in repr(err.value)
    assert key in msg and str(path) in msg
    assert "secrets go in the keyring" in msg
    assert f"pa-tui auth set {auth_name}" in msg


def test_secret_via_nested_env_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_TUI_DIALPAD__API_KEY", "TOPSECRET")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert "TOPSECRET" not in msg
    assert "PA_TUI_DIALPAD__API_KEY" in msg and "PA_TUI_DIALPAD_API_KEY" in msg


def test_private_key_path_is_not_a_secret(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[fhir]\nprivate_key_path = "/etc/k.pem"\ntoken_url = "https://x/t"\n'))
    assert s.fhir.private_key_path == Path("/etc/k.pem")


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_TUI_LISTEN__PORT", "eighty")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "environment variable PA_TUI_LISTEN__PORT" in str(err.value)
    assert "listen.port" in str(err.value) and "whole number" in str(err.value)


def test_unparseable_env_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_TUI_UI__KEYMAP", "not json")
    with pytest.raises(ConfigError, match="PA_TUI_UI__KEYMAP"):
        load_settings()


def test_explicit_missing_config_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="config file not found") as err:
        load_settings(missing)
    assert str(missing) in str(err.value)


def test_missing_file_from_env_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_TUI_CONFIG_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="not found"):
        load_settings()


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ("[listen]\nport = 70000\n", "listen.port", "1 to 65535"),
        ("[listen]\nport = 0\n", "listen.port", "1 to 65535"),
        ('[listen]\nport = "x"\n', "listen.port", "whole number"),
        ('[ui]\nprivacy_mask = "maybe"\n', "ui.privacy_mask", "true or false"),
        ('[fhir]\nbase_url = "fhir.example.org"\n', "fhir.base_url", "http:// or https:// URL"),
        ('[fhir]\ntimeout = 0\n', "fhir.timeout", "greater than 0"),
        ('region = "Narnia"\n', "region", "two-letter region code"),
        ('log_level = "LOUD"\n', "log_level", "expected one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
        ("dialpad = 3\n", "dialpad", "expected a table"),
        ('[dialpad]\ncall_center_ids = "[oops"\n', "dialpad.call_center_ids", "list of ids"),
    ],
)
def test_value_errors(tmp_path: Path, toml: str, key: str, expected: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert f": {key}: " in msg and expected in msg and str(path) in msg


def test_several_errors_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[listen]\nport = 0\n[ui]\nminor_age = 99\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert "listen.port" in msg and "ui.minor_age" in msg and "\n" not in msg


def test_not_utf8_and_directory(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('agent_name = "Jos\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="directory"):
        load_settings(tmp_path)


# --------------------------------------------------------------------------- helpers
def test_non_loopback_host_is_a_warning_not_an_error(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[listen]\nhost = "0.0.0.0"\n'))
    assert s.listen.host == "0.0.0.0" and not s.listen.is_loopback
    assert any("listen.host" in w for w in s.warnings())
    assert load_settings().warnings() == []


def test_missing_for_console(isolated: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = load_settings().missing_for_console()
    joined = " | ".join(missing)
    assert "dialpad.user_id" in joined
    assert "pa-tui auth set dialpad" in joined
    assert "fhir.base_url" in joined

    path = write(tmp_path, '[dialpad]\nuser_id = "42"\n[fhir]\nbase_url = "https://fhir.example.org"\n')
    monkeypatch.setenv("PA_TUI_DIALPAD_API_KEY", "k-123")
    assert load_settings(path).missing_for_console() == []

    monkeypatch.delenv("PA_TUI_DIALPAD_API_KEY")
    isolated.set_password("pa-tui", "dialpad", "k-456")
    assert load_settings(path).missing_for_console() == []

    s = load_settings(path, fhir={"auth": "bearer", "vendor": "athena"}, store={"backend": "postgres"})
    joined = " | ".join(s.missing_for_console())
    assert "auth set fhir" in joined and "fhir.practice_id" in joined and "auth set postgres" in joined
    assert "k-456" not in joined


def test_dirs_are_private(tmp_path: Path) -> None:
    for fn in (config.data_dir, config.log_dir):
        path = fn()
        assert path.is_dir()
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    path = config.config_path()
    assert path.name == "config.toml" and not path.exists()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_settings_repr_has_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_TUI_DIALPAD_API_KEY", "TOPSECRET")
    s = load_settings()
    assert "TOPSECRET" not in repr(s) and "TOPSECRET" not in str(s.model_dump())


def test_no_setting_name_looks_like_a_secret() -> None:
    from pydantic import BaseModel

    def names(model: type[BaseModel], prefix: str = "") -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            out.append(prefix + name)
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                out.extend(names(ann, f"{prefix}{name}."))
        return out

    all_names = names(Settings)
    assert "twilio.api_key_sid" in all_names and "fhir.private_key_path" in all_names
    assert [n for n in all_names if config._looks_secret(n.rsplit(".", 1)[-1])] == []
