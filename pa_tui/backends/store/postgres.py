"""The multi-host store: PostgreSQL through psycopg 3 (async) and a psycopg_pool pool.

Same behaviour as :class:`~pa_tui.backends.store.sqlite.SqliteStore`, for sites
whose agents sit on many machines:

- each call is one short transaction on a pooled connection; transient failures
  (a dropped connection, a serialization failure) are retried by tenacity, which
  is safe because every write is idempotent (client-made ids, upserts);
- outbox items are claimed with ``FOR UPDATE SKIP LOCKED`` plus a lease;
- the audit table refuses UPDATE, DELETE and TRUNCATE with a trigger;
- migrations run in one transaction under ``pg_advisory_xact_lock``;
- ``publish``/``subscribe`` are NOTIFY/LISTEN. One listening connection per
  store, opened on the first subscription, serves every subscriber. If it drops
  it reconnects with jittered backoff, listens again and sends each subscriber a
  ``resync`` notification (some may have been missed: re-read state).

The DSN (it may hold a password) is never logged, never in a repr and never in an
exception: psycopg errors are translated into :class:`StoreError` s written from
scratch, and psycopg's own log records pass through a redacting filter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import psycopg
import psycopg.conninfo
import tenacity
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout
from pydantic import SecretStr

from pa_tui.backends.store._common import (
    MAX_ERROR_CHARS,
    REDACTOR,
    UNSENT_STATUSES,
    Hub,
    Subscription,
    check_channel,
    check_payload,
    day_text,
    handoff_payload,
    key,
    note_outbox_key,
    now_utc,
    unkey,
)
from pa_tui.backends.store.errors import (
    StoreAuthError,
    StoreClosed,
    StoreError,
    StoreSchemaError,
    StoreUnavailable,
)
from pa_tui.backends.store.migrations import (
    POSTGRES_MIGRATIONS,
    POSTGRES_SCHEMA_VERSION_TABLE,
    SCHEMA_LOCK_KEY,
    Migration,
)
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
Conn = psycopg.AsyncConnection[dict[str, Any]]

_TRANSIENT_SQLSTATES = ("40001", "40P01", "57P01", "57P02", "57P03")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.errors.OperationalError) and getattr(exc, "sqlstate", None) in (
        None,
        *_TRANSIENT_SQLSTATES,
    ):
        return not _is_auth(exc)
    return getattr(exc, "sqlstate", None) in _TRANSIENT_SQLSTATES


def _is_auth(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (
        getattr(exc, "sqlstate", None) in ("28P01", "28000")
        or "password authentication failed" in text
        or ("no password supplied" in text)
    )


def _e164(number: str | PhoneNumber) -> str:
    return number.e164 if isinstance(number, PhoneNumber) else str(number).strip()


def _dt(value: datetime) -> datetime:
    return value.astimezone(UTC)


def translate(exc: BaseException) -> StoreError:
    """A psycopg / pool failure as an agent-facing error with no DSN and no server text."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, PoolClosed):
        return StoreClosed("The shared database connection is closed", "restart pa-tui")
    if isinstance(exc, PoolTimeout):
        return StoreUnavailable(
            "The shared PostgreSQL database did not answer in time",
            "check that the server is up and reachable from this machine",
        )
    sqlstate = getattr(exc, "sqlstate", None)
    if _is_auth(exc):
        return StoreAuthError(
            "PostgreSQL refused the user name or password in the DSN",
            "set the right DSN with `pa-tui auth set postgres` (or PA_TUI_POSTGRES_DSN)",
        )
    text = str(exc).lower()
    if sqlstate == "3D000" or ('database "' in text and "does not exist" in text):
        return StoreUnavailable(
            "The PostgreSQL database named in the DSN does not exist", "create it, or fix the database name in the DSN"
        )
    if sqlstate is None and (
        isinstance(exc, psycopg.ProgrammingError)
        or any(w in text for w in ("connection option", "connection info string", "invalid dsn", "invalid uri"))
    ):
        return StoreError(
            "The PostgreSQL DSN is not valid",
            "set it again with `pa-tui auth set postgres`: postgresql://user@host:5432/dbname",
        )
    if isinstance(exc, psycopg.OperationalError):
        return StoreUnavailable(
            "Cannot reach the shared PostgreSQL database",
            "check that the server is up and that the host and port in the DSN are right",
        )
    if sqlstate == "42501":
        return StoreError(
            "The PostgreSQL user lacks a permission pa-tui needs", "ask the database administrator to grant it"
        )
    return StoreError(
        f"The shared database refused a request (SQLSTATE {sqlstate or 'none'})", "report this to support"
    )


