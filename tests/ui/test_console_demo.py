"""The walking skeleton, headless: a ringing call pops the caller's patient card."""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message

from pa_tui.app import PaTuiApp
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.domain.phones import parse_phone
from pa_tui.messages import CallerIdentified, CallEventReceived, StreamNoticed
from pa_tui.widgets.agent_bar import AgentBar
from pa_tui.widgets.call_banner import CallBanner
from pa_tui.widgets.event_log import EventLog
from pa_tui.widgets.patient_card import PatientCard
from pa_tui.widgets.problem_banner import ProblemBanner
from tests.ui.conftest import listening, wait_until, widget_text


def _single_patient(env: DemoEnvironment) -> tuple[str, str]:
    number = env.population.single_caller_numbers()[0]
    (holder,) = env.population.holders(number)
    patient = env.population.by_id[holder]
    name = patient["name"][0]
    return number, " ".join([*name.get("given", []), name["family"]])


def _event_log_text(app: PaTuiApp) -> str:
    return "\n".join(line.text for line in app.screen.query_one(EventLog).lines)


async def test_ringing_call_pops_the_callers_patient_card(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    seen: list[Message] = []
    app = console_app()
    number, name = _single_patient(demo_env)
    async with app.run_test(size=(160, 48), message_hook=seen.append) as pilot:
        await listening(pilot, demo_env)
        await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=demo_env.agent_id))
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: card.match is not None)
        await pilot.pause()
        text = widget_text(card)
        assert name.split()[0] in text and name.split()[-1] in text
        assert "DOB" in text and "Age" in text
        assert "not verified" in text
        # Nothing beyond name, age and DOB before verification.
        assert "MRN" not in text and "Address" not in text
        banner = widget_text(app.screen.query_one(CallBanner))
        human = parse_phone(number).human  # type: ignore[union-attr]
        assert human in banner and "Ringing" in banner
        assert any(isinstance(m, CallEventReceived) for m in seen)
        assert any(isinstance(m, CallerIdentified) for m in seen)


async def test_header_shows_the_agent_status_and_live_link(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        bar = app.screen.query_one(AgentBar)
        await wait_until(pilot, lambda: bar.agent is not None and bar.connection is not None)
        await wait_until(pilot, lambda: "live" in widget_text(bar))
        text = widget_text(bar)
        assert demo_env.dialpad.agents[demo_env.agent_id].name in text
        assert "Available" in text or "On a call" in text


async def test_household_number_lists_every_member_with_dob_and_age(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    number = demo_env.population.household_numbers()[0]
    members = demo_env.population.households[number]
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=demo_env.agent_id))
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: card.match is not None)
        text = widget_text(card)
        assert f"{len(members)} patients share" in text
        for pid in members:
            family = demo_env.population.by_id[pid]["name"][0]["family"]
            assert family in text
        assert text.count("/") >= 2 * len(members)  # a DOB per member


async def test_unknown_and_withheld_numbers_say_what_to_do(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        card = app.screen.query_one(PatientCard)
        call_id = await demo_env.host.acall(demo_env.dialpad.ring("+12025550177", user_id=demo_env.agent_id))
        await wait_until(pilot, lambda: card.match is not None)
        assert "No patient found for (202) 555-0177" in widget_text(card)
        await demo_env.host.acall(demo_env.dialpad.hangup(call_id))
        await demo_env.host.acall(demo_env.dialpad.ring("anonymous", user_id=demo_env.agent_id))
        await wait_until(pilot, lambda: "No caller ID" in widget_text(card))
        assert "search by name" in widget_text(card)


async def test_bad_frames_are_reported_and_the_console_keeps_working(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    seen: list[Message] = []
    app = console_app()
    number, name = _single_patient(demo_env)
    async with app.run_test(size=(160, 48), message_hook=seen.append) as pilot:
        await listening(pilot, demo_env)
        await demo_env.host.acall(demo_env.dialpad.inject_frame("this is not json {"))
        await wait_until(pilot, lambda: "Skipped a Dialpad event" in _event_log_text(app))
        # A frame signed with the wrong key: serious, so it raises the banner too.
        forged = "eyJhbGciOiJIUzI1NiJ9.eyJjYWxsX2lkIjoxLCJzdGF0ZSI6InJpbmdpbmcifQ.c2lnbmF0dXJl"
        await demo_env.host.acall(demo_env.dialpad.inject_frame(forged))
        await wait_until(pilot, lambda: app.screen.query_one(ProblemBanner).problem != "")
        assert "signature" in app.screen.query_one(ProblemBanner).problem
        # An event in a state pa-tui has never heard of is shown, not fatal.
        payload = {
            "call_id": 99, "entry_point_call_id": 99, "state": "teleporting", "direction": "inbound",
            "external_number": "hello", "event_timestamp": 1_790_000_000_000,
            "target": {"id": demo_env.agent_id, "type": "user", "name": "x"},
        }
        await demo_env.host.acall(demo_env.dialpad.inject_frame(payload))
        await wait_until(pilot, lambda: "teleporting (unknown state" in _event_log_text(app))
        assert any(isinstance(m, StreamNoticed) for m in seen)
        # …and a real call still pops.
        await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=demo_env.agent_id))
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: name.split()[-1] in widget_text(card))


