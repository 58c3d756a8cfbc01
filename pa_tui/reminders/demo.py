"""``pa-tui remind --demo``: the demo's simulators, with a population whose "today" is today.

The same :class:`~pa_tui.demo.launch.DemoEnvironment` as ``pa-tui demo`` (no scenario),
built ``as_of`` today so that about one patient in twenty has an appointment tomorrow.
The real FHIR and Twilio clients are pointed at its sandbox and Twilio simulator; nothing
else differs from production.
"""

from __future__ import annotations

from datetime import date

from pa_tui.demo.launch import DEMO_SMS_NUMBER, DemoEnvironment

__all__ = ["DEMO_SMS_NUMBER", "start_demo"]


def start_demo(*, patients: int = 500, seed: int = 7, as_of: date | None = None) -> DemoEnvironment:
    """Start the demo simulators on loopback (stop them with ``.stop()``)."""
    return DemoEnvironment.start(patients=patients, seed=seed, scenario=None, as_of=as_of or date.today())
