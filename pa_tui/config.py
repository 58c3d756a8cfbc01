"""Settings: a TOML file under the platformdirs config dir, with environment overrides.

Where settings come from, strongest first:

1. keyword overrides given to :func:`load_settings` (the command line uses these);
2. environment variables ``PA_TUI_<KEY>``, nested with ``__``
   (``PA_TUI_DIALPAD__ENVIRONMENT=sandbox``);
3. the TOML file: ``pa-tui --config PATH``, else ``$PA_TUI_CONFIG_FILE``, else
   ``platformdirs.user_config_path("pa-tui") / "config.toml"``;
4. the defaults below.

Secrets never live here: the file may only name a keyring item
(``store.dsn_keyring_item``). A secret-looking key in the file is refused with a
pointer to ``pa-tui auth set``. Every problem surfaces as one :class:`ConfigError`
whose message names the file (or environment variable), the dotted key and what
is expected — never a traceback and never the offending value when it could be
a secret.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.exceptions import SettingsError

__all__ = [
    "APP_NAME",
    "CONFIG_FILE_ENV",
    "ENV_PREFIX",
    "ConfigError",
    "DialpadSettings",
    "FhirSettings",
    "ListenSettings",
    "ReminderClinicSettings",
    "ReminderSettings",
    "Settings",
    "StoreSettings",
    "TwilioSettings",
    "UiSettings",
    "config_path",
    "data_dir",
    "default_config_path",
    "load_settings",
    "log_dir",
]

log = logging.getLogger(__name__)

APP_NAME = "pa-tui"
ENV_PREFIX = "PA_TUI_"
CONFIG_FILE_ENV = "PA_TUI_CONFIG_FILE"

DIALPAD_PRODUCTION_URL = "https://dialpad.com"
DIALPAD_SANDBOX_URL = "https://sandbox.dialpad.com"


# --------------------------------------------------------------------------- errors
class ConfigError(Exception):
    """The configuration cannot be used. ``str(err)`` is one line a user can act on.

    ``file`` is the config file (or ``None``), ``key`` the dotted key at fault (or
    ``None`` for file-level problems), ``line`` the 1-based line in the file when
    known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: Path | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.key = key
        self.line = line


# --------------------------------------------------------------------------- paths
def _private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0o700 for the leaf; tighten it if we own it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        try:
            st = path.stat()
            if st.st_uid == os.getuid() and (st.st_mode & 0o777) != 0o700:
                path.chmod(0o700)
        except OSError:  # pragma: no cover - best effort on odd filesystems
            pass
    return path


def default_config_path() -> Path:
    """``<platformdirs user config dir>/config.toml``, without creating anything."""
    return platformdirs.user_config_path(APP_NAME, appauthor=False) / "config.toml"


def config_path(explicit: Path | str | None = None) -> Path:
    """The config file in effect: ``explicit`` (``--config``), ``$PA_TUI_CONFIG_FILE``, or the default.

    For the default location the config directory is created (mode 0o700) so the
    user can write the file straight away; the file itself is never created.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(CONFIG_FILE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    path = default_config_path()
    _private_dir(path.parent)
    return path


def data_dir() -> Path:
    """The per-user data directory (SQLite store lives here), created with mode 0o700."""
    return _private_dir(platformdirs.user_data_path(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """The per-user log directory, created with mode 0o700."""
    return _private_dir(platformdirs.user_log_path(APP_NAME, appauthor=False))


def _default_db_path() -> Path:
    # Computed, not created: loading settings must not touch the disk.
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / "pa-tui.db"


# --------------------------------------------------------------------------- validators
def _check_http_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not re.match(r"^https?://[^\s/?#]+", value, re.IGNORECASE):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


def _expand_path(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return None
        return Path(value).expanduser()
    if isinstance(value, Path):
        return value.expanduser()
    return value


def _split_ids(value: Any) -> Any:
    """Accept ``["1", "2"]``, ``[1, 2]``, ``'["1","2"]'`` or ``"1,2"`` (from the environment)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            try:
                return json.loads(text)
            except ValueError as exc:
                raise ValueError("expected a list of ids, e.g. [\"123\", \"456\"] or 123,456") from exc
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        coerce_numbers_to_str=True,  # Dialpad ids are big integers; TOML users write them bare
        validate_assignment=True,
    )