async def test_caller_number_that_is_not_a_number_gets_a_specific_message(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        payload = {
            "call_id": 77, "entry_point_call_id": 77, "state": "ringing", "direction": "inbound",
            "external_number": "+99912", "event_timestamp": 1_790_000_000_000,
            "target": {"id": demo_env.agent_id, "type": "user", "name": "x"},
        }
        await demo_env.host.acall(demo_env.dialpad.inject_frame(payload))
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: "could not be read" in widget_text(card))
        assert "unknown country code" in widget_text(card)
        assert "Unreadable caller number" in widget_text(app.screen.query_one(CallBanner))


async def test_q_quits_cleanly_and_closes_the_event_stream(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    await wait_until_sim(lambda: demo_env.dialpad.open_connections() == 0)


async def wait_until_sim(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "simulator still has an open connection"
        await asyncio.sleep(0.05)


async def test_a_call_that_ends_while_the_stream_is_down_is_not_left_ringing(
    demo_env: DemoEnvironment, console_app: Callable[..., PaTuiApp]
) -> None:
    number, _ = _single_patient(demo_env)
    app = console_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await listening(pilot, demo_env)
        call_id = await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=demo_env.agent_id))
        await wait_until(pilot, lambda: app.home.call is not None and app.home.call.is_active)

        async def drop_then_hang_up() -> None:
            await demo_env.dialpad.drop_websockets()
            await demo_env.dialpad.hangup(call_id)

        await demo_env.host.acall(drop_then_hang_up())
        # After the reconnect, reconciliation asks Dialpad and the call is shown ended.
        await wait_until(pilot, lambda: app.home.call is not None and app.home.call.is_ended, timeout=15)
        assert app.book.active() == [] or all(c.id != app.home.call.id for c in app.book.active())


async def test_an_expired_key_shows_the_cause_and_the_fix_and_stops_retrying(
    console_app: Callable[..., PaTuiApp], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from pa_tui.demo.launch import DemoEnvironment as Env
    from pa_tui.widgets.agent_bar import AgentBar

    env = Env.start(patients=50, seed=2, scenario=None)
    try:
        from pa_tui.app import make_app
        from pa_tui.config import load_settings

        app = make_app(load_settings(), env.backends(store_path=tmp_path / "k.db"))
        async with app.run_test(size=(160, 48)) as pilot:
            await listening(pilot, env)
            await env.host.acall(env.dialpad.expire_key())
            await env.host.acall(env.dialpad.drop_websockets())  # the next connect needs the key
            banner = app.screen.query_one(ProblemBanner)
            await wait_until(pilot, lambda: "API Keys" in banner.problem, timeout=15)
            assert "auth failed" in widget_text(app.screen.query_one(AgentBar))
            before = len(env.dialpad.requests)
            await pilot.pause(3)
            assert len(env.dialpad.requests) - before <= 1, "kept retrying with a dead key"
    finally:
        env.stop()
