"""Logging to a private rotating file — never to the terminal, which the UI owns.

:func:`setup_logging` installs one handler on the root logger: a rotating file
under ``platformdirs.user_log_path("pa-tui")`` (directory 0o700, files 0o600).
A :class:`RedactingFilter` on that handler is the safety net for PHI and
secrets that should never have been logged: phone numbers, email addresses,
dates of birth, bearer tokens, JWTs and ``key=``/``token=``/``secret=`` values
are masked in the message, its arguments and exception text. Timestamps the
formatter adds are not touched; the filter rewrites only the record's content.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

__all__ = [
    "LOG_FILE_NAME",
    "NOISY_LOGGERS",
    "RedactingFilter",
    "redact",
    "reset_logging",
    "setup_logging",
]

LOG_FILE_NAME = "pa-tui.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
LOG_FORMAT = "%(asctime)s %(levelname)-7s [%(process)d] %(name)s: %(message)s"

#: Third-party loggers that are chatty at INFO/DEBUG (httpx logs every URL at INFO).
NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "hpack",
    "h11",
    "h2",
    "websockets",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "asyncio",
    "urllib3",
    "markdown_it",
    "keyring",
)

_MARK = "_pa_tui_handler"

# --------------------------------------------------------------------------- redaction
# One scanner, alternatives tried left to right at each position: things to keep
# (datetimes, UUIDs, IPv4) come before the things to mask, so a timestamp is
# never mistaken for a date of birth and an address never for a phone number.
_SCAN = re.compile(
    r"""
    (?P<jwt>\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*)
  | (?P<auth>\b(?-i:Bearer|bearer|BEARER|Basic|basic|BASIC)\s+)(?P<authval>[A-Za-z0-9._~+/=-]{6,})
  | (?P<kv>(?<![A-Za-z0-9])
        (?:[A-Za-z_.-]*?(?:key|token|secret|password|passwd|pwd|signature|dsn)\s*=                # name=value
          | ["'][A-Za-z_.-]*?(?:key|token|secret|password|passwd|pwd|signature|dsn|authorization)["']\s*:  # "name": value
          | (?:[A-Za-z.]+[_-][A-Za-z_.-]*?(?:key|token|secret|password|signature|dsn)               # api_key: value
             |password|passwd|authorization)\s*:
        )\s*["']?)
      (?P<kvval>(?:(?:Bearer|Basic|Token)\s+)?[^\s&"',;}\]]+)
  | (?P<email>[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})
  | (?P<keep>
        \d{4}-\d{2}-\d{2}[T\ ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?   # datetime
      | \b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b   # UUID
      | (?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])                                       # IPv4
    )
  | (?P<date>(?<![\w/.-])(?:(?:19|20)\d{2}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/(?:19|20)?\d{2})(?![\w/-]))
  | (?P<phone>(?<![\w+%])(?:\+|%2[Bb])?\(?\d(?:[\ .\-()]{0,2}\d)*)(?![\w])
    """,
    re.VERBOSE | re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")


_IPV4 = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}")
_DECIMAL = re.compile(r"\d+\.\d+")


def _mask_number(text: str) -> str:
    pieces = text.split()
    if len(pieces) > 1 and any(_IPV4.fullmatch(p) or _DECIMAL.fullmatch(p) for p in pieces):
        # "port 8765 127.0.0.1": separate numbers that happen to be adjacent
        return re.sub(r"\S+", lambda m: _mask_number(m.group(0)), text)
    if _IPV4.fullmatch(text) or _DECIMAL.fullmatch(text):
        return text  # an address or a decimal number (durations, amounts)
    digits = len(_DIGIT.findall(text))
    if digits < 7:
        return text  # counts, short ids, ports, times
    if digits > 15 and text.isdigit():
        return text  # longer than any E.164 number: a Dialpad-style id, keep it readable
    return "[PHONE]"


def _replace(m: re.Match[str]) -> str:
    if m.group("jwt"):
        return "[JWT]"
    if m.group("auth"):
        return m.group("auth") + "[REDACTED]"
    if m.group("kv"):
        return m.group("kv") + "[REDACTED]"
    if m.group("email"):
        return "[EMAIL]"
    if m.group("keep"):
        return m.group("keep")
    if m.group("date"):
        return "[DATE]"
    if m.group("phone"):
        return _mask_number(m.group("phone"))
    return m.group(0)  # pragma: no cover


def redact(text: str) -> str:
    """Mask phone numbers, emails, DOB-like dates, bearer/basic tokens, JWTs and secret query values."""
    if not text:
        return text
    return _SCAN.sub(_replace, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, arguments and exception text through :func:`redact`.

    It never drops a record. The formatted timestamp, level and logger name are
    added by the formatter afterwards and are left alone.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: keep what we can, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# --------------------------------------------------------------------------- handler
class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files are created 0o600, also after rollover."""

    def _open(self):  # type: ignore[no-untyped-def]
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.baseFilename, flags, 0o600)
        try:
            if os.name == "posix":
                os.fchmod(fd, 0o600)
            return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)
        except BaseException:
            os.close(fd)
            raise


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    name = str(level).strip().upper()
    if name == "WARN":
        name = "WARNING"
    value = logging.getLevelName(name)
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}; expected DEBUG, INFO, WARNING or ERROR")
    return value


def _is_terminal_stream_handler(handler: logging.Handler) -> bool:
    if type(handler) is not logging.StreamHandler:
        return False
    stream = getattr(handler, "stream", None)
    return stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def reset_logging() -> None:
    """Remove and close the handler(s) :func:`setup_logging` installed."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
            handler.close()
    logging.captureWarnings(False)


def setup_logging(level: str | int = "INFO", log_dir: Path | str | None = None) -> Path:
    """Send all logging to ``<log_dir>/pa-tui.log`` (rotating, 0o600) and nowhere else.

    ``log_dir`` defaults to platformdirs' user log dir, created 0o700. Calling it
    again replaces the previous pa-tui handler (e.g. to change the level).
    Terminal stream handlers on the root logger are removed and Python warnings
    are routed to the log, so nothing is printed over the UI. Returns the log
    file path.
    """
    numeric = _level(level)
    if log_dir is None:
        from pa_tui.config import log_dir as default_log_dir

        directory = default_log_dir()
    else:
        directory = Path(log_dir).expanduser()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix":
            try:
                if directory.stat().st_uid == os.getuid():
                    directory.chmod(0o700)
            except OSError:  # pragma: no cover
                pass
    path = directory / LOG_FILE_NAME

    handler = _PrivateRotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8", delay=False
    )
    setattr(handler, _MARK, True)
    handler.setLevel(numeric)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactingFilter())

    reset_logging()
    root = logging.getLogger()
    for old in list(root.handlers):
        if _is_terminal_stream_handler(old):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
    logging.captureWarnings(True)
    return path
