"""The Store contract: the same behaviour from SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from pa_tui.backends.base import Store
from pa_tui.backends.store import HANDOFF_CHANNEL, WALLBOARD_CHANNEL, StoreClosed
from pa_tui.domain.audit import AuditAction, Verification
from pa_tui.domain.calls import Call, CallDirection, CallState, Party, PartyType
from pa_tui.domain.escalation import EscalationBundle, ProblemArea
from pa_tui.domain.handoff import Handoff, looks_like_ref
from pa_tui.domain.notes import Note, NoteStatus
from pa_tui.domain.phones import parse_phone

T0 = datetime(2025, 3, 4, 15, 30, 0, 123456, tzinfo=UTC)


def note(text: str = "called about refill", *, at: datetime = T0, **kw: object) -> Note:
    fields: dict[str, object] = {
        "agent_id": "agent-1",
        "patient_id": "pat-1",
        "call_id": "call-1",
        "text": text,
        "created_at": at,
        "updated_at": at,
    }
    fields.update(kw)
    return Note(**fields)  # type: ignore[arg-type]


def test_store_fixture_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.backend in ("sqlite", "postgres")


# --------------------------------------------------------------------------- notes and drafts
async def test_saved_note_comes_back(store: Store) -> None:
    n = note()
    saved = await store.save_note(n)
    assert saved.status is NoteStatus.SAVED
    assert await store.notes_for("pat-1") == [saved]
    assert await store.notes_for_call("call-1") == [saved]
    assert await store.get_notes([n.id, "nope"]) == [saved]
    assert await store.notes_for("someone-else") == []


async def test_notes_newest_first_and_update_in_place(store: Store) -> None:
    first = await store.save_note(note("one", at=T0))
    second = await store.save_note(note("two", at=T0 + timedelta(minutes=1)))
    edited = await store.save_note(
        first.model_copy(update={"text": "one, edited", "updated_at": T0 + timedelta(hours=1)})
    )
    assert [n.text for n in await store.notes_for("pat-1")] == ["two", "one, edited"]
    assert (await store.notes_for("pat-1", limit=1))[0].id == second.id
    assert (await store.get_notes([first.id]))[0] == edited


async def test_naive_times_are_taken_as_utc(store: Store) -> None:
    naive = T0.replace(tzinfo=None)
    await store.save_note(note(at=naive))
    got = (await store.notes_for("pat-1"))[0]
    assert got.created_at == T0 and got.created_at.tzinfo is not None


async def test_one_draft_per_agent_patient_call(store: Store) -> None:
    for i in range(5):
        await store.save_draft(
            note(f"draft {i}", id="d1", status=NoteStatus.DRAFT, updated_at=T0 + timedelta(seconds=i))
        )
    draft = await store.latest_draft("agent-1", "pat-1", "call-1")
    assert draft is not None and draft.text == "draft 4" and draft.status is NoteStatus.DRAFT
    assert draft.id == "d1" and draft.created_at == T0
    # a stale autosave (older updated_at) never wins
    await store.save_draft(note("stale", id="d1", updated_at=T0))
    assert (await store.latest_draft("agent-1", "pat-1", "call-1")).text == "draft 4"  # type: ignore[union-attr]
    # other keys are other drafts, including "no patient" and "no call"
    await store.save_draft(note("no call", call_id=None))
    await store.save_draft(note("no patient", patient_id=None, call_id=None))
    await store.save_draft(note("other agent", agent_id="agent-2"))
    assert (await store.latest_draft("agent-1", "pat-1", None)).text == "no call"  # type: ignore[union-attr]
    got = await store.latest_draft("agent-1", None, None)
    assert got is not None and got.text == "no patient" and got.patient_id is None and got.call_id is None
    assert len(await store.drafts_for("agent-1")) == 3
    assert await store.latest_draft("agent-3", "pat-1", "call-1") is None
    assert await store.notes_for("pat-1") == []  # drafts are not notes


async def test_a_late_autosave_does_not_bring_a_saved_note_back_as_a_draft(store: Store) -> None:
    await store.save_note(note("final", id="n1", updated_at=T0 + timedelta(seconds=5)))
    await store.save_draft(note("typing…", id="n1", updated_at=T0 + timedelta(seconds=4)))  # debounced, late
    assert await store.latest_draft("agent-1", "pat-1", "call-1") is None
    await store.save_draft(note("a second note", id="n2", updated_at=T0 + timedelta(seconds=9)))
    assert (await store.latest_draft("agent-1", "pat-1", "call-1")).text == "a second note"  # type: ignore[union-attr]
    # the same holds with no patient and no call
    await store.save_note(note("x", id="n3", patient_id=None, call_id=None, updated_at=T0 + timedelta(seconds=5)))
    await store.save_draft(note("late", id="n3", patient_id=None, call_id=None, updated_at=T0))
    assert await store.latest_draft("agent-1", None, None) is None


async def test_saving_the_note_drops_its_draft(store: Store) -> None:
    await store.save_draft(note("typing…", id="n1"))
    await store.save_draft(note("other call", id="n2", call_id="call-2"))
    await store.save_note(note("final", id="n1", updated_at=T0 + timedelta(seconds=5)))
    assert await store.latest_draft("agent-1", "pat-1", "call-1") is None
    assert await store.latest_draft("agent-1", "pat-1", "call-2") is not None
    await store.delete_draft("agent-1", "pat-1", "call-2")
    assert await store.drafts_for("agent-1") == []


async def test_save_note_can_enqueue_its_write_back_atomically(store: Store) -> None:
    n = note()
    await store.save_note(n, outbox_kind="ehr.note")
    await store.save_note(n, outbox_kind="ehr.note")  # the same version again: no second write
    assert (await store.outbox_counts())["pending"] == 1
    [item] = await store.due()
    assert item.kind == "ehr.note" and item.payload["note"]["id"] == n.id and item.payload["note"]["text"] == n.text
    await store.save_note(
        n.model_copy(update={"text": "v2", "updated_at": T0 + timedelta(minutes=1)}), outbox_kind="ehr.note"
    )
    assert (await store.outbox_counts())["pending"] == 2


# --------------------------------------------------------------------------- calls
def call(state: CallState, at: datetime, agent: str = "u1") -> Call:
    return Call(
        id="ep-1",
        legs=("ep-1", "leg-2"),
        direction=CallDirection.INBOUND,
        state=state,
        ani=parse_phone("(408) 555-1212"),
        agent=Party(id=agent, type=PartyType.USER, name="Ann"),
        started_at=T0,
        updated_at=at,
    )


async def test_call_sessions_upsert_and_never_go_back(store: Store) -> None:
    await store.save_call(call(CallState.RINGING, T0))
    await store.save_call(call(CallState.CONNECTED, T0 + timedelta(seconds=5)), patient_id="pat-1")
    await store.save_call(call(CallState.HANGUP, T0 + timedelta(seconds=90)), outcome="resolved")
    await store.save_call(call(CallState.CONNECTED, T0 + timedelta(seconds=5)))  # a late, older snapshot
    got = await store.get_call("ep-1")
    assert got is not None
    assert got.call == call(CallState.HANGUP, T0 + timedelta(seconds=90))
    assert got.patient_id == "pat-1" and got.outcome == "resolved"
    assert [s.call.id for s in await store.recent_calls()] == ["ep-1"]
    assert [s.call.id for s in await store.recent_calls(patient_id="pat-1")] == ["ep-1"]
    assert await store.recent_calls(patient_id="pat-2") == []
    assert await store.get_call("nope") is None


# --------------------------------------------------------------------------- audit
async def test_audit_rows_round_trip_and_filter(store: Store) -> None:
    r1 = await store.audit(
        agent_id="a1",
        action=AuditAction.VIEW,
        patient_id="p1",
        reason="call-9",
        sections=("summary", "billing"),
        at=T0,
        verification=Verification.VERIFIED,
    )
    r2 = await store.audit(
        agent_id="a2", action="search", patient_id=None, reason="search", at=T0 + timedelta(minutes=1)
    )
    r3 = await store.audit(
        agent_id="a1",
        action=AuditAction.VIEW,
        patient_id="p2",
        reason="call-10",
        at=T0 + timedelta(minutes=2),
        verification="unverified",
    )
    assert await store.audit_rows() == [r1, r2, r3]
    got = (await store.audit_rows(patient_id="p1"))[0]
    assert got.sections == ("summary", "billing") and got.verification is Verification.VERIFIED
    assert got.at == T0 and got.reason == "call-9" and got.action == "view"
    assert await store.audit_rows(agent_id="a1") == [r1, r3]
    assert await store.audit_rows(since=T0 + timedelta(minutes=1)) == [r2, r3]
    assert await store.audit_rows(agent_id="a1", since=T0 + timedelta(seconds=1), until=T0 + timedelta(hours=1)) == [r3]


def test_the_store_api_cannot_change_audit_rows(store: Store) -> None:
    names = [n for n in dir(store) if "audit" in n.lower() and not n.startswith("_")]
    assert sorted(names) == ["audit", "audit_rows"]


async def test_the_database_refuses_to_change_audit_rows(store: Store, store_target: Any) -> None:
    await store.audit(agent_id="a1", action="view", patient_id="p1", reason="call-1", at=T0)
    raw = store_target.raw()
    try:
        for statement in ("UPDATE audit SET patient_id = 'p2'", "DELETE FROM audit"):
            with pytest.raises(Exception, match="append-only"):
                raw.execute(statement)
        if store_target.backend == "postgres":
            with pytest.raises(Exception, match="append-only"):
                raw.execute("TRUNCATE audit")
    finally:
        raw.close()
    [row] = await store.audit_rows()
    assert row.patient_id == "p1"


# --------------------------------------------------------------------------- known callers
async def test_known_callers_from_verified_calls(store: Store) -> None:
    number = parse_phone("+1 408 555 1212")
    await store.remember_caller(number, "pat-1", "a1", T0)
    await store.remember_caller("+14085551212", "pat-2", "a1", T0 + timedelta(days=1))
    await store.remember_caller(number, "pat-1", "a2", T0 + timedelta(days=2))
    await store.remember_caller(number, "pat-2", "a2", T0)  # older than what is known: no change
    callers = await store.known_callers("+14085551212")
    assert callers == [("pat-1", T0 + timedelta(days=2)), ("pat-2", T0 + timedelta(days=1))]
    assert callers[0].patient_id == "pat-1" and callers[0].verified_at.tzinfo is not None
    assert await store.known_callers("+14085550000") == []
    rows = await store.audit_rows()
    assert len(rows) == 4
    assert {r.action for r in rows} == {"known-caller"}
    assert all(r.verification is Verification.VERIFIED for r in rows)


# --------------------------------------------------------------------------- escalations
async def test_escalation_bundles(store: Store) -> None:
    b1 = EscalationBundle(
        occurred_at=T0,
        agent_id="a1",
        description="EHR slow",
        call_ids=("c1",),
        recent_events=("12:00 ehr timeout",),
        area=ProblemArea.EHR,
        caller_number="+14085551212",
    )
    b2 = EscalationBundle(occurred_at=T0 + timedelta(hours=1), agent_id="a2", description="no audio")
    await store.save_escalation(b1)
    await store.save_escalation(b2)
    await store.save_escalation(b1)  # saving again is an upsert
    assert await store.escalations() == [b2, b1]
    assert await store.escalations(agent_id="a1") == [b1]
    assert await store.escalations(since=T0 + timedelta(minutes=1)) == [b2]
    assert await store.escalations(limit=1) == [b2]
    assert await store.get_escalation(b1.id) == b1
    assert await store.get_escalation("nope") is None


# --------------------------------------------------------------------------- hand-offs
def handoff(**kw: object) -> Handoff:
    fields: dict[str, object] = {
        "call_id": "ep-1",
        "from_agent": "a1",
        "to_agent": "a2",
        "patient_id": "pat-1",
        "verification": Verification.VERIFIED,
        "note_ids": ("n1", "n2"),
        "call": call(CallState.TRANSFERRING, T0),
        "created_at": T0,
    }
    fields.update(kw)
    return Handoff(**fields)  # type: ignore[arg-type]


async def test_handoff_by_ref_or_call_id(store: Store) -> None:
    ref = await store.put_handoff(handoff())
    assert looks_like_ref(ref)
    got = await store.get_handoff(ref)
    assert got == handoff(ref=ref)
    assert got is not None and got.call is not None and got.call.ani == parse_phone("4085551212")
    assert await store.get_handoff(ref.lower()) == got
    assert await store.get_handoff("ep-1") == got
    # transferred again: the call id finds the newest hand-off
    ref2 = await store.put_handoff(handoff(from_agent="a2", to_agent=None, created_at=T0 + timedelta(minutes=3)))
    assert ref2 != ref
    assert (await store.get_handoff("ep-1")).ref == ref2  # type: ignore[union-attr]
    assert (await store.get_handoff(ref)).ref == ref  # type: ignore[union-attr]
    assert await store.get_handoff("ZZZZZZZZ") is None
    assert [h.ref for h in await store.handoffs_for("a2")] == [ref]
    assert await store.handoffs_for("a2", since=T0 + timedelta(seconds=1)) == []


async def test_handoff_with_a_given_ref_is_replaced(store: Store) -> None:
    await store.put_handoff(handoff(ref="ABCDEFGH"))
    assert await store.put_handoff(handoff(ref="ABCDEFGH", note_ids=("n3",))) == "ABCDEFGH"
    assert (await store.get_handoff("ABCDEFGH")).note_ids == ("n3",)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- reminders and opt-outs
async def test_reminders_and_opt_outs(store: Store) -> None:
    day = date(2025, 3, 5)
    assert not await store.reminder_sent("appt-1", day)
    await store.record_reminder("appt-1", day, "queued", "SM1")
    assert await store.reminder_sent("appt-1", day)
    assert await store.reminder_sent("appt-1", "2025-03-05")
    assert not await store.reminder_sent("appt-1", date(2025, 3, 6))
    await store.record_reminder("appt-2", day, "failed", None)
    assert not await store.reminder_sent("appt-2", day)
    await store.record_reminder("appt-2", day, "delivered", "SM2")
    assert await store.reminder_sent("appt-2", day)

    number = parse_phone("408-555-1212")
    assert not await store.is_opted_out(number)
    await store.set_opt_out(number, True, T0)
    assert await store.is_opted_out("+14085551212")
    await store.set_opt_out(number, False, T0 - timedelta(minutes=1))  # an older START: ignored
    assert await store.is_opted_out(number)
    await store.set_opt_out(number, False, T0 + timedelta(minutes=1))
    assert not await store.is_opted_out(number)


# --------------------------------------------------------------------------- notifications
async def test_publish_reaches_subscribers_of_that_channel(store: Store) -> None:
    async with store.subscribe(WALLBOARD_CHANNEL) as sub:
        await store.publish("pa_tui_other", "not for us")
        await store.publish(WALLBOARD_CHANNEL, '{"waiting": 3}')
        got = await asyncio.wait_for(anext(sub), 5)
    assert got.channel == WALLBOARD_CHANNEL and got.payload == '{"waiting": 3}' and not got.resync


async def test_handoff_notifies_another_console(store: Store, store_target: Any) -> None:
    other = store_target.make()  # a second console on the same database
    await other.open()
    try:
        async with other.subscribe(HANDOFF_CHANNEL) as sub:
            ref = await store.put_handoff(handoff())
            got = await asyncio.wait_for(anext(sub), 5)
        assert json.loads(got.payload) == {"ref": ref, "call_id": "ep-1", "to_agent": "a2"}
        assert (await other.get_handoff(json.loads(got.payload)["ref"])) == handoff(ref=ref)
    finally:
        await other.aclose()


async def test_subscription_sees_every_notification_in_order(store: Store) -> None:
    async with store.notifications() as sub:
        for i in range(20):
            await store.publish(WALLBOARD_CHANNEL if i % 2 else HANDOFF_CHANNEL, str(i))
        got = [await asyncio.wait_for(anext(sub), 5) for _ in range(20)]
    assert [n.payload for n in got] == [str(i) for i in range(20)]


async def test_bad_channel_or_payload_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.publish("Bad Channel", "x")
    with pytest.raises(ValueError):
        await store.publish(WALLBOARD_CHANNEL, "x" * 9000)


# --------------------------------------------------------------------------- lifecycle and migrations
async def test_closed_store_refuses_work(store_target: Any) -> None:
    s = store_target.make()
    with pytest.raises(StoreClosed):
        await s.notes_for("p")
    async with s:
        assert await s.notes_for("p") == []
    with pytest.raises(StoreClosed):
        await s.notes_for("p")


async def test_data_survives_reopen(store: Store, store_target: Any) -> None:
    n = await store.save_note(note())
    await store.aclose()
    async with store_target.make() as again:
        assert await again.notes_for("pat-1") == [n]


def _versions(target: Any) -> list[int]:
    raw = target.raw()
    try:
        return [r[0] for r in raw.execute("SELECT version FROM schema_version ORDER BY version").fetchall()]
    finally:
        raw.close()


async def test_many_consoles_opening_at_once_migrate_once(store_target: Any) -> None:
    stores = [store_target.make() for _ in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await asyncio.gather(*(s.save_note(note(id=f"n{i}")) for i, s in enumerate(stores)))
        assert len(await stores[0].notes_for("pat-1")) == 6
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))
    assert _versions(store_target) == [1]


async def test_new_migrations_apply_on_open_and_newer_schemas_are_refused(store_target: Any) -> None:
    from pa_tui.backends.store import StoreSchemaError
    from pa_tui.backends.store.migrations import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, Migration

    base = SQLITE_MIGRATIONS if store_target.backend == "sqlite" else POSTGRES_MIGRATIONS
    extra = Migration(base[-1].version + 1, "test column", ("ALTER TABLE notes ADD COLUMN test_extra TEXT",))
    async with store_target.make():
        pass
    async with store_target.make(migrations=(*base, extra)) as s:
        await s.save_note(note())
    assert _versions(store_target) == [m.version for m in base] + [extra.version]
    with pytest.raises(StoreSchemaError, match="newer pa-tui"):
        await store_target.make().open()


@pytest.mark.parametrize("store_target", ["postgres"], indirect=True)
async def test_listener_reconnects_and_asks_for_a_resync(store_target: Any) -> None:
    """The LISTEN connection dropped (server restart, network blip): subscribers are told
    to re-read state, and notifications flow again."""
    async with store_target.make() as store, store.notifications() as sub:
        raw = store_target.raw()
        try:
            killed = raw.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND query ILIKE '%LISTEN%'"
            ).fetchall()
        finally:
            raw.close()
        assert killed
        first = await asyncio.wait_for(anext(sub), 10)
        assert first.resync
        await store.publish(WALLBOARD_CHANNEL, "after")
        while (got := await asyncio.wait_for(anext(sub), 10)).resync:
            pass
        assert got.payload == "after"
