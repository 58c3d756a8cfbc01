"""DialpadClient's rate budgets, retry policy and local validation, with no network (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from pa_tui.backends.base import BadRequest, RateLimited, Unavailable
from pa_tui.backends.dialpad.client import (
    COMPANY_LIMIT,
    OPERATIONS,
    BudgetExhausted,
    DialpadClient,
    RateLimit,
    _Budget,
    key_fingerprint,
)

KEY = "unit-test-dialpad-key-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_dialpad(status: int = 200, body: object | None = None) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if status != 200:
            return httpx.Response(status, json={"error": {"code": status, "message": "nope"}}, headers={"Retry-After": "0"})
        return httpx.Response(200, json=body if body is not None else {"call_id": "6300000000000001"})

    return httpx.MockTransport(handle), seen


def test_limits_read_as_sentences() -> None:
    assert OPERATIONS["initiate_call"].limit.describe() == "5 calls a minute"
    assert OPERATIONS["screen_pop"].limit.describe() == "5 screen pops a minute"
    assert OPERATIONS["get_call"].limit.describe() == "10 call look-ups a minute"
    assert COMPANY_LIMIT.describe() == "20 requests a second"
    assert RateLimit(200, 3600.0).describe() == "200 requests an hour"
    assert RateLimit(1, 300.0, "changes").describe() == "1 changes every 5 minutes"


def test_a_budget_is_a_sliding_window() -> None:
    budget = _Budget(RateLimit(5, 60.0))
    for t in range(5):
        assert budget.wait(float(t)) == (0.0, False)
        budget.take(float(t))
    assert budget.remaining(4.0) == 0
    assert budget.wait(4.0) == (56.0, False)  # the first token comes back 60 s after it was spent
    assert budget.remaining(60.0) == 1 and budget.wait(60.0) == (0.0, False)
    budget.block(100.0)  # a 429's Retry-After outlasts the window
    assert budget.wait(61.0) == (39.0, True)
    state = budget.state(61.0)
    assert state.remaining == 0 and state.blocked_by_dialpad and state.retry_in == 39.0


async def test_the_sixth_dial_is_refused_without_a_request() -> None:
    transport, seen = fake_dialpad()
    clock = Clock()
    async with DialpadClient(KEY, "http://dialpad.test", transport=transport, clock=clock) as client:
        for _ in range(5):
            assert await client.initiate_call("1", "+14155550123") == "6300000000000001"
            clock.now += 10
        assert client.budgets()["initiate_call"].remaining == 0
        with pytest.raises(BudgetExhausted) as info:
            await client.initiate_call("1", "+14155550123")
        assert info.value.title == "Dialpad allows 5 calls a minute; try again in 10 s"
        assert info.value.retry_after == pytest.approx(10.0)
        assert isinstance(info.value, RateLimited) and KEY not in str(info.value)
        clock.now += 10
        await client.initiate_call("1", "+14155550123")
    assert len(seen) == 6
    assert json.loads(seen[0].content) == {"user_id": 1, "phone_number": "+14155550123"}


async def test_short_waits_are_waited_out_not_refused() -> None:
    transport, seen = fake_dialpad(body={"items": []})
    async with DialpadClient(
        KEY, "http://dialpad.test", transport=transport, company_limit=RateLimit(2, 0.2), max_budget_wait=1.0
    ) as client:
        started = time.monotonic()
        for _ in range(3):
            await client.list_websockets()
        assert time.monotonic() - started >= 0.15  # the third waited for the company's per-second budget
    assert len(seen) == 3


async def test_creating_requests_are_never_retried_reads_are() -> None:
    transport, seen = fake_dialpad(status=503)
    async with DialpadClient(KEY, "http://dialpad.test", transport=transport, backoff_initial=0.001) as client:
        for action in (
            client.initiate_call("1", "+14155550123"),
            client.transfer("2", user_id="3"),
            client.request_callback("4", "+14155550123"),
            client.screen_pop("1", "https://ehr.example/chart/1"),
        ):
            with pytest.raises(Unavailable):
                await action
        assert len(seen) == 4  # one each
        with pytest.raises(Unavailable):
            await client.get_call("2")
        with pytest.raises(Unavailable):
            await client.hangup("2")
    assert len(seen) == 4 + 3 + 3  # GET and the hang-up PUT are safe to repeat


async def test_bad_input_is_refused_before_sending() -> None:
    transport, seen = fake_dialpad()
    async with DialpadClient(KEY, "http://dialpad.test", transport=transport) as client:
        refusals = [
            client.initiate_call("1", "415-555-0123"),  # not E.164
            client.initiate_call("1", "+14155550123", outbound_caller_id="4155550100"),
            client.initiate_call("1", "+14155550123", group_id="5"),  # an id without its type
            client.transfer("2"),  # no destination
            client.transfer("2", user_id="3", number="+14155550123"),  # two
            client.transfer("2", user_id="3", transfer_state="ringing"),  # type: ignore[arg-type]
            client.request_callback("4", "+1415"),
            client.screen_pop("1", "ehr.example/chart"),
            client.screen_pop("1", "https://me:pw@ehr.example/"),
            client.set_call_labels("2", "billing"),  # type: ignore[arg-type]
            client.hangup("../users"),
            client.create_webhook("ftp://hooks.example/x"),
        ]
        for action in refusals:
            with pytest.raises(BadRequest):
                await action
    assert seen == []


async def test_hangup_is_a_put_without_a_body_and_labels_replace() -> None:
    transport, seen = fake_dialpad(body={"call_id": "2", "state": "connected", "labels": ["a", "b"]})
    async with DialpadClient(KEY, "http://dialpad.test", transport=transport) as client:
        await client.hangup(2)
        call = await client.set_call_labels("2", [" a ", "b", "a", ""])
    assert (seen[0].method, seen[0].url.path, seen[0].content) == ("PUT", "/api/v2/call/2/actions/hangup", b"")
    assert json.loads(seen[1].content) == {"labels": ["a", "b"]}
    assert call.event.labels == ("a", "b") and call.event.call_id == "2"


def test_the_key_fingerprint_is_stable_short_and_one_way() -> None:
    assert key_fingerprint(KEY) == key_fingerprint(f" {KEY} ") and len(key_fingerprint(KEY)) == 16
    assert key_fingerprint(KEY) != key_fingerprint(KEY + "x")
    assert KEY[:8] not in key_fingerprint(KEY)
    assert DialpadClient(KEY, "http://dialpad.test").key_id == key_fingerprint(KEY)


def test_unknown_rate_limit_overrides_are_refused() -> None:
    with pytest.raises(ValueError):
        DialpadClient(KEY, "http://dialpad.test", rate_limits={"launch_rocket": RateLimit(1, 1.0)})


async def test_budgets_are_shared_by_concurrent_callers() -> None:
    transport, seen = fake_dialpad()
    async with DialpadClient(KEY, "http://dialpad.test", transport=transport, clock=Clock()) as client:
        results = await asyncio.gather(
            *(client.initiate_call("1", "+14155550123") for _ in range(7)), return_exceptions=True
        )
    assert sum(isinstance(r, BudgetExhausted) for r in results) == 2
    assert len(seen) == 5