# --------------------------------------------------------------------------- sections
class DialpadSettings(_Section):
    """Dialpad account and event delivery. The API key is a secret (``pa-tui auth set dialpad``)."""

    environment: Literal["production", "sandbox"] = "production"
    base_url: str | None = None
    user_id: str | None = None
    event_mode: Literal["websocket", "webhook"] = "websocket"
    subscription_scope: Literal["user", "callcenter", "company"] = "user"
    call_center_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mini_dialer_client_id: str | None = None
    open_mini_dialer_with: Literal["browser", "app"] = "browser"
    #: The site's wrap-up codes, set on the call as Dialpad call labels.
    wrapup_codes: list[str] = Field(
        default_factory=lambda: [
            "Appointment booked", "Appointment rescheduled", "Billing question", "Prescription refill",
            "Referral status", "Message taken", "Transferred", "No action needed",
        ]
    )
    #: Also send "open chart" to the agent's Dialpad app through the screen-pop API.
    screen_pop_chart: bool = False

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_http_url(value)

    @field_validator("call_center_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        return _split_ids(value)

    @field_validator("user_id", "mini_dialer_client_id")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @property
    def api_base(self) -> str:
        """REST base URL: ``base_url`` if set, else production or sandbox by ``environment``."""
        if self.base_url:
            return self.base_url
        return DIALPAD_SANDBOX_URL if self.environment == "sandbox" else DIALPAD_PRODUCTION_URL


class FhirSettings(_Section):
    """FHIR R4 server. Bearer tokens and private keys are secrets (``pa-tui auth set fhir``)."""

    base_url: str | None = None
    vendor: Literal["epic", "oracle-health", "athena", "generic"] = "generic"
    auth: Literal["none", "bearer", "smart-backend"] = "none"
    client_id: str | None = None
    token_url: str | None = None
    key_id: str | None = None
    private_key_path: Path | None = None
    practice_id: str | None = None
    chart_url_template: str | None = None
    ehr_user_id: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=300)
    #: SMART Backend Services: the signing algorithm of the registered key, and the scopes asked for.
    #: Writing notes back and confirming appointments need write scopes too.
    algorithm: Literal["RS384", "ES384"] = "RS384"
    scope: str = "system/*.read"
    #: Write saved notes back to the EHR as DocumentReferences (through the Store's outbox, retried
    #: until the EHR confirms). Needs a write scope, e.g. "system/DocumentReference.write".
    write_notes: bool = False

    @field_validator("base_url", "token_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_http_url(value)

    @field_validator("private_key_path", mode="before")
    @classmethod
    def _key_path(cls, value: Any) -> Any:
        return _expand_path(value)


class TwilioSettings(_Section):
    """Twilio Messages for reminders. The auth token / API secret is a secret (``pa-tui auth set twilio``)."""

    account_sid: str | None = None
    from_number: str | None = None
    api_key_sid: str | None = None
    base_url: str | None = None
    status_callback_base: str | None = None

    @field_validator("base_url", "status_callback_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _check_http_url(value)


class StoreSettings(_Section):
    """Where notes, audit rows and the outbox live. The PostgreSQL DSN is a keyring item."""

    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: Path | None = Field(default_factory=_default_db_path)
    dsn_keyring_item: str = "postgres"

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any) -> Any:
        value = _expand_path(value)
        return _default_db_path() if value is None else value

    @field_validator("dsn_keyring_item")
    @classmethod
    def _item_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("expected the name of a keyring item, e.g. \"postgres\"")
        return value


class ListenSettings(_Section):
    """The loopback listener for webhooks, 8x8 caller-info pops and Twilio replies."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    #: The URL Dialpad and Twilio reach this listener at, when a TLS reverse proxy fronts it
    #: (e.g. "https://agents.example.org/pa-tui"). Signatures are checked against this URL.
    public_base_url: str | None = None
    #: Honour X-Forwarded-Proto/Host from that proxy (only when it is yours).
    trust_proxy: bool = False

    @property
    def base_url(self) -> str:
        """Where outside services reach the listener."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def is_loopback(self) -> bool:
        if self.host in ("localhost", "localhost.localdomain"):
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


class UiSettings(_Section):
    """Console behaviour."""

    privacy_mask: bool = False
    theme: str | None = None
    keymap: dict[str, str] = Field(default_factory=dict)
    verify_before_phi: bool = True
    minor_age: int = Field(default=18, ge=1, le=30)


#: The reminder text. Only these fields may appear: ``{clinic}``, ``{date}``, ``{time}``, ``{location}``
#: — never anything clinical (no clinician, specialty, service or reason).
REMINDER_FIELDS = ("clinic", "date", "time", "location")
DEFAULT_REMINDER_TEMPLATE = (
    "{clinic} reminder: appointment {date} at {time}, {location}. "
    "Reply C to confirm, R to reschedule, STOP to opt out."
)
#: Used instead when the full text would take more than one SMS segment.
DEFAULT_REMINDER_SHORT_TEMPLATE = "{clinic}: appt {date} {time}. Reply C to confirm, R to reschedule, STOP to opt out."


def _check_reminder_template(value: str | None) -> str | None:
    import string

    if value is None:
        return None
    text = value.strip()
    if not text:
        raise ValueError("expected the reminder text, e.g. \"{clinic}: appointment {date} at {time}. Reply C …\"")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError:
        raise ValueError("unbalanced { or } in the reminder text (write {{ or }} for a literal brace)") from None
    allowed = ", ".join("{" + f + "}" for f in REMINDER_FIELDS)
    for name, spec, conv in fields:
        if name not in REMINDER_FIELDS or spec or conv:
            raise ValueError(f"the reminder text may only use {allowed} (no clinical details)")
    if "STOP" not in text.upper():
        raise ValueError("the reminder text must tell patients how to opt out (e.g. \"Reply STOP to opt out.\")")
    return text


def _check_timezone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    import zoneinfo

    name = value.strip()
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as \"America/Chicago\"") from None
    return name


