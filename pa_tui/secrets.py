"""Secrets: the OS keyring (service ``"pa-tui"``), then environment variables.

Every secret has a short name used by ``pa-tui auth set NAME``, a keyring item
(the same name unless the config names another, e.g. ``store.dsn_keyring_item``)
and an environment variable for machines without a keyring — the usual case
over SSH on a server. Values only ever travel as :class:`pydantic.SecretStr`;
no function here puts a value in a log line, a repr or an exception message.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Literal

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from pydantic import SecretStr

__all__ = [
    "SECRETS",
    "SERVICE",
    "KeyringUnavailable",
    "SecretError",
    "SecretMissing",
    "SecretSpec",
    "SecretStatus",
    "UnknownSecret",
    "delete_secret",
    "get_secret",
    "keyring_available",
    "require_secret",
    "secret_source",
    "secret_status",
    "set_secret",
]

log = logging.getLogger(__name__)

SERVICE = "pa-tui"

Source = Literal["keyring", "env", "missing"]


@dataclass(frozen=True)
class SecretSpec:
    """A secret pa-tui knows about."""

    name: str
    env_var: str
    description: str
    multiline: bool = False  # PEM keys: read with --from-file rather than a prompt


SECRETS: dict[str, SecretSpec] = {
    s.name: s
    for s in (
        SecretSpec("dialpad", "PA_TUI_DIALPAD_API_KEY", "Dialpad API key"),
        SecretSpec("dialpad-webhook", "PA_TUI_DIALPAD_WEBHOOK_SECRET", "Dialpad webhook secret"),
        SecretSpec("twilio", "PA_TUI_TWILIO_AUTH_TOKEN", "Twilio auth token or API key secret"),
        SecretSpec("fhir", "PA_TUI_FHIR_SECRET", "FHIR bearer token or private key (PEM)", multiline=True),
        SecretSpec("postgres", "PA_TUI_POSTGRES_DSN", "PostgreSQL connection string (DSN)"),
    )
}


# --------------------------------------------------------------------------- errors
class SecretError(Exception):
    """Base class. Messages say what to do and never contain a secret value."""


class UnknownSecret(SecretError, ValueError):
    """A name that is not in :data:`SECRETS`."""


class SecretMissing(SecretError):
    """A required secret is in neither the keyring nor the environment."""


class KeyringUnavailable(SecretError):
    """No usable keyring backend, or the backend refused the operation."""


@dataclass(frozen=True)
class SecretStatus:
    """Where a secret is set. Carries no value."""

    name: str
    source: Source
    description: str
    env_var: str = ""


# --------------------------------------------------------------------------- backend
def _spec(name: str) -> SecretSpec:
    try:
        return SECRETS[name]
    except KeyError:
        known = ", ".join(SECRETS)
        raise UnknownSecret(f"unknown secret {name!r}; expected one of: {known}") from None


def _backend_label(kr: KeyringBackend) -> str:
    name = getattr(kr, "name", None)
    return str(name) if name else f"{type(kr).__module__}.{type(kr).__qualname__}"


def _is_unusable(kr: KeyringBackend) -> bool:
    from keyring.backends import chainer, fail, null

    if isinstance(kr, (fail.Keyring, null.Keyring)):
        return True
    if isinstance(kr, chainer.ChainerBackend):
        try:
            backends = list(kr.backends)
        except Exception:  # pragma: no cover - discovery failed
            return True
        return all(_is_unusable(b) for b in backends)
    return False


def _backend() -> tuple[KeyringBackend | None, str]:
    try:
        kr = keyring.get_keyring()
    except Exception as exc:  # a broken backend configuration must not stop the console
        return None, f"keyring failed to load ({type(exc).__name__})"
    return kr, _backend_label(kr)


def keyring_available() -> tuple[bool, str]:
    """``(usable, description)`` of the active keyring backend."""
    kr, label = _backend()
    if kr is None:
        return False, label
    if _is_unusable(kr):
        return False, f"no usable keyring backend ({label}); usual over SSH or on a server"
    module = type(kr).__module__
    if module.startswith("keyrings.alt") and "file" in module.lower():
        name = type(kr).__name__
        if "Plaintext" in name:
            return True, f"{label} — stores secrets unencrypted in a file"
    return True, label


def _keyring_get(item: str) -> str | None:
    kr, label = _backend()
    if kr is None or _is_unusable(kr):
        return None
    try:
        value = kr.get_password(SERVICE, item)
    except Exception as exc:  # locked keychain, D-Bus gone, …: fall back to the environment
        log.warning("keyring lookup of item %r failed (%s); trying the environment", item, type(exc).__name__)
        return None
    return value or None


# --------------------------------------------------------------------------- API
def secret_source(name: str, *, item: str | None = None) -> Source:
    """Where :func:`get_secret` would find ``name``: ``"keyring"``, ``"env"`` or ``"missing"``."""
    spec = _spec(name)
    if _keyring_get(item or name) is not None:
        return "keyring"
    if os.environ.get(spec.env_var, "").strip():
        return "env"
    return "missing"


def get_secret(name: str, *, item: str | None = None) -> SecretStr | None:
    """The secret ``name`` from the keyring (item ``item`` or ``name``), else its env var, else ``None``."""
    spec = _spec(name)
    value = _keyring_get(item or name)
    if value is not None:
        return SecretStr(value.strip())
    env = os.environ.get(spec.env_var, "").strip()
    if env:
        return SecretStr(env)
    return None


def _how_to_set(spec: SecretSpec) -> str:
    usable, _ = keyring_available()
    cmd = f"`pa-tui auth set {spec.name}`" + (" --from-file KEY.pem" if spec.multiline else "")
    if usable:
        return f"run {cmd} or set the environment variable {spec.env_var}"
    return f"set the environment variable {spec.env_var} (no keyring backend here for {cmd})"


def require_secret(name: str, *, item: str | None = None) -> SecretStr:
    """Like :func:`get_secret` but raises :class:`SecretMissing` saying how to set it."""
    spec = _spec(name)
    value = get_secret(name, item=item)
    if value is None:
        raise SecretMissing(f"{spec.description} is not set: {_how_to_set(spec)}")
    return value


def set_secret(name: str, value: str | SecretStr, *, item: str | None = None) -> str:
    """Store ``value`` in the keyring. Returns the backend description.

    Raises :class:`KeyringUnavailable` when no usable backend exists (saying to
    use the environment variable) or the backend refuses.
    """
    spec = _spec(name)
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    raw = raw.strip()
    if not raw:
        raise SecretError(f"empty value for {spec.description}; nothing saved")
    kr, label = _backend()
    usable, why = keyring_available()
    if kr is None or not usable:
        raise KeyringUnavailable(
            f"cannot save the {spec.description} to the keyring: {why}. "
            f"Set the environment variable {spec.env_var} instead"
        )
    try:
        kr.set_password(SERVICE, item or name, raw)
    except Exception as exc:
        detail = str(exc)
        if not detail or raw in detail or len(detail) > 200:
            detail = type(exc).__name__
        raise KeyringUnavailable(
            f"the keyring ({label}) refused to save the {spec.description}: {detail}. "
            f"Set the environment variable {spec.env_var} instead"
        ) from None
    log.info("secret %s saved to keyring item %r (%s)", name, item or name, label)
    return label


def delete_secret(name: str, *, item: str | None = None) -> bool:
    """Remove ``name`` from the keyring. ``False`` if it was not there."""
    _spec(name)
    kr, label = _backend()
    usable, why = keyring_available()
    if kr is None or not usable:
        raise KeyringUnavailable(f"cannot delete from the keyring: {why}")
    try:
        kr.delete_password(SERVICE, item or name)
    except keyring.errors.PasswordDeleteError:
        return False
    except Exception as exc:
        raise KeyringUnavailable(
            f"the keyring ({label}) refused to delete {name}: {type(exc).__name__}"
        ) from None
    log.info("secret %s deleted from keyring item %r", name, item or name)
    return True


def secret_status(items: dict[str, str] | None = None) -> list[SecretStatus]:
    """Where each known secret is set (keyring / env / missing). Never reads values into the result.

    ``items`` maps a secret name to a non-default keyring item
    (``{"postgres": settings.store.dsn_keyring_item}``).
    """
    items = items or {}
    return [
        SecretStatus(spec.name, secret_source(spec.name, item=items.get(spec.name)), spec.description, spec.env_var)
        for spec in SECRETS.values()
    ]
