"""Numbered schema migrations, one list per database, applied on open.

Rules: a migration, once released, never changes; add a new one with the next
number instead. Each list must keep the same tables and meaning on both
databases. ``schema_version`` holds one row per applied migration; a database
whose highest version is beyond the last one here was written by a newer
pa-tui and is refused (:class:`~pa_tui.backends.store.errors.StoreSchemaError`).

Concurrency: SQLite applies them inside ``BEGIN IMMEDIATE`` (one writer at a
time, so a second process waits, then sees them applied); PostgreSQL inside one
transaction holding ``pg_advisory_xact_lock(SCHEMA_LOCK_KEY)``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


# An arbitrary constant: "patui" in ASCII, as a bigint.
SCHEMA_LOCK_KEY = 0x7061747569

SQLITE_SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

POSTGRES_SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


# --------------------------------------------------------------------------- SQLite
# Times are fixed-width UTC text ("2025-01-31T09:15:00.000000Z"), so text order is time order.
SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            """CREATE TABLE notes (
                id TEXT PRIMARY KEY,
                agent_id TEXT NOT NULL,
                patient_id TEXT,
                call_id TEXT,
                text TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX notes_patient ON notes (patient_id, created_at)",
            "CREATE INDEX notes_call ON notes (call_id)",
            # One autosaved draft per (agent, patient, call); '' stands for "none".
            """CREATE TABLE drafts (
                agent_id TEXT NOT NULL,
                patient_key TEXT NOT NULL,
                call_key TEXT NOT NULL,
                id TEXT NOT NULL,
                text TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (agent_id, patient_key, call_key)
            )""",
            """CREATE TABLE calls (
                id TEXT PRIMARY KEY,
                patient_id TEXT,
                agent_id TEXT,
                ani TEXT,
                state TEXT NOT NULL,
                outcome TEXT,
                updated_at TEXT,
                saved_at TEXT NOT NULL,
                data TEXT NOT NULL
            )""",
            "CREATE INDEX calls_saved ON calls (saved_at)",
            "CREATE INDEX calls_patient ON calls (patient_id)",
            """CREATE TABLE audit (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                at TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                action TEXT NOT NULL,
                patient_id TEXT,
                sections TEXT NOT NULL,
                reason TEXT NOT NULL,
                verification TEXT
            )""",
            "CREATE INDEX audit_patient ON audit (patient_id, at)",
            "CREATE INDEX audit_agent ON audit (agent_id, at)",
            "CREATE INDEX audit_at ON audit (at)",
            """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
               BEGIN SELECT RAISE(ABORT, 'pa-tui audit rows are append-only'); END""",
            """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
               BEGIN SELECT RAISE(ABORT, 'pa-tui audit rows are append-only'); END""",
            """CREATE TABLE known_callers (
                e164 TEXT NOT NULL,
                patient_id TEXT NOT NULL,
                verified_at TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                PRIMARY KEY (e164, patient_id)
            )""",
            """CREATE TABLE escalations (
                id TEXT PRIMARY KEY,
                occurred_at TEXT NOT NULL,
                agent_id TEXT NOT NULL,
                data TEXT NOT NULL
            )""",
            "CREATE INDEX escalations_at ON escalations (occurred_at)",
            """CREATE TABLE handoffs (
                ref TEXT PRIMARY KEY,
                call_id TEXT NOT NULL,
                from_agent TEXT NOT NULL,
                to_agent TEXT,
                created_at TEXT NOT NULL,
                data TEXT NOT NULL
            )""",
            "CREATE INDEX handoffs_call ON handoffs (call_id, created_at)",
            """CREATE TABLE reminders (
                appointment_id TEXT NOT NULL,
                day TEXT NOT NULL,
                status TEXT NOT NULL,
                sid TEXT,
                at TEXT NOT NULL,
                PRIMARY KEY (appointment_id, day)
            )""",
            """CREATE TABLE opt_outs (
                e164 TEXT PRIMARY KEY,
                opted_out INTEGER NOT NULL,
                at TEXT NOT NULL
            )""",
            """CREATE TABLE outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                payload TEXT NOT NULL,
                idempotency_key TEXT NOT NULL UNIQUE,
                status TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                next_try TEXT NOT NULL,
                lease_until TEXT,
                claim TEXT,
                remote_id TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX outbox_due ON outbox (status, next_try)",
            # Cross-process notifications on one machine: subscribers poll past their last id.
            """CREATE TABLE notifications (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                channel TEXT NOT NULL,
                payload TEXT NOT NULL,
                at TEXT NOT NULL
            )""",
            "CREATE INDEX notifications_at ON notifications (at)",
        ),
    ),
)


# --------------------------------------------------------------------------- PostgreSQL
POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            """CREATE TABLE notes (
                id text PRIMARY KEY,
                agent_id text NOT NULL,
                patient_id text,
                call_id text,
                text text NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
            )""",
            "CREATE INDEX notes_patient ON notes (patient_id, created_at)",
            "CREATE INDEX notes_call ON notes (call_id)",
            """CREATE TABLE drafts (
                agent_id text NOT NULL,
                patient_key text NOT NULL,
                call_key text NOT NULL,
                id text NOT NULL,
                text text NOT NULL,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (agent_id, patient_key, call_key)
            )""",
            """CREATE TABLE calls (
                id text PRIMARY KEY,
                patient_id text,
                agent_id text,
                ani text,
                state text NOT NULL,
                outcome text,
                updated_at timestamptz,
                saved_at timestamptz NOT NULL,
                data jsonb NOT NULL
            )""",
            "CREATE INDEX calls_saved ON calls (saved_at)",
            "CREATE INDEX calls_patient ON calls (patient_id)",
            """CREATE TABLE audit (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id text NOT NULL UNIQUE,
                at timestamptz NOT NULL,
                agent_id text NOT NULL,
                action text NOT NULL,
                patient_id text,
                sections text[] NOT NULL,
                reason text NOT NULL,
                verification text
            )""",
            "CREATE INDEX audit_patient ON audit (patient_id, at)",
            "CREATE INDEX audit_agent ON audit (agent_id, at)",
            "CREATE INDEX audit_at ON audit (at)",
            """CREATE FUNCTION pa_tui_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                   RAISE EXCEPTION 'pa-tui audit rows are append-only' USING ERRCODE = 'insufficient_privilege';
               END
               $$""",
            """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
               FOR EACH ROW EXECUTE FUNCTION pa_tui_audit_append_only()""",
            """CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
               FOR EACH STATEMENT EXECUTE FUNCTION pa_tui_audit_append_only()""",
            """CREATE TABLE known_callers (
                e164 text NOT NULL,
                patient_id text NOT NULL,
                verified_at timestamptz NOT NULL,
                agent_id text NOT NULL,
                PRIMARY KEY (e164, patient_id)
            )""",
            """CREATE TABLE escalations (
                id text PRIMARY KEY,
                occurred_at timestamptz NOT NULL,
                agent_id text NOT NULL,
                data jsonb NOT NULL
            )""",
            "CREATE INDEX escalations_at ON escalations (occurred_at)",
            """CREATE TABLE handoffs (
                ref text PRIMARY KEY,
                call_id text NOT NULL,
                from_agent text NOT NULL,
                to_agent text,
                created_at timestamptz NOT NULL,
                data jsonb NOT NULL
            )""",
            "CREATE INDEX handoffs_call ON handoffs (call_id, created_at)",
            """CREATE TABLE reminders (
                appointment_id text NOT NULL,
                day date NOT NULL,
                status text NOT NULL,
                sid text,
                at timestamptz NOT NULL,
                PRIMARY KEY (appointment_id, day)
            )""",
            """CREATE TABLE opt_outs (
                e164 text PRIMARY KEY,
                opted_out boolean NOT NULL,
                at timestamptz NOT NULL
            )""",
            """CREATE TABLE outbox (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kind text NOT NULL,
                payload jsonb NOT NULL,
                idempotency_key text NOT NULL UNIQUE,
                status text NOT NULL DEFAULT 'pending',
                attempts integer NOT NULL DEFAULT 0,
                last_error text,
                next_try timestamptz NOT NULL,
                lease_until timestamptz,
                claim text,
                remote_id text,
                created_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL
            )""",
            "CREATE INDEX outbox_due ON outbox (status, next_try)",
        ),
    ),
)
