"""Call states and the fold of legs into one call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pa_tui.domain.calls import (
    Call,
    CallBook,
    CallDirection,
    CallEvent,
    CallPhase,
    CallState,
    Party,
    PartyType,
    fold,
)
from pa_tui.domain.phones import parse_phone

T0 = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
ANI = parse_phone("(408) 555-1212")


def ev(call_id: str, state: str, at: float, agent: str | None = None, entry: str = "100", **kw: object) -> CallEvent:
    return CallEvent(
        call_id=call_id,
        entry_point_call_id=entry,
        state=CallState.parse(state),
        raw_state=state,
        direction=CallDirection.INBOUND,
        external_number=ANI,
        target=Party(id=agent, type=PartyType.USER, name=f"Agent {agent}") if agent else None,
        event_timestamp=T0 + timedelta(seconds=at),
        **kw,
    )


@pytest.mark.parametrize(
    ("raw", "phase"),
    [
        ("preanswer", CallPhase.SETUP),
        ("calling", CallPhase.SETUP),
        ("ringing", CallPhase.RINGING),
        ("queued", CallPhase.RINGING),
        ("connected", CallPhase.ACTIVE),
        ("hold", CallPhase.ACTIVE),
        ("merged", CallPhase.ACTIVE),
        ("parked", CallPhase.ACTIVE),
        ("voicemail", CallPhase.ENDED),
        ("missed", CallPhase.ENDED),
        ("hangup", CallPhase.ENDED),
        ("postcall", CallPhase.ENDED),
        ("recording", CallPhase.INFO),
        ("transcription", CallPhase.INFO),
    ],
)
def test_every_dialpad_state_has_a_phase(raw: str, phase: CallPhase) -> None:
    assert CallState.parse(raw).phase is phase


def test_unknown_and_odd_states_are_kept_not_fatal() -> None:
    assert CallState.parse("quantum_entangled") is CallState.UNKNOWN
    assert CallState.parse(None) is CallState.UNKNOWN
    assert CallState.parse(" RINGING ") is CallState.RINGING
    call = fold(None, ev("100", "quantum_entangled", 0))
    assert call.state is CallState.UNKNOWN  # an unknown state does not move the lifecycle
    assert not call.is_active and not call.is_ended
    assert call.legs == ("100",)


def test_simple_inbound_call_lifecycle() -> None:
    book = CallBook()
    ringing = book.apply(ev("100", "ringing", 0, "a"))
    assert ringing is not None and ringing.phase is CallPhase.RINGING and ringing.agent.id == "a"
    assert ringing.ani == ANI
    connected = book.apply(ev("100", "connected", 5, "a"))
    assert connected is not None and connected.connected_at == T0 + timedelta(seconds=5)
    assert connected.duration(T0 + timedelta(seconds=65)) == 60
    ended = book.apply(ev("100", "hangup", 30, "a"))
    assert ended is not None and ended.is_ended and ended.ended_at == T0 + timedelta(seconds=30)
    assert ended.duration(T0 + timedelta(hours=5)) == 25
    assert book.active() == []


def test_duplicate_frames_are_dropped() -> None:
    book = CallBook()
    assert book.apply(ev("100", "ringing", 0, "a")) is not None
    assert book.apply(ev("100", "ringing", 0, "a")) is None


def test_ring_all_offer_one_agent_missing_does_not_end_the_call() -> None:
    book = CallBook()
    book.apply(ev("100", "queued", 0))
    for i, agent in enumerate("abc"):
        book.apply(ev(f"10{i + 1}", "ringing", 1, agent))
    call = book.apply(ev("101", "missed", 2, "a"))
    assert call is not None and call.phase is CallPhase.RINGING
    call = book.apply(ev("102", "connected", 3, "b"))
    assert call is not None and call.state is CallState.CONNECTED and call.agent.id == "b"
    call = book.apply(ev("103", "missed", 3.5, "c"))
    assert call is not None and call.state is CallState.CONNECTED and call.agent.id == "b"
    assert len(book.calls) == 1 and set(call.legs) == {"100", "101", "102", "103"}


def test_direct_call_transferred_lives_on_when_the_first_agents_leg_closes() -> None:
    book = CallBook()
    book.apply(ev("100", "ringing", 0, "a"))
    book.apply(ev("100", "connected", 1, "a"))
    book.apply(ev("200", "ringing", 10, "b", is_transferred=True))
    call = book.apply(ev("100", "hangup", 11, "a"))  # A's (entry) leg closes after the transfer
    assert call is not None and call.phase is CallPhase.RINGING and call.agent.id == "b"
    call = book.apply(ev("200", "connected", 12, "b"))
    assert call is not None and call.state is CallState.CONNECTED
    assert [(h.from_party.id, h.to_party.id) for h in call.transfers] == [("a", "b")]
    call = book.apply(ev("200", "hangup", 40, "b"))
    assert call is not None and call.is_ended


def test_transfer_between_agent_legs_keeps_the_call_alive() -> None:
    book = CallBook()
    book.apply(ev("100", "queued", 0))
    book.apply(ev("101", "connected", 1, "a"))
    book.apply(ev("102", "ringing", 10, "b", is_transferred=True))
    book.apply(ev("101", "hangup", 11, "a"))
    call = book.apply(ev("102", "connected", 12, "b"))
    assert call is not None and call.is_active and call.agent.id == "b"
    assert [(h.from_party.id, h.to_party.id) for h in call.transfers] == [("a", "b")]


def test_late_events_never_reopen_an_ended_call() -> None:
    book = CallBook()
    book.apply(ev("100", "connected", 0, "a"))
    book.apply(ev("100", "hangup", 5, "a"))
    call = book.apply(ev("100", "connected", 3, "a"))  # reordered, older
    assert call is not None and call.is_ended


def test_reordered_older_event_does_not_move_a_leg_back() -> None:
    book = CallBook()
    book.apply(ev("100", "connected", 5, "a"))
    call = book.apply(ev("100", "ringing", 1, "a"))
    assert call is not None and call.state is CallState.CONNECTED


def test_ended_calls_are_trimmed_so_memory_stays_bounded() -> None:
    book = CallBook(max_ended=10)
    for i in range(50):
        book.apply(ev(str(i), "ringing", i, "a", entry=str(i)))
        book.apply(ev(str(i), "hangup", i + 0.5, "a", entry=str(i)))
    assert len(book.calls) == 10
    assert len(book.leg_index) == 10


# ---------------------------------------------------------------- properties
lifecycle = st.sampled_from(["preanswer", "ringing", "queued", "connected", "hold", "recording", "missed", "hangup"])


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["100", "101", "102"]), lifecycle, st.floats(0, 100)), max_size=30))
def test_fold_is_total_and_hanging_up_every_leg_always_ends_the_call(events: list[tuple[str, str, float]]) -> None:
    book = CallBook()
    for call_id, state, at in events:
        book.apply(ev(call_id, state, at, agent=call_id))
    for leg in ("100", "101", "102"):
        book.apply(ev(leg, "hangup", 1000, leg))
    call = book.calls["100"]
    assert isinstance(call, Call)
    assert call.is_ended
    assert len(book.calls) == 1


@given(st.permutations(["ringing", "connected", "hold", "connected", "hangup"]))
def test_order_of_delivery_never_leaves_a_hung_up_call_active(order: list[str]) -> None:
    times = {"ringing": 0, "connected": 1, "hold": 2, "hangup": 9}
    book = CallBook()
    for state in order:
        book.apply(ev("100", state, times[state], "a"))
    assert book.calls["100"].is_ended
