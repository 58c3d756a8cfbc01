"""pa_tui.logs: a private rotating file, a redaction safety net, nothing on the terminal."""

from __future__ import annotations

import logging
import re
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from pa_tui import logs
from pa_tui.logs import RedactingFilter, redact, reset_logging, setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    reset_logging()
    root.handlers[:] = handlers
    root.setLevel(level)


def flush() -> None:
    for h in logging.getLogger().handlers:
        h.flush()


PHI = {
    "phone_e164": "+15551234567",
    "phone_us": "(555) 123-4567",
    "phone_dots": "555.987.6543",
    "dob_iso": "1980-02-29",
    "dob_us": "02/29/1980",
    "email": "jane.doe@example.org",
    "bearer": "abcDEF123456.ghiJKL-789_xyz",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlX2hlcmU",
    "api_key": "sk_live_TOPSECRET",
}


def test_redacts_phi_and_secrets_in_file(tmp_path: Path) -> None:
    path = setup_logging("DEBUG", tmp_path / "logs")
    log = logging.getLogger("pa_tui.test")
    log.info("call from %s", PHI["phone_e164"])
    log.info("caller %s / %s, dob %s or %s", PHI["phone_us"], PHI["phone_dots"], PHI["dob_iso"], PHI["dob_us"])
    log.warning("email %s", PHI["email"])
    log.debug("headers {'Authorization': 'Bearer %s'}", PHI["bearer"])
    log.debug("Authorization: Bearer " + PHI["bearer"])
    log.info("webhook token %s", PHI["jwt"])
    log.info("GET https://fhir.example.org/Patient?phone=%s&api_key=%s&_count=5", "5551234567", PHI["api_key"])
    try:
        raise ValueError(f"no patient for {PHI['phone_e164']} born {PHI['dob_iso']}")
    except ValueError:
        log.exception("lookup failed for %s", PHI["email"])
    flush()
    text = path.read_text(encoding="utf-8")
    for name, value in PHI.items():
        assert value not in text, name
    assert "5551234567" not in text
    assert "[PHONE]" in text and "[DATE]" in text and "[EMAIL]" in text and "[JWT]" in text
    assert "Traceback" in text and "ValueError" in text  # the exception survives, redacted
    assert "_count=5" in text  # ordinary query values stay


def test_keeps_ids_counts_times_and_log_timestamps(tmp_path: Path) -> None:
    path = setup_logging("INFO", tmp_path)
    log = logging.getLogger("pa_tui.test")
    log.info(
        "call_id=6219873982398464 user 5835806903417856 count=42 port 8765 on 127.0.0.1 "
        "took 0.25s at 10:30:45, appointment 2024-05-01T10:00:00Z, version 8.13.2, "
        "uuid 3f2a9c1e-1234-4abc-9def-0123456789ab"
    )
    flush()
    line = path.read_text(encoding="utf-8").strip().splitlines()[-1]
    # the formatter's own timestamp is untouched
    assert re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} INFO ", line), line
    for kept in (
        "6219873982398464",
        "5835806903417856",
        "count=42",
        "port 8765",
        "127.0.0.1",
        "0.25s",
        "10:30:45",
        "2024-05-01T10:00:00Z",
        "8.13.2",
        "3f2a9c1e-1234-4abc-9def-0123456789ab",
    ):
        assert kept in line, kept


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("ani=%2B15551234567", "15551234567"),
        ("tel:+44 20 7946 0958", "7946 0958"),
        ("X-Api-Key: abc123secret", "abc123secret"),
        ('{"access_token": "tok_987654"}', "tok_987654"),
        ("password=hunter2&user=a", "hunter2"),
        ("client_secret: s3cr3t!", "s3cr3t!"),
        ("born 1/2/1980", "1/2/1980"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ],
)
def test_redact_cases(text: str, gone: str) -> None:
    assert gone not in redact(text)


def test_filter_handles_bad_format_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", ("+15551234567",), None)
    assert RedactingFilter().filter(record) is True
    assert "5551234567" not in record.getMessage()


def test_file_and_dir_are_private_including_rollover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 300)
    directory = tmp_path / "private"
    path = setup_logging("INFO", directory)
    assert path == directory / "pa-tui.log"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    log = logging.getLogger("pa_tui.test")
    for i in range(40):
        log.info("line %d with some padding to force a rollover soon", i)
    flush()
    rotated = directory / "pa-tui.log.1"
    assert rotated.exists()
    for p in (path, rotated):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_default_dir_is_platformdirs_log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_log_path", lambda *a, **k: tmp_path / "state" / "pa-tui" / "log")
    path = setup_logging("INFO")
    assert path == tmp_path / "state" / "pa-tui" / "log" / "pa-tui.log"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_nothing_on_stdout_or_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    import sys

    stray = logging.StreamHandler(sys.stderr)  # e.g. a library that called basicConfig
    root.addHandler(stray)
    path = setup_logging("DEBUG", tmp_path)
    assert stray not in root.handlers
    logging.getLogger("pa_tui.test").error("boom %s", "+15551234567")
    logging.getLogger("some.library").critical("critical thing")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", UserWarning, stacklevel=1)
    flush()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    text = path.read_text(encoding="utf-8")
    assert "boom [PHONE]" in text and "critical thing" in text


def test_levels_and_noisy_loggers(tmp_path: Path) -> None:
    path = setup_logging("warning", tmp_path)
    logging.getLogger("pa_tui.test").info("hidden info")
    logging.getLogger("pa_tui.test").warning("shown warning")
    flush()
    text = path.read_text(encoding="utf-8")
    assert "hidden info" not in text and "shown warning" in text

    setup_logging("DEBUG", tmp_path)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() == logging.WARNING
    logging.getLogger("httpx").info("HTTP Request: GET https://x/Patient?phone=1 200")
    flush()
    assert "HTTP Request" not in path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="unknown log level"):
        setup_logging("LOUD", tmp_path)


def test_setup_twice_keeps_one_handler(tmp_path: Path) -> None:
    setup_logging("INFO", tmp_path)
    setup_logging("DEBUG", tmp_path)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_pa_tui_handler", False)]
    assert len(ours) == 1 and ours[0].level == logging.DEBUG
    reset_logging()
    assert not [h for h in logging.getLogger().handlers if getattr(h, "_pa_tui_handler", False)]