def _check_clock_time(value: Any) -> str:
    import datetime as _dt

    if isinstance(value, _dt.time):  # a TOML local time: quiet_start = 20:00:00
        return f"{value.hour:02d}:{value.minute:02d}"
    m = re.fullmatch(r"\s*([01]?\d|2[0-3]):([0-5]\d)(?::00)?\s*", str(value))
    if not m:
        raise ValueError("expected a time of day as HH:MM, e.g. \"20:00\"")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def _check_sender(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not re.fullmatch(r"\+[1-9][\d\s().\-]{6,20}", text):
        raise ValueError("expected the Twilio number in international form, e.g. \"+14155550142\"")
    return text


class ReminderClinicSettings(_Section):
    """One clinic's reminders, as ``[reminders.clinics."NAME"]``: NAME is the clinic's EHR Location
    name or id (``match`` lists more). Every key is optional: the ``[reminders]`` values apply."""

    name: str | None = None  # how the text names the clinic (default: the EHR's location name)
    location: str | None = None  # where to come (default: the location's address, else its name)
    timezone: str | None = None  # IANA zone the date and time are written in, and quiet hours kept
    from_number: str | None = None  # the Twilio number this clinic texts from
    template: str | None = None
    short_template: str | None = None
    match: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("template", "short_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return _check_reminder_template(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _check_timezone(value)

    @field_validator("from_number")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return _check_sender(value)

    @field_validator("name", "location")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("match", mode="before")
    @classmethod
    def _match(cls, value: Any) -> Any:
        return _split_ids(value)


class ReminderSettings(_Section):
    """Appointment reminders by SMS (``pa-tui remind``, the console's "send reminder")."""

    template: str = DEFAULT_REMINDER_TEMPLATE
    short_template: str = DEFAULT_REMINDER_SHORT_TEMPLATE
    timezone: str | None = None  # default clinic zone; unset: the appointment's own UTC offset
    from_number: str | None = None  # default sender; unset: twilio.from_number
    quiet_start: str = "20:00"  # no texts from this time …
    quiet_end: str = "08:00"  # … until this time, clinic time; sends then wait in the outbox
    confirm_in_ehr: bool = True  # a "C" reply confirms the appointment in the EHR (where the profile allows)
    reply_window_days: int = Field(default=14, ge=1, le=90)  # how far ahead a reply may answer a reminder
    delivery_wait: float = Field(default=20.0, ge=0, le=600)  # seconds `pa-tui remind` waits for delivery reports
    clinics: dict[str, ReminderClinicSettings] = Field(default_factory=dict)

    @field_validator("template", "short_template")
    @classmethod
    def _template(cls, value: str) -> str:
        checked = _check_reminder_template(value)
        assert checked is not None
        return checked

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _check_timezone(value)

    @field_validator("quiet_start", "quiet_end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> str:
        return _check_clock_time(value)

    @field_validator("from_number")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        return _check_sender(value)


# --------------------------------------------------------------------------- TOML source
_SECRET_EXACT = {
    "api_key",
    "apikey",
    "api_secret",
    "auth_token",
    "access_token",
    "refresh_token",
    "bearer_token",
    "token",
    "secret",
    "client_secret",
    "webhook_secret",
    "password",
    "passwd",
    "private_key",
    "private_key_pem",
    "dsn",
    "connection_string",
}
_SECRET_SUFFIXES = ("_secret", "_password", "_passwd", "_api_key", "_auth_token", "_access_token", "_token")


def _looks_secret(key: str) -> bool:
    k = key.strip().lower().replace("-", "_")
    return k in _SECRET_EXACT or k.endswith(_SECRET_SUFFIXES)


def _secret_name_for(section: str, key: str) -> str:
    """Which ``pa-tui auth set NAME`` a misplaced secret belongs to."""
    k = key.lower()
    if section == "dialpad":
        return "dialpad-webhook" if "webhook" in k else "dialpad"
    if section in ("twilio", "fhir"):
        return section
    if section == "store" or "dsn" in k or "postgres" in k:
        return "postgres"
    if "webhook" in k:
        return "dialpad-webhook"
    return "NAME"


def _secret_hint(dotted: str, *, in_env: bool = False) -> str:
    parts = dotted.split(".")
    section = parts[0] if len(parts) > 1 else ""
    name = _secret_name_for(section, parts[-1])
    from pa_tui.secrets import SECRETS  # local: keeps config importable on its own

    env = f" (or set {SECRETS[name].env_var})" if name in SECRETS else ""
    tail = "unset this variable" if in_env else "remove this key from the file"
    return f"secrets go in the keyring: run `pa-tui auth set {name}`{env} and {tail}"


def _find_secret_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted == "ui.keymap":  # binding ids, not settings
            continue
        if _looks_secret(str(key)):
            found.append(dotted)
        elif isinstance(value, dict):
            found.extend(_find_secret_keys(value, dotted + "."))
    return found


def _locate_key(text: str, dotted: str) -> int | None:
    """Best-effort 1-based line of ``dotted`` in TOML ``text`` (tables and dotted keys)."""
    parts = dotted.split(".")
    table: list[str] = []
    header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        m = header.match(raw)
        if m:
            table = [p.strip().strip('"\'') for p in m.group(1).split(".")]
            if table == parts:
                return lineno
            continue
        m = re.match(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=", raw)
        if not m:
            continue
        key = [p.strip().strip('"\'') for p in m.group(1).split(".")]
        if table + key == parts[: len(table) + len(key)] and len(table) + len(key) <= len(parts):
            return lineno
    return None


def _where(path: Path, line: int | None) -> str:
    return f"{path}, line {line}" if line else f"{path}"


_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_EOF = re.compile(r"\s*\(at end of document\)\s*$")


def read_toml(path: Path, *, required: bool) -> tuple[dict[str, Any], str]:
    """Read and parse ``path``. Returns ``({}, "")`` for a missing optional file.

    Raises :class:`ConfigError` for unreadable files, TOML syntax errors (with
    line and column) and secret-looking keys.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: config file not found", file=path) from None
        return {}, ""
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML file", file=path) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})", file=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8", file=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc.args[0] if exc.args else exc)
        line: int | None = None
        col: int | None = None
        if m := _TOML_POS.search(msg):
            line, col = int(m.group(1)), int(m.group(2))
            msg = msg[: m.start()]
        elif m := _TOML_EOF.search(msg):
            msg = msg[: m.start()]
        if line is None and isinstance(getattr(exc, "lineno", None), int):  # Python 3.14+
            line, col = exc.lineno, getattr(exc, "colno", None)
        where = f"line {line}, column {col}" if line is not None else "end of file"
        raise ConfigError(
            f"{path}: TOML syntax error at {where}: {msg.strip()}",
            file=path,
            line=line,
        ) from None
    secrets_found = _find_secret_keys(data)
    if secrets_found:
        key = secrets_found[0]
        line = _locate_key(text, key)
        raise ConfigError(f"{_where(path, line)}: {key}: {_secret_hint(key)}", file=path, key=key, line=line)
    return data, text


# The TOML data for the Settings being built by load_settings (None: the source reads it).
_TOML_DATA: ContextVar[dict[str, Any] | None] = ContextVar("pa_tui_toml_data", default=None)


class _TomlSource(PydanticBaseSettingsSource):
    """Lowest-priority source: the config TOML (pre-read by load_settings, or read here)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data = _TOML_DATA.get()
        if data is None:
            env = os.environ.get(CONFIG_FILE_ENV, "").strip()
            path = Path(env).expanduser() if env else default_config_path()
            data, _ = read_toml(path, required=bool(env))
        return data


# --------------------------------------------------------------------------- Settings
class Settings(BaseSettings):
    """Everything pa-tui reads at start-up. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        validate_default=True,
        coerce_numbers_to_str=True,
    )

    agent_name: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    region: str = "US"

    dialpad: DialpadSettings = Field(default_factory=DialpadSettings)
    fhir: FhirSettings = Field(default_factory=FhirSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    listen: ListenSettings = Field(default_factory=ListenSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    reminders: ReminderSettings = Field(default_factory=ReminderSettings)

    _config_file: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No .env and no secrets dir: secrets come from secrets.py only.
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            return "WARNING" if value == "WARN" else value
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        value = value.strip().upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("expected a two-letter region code such as \"US\" or \"CA\"")
        return value

    @field_validator("agent_name")
    @classmethod
    def _agent_name(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    # ----------------------------------------------------------------- helpers
    @property
    def config_file(self) -> Path | None:
        """The TOML file these settings were read from (``None`` when built directly)."""
        return self._config_file

    def warnings(self) -> list[str]:
        """Non-fatal remarks about the configuration, one human line each."""
        out: list[str] = []
        if not self.listen.is_loopback:
            out.append(
                f"listen.host is {self.listen.host!r}, not loopback: webhooks and caller-info pops "
                "will be reachable from the network; keep it on 127.0.0.1 behind a reverse proxy"
            )
        if self.dialpad.base_url and self.dialpad.environment == "sandbox" and "sandbox" not in self.dialpad.base_url:
            out.append("dialpad.base_url overrides dialpad.environment = \"sandbox\"")
        if self.dialpad.subscription_scope == "company":
            out.append(
                "dialpad.subscription_scope = \"company\" delivers every call of the company to "
                "this console; use \"user\" for agents and \"callcenter\" for supervisors"
            )
        if self.store.backend == "postgres" and "path" in self.store.model_fields_set:
            out.append("store.path is ignored when store.backend = \"postgres\"")
        return out

    def missing_for_console(self) -> list[str]:
        """What must still be set before ``pa-tui`` can run against real accounts.

        One short human line per item; empty when the console can start. Checks
        the keyring/environment for secrets but never reads their values into
        the result.
        """
        from pa_tui.secrets import get_secret  # local: secrets does not import config

        missing: list[str] = []
        d, f = self.dialpad, self.fhir
        if not d.user_id:
            missing.append("dialpad.user_id (your Dialpad user id)")
        if get_secret("dialpad") is None:
            missing.append("Dialpad API key (`pa-tui auth set dialpad`)")
        if d.event_mode == "webhook" and get_secret("dialpad-webhook") is None:
            missing.append("Dialpad webhook secret (`pa-tui auth set dialpad-webhook`)")
        if d.subscription_scope == "callcenter" and not d.call_center_ids:
            missing.append("dialpad.call_center_ids (needed for subscription_scope = \"callcenter\")")
        if not f.base_url:
            missing.append("fhir.base_url (your FHIR R4 server)")
        if f.auth == "bearer" and get_secret("fhir") is None:
            missing.append("FHIR bearer token (`pa-tui auth set fhir`)")
        if f.auth == "smart-backend":
            if not f.client_id:
                missing.append("fhir.client_id (SMART backend-services client id)")
            if not f.token_url:
                missing.append("fhir.token_url (SMART token endpoint)")
            if f.private_key_path is not None:
                if not f.private_key_path.is_file():
                    missing.append(f"FHIR private key file {f.private_key_path} (fhir.private_key_path) not found")
            elif get_secret("fhir") is None:
                missing.append("FHIR private key (`pa-tui auth set fhir --from-file KEY.pem` or fhir.private_key_path)")
        if f.vendor == "athena" and not f.practice_id:
            missing.append("fhir.practice_id (athenahealth practice id)")
        if self.store.backend == "postgres" and get_secret("postgres", item=self.store.dsn_keyring_item) is None:
            missing.append("PostgreSQL DSN (`pa-tui auth set postgres`)")
        return missing


# --------------------------------------------------------------------------- loading
def _nest(overrides: dict[str, Any]) -> dict[str, Any]:
    """``{"dialpad.environment": "x", "ui__theme": "y", "log_level": "DEBUG"}`` → nested dicts."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = re.split(r"\.|__", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # pragma: no cover - conflicting overrides
                raise ConfigError(f"override {key!r} conflicts with another override", key=key)
        leaf = parts[-1]
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf].update(value)
        else:
            node[leaf] = value
    return out


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(path: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in path:
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _expected_for(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        text = "expected one of " + ", ".join(f"'{c}'" for c in choices)
        given = err.get("input")
        if isinstance(given, str) and len(given) <= 40 and not _looks_like_token(given):
            text += f" (got {given!r})"
        return text
    simple = {
        "int_parsing": "expected a whole number",
        "int_type": "expected a whole number",
        "int_from_float": "expected a whole number",
        "float_parsing": "expected a number",
        "float_type": "expected a number",
        "bool_parsing": "expected true or false",
        "bool_type": "expected true or false",
        "string_type": "expected a string (in quotes)",
        "list_type": "expected a list, e.g. [\"123\", \"456\"]",
        "dict_type": "expected a table of key = value pairs",
        "model_type": "expected a table of settings, e.g. [section] followed by key = value lines",
        "model_attributes_type": "expected a table of settings",
        "path_type": "expected a file path (in quotes)",
        "missing": "required",
    }
    if kind in simple:
        return simple[kind]
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        if "ge" in ctx and "le" in ctx:  # pragma: no cover - pydantic reports one bound
            return f"expected a value from {ctx['ge']} to {ctx['le']}"
        op = {
            "greater_than_equal": "at least",
            "greater_than": "greater than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        bound = next(iter(ctx.values()), "")
        return f"expected a number {op} {bound}"
    msg = str(err.get("msg", "invalid value"))
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    return msg[:1].lower() + msg[1:]


def _looks_like_token(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_\-.+/=]{24,}", value))


def _range_hint(dotted: str) -> str | None:
    if dotted == "listen.port":
        return "expected a port number from 1 to 65535"
    if dotted == "ui.minor_age":
        return "expected an age from 1 to 30"
    if dotted == "fhir.timeout":
        return "expected seconds, greater than 0 and at most 300"
    return None


def _env_var_for(parts: list[str]) -> str | None:
    """The environment variable (as set) that supplied ``parts``, if any."""
    env = {k.upper(): k for k in os.environ}
    for n in range(len(parts), 0, -1):
        name = ENV_PREFIX + "__".join(p.upper() for p in parts[:n])
        if name in env:
            return env[name]
    return None


def _has_key(data: dict[str, Any], parts: list[str]) -> bool:
    node: Any = data
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _describe_error(
    err: dict[str, Any],
    *,
    path: Path,
    file_data: dict[str, Any],
    file_text: str,
    overrides: dict[str, Any],
) -> tuple[str, str, int | None]:
    loc = tuple(err.get("loc", ()))
    str_parts = [str(p) for p in loc if not isinstance(p, int)]
    dotted = _dotted(loc) or "(top level)"
    kind = err.get("type", "")

    # Where did the bad value come from? Overrides beat env beat the file.
    line = None
    if _has_key(overrides, str_parts):
        where = "command-line option"
    elif (var := _env_var_for(str_parts)) is not None:
        where = f"environment variable {var}"
    else:
        line = _locate_key(file_text, dotted.split("[")[0]) if file_text else None
        where = _where(path, line)

    if kind == "extra_forbidden":
        leaf = str_parts[-1] if str_parts else ""
        if _looks_secret(leaf):
            expected = _secret_hint(".".join(str_parts), in_env=where.startswith("environment"))
        else:
            parent = _model_at(str_parts[:-1])
            known = sorted(parent.model_fields) if parent else []
            guess = difflib.get_close_matches(leaf, known, n=1, cutoff=0.6)
            expected = "unknown key"
            if guess:
                expected += f"; did you mean {guess[0]!r}?"
            elif known:
                expected += "; valid keys here: " + ", ".join(known)
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than") and _range_hint(dotted):
        expected = _range_hint(dotted) or ""
    else:
        expected = _expected_for(err)
    return f"{where}: {dotted}: {expected}", dotted, line


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from the TOML file, the environment and ``overrides``.

    ``path`` is ``--config``: when given, the file must exist. Otherwise
    ``$PA_TUI_CONFIG_FILE`` (must exist too) or the default path (may be
    absent: defaults apply). ``overrides`` win over everything; nested keys may
    be given as dicts or dotted (``**{"dialpad.environment": "sandbox"}``).

    Raises :class:`ConfigError` with a one-line message naming the file or
    environment variable, the dotted key and what is expected.
    """
    env = os.environ.get(CONFIG_FILE_ENV, "").strip()
    explicit = path is not None or bool(env)
    file = config_path(path)
    data, text = read_toml(file, required=explicit)
    nested = _nest({k: v for k, v in overrides.items() if v is not None})

    token = _TOML_DATA.set(data)
    try:
        settings = Settings(**nested)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        described = [
            _describe_error(e, path=file, file_data=data, file_text=text, overrides=nested) for e in errors
        ]
        _, first_key, first_line = described[0]
        message = "; ".join(d[0] for d in described)
        raise ConfigError(message, file=file, key=first_key, line=first_line) from None
    except SettingsError as exc:
        m = re.search(r'field "([^"]+)"', str(exc))
        field = m.group(1) if m else "?"
        prefix = f"{ENV_PREFIX}{field.upper()}"
        names = sorted(k for k in os.environ if k.upper() == prefix or k.upper().startswith(prefix + "__"))
        var = " or ".join(names) if names else prefix + "__…"
        raise ConfigError(
            f"environment variable {var}: {field}: could not parse the value; "
            "use JSON for lists and tables, e.g. [\"a\", \"b\"]",
            file=file,
            key=field,
        ) from None
    finally:
        _TOML_DATA.reset(token)

    settings._config_file = file
    for line in settings.warnings():
        log.warning("config: %s", line)
    log.debug("config loaded from %s (exists=%s)", file, bool(text) or file.exists())
    return settings
