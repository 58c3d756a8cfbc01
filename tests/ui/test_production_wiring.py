"""The production wiring (what `pa-tui` builds from config + secrets) against the simulators:
websocket mode, and webhook mode through the inbound listener."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pa_tui.app import make_app
from pa_tui.config import load_settings
from pa_tui.demo.launch import DemoEnvironment
from pa_tui.widgets.patient_card import PatientCard
from pa_tui.wiring import build_backends
from tests.ui.conftest import wait_until, widget_text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("mode", ["websocket", "webhook"])
async def test_configured_console_pops_the_caller(
    mode: str, demo_env: DemoEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = list(demo_env.dialpad.agents.values())[3]
    config = tmp_path / "config.toml"
    config.write_text(
        f'[dialpad]\nbase_url = "{demo_env.dialpad_url}"\nuser_id = "{agent.id}"\nevent_mode = "{mode}"\n'
        f'[fhir]\nbase_url = "{demo_env.fhir_url}"\n'
        f'[store]\npath = "{tmp_path / "store.db"}"\n'
        f'[listen]\nport = {_free_port()}\n'
    )
    monkeypatch.setenv("PA_TUI_DIALPAD_API_KEY", demo_env.api_key)
    monkeypatch.setenv("PA_TUI_DIALPAD_WEBHOOK_SECRET", "webhook-secret-for-tests-0123456789abcdef")
    settings = load_settings(config)
    assert settings.missing_for_console() == []
    app = make_app(settings, build_backends(settings))
    number = demo_env.population.single_caller_numbers()[11 if mode == "websocket" else 12]
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app.agent_id == agent.id, timeout=10)
        if mode == "websocket":
            await wait_until(pilot, lambda: demo_env.dialpad.has_listener(agent.id))
        else:
            await wait_until(pilot, lambda: app.backends.telephony.diagnostics().get("status") == "connected")
        await demo_env.host.acall(demo_env.dialpad.ring(number, user_id=agent.id))
        card = app.screen.query_one(PatientCard)
        await wait_until(pilot, lambda: card.match is not None and card.match.kind == "single", timeout=10)
        assert card.match.candidates[0].display_name in widget_text(card)
        if mode == "webhook":
            assert demo_env.dialpad.webhook_deliveries, "the simulator should have POSTed to the listener"
