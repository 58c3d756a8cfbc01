"""The outbox: idempotent enqueue, leased claims, backoff, and the OutboxWorker."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pa_tui.backends.base import BadRequest, RateLimited, Store, Unavailable
from pa_tui.backends.store import OutboxWorker
from pa_tui.domain.outbox import OutboxItem, OutboxStatus

T0 = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)


async def test_enqueue_is_idempotent_on_its_key(store: Store) -> None:
    a = await store.enqueue("ehr.note", {"note_id": "n1"}, "ehr.note:n1:v1", not_before=T0)
    b = await store.enqueue("ehr.note", {"note_id": "CHANGED"}, "ehr.note:n1:v1", not_before=T0)
    assert a == b and b.payload == {"note_id": "n1"}
    assert a.status is OutboxStatus.PENDING and a.attempts == 0 and a.next_try == T0
    assert (await store.outbox_counts()) == {"pending": 1, "done": 0, "dead": 0}
    assert await store.outbox_item(a.id) == a
    assert await store.outbox_item("ehr.note:n1:v1") == a
    assert await store.outbox_item("nope") is None


async def test_due_claims_only_what_is_due_oldest_first(store: Store) -> None:
    later = await store.enqueue("sms", {"n": 2}, "k2", not_before=T0 + timedelta(minutes=1))
    first = await store.enqueue("sms", {"n": 1}, "k1", not_before=T0)
    await store.enqueue("sms", {"n": 3}, "k3", not_before=T0 + timedelta(hours=1))
    got = await store.due(T0 + timedelta(minutes=5), 10)
    assert [i.id for i in got] == [first.id, later.id]
    assert all(i.attempts == 1 and i.claim and i.lease_until and i.lease_until > T0 for i in got)


async def test_a_claimed_item_is_leased_until_the_lease_ends(store: Store) -> None:
    item = await store.enqueue("sms", {}, "k1", not_before=T0)
    [claimed] = await store.due(T0, lease=timedelta(minutes=5))
    assert await store.due(T0 + timedelta(minutes=4)) == []  # still leased: nobody else gets it
    [again] = await store.due(T0 + timedelta(minutes=6))  # the holder died: it comes back
    assert again.id == item.id and again.attempts == 2 and again.claim != claimed.claim


async def test_done_items_never_come_back(store: Store) -> None:
    item = await store.enqueue("sms", {}, "k1", not_before=T0)
    await store.due(T0)
    await store.mark_done(item.id, "SM123")
    assert await store.due(T0 + timedelta(days=30)) == []
    done = await store.outbox_item(item.id)
    assert done is not None and done.status is OutboxStatus.DONE and done.remote_id == "SM123"
    # enqueueing the same write again is a no-op, so it is not sent twice
    assert (await store.enqueue("sms", {}, "k1")).status is OutboxStatus.DONE
    assert await store.due(T0 + timedelta(days=30)) == []


async def test_failed_items_come_back_at_next_try_or_die(store: Store) -> None:
    a = await store.enqueue("sms", {}, "ka", not_before=T0)
    b = await store.enqueue("sms", {}, "kb", not_before=T0)
    await store.due(T0)
    await store.mark_failed(a.id, "Twilio answered 503", T0 + timedelta(minutes=2))
    await store.mark_failed(b.id, "bad number", None)
    assert await store.due(T0 + timedelta(minutes=1)) == []
    [back] = await store.due(T0 + timedelta(minutes=3))
    assert back.id == a.id and back.last_error == "Twilio answered 503" and back.attempts == 2
    dead = await store.outbox_item(b.id)
    assert dead is not None and dead.status is OutboxStatus.DEAD and dead.last_error == "bad number"
    assert (await store.outbox_counts())["dead"] == 1


async def test_due_filters_by_kind(store: Store) -> None:
    await store.enqueue("ehr.note", {}, "k1", not_before=T0)
    await store.enqueue("sms.reminder", {}, "k2", not_before=T0)
    assert [i.kind for i in await store.due(T0, kinds=["sms.reminder"])] == ["sms.reminder"]
    assert await store.due(T0, kinds=[]) == []
    assert [i.kind for i in await store.due(T0)] == ["ehr.note"]


async def test_the_outbox_survives_a_restart(store: Store, store_target: Any) -> None:
    item = await store.enqueue("ehr.note", {"x": 1}, "k1", not_before=T0)
    await store.aclose()
    async with store_target.make() as again:
        [got] = await again.due(T0)
        assert got.id == item.id and got.payload == {"x": 1}


async def test_concurrent_claims_never_share_an_item(store: Store, store_target: Any) -> None:
    for i in range(60):
        await store.enqueue("sms", {"i": i}, f"k{i}", not_before=T0)
    others = [store_target.make() for _ in range(3)]
    await asyncio.gather(*(o.open() for o in others))
    try:
        consoles = [store, *others]
        claims = await asyncio.gather(*(consoles[n % 4].due(T0, 3) for n in range(40)))
    finally:
        await asyncio.gather(*(o.aclose() for o in others))
    ids = [item.id for batch in claims for item in batch]
    assert len(ids) == len(set(ids)) == 60


# --------------------------------------------------------------------------- OutboxWorker
class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def test_worker_sends_and_marks_done(store: Store) -> None:
    sent: list[str] = []

    async def send(item: OutboxItem) -> str:
        sent.append(item.idempotency_key)
        return f"remote-{item.payload['i']}"

    for i in range(25):
        await store.enqueue("sms", {"i": i}, f"k{i}", not_before=T0)
    worker = OutboxWorker(store, send, batch=10, clock=Clock(T0))
    report = await worker.drain()
    assert report.sent == 25 and sent == [f"k{i}" for i in range(25)]
    assert (await store.outbox_counts())["done"] == 25
    assert (await store.outbox_item("k7")).remote_id == "remote-7"  # type: ignore[union-attr]
    assert (await worker.drain()).total == 0  # nothing is sent twice


async def test_worker_backs_off_exponentially_with_jitter(store: Store) -> None:
    clock = Clock(T0)
    calls = 0

    async def send(item: OutboxItem) -> str:
        nonlocal calls
        calls += 1
        raise Unavailable("The EHR did not answer", "it will be retried")

    await store.enqueue("ehr.note", {"text": "PHI: Jane Doe"}, "k1", not_before=T0)
    worker = OutboxWorker(store, send, clock=clock, base_delay=2, max_delay=60, rng=random.Random(1))
    waits = []
    for _ in range(7):
        assert (await worker.drain()).retried == 1
        item = await store.outbox_item("k1")
        assert item is not None and item.last_error == "The EHR did not answer"
        waits.append((item.next_try - clock.at).total_seconds())
        clock.at = item.next_try
    assert calls == 7
    for n, wait in enumerate(waits, start=1):
        ceiling = min(60, 2 * 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert len(set(waits)) == len(waits)  # jittered


async def test_worker_honours_retry_after_and_gives_up_on_permanent_errors(store: Store) -> None:
    clock = Clock(T0)

    async def send(item: OutboxItem) -> str:
        if item.kind == "limited":
            raise RateLimited("Too many requests", retry_after=42)
        if item.kind == "bad":
            raise BadRequest("The EHR refused the note", "check the note type mapping")
        raise ValueError("Jane Doe's note could not be encoded")  # text may carry PHI

    await store.enqueue("limited", {}, "k1", not_before=T0)
    await store.enqueue("bad", {}, "k2", not_before=T0)
    await store.enqueue("weird", {}, "k3", not_before=T0)
    report = await OutboxWorker(store, send, clock=clock).drain()
    assert (report.sent, report.retried, report.dead) == (0, 2, 1)
    limited = await store.outbox_item("k1")
    assert limited is not None and limited.next_try == T0 + timedelta(seconds=42)
    bad = await store.outbox_item("k2")
    assert bad is not None and bad.status is OutboxStatus.DEAD and bad.last_error == "The EHR refused the note"
    weird = await store.outbox_item("k3")
    assert weird is not None and weird.last_error == "ValueError"  # the type only: no PHI from the message


async def test_worker_gives_up_after_max_attempts(store: Store) -> None:
    clock = Clock(T0)

    async def send(item: OutboxItem) -> str:
        raise Unavailable("down")

    await store.enqueue("sms", {}, "k1", not_before=T0)
    worker = OutboxWorker(store, send, clock=clock, max_attempts=3)
    for _ in range(3):
        await worker.drain()
        clock.at += timedelta(hours=1)
    item = await store.outbox_item("k1")
    assert item is not None and item.status is OutboxStatus.DEAD and item.attempts == 3


async def test_worker_run_wakes_on_kick_and_stops(store: Store) -> None:
    sent = asyncio.Event()

    async def send(item: OutboxItem) -> str:
        sent.set()
        return "ok"

    worker = OutboxWorker(store, send, poll_interval=60)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    await store.enqueue("sms", {}, "k1")
    worker.kick()
    await asyncio.wait_for(sent.wait(), 5)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert (await store.outbox_counts())["done"] == 1


async def test_worker_cuts_a_send_off_before_its_lease_ends(store: Store) -> None:
    async def send(item: OutboxItem) -> str:
        await asyncio.sleep(10)
        return "late"

    await store.enqueue("sms", {}, "k1")
    worker = OutboxWorker(store, send, lease=timedelta(seconds=0.2))
    assert (await asyncio.wait_for(worker.drain(), 5)).retried == 1
    item = await store.outbox_item("k1")
    assert item is not None and item.last_error == "timed out" and item.lease_until is None


@pytest.mark.parametrize("kinds", [("sms",), None])
async def test_worker_only_drains_its_kinds(store: Store, kinds: tuple[str, ...] | None) -> None:
    async def send(item: OutboxItem) -> str:
        return "ok"

    await store.enqueue("sms", {}, "k1")
    await store.enqueue("ehr.note", {}, "k2")
    report = await OutboxWorker(store, send, kinds=kinds).drain()
    assert report.sent == (1 if kinds else 2)
