"""Store failures, written for the agent. Messages never contain a DSN, a password or PHI."""

from __future__ import annotations

from pa_tui.backends.base import AuthError, BackendError, Unavailable


class StoreError(BackendError):
    """Something went wrong with the local or shared database."""

    area = "store"


class StoreUnavailable(StoreError, Unavailable):
    """The database cannot be reached or opened (server down, disk full, file unreadable)."""


class StoreAuthError(StoreError, AuthError):
    """The PostgreSQL server refused the credentials in the DSN."""


class StoreBusy(StoreUnavailable):
    """The SQLite file stayed locked by other consoles for longer than the retry budget."""


class StoreSchemaError(StoreError):
    """The database was written by a newer pa-tui (its schema version is unknown here)."""


class StoreClosed(StoreError):
    """The store was used before ``open()`` or after ``aclose()``."""
