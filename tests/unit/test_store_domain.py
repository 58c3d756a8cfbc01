"""Pure pieces the store relies on: audit export, backoff, hand-off refs."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pa_tui.domain.audit import AUDIT_COLUMNS, AuditRow, Verification, export_audit
from pa_tui.domain.handoff import REF_LENGTH, Handoff, looks_like_ref, new_handoff_ref
from pa_tui.domain.outbox import backoff_delay, next_try_after

T0 = datetime(2025, 3, 4, 15, 30, 0, 5, tzinfo=UTC)


def rows() -> list[AuditRow]:
    return [
        AuditRow(
            id="r1",
            at=T0,
            agent_id="a1",
            action="view",
            patient_id="p1",
            sections=("summary", "billing"),
            reason="call-9",
            verification=Verification.VERIFIED,
        ),
        AuditRow(
            id="r2",
            at=T0.astimezone(timezone(timedelta(hours=-5))),
            agent_id="a2",
            action="search",
            reason='=HYPERLINK("http://evil")',
            verification=None,
        ),
    ]


def test_export_csv() -> None:
    text = export_audit(rows(), "csv")
    parsed = list(csv.reader(io.StringIO(text)))
    assert tuple(parsed[0]) == AUDIT_COLUMNS
    assert parsed[1] == [
        "r1",
        "2025-03-04T15:30:00.000005Z",
        "a1",
        "view",
        "p1",
        "summary;billing",
        "call-9",
        "verified",
    ]
    # times are UTC whatever zone they came in; formulas are defused for spreadsheets
    assert parsed[2][1] == "2025-03-04T15:30:00.000005Z"
    assert parsed[2][6] == '\'=HYPERLINK("http://evil")'
    assert parsed[2][4] == "" and parsed[2][7] == ""


def test_export_json() -> None:
    data = json.loads(export_audit(rows(), "json"))
    assert data[0] == {
        "id": "r1",
        "at": "2025-03-04T15:30:00.000005Z",
        "agent_id": "a1",
        "action": "view",
        "patient_id": "p1",
        "sections": ["summary", "billing"],
        "reason": "call-9",
        "verification": "verified",
    }
    assert data[1]["reason"] == '=HYPERLINK("http://evil")'  # JSON is not a spreadsheet: kept as is
    assert export_audit([], "json").strip() == "[]"
    assert export_audit([], "csv").strip() == ",".join(AUDIT_COLUMNS)


def test_export_refuses_other_formats() -> None:
    with pytest.raises(ValueError):
        export_audit(rows(), "xml")  # type: ignore[arg-type]


def test_audit_rows_are_utc() -> None:
    row = AuditRow(at=datetime(2025, 1, 1, 12, 0), agent_id="a", action="view")
    assert row.at.tzinfo is UTC and row.id


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_exponential_capped_and_jittered(attempts: int, seed: int) -> None:
    delay = backoff_delay(attempts, base=2, cap=600, rng=random.Random(seed)).total_seconds()
    ceiling = min(600, 2 * 2 ** (attempts - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_grows_then_stops_growing() -> None:
    rng = random.Random(3)
    ceilings = [backoff_delay(n, base=1, cap=60, rng=rng).total_seconds() for n in range(1, 12)]
    assert ceilings[0] <= 1 and 16 <= ceilings[5] <= 32 and all(c <= 60 for c in ceilings)
    assert next_try_after(1, T0, base=10, rng=random.Random(0)) > T0


def test_handoff_refs_are_short_and_unambiguous() -> None:
    refs = {new_handoff_ref() for _ in range(2000)}
    assert len(refs) == 2000
    for ref in list(refs)[:50]:
        assert len(ref) == REF_LENGTH and looks_like_ref(ref) and looks_like_ref(ref.lower())
        assert not set(ref) & set("ILOU")
    assert not looks_like_ref("12345678901234")  # a Dialpad call id is not a ref


def test_handoff_created_at_is_utc() -> None:
    h = Handoff(
        call_id="c", from_agent="a", created_at=datetime(2025, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=-5)))
    )
    assert h.created_at == datetime(2025, 1, 1, 12, 0, tzinfo=UTC) and h.created_at.tzinfo is UTC
