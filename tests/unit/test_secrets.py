"""pa_tui.secrets: keyring first, then env; values never leak."""

from __future__ import annotations

import logging
import os

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from pydantic import SecretStr

from pa_tui import secrets
from pa_tui.secrets import (
    SECRETS,
    KeyringUnavailable,
    SecretError,
    SecretMissing,
    UnknownSecret,
    delete_secret,
    get_secret,
    keyring_available,
    require_secret,
    secret_status,
    set_secret,
)

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


class BrokenKeyring(MemoryKeyring):
    """Like a locked keychain or a vanished D-Bus session."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"refused {password}")  # hostile: echoes the value


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PA_TUI_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None, raising=False)


@pytest.fixture
def fake() -> MemoryKeyring:
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    return kr


def use(backend: KeyringBackend) -> None:
    keyring.set_keyring(backend)


def test_names_and_env_vars() -> None:
    assert {s.name: s.env_var for s in SECRETS.values()} == {
        "dialpad": "PA_TUI_DIALPAD_API_KEY",
        "dialpad-webhook": "PA_TUI_DIALPAD_WEBHOOK_SECRET",
        "twilio": "PA_TUI_TWILIO_AUTH_TOKEN",
        "fhir": "PA_TUI_FHIR_SECRET",
        "postgres": "PA_TUI_POSTGRES_DSN",
    }


def test_keyring_round_trip(fake: MemoryKeyring) -> None:
    assert get_secret("dialpad") is None
    set_secret("dialpad", f"  {VALUE}\n")
    assert fake.items[("pa-tui", "dialpad")] == VALUE  # service "pa-tui", stripped
    got = get_secret("dialpad")
    assert isinstance(got, SecretStr) and got.get_secret_value() == VALUE
    assert delete_secret("dialpad") is True
    assert delete_secret("dialpad") is False
    assert get_secret("dialpad") is None


def test_keyring_beats_env_and_env_is_fallback(fake: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_TUI_TWILIO_AUTH_TOKEN", "from-env")
    assert get_secret("twilio").get_secret_value() == "from-env"  # type: ignore[union-attr]
    assert secrets.secret_source("twilio") == "env"
    set_secret("twilio", "from-keyring")
    assert get_secret("twilio").get_secret_value() == "from-keyring"  # type: ignore[union-attr]
    assert secrets.secret_source("twilio") == "keyring"


def test_blank_env_counts_as_missing(fake: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_TUI_FHIR_SECRET", "   ")
    assert get_secret("fhir") is None


def test_custom_keyring_item(fake: MemoryKeyring) -> None:
    set_secret("postgres", "postgresql://u:pw@db/pa", item="pg-prod")
    assert ("pa-tui", "pg-prod") in fake.items
    assert get_secret("postgres") is None
    assert get_secret("postgres", item="pg-prod") is not None
    assert secret_status({"postgres": "pg-prod"})[-1].source == "keyring"


def test_require_secret_says_how_to_set_it(fake: MemoryKeyring) -> None:
    with pytest.raises(SecretMissing) as err:
        require_secret("dialpad")
    msg = str(err.value)
    assert "pa-tui auth set dialpad" in msg and "PA_TUI_DIALPAD_API_KEY" in msg
    set_secret("dialpad", VALUE)
    assert require_secret("dialpad").get_secret_value() == VALUE


@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring])
def test_no_keyring_backend(backend: type[KeyringBackend], monkeypatch: pytest.MonkeyPatch) -> None:
    use(backend())
    usable, why = keyring_available()
    assert usable is False and "no usable keyring backend" in why
    with pytest.raises(KeyringUnavailable) as err:
        set_secret("dialpad", VALUE)
    msg = str(err.value)
    assert "PA_TUI_DIALPAD_API_KEY" in msg and "environment variable" in msg
    assert VALUE not in msg
    # reads fall back to env quietly
    assert get_secret("dialpad") is None
    monkeypatch.setenv("PA_TUI_DIALPAD_API_KEY", VALUE)
    assert get_secret("dialpad").get_secret_value() == VALUE  # type: ignore[union-attr]
    with pytest.raises(SecretMissing, match="PA_TUI_TWILIO_AUTH_TOKEN"):
        require_secret("twilio")
    with pytest.raises(KeyringUnavailable):
        delete_secret("dialpad")


def test_chainer_without_backends_is_unusable() -> None:
    from keyring.backends.chainer import ChainerBackend

    class EmptyChain(ChainerBackend):
        backends = []  # type: ignore[assignment]  # what keyring builds when nothing is viable

    class NullOnlyChain(ChainerBackend):
        backends = [null.Keyring()]  # type: ignore[assignment]

    class UsefulChain(ChainerBackend):
        backends = [MemoryKeyring()]  # type: ignore[assignment]

    use(EmptyChain())
    assert keyring_available()[0] is False
    use(NullOnlyChain())
    assert keyring_available()[0] is False
    use(UsefulChain())
    assert keyring_available()[0] is True


def test_broken_backend_falls_back_and_never_echoes(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    use(BrokenKeyring())
    monkeypatch.setenv("PA_TUI_DIALPAD_API_KEY", "env-value")
    with caplog.at_level(logging.DEBUG):
        assert get_secret("dialpad").get_secret_value() == "env-value"  # type: ignore[union-attr]
        with pytest.raises(KeyringUnavailable) as err:
            set_secret("dialpad", VALUE)
    assert VALUE not in str(err.value)
    assert "PA_TUI_DIALPAD_API_KEY" in str(err.value)
    assert VALUE not in caplog.text and "env-value" not in caplog.text


def test_values_never_in_repr_str_or_logs(fake: MemoryKeyring, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        set_secret("dialpad", VALUE)
        got = get_secret("dialpad")
        status = secret_status()
    assert got is not None
    for text in (repr(got), str(got), f"{got}", repr(status), str(status), caplog.text):
        assert VALUE not in text


def test_status(fake: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    set_secret("dialpad", VALUE)
    monkeypatch.setenv("PA_TUI_POSTGRES_DSN", "postgresql://x")
    rows = {r.name: r for r in secret_status()}
    assert list(rows) == list(SECRETS)
    assert rows["dialpad"].source == "keyring"
    assert rows["postgres"].source == "env"
    assert rows["twilio"].source == "missing"
    assert rows["dialpad"].description == "Dialpad API key"
    assert rows["postgres"].env_var == "PA_TUI_POSTGRES_DSN"


def test_unknown_name_and_empty_value(fake: MemoryKeyring) -> None:
    with pytest.raises(UnknownSecret, match="expected one of"):
        get_secret("dialpd")
    with pytest.raises(SecretError, match="empty"):
        set_secret("dialpad", "   ")
    set_secret("fhir", SecretStr("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"))
    assert get_secret("fhir").get_secret_value().startswith("-----BEGIN")  # type: ignore[union-attr]


def test_available_names_backend(fake: MemoryKeyring) -> None:
    usable, label = keyring_available()
    assert usable is True and label
