"""Durable local state: notes and drafts, call sessions, the PHI audit log, known
callers, escalation bundles, hand-offs, reminders and the outbox.

Two implementations of :class:`pa_tui.backends.base.Store`:

- :class:`SqliteStore` (default): one WAL-mode file shared by every console on a
  machine; notifications by polling a table.
- :class:`PostgresStore`: for consoles on many machines; notifications by
  LISTEN/NOTIFY.

Build one from settings with :func:`open_store`, then ``await store.open()`` or
``async with open_store(settings) as store: ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from pa_tui.backends.store._common import Subscription
from pa_tui.backends.store.errors import (
    StoreAuthError,
    StoreBusy,
    StoreClosed,
    StoreError,
    StoreSchemaError,
    StoreUnavailable,
)
from pa_tui.backends.store.outbox import DrainReport, OutboxWorker, Sender
from pa_tui.backends.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from pa_tui.backends.store.postgres import PostgresStore
from pa_tui.domain.handoff import HANDOFF_CHANNEL, WALLBOARD_CHANNEL

__all__ = [
    "HANDOFF_CHANNEL",
    "WALLBOARD_CHANNEL",
    "DrainReport",
    "OutboxWorker",
    "PostgresStore",
    "Sender",
    "SqliteStore",
    "StoreAuthError",
    "StoreBusy",
    "StoreClosed",
    "StoreError",
    "StoreSchemaError",
    "StoreUnavailable",
    "Subscription",
    "open_store",
]


def __getattr__(name: str) -> Any:
    # psycopg is imported only when PostgreSQL is used: a SQLite console starts faster.
    if name == "PostgresStore":
        from pa_tui.backends.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def open_store(
    settings_like: Any = None,
    *,
    backend: str | None = None,
    path: str | Path | None = None,
    dsn: str | SecretStr | None = None,
) -> SqliteStore | PostgresStore:
    """The store the settings name, not yet opened.

    ``settings_like`` may be pa-tui's ``Settings`` (its ``store`` section is used),
    a ``StoreSettings``, a dict or any object with ``backend`` ("sqlite" |
    "postgres"), ``path`` and ``dsn``; keyword arguments win. For PostgreSQL
    without a ``dsn``, the DSN comes from the keyring item ``dsn_keyring_item``
    (or ``PA_TUI_POSTGRES_DSN``) through :mod:`pa_tui.secrets`.
    """
    section = _get(settings_like, "store", settings_like) if settings_like is not None else None
    backend = backend or _get(section, "backend") or "sqlite"
    if backend == "sqlite":
        return SqliteStore(path if path is not None else _get(section, "path"))
    if backend != "postgres":
        raise StoreError(f"Unknown store backend {backend!r}", 'set store.backend to "sqlite" or "postgres"')
    dsn = dsn if dsn is not None else _get(section, "dsn")
    if dsn is None:
        from pa_tui.secrets import get_secret  # the keyring is only needed for PostgreSQL

        dsn = get_secret("postgres", item=_get(section, "dsn_keyring_item") or "postgres")
    if dsn is None or not (dsn.get_secret_value() if isinstance(dsn, SecretStr) else dsn).strip():
        raise StoreError(
            "No PostgreSQL connection string (DSN) is set",
            "run `pa-tui auth set postgres` or set PA_TUI_POSTGRES_DSN",
        )
    from pa_tui.backends.store.postgres import PostgresStore

    return PostgresStore(dsn)
