"""UI tests run the real console against the real simulators, headless."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot
from textual.widget import Widget

from pa_tui.app import PaTuiApp, make_app
from pa_tui.config import load_settings
from pa_tui.demo.launch import DemoEnvironment
from tests.contract.store.conftest import StoreTarget, _target, pg_cluster  # noqa: F401 - fixtures reused here


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    """A Store location several consoles share: one SQLite file, or one PostgreSQL schema."""
    yield from _target(request, tmp_path)


@pytest.fixture(scope="module")
def demo_env() -> Iterator[DemoEnvironment]:
    env = DemoEnvironment.start(patients=300, seed=11, scenario=None)
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture
def console_app(demo_env: DemoEnvironment, tmp_path: Path) -> Callable[..., PaTuiApp]:
    def build(**kwargs: object) -> PaTuiApp:
        return make_app(load_settings(), demo_env.backends(store_path=tmp_path / "store.db"), **kwargs)

    return build


def widget_text(widget: Widget, width: int = 150) -> str:
    """What a widget renders, as plain text."""
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(widget.render())
    return console.export_text()


async def wait_until(pilot: Pilot[object], predicate: Callable[[], bool], timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def listening(pilot: Pilot[object], env: DemoEnvironment) -> None:
    await wait_until(pilot, lambda: env.dialpad.has_listener(env.agent_id))


def fixed_clock() -> datetime:
    return datetime(2026, 11, 21, 15, 0, tzinfo=UTC)


__all__ = ["App", "fixed_clock", "listening", "wait_until", "widget_text"]