class PostgresStore:
    """The Store on PostgreSQL. ``dsn`` may be a ``SecretStr``; it is never shown."""

    backend = "postgres"

    def __init__(
        self,
        dsn: str | SecretStr,
        *,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout: float = 10.0,
        migrations: Sequence[Migration] = POSTGRES_MIGRATIONS,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._dsn = dsn.get_secret_value() if isinstance(dsn, SecretStr) else str(dsn)
        password = None
        with contextlib.suppress(Exception):  # an invalid DSN fails at open() with a clean error
            password = psycopg.conninfo.conninfo_to_dict(self._dsn).get("password")
        REDACTOR.add(self._dsn, str(password) if password else None)
        self.min_size, self.max_size = min_size, max_size
        self.connect_timeout = connect_timeout
        self._migrations = tuple(sorted(migrations, key=lambda m: m.version))
        self._clock = clock
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._hub = _PgHub(self)

    def __repr__(self) -> str:
        return "PostgresStore(dsn=<hidden>)"

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> PostgresStore:
        """Connect, apply pending migrations, then open the pool."""
        if self._pool is not None:
            return self
        try:
            conn = await self._connect(autocommit=False)
            async with conn:
                await self._migrate(conn)
            pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
                self._dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                open=False,
                name="pa-tui-store",
                timeout=self.connect_timeout,
                kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": self._timeout_s},
                check=AsyncConnectionPool.check_connection,
            )
            try:
                await pool.open(wait=True, timeout=self.connect_timeout)
            except BaseException:
                await pool.close()  # stop its reconnect tasks
                raise
        except (psycopg.Error, PoolTimeout) as exc:
            raise translate(exc) from None
        self._pool = pool
        log.info("postgres store open (schema v%d)", self._migrations[-1].version if self._migrations else 0)
        return self

    async def aclose(self) -> None:
        await self._hub.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> PostgresStore:
        return await self.open()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    @property
    def _timeout_s(self) -> int:
        return max(1, int(self.connect_timeout))

    async def _connect(self, *, autocommit: bool) -> Conn:
        return await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=autocommit, row_factory=dict_row, connect_timeout=self._timeout_s
        )

    async def _migrate(self, conn: Conn) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            row = await (await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL AS ok")).fetchone()
            if not (row and row["ok"]):
                await conn.execute(POSTGRES_SCHEMA_VERSION_TABLE)
            row = await (await conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")).fetchone()
            current = row["v"] if row else 0
            known = self._migrations[-1].version if self._migrations else 0
            if current > known:
                raise StoreSchemaError(
                    f"The shared database was written by a newer pa-tui (schema {current}, this one knows {known})",
                    "upgrade pa-tui on this machine",
                )
            for m in self._migrations:
                if m.version > current:
                    for statement in m.statements:
                        await conn.execute(statement)
                    await conn.execute(
                        "INSERT INTO schema_version (version, name) VALUES (%s, %s)", (m.version, m.name)
                    )
                    log.info("postgres store: applied migration %d (%s)", m.version, m.name)

    # ------------------------------------------------------------------ plumbing
    def _require(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise StoreClosed("The shared database is not open", "open the store before using it")
        return self._pool

    async def _tx(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction on a pooled connection, retrying transient failures."""
        pool = self._require()
        try:
            async for attempt in tenacity.AsyncRetrying(
                retry=tenacity.retry_if_exception(_transient),
                wait=tenacity.wait_random_exponential(multiplier=0.05, max=1.0),
                stop=tenacity.stop_after_attempt(3),
                reraise=True,
            ):
                with attempt:
                    async with pool.connection() as conn, conn.transaction():
                        return await fn(conn)
        except (psycopg.Error, PoolTimeout, PoolClosed) as exc:
            raise translate(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _one(self, query: str, args: Any = None) -> dict[str, Any] | None:
        async def q(c: Conn) -> dict[str, Any] | None:
            return await (await c.execute(query, args)).fetchone()

        return await self._tx(q)

    async def _all(self, query: str | sql.Composed, args: Any = None) -> list[dict[str, Any]]:
        async def q(c: Conn) -> list[dict[str, Any]]:
            return await (await c.execute(query, args)).fetchall()

        return await self._tx(q)

    async def _exec(self, query: str, args: Any = None) -> None:
        async def q(c: Conn) -> None:
            await c.execute(query, args)

        await self._tx(q)

    def _now(self, at: datetime | None) -> datetime:
        return utc(at) if at is not None else self._clock()

    # ------------------------------------------------------------------ notes and drafts
    async def save_note(self, note: Note, *, outbox_kind: str | None = None) -> Note:
        saved = note.model_copy(update={"status": NoteStatus.SAVED})

        async def tx(c: Conn) -> None:
            await c.execute(
                """INSERT INTO notes (id, agent_id, patient_id, call_id, text, created_at, updated_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET
                       patient_id = excluded.patient_id, call_id = excluded.call_id,
                       text = excluded.text, updated_at = excluded.updated_at""",
                (
                    saved.id,
                    saved.agent_id,
                    saved.patient_id,
                    saved.call_id,
                    saved.text,
                    utc(saved.created_at),
                    utc(saved.updated_at),
                ),
            )
            await self._delete_draft(c, saved.agent_id, saved.patient_id, saved.call_id)
            if outbox_kind:
                await self._enqueue(
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
        """Upsert the one draft per (agent, patient, call); never over a newer draft or saved note."""
        await self._exec(
            """INSERT INTO drafts (agent_id, patient_key, call_key, id, text, created_at, updated_at)
               SELECT %(agent)s, %(pkey)s, %(ckey)s, %(id)s, %(text)s, %(created)s, %(updated)s
               WHERE NOT EXISTS (
                   SELECT 1 FROM notes WHERE agent_id = %(agent)s AND patient_id IS NOT DISTINCT FROM %(patient)s
                   AND call_id IS NOT DISTINCT FROM %(call)s AND updated_at >= %(updated)s)
               ON CONFLICT (agent_id, patient_key, call_key) DO UPDATE SET
                   text = excluded.text, updated_at = excluded.updated_at
               WHERE excluded.updated_at >= drafts.updated_at""",
            {
                "agent": note.agent_id,
                "pkey": key(note.patient_id),
                "ckey": key(note.call_id),
                "id": note.id,
                "text": note.text,
                "created": utc(note.created_at),
                "updated": utc(note.updated_at),
                "patient": note.patient_id,
                "call": note.call_id,
            },
        )

    async def latest_draft(self, agent_id: str, patient_id: str | None, call_id: str | None) -> Note | None:
        row = await self._one(
            "SELECT * FROM drafts WHERE agent_id = %s AND patient_key = %s AND call_key = %s",
            (agent_id, key(patient_id), key(call_id)),
        )
        return _draft(row) if row else None

    async def drafts_for(self, agent_id: str) -> list[Note]:
        rows = await self._all("SELECT * FROM drafts WHERE agent_id = %s ORDER BY updated_at DESC", (agent_id,))
        return [_draft(r) for r in rows]

    async def delete_draft(self, agent_id: str, patient_id: str | None, call_id: str | None) -> None:
        await self._tx(lambda c: self._delete_draft(c, agent_id, patient_id, call_id))

    @staticmethod
    async def _delete_draft(c: Conn, agent_id: str, patient_id: str | None, call_id: str | None) -> None:
        await c.execute(
            "DELETE FROM drafts WHERE agent_id = %s AND patient_key = %s AND call_key = %s",
            (agent_id, key(patient_id), key(call_id)),
        )

    async def notes_for(self, patient_id: str, *, limit: int | None = None) -> list[Note]:
        rows = await self._all(
            "SELECT * FROM notes WHERE patient_id = %s ORDER BY created_at DESC, id LIMIT %s", (patient_id, limit)
        )
        return [_note(r) for r in rows]

    async def notes_for_call(self, call_id: str) -> list[Note]:
        rows = await self._all("SELECT * FROM notes WHERE call_id = %s ORDER BY created_at, id", (call_id,))
        return [_note(r) for r in rows]

    async def get_notes(self, note_ids: Iterable[str]) -> list[Note]:
        ids = list(dict.fromkeys(note_ids))
        if not ids:
            return []
        rows = await self._all("SELECT * FROM notes WHERE id = ANY(%s) ORDER BY created_at, id", (ids,))
        return [_note(r) for r in rows]

    # ------------------------------------------------------------------ calls
    async def save_call(self, call: Call, *, patient_id: str | None = None, outcome: str | None = None) -> None:
        ani = call.ani.e164 if isinstance(call.ani, PhoneNumber) else None
        agent_id = call.agent.id if call.agent else None
        newer = "(calls.updated_at IS NULL OR excluded.updated_at >= calls.updated_at)"
        await self._exec(
            f"""INSERT INTO calls (id, patient_id, agent_id, ani, state, outcome, updated_at, saved_at, data)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (id) DO UPDATE SET
                    patient_id = COALESCE(excluded.patient_id, calls.patient_id),
                    outcome = COALESCE(excluded.outcome, calls.outcome),
                    saved_at = excluded.saved_at,
                    agent_id = CASE WHEN {newer} THEN COALESCE(excluded.agent_id, calls.agent_id)
                               ELSE calls.agent_id END,
                    ani = CASE WHEN {newer} THEN excluded.ani ELSE calls.ani END,
                    state = CASE WHEN {newer} THEN excluded.state ELSE calls.state END,
                    data = CASE WHEN {newer} THEN excluded.data ELSE calls.data END,
                    updated_at = CASE WHEN {newer} THEN excluded.updated_at ELSE calls.updated_at END""",
            (
                call.id,
                patient_id,
                agent_id,
                ani,
                call.state.value,
                outcome,
                utc(call.updated_at) if call.updated_at else None,
                self._clock(),
                Jsonb(call.model_dump(mode="json")),
            ),
        )
        log.debug("call saved id=%s", call.id)

    async def get_call(self, call_id: str) -> CallSession | None:
        row = await self._one("SELECT * FROM calls WHERE id = %s", (call_id,))
        return _session(row) if row else None

    async def recent_calls(self, *, limit: int = 50, patient_id: str | None = None) -> list[CallSession]:
        if patient_id is None:
            rows = await self._all("SELECT * FROM calls ORDER BY saved_at DESC LIMIT %s", (limit,))
        else:
            rows = await self._all(
                "SELECT * FROM calls WHERE patient_id = %s ORDER BY saved_at DESC LIMIT %s", (patient_id, limit)
            )
        return [_session(r) for r in rows]

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
    async def _insert_audit(c: Conn, row: AuditRow) -> None:
        await c.execute(
            """INSERT INTO audit (id, at, agent_id, action, patient_id, sections, reason, verification)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
            (
                row.id,
                row.at,
                row.agent_id,
                row.action,
                row.patient_id,
                list(row.sections),
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
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("patient_id", patient_id), ("agent_id", agent_id)):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if since is not None:
            where.append("at >= %s")
            args.append(utc(since))
        if until is not None:
            where.append("at < %s")
            args.append(utc(until))
        query = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY at, seq"
        rows = await self._all(query, args)
        return [
            AuditRow(
                id=r["id"],
                at=r["at"],
                agent_id=r["agent_id"],
                action=r["action"],
                patient_id=r["patient_id"],
                sections=tuple(r["sections"]),
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
        number, when = _e164(e164), self._now(at)
        row = AuditRow(
            at=when,
            agent_id=agent_id,
            action=AuditAction.KNOWN_CALLER.value,
            patient_id=patient_id,
            reason=reason,
            verification=Verification.VERIFIED,
        )

        async def tx(c: Conn) -> None:
            await c.execute(
                """INSERT INTO known_callers (e164, patient_id, verified_at, agent_id) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (e164, patient_id) DO UPDATE SET
                       verified_at = excluded.verified_at, agent_id = excluded.agent_id
                   WHERE excluded.verified_at > known_callers.verified_at""",
                (number, patient_id, when, agent_id),
            )
            await self._insert_audit(c, row)

        await self._tx(tx)

    async def known_callers(self, e164: str | PhoneNumber) -> list[KnownCaller]:
        rows = await self._all(
            "SELECT patient_id, verified_at FROM known_callers WHERE e164 = %s ORDER BY verified_at DESC",
            (_e164(e164),),
        )
        return [KnownCaller(r["patient_id"], r["verified_at"].astimezone(UTC)) for r in rows]

    # ------------------------------------------------------------------ escalations
    async def save_escalation(self, bundle: EscalationBundle) -> None:
        await self._exec(
            """INSERT INTO escalations (id, occurred_at, agent_id, data) VALUES (%s, %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET occurred_at = excluded.occurred_at,
                   agent_id = excluded.agent_id, data = excluded.data""",
            (bundle.id, utc(bundle.occurred_at), bundle.agent_id, Jsonb(bundle.model_dump(mode="json"))),
        )
        log.debug("escalation saved id=%s", bundle.id)

    async def get_escalation(self, bundle_id: str) -> EscalationBundle | None:
        row = await self._one("SELECT data FROM escalations WHERE id = %s", (bundle_id,))
        return EscalationBundle.model_validate(row["data"]) if row else None

    async def escalations(
        self, *, agent_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[EscalationBundle]:
        where: list[str] = []
        args: list[Any] = []
        if agent_id is not None:
            where.append("agent_id = %s")
            args.append(agent_id)
        if since is not None:
            where.append("occurred_at >= %s")
            args.append(utc(since))
        query = (
            "SELECT data FROM escalations"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY occurred_at DESC LIMIT %s"
        )
        rows = await self._all(query, [*args, limit])
        return [EscalationBundle.model_validate(r["data"]) for r in rows]

    # ------------------------------------------------------------------ hand-offs
    async def put_handoff(self, handoff: Handoff) -> str:
        refs = [handoff.ref] if handoff.ref else [new_handoff_ref() for _ in range(20)]

        async def tx(c: Conn) -> str:
            for ref in refs:
                stored = handoff.model_copy(update={"ref": ref})
                conflict = (
                    "UPDATE SET call_id = excluded.call_id, from_agent = excluded.from_agent,"
                    " to_agent = excluded.to_agent, created_at = excluded.created_at, data = excluded.data"
                    if handoff.ref
                    else "NOTHING"
                )
                cur = await c.execute(
                    f"""INSERT INTO handoffs (ref, call_id, from_agent, to_agent, created_at, data)
                        VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (ref) DO {conflict}""",
                    (
                        ref,
                        stored.call_id,
                        stored.from_agent,
                        stored.to_agent,
                        stored.created_at,
                        Jsonb(stored.model_dump(mode="json")),
                    ),
                )
                if cur.rowcount or await _same_handoff(c, stored):
                    await c.execute("SELECT pg_notify(%s, %s)", (HANDOFF_CHANNEL, handoff_payload(stored)))
                    return ref
            raise StoreError("Could not find a free hand-off reference", "try the transfer again")

        ref = await self._tx(tx)
        log.debug("handoff stored ref=%s", ref)
        return ref

    async def get_handoff(self, ref_or_call_id: str) -> Handoff | None:
        value = ref_or_call_id.strip()

        async def q(c: Conn) -> dict[str, Any] | None:
            row = None
            if looks_like_ref(value):
                row = await (await c.execute("SELECT data FROM handoffs WHERE ref = %s", (value.upper(),))).fetchone()
            return (
                row
                or await (
                    await c.execute(
                        "SELECT data FROM handoffs WHERE call_id = %s ORDER BY created_at DESC LIMIT 1", (value,)
                    )
                ).fetchone()
            )

        row = await self._tx(q)
        return Handoff.model_validate(row["data"]) if row else None

    async def handoffs_for(self, agent_id: str, *, since: datetime | None = None) -> list[Handoff]:
        rows = await self._all(
            """SELECT data FROM handoffs WHERE to_agent = %s AND (%s::timestamptz IS NULL OR created_at >= %s)
               ORDER BY created_at DESC""",
            (agent_id, since, since),
        )
        return [Handoff.model_validate(r["data"]) for r in rows]

    # ------------------------------------------------------------------ reminders and opt-outs
    async def record_reminder(
        self, appointment_id: str, day: date | str, status: str, sid: str | None = None, at: datetime | None = None
    ) -> None:
        await self._exec(
            """INSERT INTO reminders (appointment_id, day, status, sid, at) VALUES (%s, %s, %s, %s, %s)
               ON CONFLICT (appointment_id, day) DO UPDATE SET
                   status = excluded.status, sid = COALESCE(excluded.sid, reminders.sid), at = excluded.at""",
            (appointment_id, date.fromisoformat(day_text(day)), status, sid, self._now(at)),
        )

    async def reminder_sent(self, appointment_id: str, day: date | str) -> bool:
        row = await self._one(
            "SELECT status FROM reminders WHERE appointment_id = %s AND day = %s",
            (appointment_id, date.fromisoformat(day_text(day))),
        )
        return row is not None and row["status"] not in UNSENT_STATUSES

    async def set_opt_out(self, e164: str | PhoneNumber, opted_out: bool, at: datetime | None = None) -> None:
        await self._exec(
            """INSERT INTO opt_outs (e164, opted_out, at) VALUES (%s, %s, %s)
               ON CONFLICT (e164) DO UPDATE SET opted_out = excluded.opted_out, at = excluded.at
               WHERE excluded.at >= opt_outs.at""",
            (_e164(e164), bool(opted_out), self._now(at)),
        )

    async def is_opted_out(self, e164: str | PhoneNumber) -> bool:
        row = await self._one("SELECT opted_out FROM opt_outs WHERE e164 = %s", (_e164(e164),))
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
        when = self._now(not_before)
        return await self._tx(lambda c: self._enqueue(c, kind, payload, idempotency_key, when))

    async def _enqueue(self, c: Conn, kind: str, payload: dict[str, Any], idem: str, when: datetime) -> OutboxItem:
        now = self._clock()
        await c.execute(
            """INSERT INTO outbox (kind, payload, idempotency_key, next_try, created_at, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING""",
            (kind, Jsonb(payload), idem, when, now, now),
        )
        row = await (await c.execute("SELECT * FROM outbox WHERE idempotency_key = %s", (idem,))).fetchone()
        assert row is not None
        return _outbox(row)

    async def due(
        self,
        now: datetime | None = None,
        limit: int = 10,
        *,
        lease: timedelta = timedelta(minutes=5),
        kinds: Iterable[str] | None = None,
    ) -> list[OutboxItem]:
        at = self._now(now)
        kind_list = list(kinds) if kinds is not None else None
        if kind_list is not None and not kind_list:
            return []
        rows = await self._all(
            """UPDATE outbox SET lease_until = %(lease)s, claim = %(token)s, attempts = attempts + 1,
                   updated_at = %(now)s
               WHERE id IN (
                   SELECT id FROM outbox
                   WHERE status = 'pending' AND next_try <= %(now)s
                     AND (lease_until IS NULL OR lease_until <= %(now)s)
                     AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
                   ORDER BY next_try, id LIMIT %(limit)s
                   FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            {"lease": at + lease, "token": uuid.uuid4().hex, "now": at, "kinds": kind_list, "limit": limit},
        )
        items = sorted((_outbox(r) for r in rows), key=lambda i: (i.next_try, i.id))
        if items:
            log.debug("outbox claimed n=%d", len(items))
        return items

    async def mark_done(self, item_id: int, remote_id: str | None = None) -> None:
        await self._exec(
            """UPDATE outbox SET status = 'done', remote_id = %s, lease_until = NULL, last_error = NULL,
                   updated_at = %s WHERE id = %s""",
            (remote_id, self._clock(), item_id),
        )
        log.debug("outbox done id=%s", item_id)

    async def mark_failed(self, item_id: int, error: str, next_try: datetime | None) -> None:
        status = OutboxStatus.PENDING if next_try is not None else OutboxStatus.DEAD
        await self._exec(
            """UPDATE outbox SET status = %s, last_error = %s, next_try = COALESCE(%s, next_try),
                   lease_until = NULL, updated_at = %s WHERE id = %s AND status = 'pending'""",
            (status.value, error[:MAX_ERROR_CHARS], utc(next_try) if next_try else None, self._clock(), item_id),
        )
        log.debug("outbox failed id=%s status=%s", item_id, status.value)

    async def outbox_item(self, id_or_key: int | str) -> OutboxItem | None:
        column = "id" if isinstance(id_or_key, int) else "idempotency_key"
        row = await self._one(f"SELECT * FROM outbox WHERE {column} = %s", (id_or_key,))
        return _outbox(row) if row else None

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        counts = {s.value: 0 for s in OutboxStatus}
        counts.update({r["status"]: r["n"] for r in rows})
        return counts

    # ------------------------------------------------------------------ notifications
    async def publish(self, channel: str, payload: str = "") -> None:
        """NOTIFY ``channel``: every console listening on this database hears it at once."""
        check_channel(channel)
        check_payload(payload)
        await self._exec("SELECT pg_notify(%s, %s)", (channel, payload))

    def subscribe(self, *channels: str) -> Subscription:
        """``async with store.subscribe("pa_tui_handoff") as sub: async for n in sub: …``"""
        return Subscription(self._hub, channels)

    def notifications(self) -> Subscription:
        """Hand-offs and wallboard updates: ``subscribe(HANDOFF_CHANNEL, WALLBOARD_CHANNEL)``."""
        return self.subscribe(HANDOFF_CHANNEL, WALLBOARD_CHANNEL)


async def _same_handoff(c: Conn, h: Handoff) -> bool:
    """After a retried commit: is the row under this ref already ours?"""
    row = await (
        await c.execute("SELECT call_id, from_agent, created_at FROM handoffs WHERE ref = %s", (h.ref,))
    ).fetchone()
    if row is None:
        return False
    return (row["call_id"], row["from_agent"], row["created_at"]) == (h.call_id, h.from_agent, h.created_at)


# --------------------------------------------------------------------------- rows → models
def _note(r: dict[str, Any]) -> Note:
    return Note(
        id=r["id"],
        agent_id=r["agent_id"],
        patient_id=r["patient_id"],
        call_id=r["call_id"],
        text=r["text"],
        status=NoteStatus.SAVED,
        created_at=_dt(r["created_at"]),
        updated_at=_dt(r["updated_at"]),
    )


def _draft(r: dict[str, Any]) -> Note:
    return Note(
        id=r["id"],
        agent_id=r["agent_id"],
        patient_id=unkey(r["patient_key"]),
        call_id=unkey(r["call_key"]),
        text=r["text"],
        status=NoteStatus.DRAFT,
        created_at=_dt(r["created_at"]),
        updated_at=_dt(r["updated_at"]),
    )


def _session(r: dict[str, Any]) -> CallSession:
    return CallSession(
        call=Call.model_validate(r["data"]), patient_id=r["patient_id"], outcome=r["outcome"], saved_at=r["saved_at"]
    )


def _outbox(r: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=r["id"],
        kind=r["kind"],
        payload=r["payload"],
        idempotency_key=r["idempotency_key"],
        status=r["status"],
        attempts=r["attempts"],
        last_error=r["last_error"],
        next_try=r["next_try"],
        lease_until=r["lease_until"],
        claim=r["claim"],
        remote_id=r["remote_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


# --------------------------------------------------------------------------- LISTEN/NOTIFY
class _PgHub(Hub):
    """One LISTEN connection per store, shared by its subscribers."""

    POLL = 0.25  # how often the listener looks for new LISTEN/UNLISTEN work between notifications

    def __init__(self, store: PostgresStore) -> None:
        super().__init__()
        self.store = store
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._listening: set[str] = set()
        self._waiters: list[asyncio.Future[None]] = []

    async def add(self, sub: Subscription) -> None:
        self.subs.add(sub)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="pa-tui-store-listen")
        try:
            await waiter
        except BaseException:
            self.subs.discard(sub)
            if not self.subs:
                await self._stop()
            raise

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
        await self._drop_conn()

    async def _drop_conn(self) -> None:
        conn, self._conn = self._conn, None
        self._listening = set()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self) -> None:
        backoff, lost = 0.5, False
        while self.subs:
            waiters, self._waiters = self._waiters, []
            try:
                if self._conn is None or self._conn.closed:
                    await self._drop_conn()
                    self._conn = await self.store._connect(autocommit=True)
                    if lost:
                        log.info("store notifications: listening again")
                        for channel in self.channels:
                            self.dispatch(Notification(channel=channel, resync=True))
                conn = self._conn
                want = self.channels
                for channel in sorted(want - self._listening):
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                for channel in sorted(self._listening - want):
                    await conn.execute(sql.SQL("UNLISTEN {}").format(sql.Identifier(channel)))
                self._listening = want
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
                backoff, lost = 0.5, False
                async with contextlib.aclosing(conn.notifies(timeout=self.POLL)) as stream:
                    async for n in stream:
                        self.dispatch(Notification(channel=n.channel, payload=n.payload))
            except Exception as exc:  # the listener must outlive any failure; cancellation still ends it
                await self._drop_conn()
                error = translate(exc)
                if waiters:  # a subscribe() is waiting: tell it now rather than hang
                    for w in waiters:
                        if not w.done():
                            w.set_exception(error)
                    if not self.subs:
                        return
                log.warning("store notifications: %s; retrying", error.title)
                lost = True
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 10.0)
