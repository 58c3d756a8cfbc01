"""The PHI access audit log: who saw which patient's what, when and why. Pure.

Rows are append-only. The store keeps them; :func:`export_audit` turns them into
CSV or JSON text for compliance staff (``pa-tui audit``). No I/O here.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AuditAction(StrEnum):
    """What the agent did. Free text is allowed too; these are the ones pa-tui writes."""

    VIEW = "view"  # opened a record section
    SEARCH = "search"  # ran a patient search
    VERIFY = "verify"  # marked (or failed to mark) the caller verified
    EXPORT = "export"  # exported audit rows or an escalation bundle
    KNOWN_CALLER = "known-caller"  # remembered a number → patient link
    HANDOFF = "handoff"  # passed the patient context to another console
    NOTE = "note"  # saved a note against the patient


class Verification(StrEnum):
    """The caller's verification state at the time of the access."""

    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    FAILED = "failed"
    NOT_REQUIRED = "not-required"  # e.g. a search from the back office, no caller on the line


def utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class AuditRow(BaseModel):
    """One PHI access. ``reason`` is the call id, or ``search`` / ``search:<what>``."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    at: datetime
    agent_id: str
    action: str
    patient_id: str | None = None
    sections: tuple[str, ...] = ()
    reason: str = ""
    verification: Verification | None = None

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return utc(value)


AUDIT_COLUMNS: tuple[str, ...] = ("id", "at", "agent_id", "action", "patient_id", "sections", "reason", "verification")

# Cells a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _at(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(row: AuditRow) -> dict[str, object]:
    return {
        "id": row.id,
        "at": _at(row.at),
        "agent_id": row.agent_id,
        "action": str(row.action),
        "patient_id": row.patient_id,
        "sections": list(row.sections),
        "reason": row.reason,
        "verification": row.verification.value if row.verification else None,
    }


def export_audit(rows: Iterable[AuditRow], format: Literal["csv", "json"] = "csv") -> str:
    """The rows as CSV (header + one line each, sections joined with ``;``) or a JSON array.

    Times are UTC ISO-8601 with a ``Z``. CSV cells that a spreadsheet would run as a
    formula are prefixed with ``'``.
    """
    records = [_record(r) for r in rows]
    if format == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if format != "csv":
        raise ValueError('format must be "csv" or "json"')
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AUDIT_COLUMNS)
    for rec in records:
        cells = []
        for col in AUDIT_COLUMNS:
            value = rec[col]
            if isinstance(value, list):
                value = ";".join(value)
            cells.append(_csv_cell("" if value is None else str(value)))
        writer.writerow(cells)
    return out.getvalue()
