"""Wallboard: 500 agents, 200 agent-status events a second, event to screen (p99 ≤ 100 ms).

The supervisor wallboard (issue #8) does not exist yet, so there is nothing to
measure: the row says so. When the screen lands, drive it like ``bench.burst``
drives the console — the simulator's ``_agent_event`` for 500 operators at
200 events/s — and time each event to the first refresh after it is handled.
"""

from __future__ import annotations

from bench._common import Row, standalone


def run(quick: bool) -> list[Row]:
    try:
        import pa_tui.screens.wallboard  # noqa: F401
    except ImportError:
        return [Row(figure="wallboard: 500 agents, 200 status events/s", value="not built yet (#8)",
                    target="p99 ≤ 100 ms", met=None)]
    return [Row(figure="wallboard: 500 agents, 200 status events/s",
                value="screen exists; benchmark not written yet", target="p99 ≤ 100 ms", met=None)]


if __name__ == "__main__":
    standalone(run, "wallboard")
