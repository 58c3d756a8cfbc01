"""Dialpad API v2 simulator: a stateful fake company for demos and contract tests.

Typical wiring::

    sim = DialpadSimulator.with_default_roster(api_key)
    host = SimulatorHost()
    host.add("dialpad", sim.app)
    host.start()
    client = DialpadClient(api_key, host.url("dialpad"))
    host.call(sim.ring("+14155550199", call_center_id=SCHEDULING_ID))
"""

from pa_tui.demo.dialpad_sim.roster import (
    BILLING_ID,
    DEFAULT_COMPANY_NUMBER,
    SCHEDULING_ID,
    Roster,
    SimAgent,
    SimCallCenter,
    default_roster,
)
from pa_tui.demo.dialpad_sim.simulator import (
    DialpadSimulator,
    RecordedRequest,
    SimApiError,
    SimCallback,
    SimCallInfo,
    SimLeg,
)

__all__ = [
    "BILLING_ID",
    "DEFAULT_COMPANY_NUMBER",
    "SCHEDULING_ID",
    "DialpadSimulator",
    "RecordedRequest",
    "Roster",
    "SimAgent",
    "SimApiError",
    "SimCallCenter",
    "SimCallInfo",
    "SimCallback",
    "SimLeg",
    "default_roster",
]
