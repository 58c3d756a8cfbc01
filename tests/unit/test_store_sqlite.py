"""SQLite specifics: lock contention, the factory, the default location, the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from pa_tui.backends.store import PostgresStore, SqliteStore, StoreBusy, StoreError, open_store
from pa_tui.domain.notes import Note

T0 = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)


def note(i: int = 0) -> Note:
    return Note(id=f"n{i}", agent_id="a", patient_id="p", text=f"t{i}", created_at=T0, updated_at=T0)


async def test_a_held_lock_is_waited_out(tmp_path: Path) -> None:
    path = tmp_path / "pa-tui.db"
    async with SqliteStore(path, busy_timeout=0.05, retry_for=10) as store:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another console holds the write lock for 0.5 s
        threading.Timer(0.5, lambda: other.execute("COMMIT")).start()
        started = time.monotonic()
        await store.save_note(note())
        assert time.monotonic() - started >= 0.4
        other.close()
        assert len(await store.notes_for("p")) == 1


async def test_a_lock_held_too_long_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "pa-tui.db"
    async with SqliteStore(path, busy_timeout=0.05, retry_for=0.3) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreBusy) as info:
                await store.save_note(note())
            assert "locked by other consoles" in str(info.value)
        finally:
            other.execute("ROLLBACK")
            other.close()
        await store.save_note(note())  # and it works again once the lock is gone


async def test_the_event_loop_keeps_running_while_sqlite_waits(tmp_path: Path) -> None:
    path = tmp_path / "pa-tui.db"
    async with SqliteStore(path, busy_timeout=0.05, retry_for=10) as store:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        threading.Timer(0.4, lambda: other.execute("COMMIT")).start()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await store.save_note(note())
        task.cancel()
        other.close()
        assert ticks >= 5  # the UI loop kept ticking through the wait (a blocked loop ticks once at most)


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "pa-tui.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="damaged or is not a pa-tui database"):
        await SqliteStore(path).open()


async def test_wal_and_full_sync_are_on(tmp_path: Path) -> None:
    path = tmp_path / "pa-tui.db"
    async with SqliteStore(path):
        raw = sqlite3.connect(path)
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        raw.close()


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    from pa_tui.config import StoreSettings

    s = open_store(StoreSettings(path=tmp_path / "x.db"))
    assert isinstance(s, SqliteStore) and s.path == tmp_path / "x.db"
    assert isinstance(open_store({"backend": "sqlite", "path": str(tmp_path / "y.db")}), SqliteStore)
    pg = open_store({"backend": "postgres", "dsn": SecretStr("postgresql://u:pw-secret@h/db")})
    assert isinstance(pg, PostgresStore) and "pw-secret" not in repr(pg)
    pg2 = open_store(backend="postgres", dsn="postgresql://u@h/db")
    assert isinstance(pg2, PostgresStore)
    with pytest.raises(StoreError, match="Unknown store backend"):
        open_store({"backend": "mysql"})


def test_open_store_takes_the_dsn_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pa_tui.config import StoreSettings

    settings = StoreSettings(backend="postgres")
    with pytest.raises(StoreError, match="pa-tui auth set postgres"):
        open_store(settings)
    monkeypatch.setenv("PA_TUI_POSTGRES_DSN", "postgresql://u:env-secret@h/db")
    store = open_store(settings)
    assert isinstance(store, PostgresStore) and "env-secret" not in repr(store)


async def test_default_location_is_the_user_data_dir() -> None:
    from pa_tui.config import Settings

    store = open_store(Settings())
    assert isinstance(store, SqliteStore)
    assert store.path.name == "pa-tui.db" and store.path.parent.name == "pa-tui"
    async with store:
        assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
