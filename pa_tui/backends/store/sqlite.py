"""The default store: one SQLite file in WAL mode, shared by every console on a machine.

Many pa-tui processes (an SSH host with dozens of agents) open the same file:

- WAL mode: readers never block the writer and the writer never blocks readers.
- Every write is one short ``BEGIN IMMEDIATE`` … ``COMMIT``: the write lock is
  taken up front, so two writers never deadlock upgrading a read lock, and
  SQLite's busy handler (``busy_timeout``) queues them. Should a lock still be
  held past that, tenacity retries the whole transaction with jittered
  exponential waits for up to ``retry_for`` seconds before raising
  :class:`~pa_tui.backends.store.errors.StoreBusy`. Every write is idempotent
  (client-made ids, upserts), so a retried transaction never doubles a row.
- ``synchronous=FULL``: a commit is on disk when ``save_note`` returns; a killed
  process or a power cut loses nothing that was reported saved.

Threading: each store owns one stdlib ``sqlite3`` connection that lives on one
dedicated worker thread (a single-thread executor). The event loop only awaits
futures, so a lock wait or an fsync never freezes the UI; the connection is
never shared between threads, so no extra locking is needed; and jobs run in the
order they were issued, so a draft saved after another is written after it.
(``asyncio.to_thread`` would spread one connection over the shared default pool,
needing ``check_same_thread=False`` and a lock; aiosqlite is this same design as
a dependency.)

Notifications (``publish``/``subscribe``): rows in a ``notifications`` table.
A store with live subscriptions polls it every ``poll_interval`` seconds (0.25 s
by default: one indexed query) for rows past the last id it saw, so hand-offs
reach every console sharing the file, in order, with none missed. Rows older
than ten minutes are pruned.

Files: the database, ``-wal`` and ``-shm`` are 0600 (SQLite gives the side files
the database's mode; they are also tightened on open). A missing folder is
created 0700.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import sqlite3
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import platformdirs
import tenacity

from pa_tui.backends.store._common import (
    MAX_ERROR_CHARS,
    UNSENT_STATUSES,
    Hub,
    Subscription,
    check_channel,
    check_payload,
    day_text,
    from_ts,
    from_ts_or_none,
    handoff_payload,
    key,
    note_outbox_key,
    now_utc,
    ts,
    unkey,
)
from pa_tui.backends.store.errors import (
    StoreBusy,
    StoreClosed,
    StoreError,
    StoreSchemaError,
    StoreUnavailable,
)
from pa_tui.backends.store.migrations import SQLITE_MIGRATIONS, SQLITE_SCHEMA_VERSION_TABLE, Migration
from pa_tui.domain.audit import AuditAction, AuditRow, Verification, utc
from pa_tui.domain.calls import Call
from pa_tui.domain.escalation import EscalationBundle
from pa_tui.domain.handoff import (
    HANDOFF_CHANNEL,
    WALLBOARD_CHANNEL,
    Handoff,
    Notification,
    looks_like_ref,
    new_handoff_ref,
)
from pa_tui.domain.history import CallSession, KnownCaller
from pa_tui.domain.notes import Note, NoteStatus
from pa_tui.domain.outbox import OutboxItem, OutboxStatus
from pa_tui.domain.phones import PhoneNumber

log = logging.getLogger("pa_tui.store")

T = TypeVar("T")
Conn = sqlite3.Connection

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_NOTIFY_KEEP = timedelta(minutes=10)
_NOTIFY_BATCH = 500


def _is_busy(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _rollback(conn: Conn) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the connection is in trouble already; the caller raises
            conn.execute("ROLLBACK")


def _e164(number: str | PhoneNumber) -> str:
    return number.e164 if isinstance(number, PhoneNumber) else str(number).strip()


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 if missing; tighten it if we own it and it is looser."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    _tighten(path, 0o600)


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & ~mode:
        path.chmod(mode)


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("pa-tui", appauthor=False)


def _private_parent(path: Path) -> None:
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _tighten(parent, 0o700)
        return
    # pa-tui's own folder is tightened; a folder the user chose is left alone (it may be
    # their home or a project folder) with a warning, since the files in it are 0600 anyway.
    if parent.resolve() == _default_data_dir().resolve() or parent.name == "pa-tui":
        _tighten(parent, 0o700)
    elif stat.S_IMODE(parent.stat().st_mode) & 0o077:
        log.warning("the store's folder is open to other users; the database files in it are 0600")


class SqliteStore:
    """Notes, drafts, audit log, hand-offs and outbox in one SQLite file. See the module doc."""

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        busy_timeout: float = 5.0,
        retry_for: float = 30.0,
        synchronous: str = "FULL",
        poll_interval: float = 0.25,
        migrations: Sequence[Migration] = SQLITE_MIGRATIONS,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else _default_data_dir() / "pa-tui.db"
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.busy_timeout = busy_timeout
        self.retry_for = retry_for
        self.synchronous = synchronous.upper()
        self.poll_interval = poll_interval
        self._migrations = tuple(sorted(migrations, key=lambda m: m.version))
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._conn: Conn | None = None
        self._hub = _SqliteHub(self)
        self._last_prune = 0.0
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_busy),
            wait=tenacity.wait_random_exponential(multiplier=0.01, max=0.5),
            stop=tenacity.stop_after_delay(retry_for),
            before_sleep=self._note_busy,
            reraise=True,
        )

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> SqliteStore:
        """Open (creating the file and folder if needed) and apply pending migrations."""
        if self._conn is not None:
            return self
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pa-tui-store")
        try:
            await self._run(self._open_sync)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        log.info("sqlite store open (schema v%d)", self._migrations[-1].version if self._migrations else 0)
        return self

    async def aclose(self) -> None:
        await self._hub.close()
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, self._close_sync)
        finally:
            executor.shutdown(wait=False)

    async def __aenter__(self) -> SqliteStore:
        return await self.open()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def is_open(self) -> bool:
        return self._executor is not None and self._conn is not None

    def _open_sync(self) -> None:
        if sqlite3.sqlite_version_info < (3, 35):  # UPSERT … RETURNING
            raise StoreUnavailable(
                f"This Python's SQLite is too old ({sqlite3.sqlite_version}); pa-tui needs 3.35 or newer",
                'use a newer Python build, or store.backend = "postgres"',
            )
        try:
            _private_parent(self.path)
            _private_file(self.path)
        except OSError as exc:
            raise StoreUnavailable(
                f"Cannot create the notes database ({exc.strerror or type(exc).__name__})",
                f"check that {self.path.parent} is writable, or set store.path",
            ) from None
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = self._retrying.copy()(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            if str(mode).lower() != "wal":
                raise StoreUnavailable(
                    "The notes database cannot use WAL mode",
                    "put store.path on a local disk (not a network share)",
                )
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            for suffix in ("-wal", "-shm"):
                _tighten(self.path.with_name(self.path.name + suffix), 0o600)
            self._conn = conn
            self._write(self._migrate)
        except BaseException:
            self._conn = None
            conn.close()
            raise

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _migrate(self, c: Conn) -> None:
        c.execute(SQLITE_SCHEMA_VERSION_TABLE)
        current = c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
        known = self._migrations[-1].version if self._migrations else 0
        if current > known:
            raise StoreSchemaError(
                f"The notes database was written by a newer pa-tui (schema {current}, this one knows {known})",
                "upgrade pa-tui on this machine",
            )
        for m in self._migrations:
            if m.version > current:
                for statement in m.statements:
                    c.execute(statement)
                c.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (m.version, m.name, ts(now_utc())),
                )
                log.info("sqlite store: applied migration %d (%s)", m.version, m.name)

    # ------------------------------------------------------------------ plumbing
    def _note_busy(self, state: tenacity.RetryCallState) -> None:
        log.debug("sqlite store busy, retry %d", state.attempt_number)

    def _require(self) -> Conn:
        if self._conn is None:
            raise StoreClosed("The notes database is not open", "open the store before using it")
        return self._conn

    def _write(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction, retried while the file is busy."""

        def attempt() -> T:
            conn = self._require()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return result

        return self._retrying.copy()(attempt)

    def _read(self, fn: Callable[[Conn], T]) -> T:
        def attempt() -> T:
            conn = self._require()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                _rollback(conn)

        return self._retrying.copy()(attempt)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        executor = self._executor
        if executor is None:
            raise StoreClosed("The notes database is not open", "open the store before using it")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, functools.partial(fn, *args))
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None

    async def _tx(self, fn: Callable[[Conn], T]) -> T:
        return await self._run(self._write, fn)

    async def _q(self, fn: Callable[[Conn], T]) -> T:
        return await self._run(self._read, fn)

    def _now(self, at: datetime | None) -> datetime:
        return utc(at) if at is not None else self._clock()

    # ------------------------------------------------------------------ notes and drafts
    async def save_note(self, note: Note, *, outbox_kind: str | None = None) -> Note:
        """Save (or update) a note and drop its draft, committed before returning.

        With ``outbox_kind`` (e.g. ``"ehr.note"``) the write-back to the EHR is
        enqueued in the same transaction, keyed on the note id and version.
        """
        saved = note.model_copy(update={"status": NoteStatus.SAVED})

        def tx(c: Conn) -> None:
            c.execute(
                """INSERT INTO notes (id, agent_id, patient_id, call_id, text, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET
                       patient_id = excluded.patient_id, call_id = excluded.call_id,
                       text = excluded.text, updated_at = excluded.updated_at""",
                (
                    saved.id,
                    saved.agent_id,
                    saved.patient_id,
                    saved.call_id,
                    saved.text,
                    ts(saved.created_at),
                    ts(saved.updated_at),
                ),
            )
            self._delete_draft(c, saved.agent_id, saved.patient_id, saved.call_id)
            if outbox_kind:
                self._enqueue(
                    c,
                    outbox_kind,
                    {"note": saved.model_dump(mode="json")},
                    note_outbox_key(outbox_kind, saved),
                    self._clock(),
                )

        await self._tx(tx)
        log.debug("note saved id=%s", saved.id)
        return saved

    async def save_draft(self, note: Note) -> None:
        """Upsert the one draft per (agent, patient, call).

        A stale autosave never wins: not over a newer draft, and not over a note the
        agent already saved for that patient and call (no draft comes back after a save).
        """

        def tx(c: Conn) -> None:
            c.execute(
                """INSERT INTO drafts (agent_id, patient_key, call_key, id, text, created_at, updated_at)
                   SELECT ?, ?, ?, ?, ?, ?, ?
                   WHERE NOT EXISTS (
                       SELECT 1 FROM notes WHERE agent_id = ? AND patient_id IS ? AND call_id IS ?
                       AND updated_at >= ?)
                   ON CONFLICT (agent_id, patient_key, call_key) DO UPDATE SET
                       text = excluded.text, updated_at = excluded.updated_at
                   WHERE excluded.updated_at >= drafts.updated_at""",
                (
                    note.agent_id,
                    key(note.patient_id),
                    key(note.call_id),
                    note.id,
                    note.text,
                    ts(note.created_at),
                    ts(note.updated_at),
                    note.agent_id,
                    note.patient_id,
                    note.call_id,
                    ts(note.updated_at),
                ),
            )

        await self._tx(tx)

    async def latest_draft(self, agent_id: str, patient_id: str | None, call_id: str | None) -> Note | None:
        def q(c: Conn) -> sqlite3.Row | None:
            return c.execute(
                "SELECT * FROM drafts WHERE agent_id = ? AND patient_key = ? AND call_key = ?",
                (agent_id, key(patient_id), key(call_id)),
            ).fetchone()

        row = await self._q(q)
        return _draft(row) if row else None

    async def drafts_for(self, agent_id: str) -> list[Note]:
        """Every draft the agent left (e.g. to offer them back after a crash), newest first."""
        rows = await self._q(
            lambda c: c.execute(
                "SELECT * FROM drafts WHERE agent_id = ? ORDER BY updated_at DESC", (agent_id,)
            ).fetchall()
        )
        return [_draft(r) for r in rows]

    async def delete_draft(self, agent_id: str, patient_id: str | None, call_id: str | None) -> None:
        await self._tx(lambda c: self._delete_draft(c, agent_id, patient_id, call_id))

    @staticmethod
    def _delete_draft(c: Conn, agent_id: str, patient_id: str | None, call_id: str | None) -> None:
        c.execute(
            "DELETE FROM drafts WHERE agent_id = ? AND patient_key = ? AND call_key = ?",
            (agent_id, key(patient_id), key(call_id)),
        )

    async def notes_for(self, patient_id: str, *, limit: int | None = None) -> list[Note]:
        """The patient's saved notes, newest first."""
        rows = await self._q(
            lambda c: c.execute(
                "SELECT * FROM notes WHERE patient_id = ? ORDER BY created_at DESC, id LIMIT ?",
                (patient_id, -1 if limit is None else limit),
            ).fetchall()
        )
        return [_note(r) for r in rows]

    async def notes_for_call(self, call_id: str) -> list[Note]:
        rows = await self._q(
            lambda c: c.execute("SELECT * FROM notes WHERE call_id = ? ORDER BY created_at, id", (call_id,)).fetchall()
        )
        return [_note(r) for r in rows]

    async def get_notes(self, note_ids: Iterable[str]) -> list[Note]:
        ids = list(dict.fromkeys(note_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = await self._q(
            lambda c: c.execute(f"SELECT * FROM notes WHERE id IN ({marks}) ORDER BY created_at, id", ids).fetchall()
        )
        return [_note(r) for r in rows]

    # ------------------------------------------------------------------ calls
    async def save_call(self, call: Call, *, patient_id: str | None = None, outcome: str | None = None) -> None:
        """Upsert the folded call. An older snapshot never replaces a newer one;
        ``patient_id`` and ``outcome`` stick once set unless given again."""
        ani = call.ani.e164 if isinstance(call.ani, PhoneNumber) else None
        agent_id = call.agent.id if call.agent else None
        updated = ts(call.updated_at) if call.updated_at else None

        def tx(c: Conn) -> None:
            c.execute(
                """INSERT INTO calls (id, patient_id, agent_id, ani, state, outcome, updated_at, saved_at, data)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET
                       patient_id = COALESCE(excluded.patient_id, calls.patient_id),
                       outcome = COALESCE(excluded.outcome, calls.outcome),
                       saved_at = excluded.saved_at,
                       agent_id = CASE WHEN calls.updated_at IS NULL OR excluded.updated_at >= calls.updated_at
                                  THEN COALESCE(excluded.agent_id, calls.agent_id) ELSE calls.agent_id END,
                       ani = CASE WHEN calls.updated_at IS NULL OR excluded.updated_at >= calls.updated_at
                             THEN excluded.ani ELSE calls.ani END,
                       state = CASE WHEN calls.updated_at IS NULL OR excluded.updated_at >= calls.updated_at
                               THEN excluded.state ELSE calls.state END,
                       data = CASE WHEN calls.updated_at IS NULL OR excluded.updated_at >= calls.updated_at
                              THEN excluded.data ELSE calls.data END,
                       updated_at = CASE WHEN calls.updated_at IS NULL OR excluded.updated_at >= calls.updated_at
                                    THEN excluded.updated_at ELSE calls.updated_at END""",
                (
                    call.id,
                    patient_id,
                    agent_id,
                    ani,
                    call.state.value,
                    outcome,
                    updated,
                    ts(self._clock()),
                    call.model_dump_json(),
                ),
            )

        await self._tx(tx)
        log.debug("call saved id=%s", call.id)

    async def get_call(self, call_id: str) -> CallSession | None:
        row = await self._q(lambda c: c.execute("SELECT * FROM calls WHERE id = ?", (call_id,)).fetchone())
        return _session(row) if row else None

    async def recent_calls(self, *, limit: int = 50, patient_id: str | None = None) -> list[CallSession]:
        def q(c: Conn) -> list[sqlite3.Row]:
            if patient_id is None:
                return c.execute("SELECT * FROM calls ORDER BY saved_at DESC LIMIT ?", (limit,)).fetchall()
            return c.execute(
                "SELECT * FROM calls WHERE patient_id = ? ORDER BY saved_at DESC LIMIT ?", (patient_id, limit)
            ).fetchall()

        return [_session(r) for r in await self._q(q)]

    # ------------------------------------------------------------------ audit
    async def audit(
        self,
        *,
        agent_id: str,
        action: str | AuditAction,
        patient_id: str | None,
        reason: str,
        sections: Iterable[str] = (),
        at: datetime | None = None,
        verification: Verification | str | None = None,
    ) -> AuditRow:
        """Append one PHI access row. There is no way to change or remove it afterwards."""
        row = AuditRow(
            at=self._now(at),
            agent_id=agent_id,
            action=str(action),
            patient_id=patient_id,
            sections=tuple(str(s) for s in sections),
            reason=reason,
            verification=Verification(verification) if verification else None,
        )
        await self._tx(lambda c: self._insert_audit(c, row))
        log.debug("audit row id=%s action=%s", row.id, row.action)
        return row

    @staticmethod
    def _insert_audit(c: Conn, row: AuditRow) -> None:
        c.execute(
            """INSERT INTO audit (id, at, agent_id, action, patient_id, sections, reason, verification)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING""",
            (
                row.id,
                ts(row.at),
                row.agent_id,
                row.action,
                row.patient_id,
                json.dumps(list(row.sections)),
                row.reason,
                row.verification.value if row.verification else None,
            ),
        )

    async def audit_rows(
        self,
        *,
        patient_id: str | None = None,
        agent_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditRow]:
        """Rows matching every given filter, oldest first (``until`` is exclusive)."""
        where, args = [], []
        for column, value in (("patient_id", patient_id), ("agent_id", agent_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("at >= ?")
            args.append(ts(since))
        if until is not None:
            where.append("at < ?")
            args.append(ts(until))
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY at, seq"
        rows = await self._q(lambda c: c.execute(sql, args).fetchall())
        return [
            AuditRow(
                id=r["id"],
                at=from_ts(r["at"]),
                agent_id=r["agent_id"],
                action=r["action"],
                patient_id=r["patient_id"],
                sections=tuple(json.loads(r["sections"])),
                reason=r["reason"],
                verification=r["verification"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ known callers
    async def remember_caller(
        self,
        e164: str | PhoneNumber,
        patient_id: str,
        agent_id: str,
        at: datetime | None = None,
        *,
        reason: str = "verified-call",
    ) -> None:
        """Tie a number to a patient after a verified call (and audit that)."""
        number, when = _e164(e164), self._now(at)
        row = AuditRow(
            at=when,
            agent_id=agent_id,
            action=AuditAction.KNOWN_CALLER.value,
            patient_id=patient_id,
            reason=reason,
            verification=Verification.VERIFIED,
        )

        def tx(c: Conn) -> None:
            c.execute(
                """INSERT INTO known_callers (e164, patient_id, verified_at, agent_id) VALUES (?, ?, ?, ?)
                   ON CONFLICT (e164, patient_id) DO UPDATE SET
                       verified_at = excluded.verified_at, agent_id = excluded.agent_id
                   WHERE excluded.verified_at > known_callers.verified_at""",
                (number, patient_id, ts(when), agent_id),
            )
            self._insert_audit(c, row)

        await self._tx(tx)

    async def known_callers(self, e164: str | PhoneNumber) -> list[KnownCaller]:
        """Patients this number belonged to on verified calls, most recently verified first."""
        rows = await self._q(
            lambda c: c.execute(
                "SELECT patient_id, verified_at FROM known_callers WHERE e164 = ? ORDER BY verified_at DESC",
                (_e164(e164),),
            ).fetchall()
        )
        return [KnownCaller(r["patient_id"], from_ts(r["verified_at"])) for r in rows]

    # ------------------------------------------------------------------ escalations
    async def save_escalation(self, bundle: EscalationBundle) -> None:
        def tx(c: Conn) -> None:
            c.execute(
                """INSERT INTO escalations (id, occurred_at, agent_id, data) VALUES (?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET occurred_at = excluded.occurred_at,
                       agent_id = excluded.agent_id, data = excluded.data""",
                (bundle.id, ts(bundle.occurred_at), bundle.agent_id, bundle.model_dump_json()),
            )

        await self._tx(tx)
        log.debug("escalation saved id=%s", bundle.id)

    async def get_escalation(self, bundle_id: str) -> EscalationBundle | None:
        row = await self._q(lambda c: c.execute("SELECT data FROM escalations WHERE id = ?", (bundle_id,)).fetchone())
        return EscalationBundle.model_validate_json(row["data"]) if row else None

    async def escalations(
        self, *, agent_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[EscalationBundle]:
        """Bundles, newest first."""
        where, args = [], []
        if agent_id is not None:
            where.append("agent_id = ?")
            args.append(agent_id)
        if since is not None:
            where.append("occurred_at >= ?")
            args.append(ts(since))
        sql = (
            "SELECT data FROM escalations"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY occurred_at DESC LIMIT ?"
        )
        rows = await self._q(lambda c: c.execute(sql, [*args, limit]).fetchall())
        return [EscalationBundle.model_validate_json(r["data"]) for r in rows]

    # ------------------------------------------------------------------ hand-offs
    async def put_handoff(self, handoff: Handoff) -> str:
        """Store the context that follows a transfer; returns its short ref and notifies
        ``pa_tui_handoff`` with ``{"ref", "call_id", "to_agent"}`` (no PHI)."""

        def tx(c: Conn) -> str:
            for _ in range(20):
                ref = handoff.ref or new_handoff_ref()
                stored = handoff.model_copy(update={"ref": ref})
                cur = c.execute(
                    f"""INSERT INTO handoffs (ref, call_id, from_agent, to_agent, created_at, data)
                        VALUES (?, ?, ?, ?, ?, ?)
                        ON CONFLICT (ref) DO {
                        "UPDATE SET call_id = excluded.call_id, from_agent = excluded.from_agent,"
                        " to_agent = excluded.to_agent, created_at = excluded.created_at, data = excluded.data"
                        if handoff.ref
                        else "NOTHING"
                    }""",
                    (
                        ref,
                        stored.call_id,
                        stored.from_agent,
                        stored.to_agent,
                        ts(stored.created_at),
                        stored.model_dump_json(),
                    ),
                )
                if cur.rowcount:
                    self._publish(c, HANDOFF_CHANNEL, handoff_payload(stored))
                    return ref
            raise StoreError("Could not find a free hand-off reference", "try the transfer again")

        ref = await self._tx(tx)
        log.debug("handoff stored ref=%s", ref)
        return ref

    async def get_handoff(self, ref_or_call_id: str) -> Handoff | None:
        """The hand-off with this ref, else the newest one for this call id."""
        value = ref_or_call_id.strip()

        def q(c: Conn) -> sqlite3.Row | None:
            row = None
            if looks_like_ref(value):
                row = c.execute("SELECT data FROM handoffs WHERE ref = ?", (value.upper(),)).fetchone()
            return (
                row
                or c.execute(
                    "SELECT data FROM handoffs WHERE call_id = ? ORDER BY created_at DESC LIMIT 1", (value,)
                ).fetchone()
            )

        row = await self._q(q)
        return Handoff.model_validate_json(row["data"]) if row else None

    async def handoffs_for(self, agent_id: str, *, since: datetime | None = None) -> list[Handoff]:
        """Hand-offs addressed to this agent (newest first), e.g. on console start."""
        rows = await self._q(
            lambda c: c.execute(
                "SELECT data FROM handoffs WHERE to_agent = ? AND created_at >= ? ORDER BY created_at DESC",
                (agent_id, ts(since) if since else ""),
            ).fetchall()
        )
        return [Handoff.model_validate_json(r["data"]) for r in rows]

    # ------------------------------------------------------------------ reminders and opt-outs
    async def record_reminder(
        self, appointment_id: str, day: date | str, status: str, sid: str | None = None, at: datetime | None = None
    ) -> None:
        when = self._now(at)
        await self._tx(
            lambda c: c.execute(
                """INSERT INTO reminders (appointment_id, day, status, sid, at) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (appointment_id, day) DO UPDATE SET
                       status = excluded.status, sid = COALESCE(excluded.sid, reminders.sid), at = excluded.at""",
                (appointment_id, day_text(day), status, sid, ts(when)),
            )
        )

    async def reminder_sent(self, appointment_id: str, day: date | str) -> bool:
        """True once a reminder for that appointment and day is queued or sent (not failed)."""
        row = await self._q(
            lambda c: c.execute(
                "SELECT status FROM reminders WHERE appointment_id = ? AND day = ?", (appointment_id, day_text(day))
            ).fetchone()
        )
        return row is not None and row["status"] not in UNSENT_STATUSES

    async def set_opt_out(self, e164: str | PhoneNumber, opted_out: bool, at: datetime | None = None) -> None:
        """Record STOP / START from a number; an older message never overrides a newer one."""
        await self._tx(
            lambda c: c.execute(
                """INSERT INTO opt_outs (e164, opted_out, at) VALUES (?, ?, ?)
                   ON CONFLICT (e164) DO UPDATE SET opted_out = excluded.opted_out, at = excluded.at
                   WHERE excluded.at >= opt_outs.at""",
                (_e164(e164), int(bool(opted_out)), ts(self._now(at))),
            )
        )

    async def is_opted_out(self, e164: str | PhoneNumber) -> bool:
        row = await self._q(
            lambda c: c.execute("SELECT opted_out FROM opt_outs WHERE e164 = ?", (_e164(e164),)).fetchone()
        )
        return bool(row and row["opted_out"])

    # ------------------------------------------------------------------ outbox
    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        idempotency_key: str,
        *,
        not_before: datetime | None = None,
    ) -> OutboxItem:
        """Add a write owed to a remote side. A key already present adds nothing: the
        existing item is returned instead."""
        when = self._now(not_before)
        return await self._tx(lambda c: self._enqueue(c, kind, payload, idempotency_key, when))

    def _enqueue(self, c: Conn, kind: str, payload: dict[str, Any], idem: str, when: datetime) -> OutboxItem:
        now = ts(self._clock())
        c.execute(
            """INSERT INTO outbox (kind, payload, idempotency_key, next_try, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING""",
            (kind, json.dumps(payload), idem, ts(when), now, now),
        )
        row = c.execute("SELECT * FROM outbox WHERE idempotency_key = ?", (idem,)).fetchone()
        return _outbox(row)

    async def due(
        self,
        now: datetime | None = None,
        limit: int = 10,
        *,
        lease: timedelta = timedelta(minutes=5),
        kinds: Iterable[str] | None = None,
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` pending items whose time has come, oldest first.

        The claim is a lease: no other process gets these items until ``lease``
        has passed (a worker that died with them lets them go again then).
        Each claim counts as an attempt.
        """
        at = self._now(now)
        token = uuid.uuid4().hex
        kind_list = list(kinds) if kinds is not None else None

        def tx(c: Conn) -> list[sqlite3.Row]:
            filt = ""
            args: list[Any] = [ts(at), ts(at)]
            if kind_list is not None:
                if not kind_list:
                    return []
                filt = f" AND kind IN ({','.join('?' * len(kind_list))})"
                args += kind_list
            return c.execute(
                f"""UPDATE outbox SET lease_until = ?, claim = ?, attempts = attempts + 1, updated_at = ?
                    WHERE id IN (
                        SELECT id FROM outbox
                        WHERE status = 'pending' AND next_try <= ? AND (lease_until IS NULL OR lease_until <= ?){filt}
                        ORDER BY next_try, id LIMIT ?)
                    RETURNING *""",
                [ts(at + lease), token, ts(at), *args, limit],
            ).fetchall()

        rows = await self._tx(tx)
        items = sorted((_outbox(r) for r in rows), key=lambda i: (i.next_try, i.id))
        if items:
            log.debug("outbox claimed n=%d", len(items))
        return items

    async def mark_done(self, item_id: int, remote_id: str | None = None) -> None:
        """The remote side confirmed: the item is never sent again."""
        await self._tx(
            lambda c: c.execute(
                """UPDATE outbox SET status = 'done', remote_id = ?, lease_until = NULL, last_error = NULL,
                       updated_at = ? WHERE id = ?""",
                (remote_id, ts(self._clock()), item_id),
            )
        )
        log.debug("outbox done id=%s", item_id)

    async def mark_failed(self, item_id: int, error: str, next_try: datetime | None) -> None:
        """A try failed: come back at ``next_try``, or give up (status ``dead``) when it is None.

        ``error`` must be PHI-free (an error title); it is cut to 500 characters.
        """
        status = OutboxStatus.PENDING if next_try is not None else OutboxStatus.DEAD
        await self._tx(
            lambda c: c.execute(
                """UPDATE outbox SET status = ?, last_error = ?, next_try = COALESCE(?, next_try),
                       lease_until = NULL, updated_at = ? WHERE id = ? AND status = 'pending'""",
                (status.value, error[:MAX_ERROR_CHARS], ts(next_try) if next_try else None, ts(self._clock()), item_id),
            )
        )
        log.debug("outbox failed id=%s status=%s", item_id, status.value)

    async def outbox_item(self, id_or_key: int | str) -> OutboxItem | None:
        column = "id" if isinstance(id_or_key, int) else "idempotency_key"
        row = await self._q(lambda c: c.execute(f"SELECT * FROM outbox WHERE {column} = ?", (id_or_key,)).fetchone())
        return _outbox(row) if row else None

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._q(lambda c: c.execute("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status").fetchall())
        counts = {s.value: 0 for s in OutboxStatus}
        counts.update({r["status"]: r["n"] for r in rows})
        return counts

    # ------------------------------------------------------------------ notifications
    async def publish(self, channel: str, payload: str = "") -> None:
        """Tell every console sharing this file (subscribers see it within ``poll_interval``)."""
        check_channel(channel)
        check_payload(payload)
        await self._tx(lambda c: self._publish(c, channel, payload))

    def _publish(self, c: Conn, channel: str, payload: str) -> None:
        now = self._clock()
        c.execute("INSERT INTO notifications (channel, payload, at) VALUES (?, ?, ?)", (channel, payload, ts(now)))
        if time.monotonic() - self._last_prune > 60:
            self._last_prune = time.monotonic()
            c.execute("DELETE FROM notifications WHERE at < ?", (ts(now - _NOTIFY_KEEP),))

    def subscribe(self, *channels: str) -> Subscription:
        """``async with store.subscribe("pa_tui_handoff") as sub: async for n in sub: …``"""
        return Subscription(self._hub, channels)

    def notifications(self) -> Subscription:
        """Hand-offs and wallboard updates: ``subscribe(HANDOFF_CHANNEL, WALLBOARD_CHANNEL)``."""
        return self.subscribe(HANDOFF_CHANNEL, WALLBOARD_CHANNEL)


# --------------------------------------------------------------------------- rows → models
def _note(r: sqlite3.Row) -> Note:
    return Note(
        id=r["id"],
        agent_id=r["agent_id"],
        patient_id=r["patient_id"],
        call_id=r["call_id"],
        text=r["text"],
        status=NoteStatus.SAVED,
        created_at=from_ts(r["created_at"]),
        updated_at=from_ts(r["updated_at"]),
    )


def _draft(r: sqlite3.Row) -> Note:
    return Note(
        id=r["id"],
        agent_id=r["agent_id"],
        patient_id=unkey(r["patient_key"]),
        call_id=unkey(r["call_key"]),
        text=r["text"],
        status=NoteStatus.DRAFT,
        created_at=from_ts(r["created_at"]),
        updated_at=from_ts(r["updated_at"]),
    )


def _session(r: sqlite3.Row) -> CallSession:
    return CallSession(
        call=Call.model_validate_json(r["data"]),
        patient_id=r["patient_id"],
        outcome=r["outcome"],
        saved_at=from_ts(r["saved_at"]),
    )


def _outbox(r: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=r["id"],
        kind=r["kind"],
        payload=json.loads(r["payload"]),
        idempotency_key=r["idempotency_key"],
        status=r["status"],
        attempts=r["attempts"],
        last_error=r["last_error"],
        next_try=from_ts(r["next_try"]),
        lease_until=from_ts_or_none(r["lease_until"]),
        claim=r["claim"],
        remote_id=r["remote_id"],
        created_at=from_ts(r["created_at"]),
        updated_at=from_ts(r["updated_at"]),
    )


def _translate(exc: sqlite3.Error, path: Path) -> StoreError:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if _is_busy(exc):
        return StoreBusy(
            "The notes database stayed locked by other consoles",
            "try again; if it keeps happening, look for a stuck pa-tui process on this machine",
        )
    if code == sqlite3.SQLITE_FULL:
        return StoreUnavailable("The disk holding the notes database is full", "free some space, then try again")
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR):
        return StoreUnavailable(
            "Cannot open or write the notes database", f"check the permissions of {path} and its folder"
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreUnavailable(
            "The notes database file is damaged or is not a pa-tui database",
            f"move {path.name} aside (keep it for support) and start pa-tui again",
        )
    return StoreError(f"The notes database failed ({type(exc).__name__}, code {code})", "report this to support")


def _fetch_all(c: Conn, *, query: str, args: Sequence[Any]) -> list[sqlite3.Row]:
    return c.execute(query, args).fetchall()


# --------------------------------------------------------------------------- notifications by polling
class _SqliteHub(Hub):
    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self.store = store
        self._task: asyncio.Task[None] | None = None

    async def add(self, sub: Subscription) -> None:
        sub.after_id = await self.store._q(
            lambda c: c.execute("SELECT COALESCE(MAX(id), 0) FROM notifications").fetchone()[0]
        )
        self.subs.add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="pa-tui-store-notifications")

    async def remove(self, sub: Subscription) -> None:
        self.subs.discard(sub)
        if not self.subs:
            await self._stop()

    async def close(self) -> None:
        await super().close()
        await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _poll(self) -> None:
        delay = self.store.poll_interval
        while self.subs:
            await asyncio.sleep(delay)
            if not self.subs:
                break
            start = min(s.after_id for s in self.subs)
            channels = sorted(self.channels)
            query = (
                "SELECT id, channel, payload FROM notifications"
                f" WHERE id > ? AND channel IN ({','.join('?' * len(channels))}) ORDER BY id LIMIT ?"
            )
            args = [start, *channels, _NOTIFY_BATCH]
            try:
                rows = await self.store._q(functools.partial(_fetch_all, query=query, args=args))
            except StoreError as exc:
                log.warning("store notifications: poll failed (%s); retrying", exc.title)
                delay = min(5.0, max(delay, self.store.poll_interval) * 2)
                continue
            # Ids are handed out by the one writer at a time, so they commit in order and a
            # cursor past the last id seen misses nothing. A full batch: read on at once.
            delay = 0 if len(rows) == _NOTIFY_BATCH else self.store.poll_interval
            for row in rows:
                note = Notification(channel=row["channel"], payload=row["payload"])
                for sub in list(self.subs):
                    if row["id"] > sub.after_id:
                        sub.deliver(note)
            if rows:
                last = rows[-1]["id"]
                for sub in self.subs:
                    sub.after_id = max(sub.after_id, last)
