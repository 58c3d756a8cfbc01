"""Security and PHI: file modes, no PHI in logs, no DSN password in logs or exceptions."""

from __future__ import annotations

import logging
import stat
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pa_tui.backends.store import PostgresStore, SqliteStore, StoreAuthError, StoreError, StoreUnavailable
from pa_tui.domain.notes import Note

T0 = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)
PHI = ("Jane Q. Doe", "+14085551212", "pat-SECRET-77", "chest pain since Tuesday")


async def _exercise(store: SqliteStore | PostgresStore) -> None:
    name, number, patient, text = PHI
    n = Note(agent_id="a1", patient_id=patient, call_id="c1", text=f"{name}: {text}", created_at=T0, updated_at=T0)
    await store.save_draft(n)
    await store.save_note(n, outbox_kind="ehr.note")
    await store.audit(agent_id="a1", action="search", patient_id=patient, reason=f"search:{name}")
    await store.remember_caller(number, patient, "a1", T0)
    await store.set_opt_out(number, True, T0)
    await store.notes_for(patient)
    await store.known_callers(number)
    item = (await store.due())[0]
    await store.mark_failed(item.id, "The EHR did not answer", None)


async def test_no_phi_in_logs(store: SqliteStore | PostgresStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await _exercise(store)
    assert caplog.records, "the store logs ids and counts at DEBUG"
    for secret in PHI:
        assert secret not in caplog.text


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


async def test_wrong_password_is_clear_and_never_shows_the_dsn(
    pg_cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = pg_cluster.dsn().replace(pg_cluster.password, "Wr0ng-Pa55word-xyzzy")
    store = PostgresStore(bad, connect_timeout=5)
    assert "Wr0ng" not in repr(store)
    with pytest.raises(StoreAuthError) as info:
        await store.open()
    assert "refused the user name or password" in str(info.value)
    assert "Wr0ng-Pa55word-xyzzy" not in _all_text(info.value)
    assert "Wr0ng-Pa55word-xyzzy" not in caplog.text


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://agent:S3cret-Pa55-zz@127.0.0.1:1/pa_tui",  # nothing listens on port 1
        "host=127.0.0.1 port=1 user=agent password=S3cret-Pa55-zz dbname=pa_tui",
        "postgresql://agent:S3cret-Pa55-zz@127.0.0.1:notaport/pa_tui",  # not a valid port
        "postgresql//agent:S3cret-Pa55-zz@127.0.0.1/pa_tui",  # psycopg's own error repeats this DSN
    ],
)
async def test_unreachable_or_invalid_dsn_never_leaks_the_password(dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = PostgresStore(dsn, connect_timeout=2)
    with pytest.raises(StoreError) as info:
        await store.open()
    assert isinstance(info.value, StoreUnavailable) or "not valid" in str(info.value)
    assert "S3cret-Pa55-zz" not in _all_text(info.value)
    assert "S3cret-Pa55-zz" not in caplog.text
    assert "S3cret" not in repr(store)


def test_psycopg_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    PostgresStore("postgresql://agent:An0ther-Secret-q@db.example:5432/x")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("psycopg.pool").warning("error connecting: %s", "postgresql://agent:An0ther-Secret-q@db.example")
    logging.getLogger("psycopg").warning("conninfo host=db password=An0ther-Secret-q")
    assert "An0ther-Secret-q" not in caplog.text
    assert "***" in caplog.text


async def test_sqlite_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "pa-tui.db"
    async with SqliteStore(path) as store:
        await store.save_note(Note(agent_id="a", patient_id="p", text="x", created_at=T0, updated_at=T0))
        for f in (path, path.with_name("pa-tui.db-wal"), path.with_name("pa-tui.db-shm")):
            assert f.exists(), f
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_a_loose_existing_sqlite_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "pa-tui" / "pa-tui.db"
    path.parent.mkdir(mode=0o755)
    path.parent.chmod(0o755)
    path.touch(mode=0o644)
    path.chmod(0o644)
    async with SqliteStore(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # pa-tui's own folder


async def test_sqlite_postgres_targets_share_the_suite(store_target: Any) -> None:
    """The suite really runs on both: the fixture's store reports its own backend."""
    async with store_target.make() as s:
        assert s.backend == store_target.backend
