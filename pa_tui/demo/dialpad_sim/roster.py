"""The simulated company: agents (Dialpad users) and call centers. Synthetic data only.

Phone numbers are in the NANP range reserved for fiction (555-0100…0199).
Ids look like Dialpad's: 16-digit numeric strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True)
class SimAgent:
    """A Dialpad user who takes calls."""

    id: str
    name: str
    email: str
    phone: str  # E.164 direct line
    call_center_ids: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", str(self.id))
        object.__setattr__(self, "call_center_ids", tuple(str(c) for c in self.call_center_ids))

    @property
    def first_name(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def last_name(self) -> str:
        parts = self.name.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""


@dataclass(frozen=True)
class SimCallCenter:
    """A Dialpad call center (a queue that rings its on-duty operators)."""

    id: str
    name: str
    phone: str | None = None  # E.164; the company number when unset

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", str(self.id))


class Roster(NamedTuple):
    agents: list[SimAgent]
    call_centers: list[SimCallCenter]


SCHEDULING_ID = "5218472930164401"
BILLING_ID = "5218472930164402"
DEFAULT_COMPANY_NUMBER = "+14155550100"


def default_roster() -> Roster:
    """Six agents and two call centers ("Scheduling", "Billing & Insurance")."""
    centers = [
        SimCallCenter(id=SCHEDULING_ID, name="Scheduling", phone="+14155550110"),
        SimCallCenter(id=BILLING_ID, name="Billing & Insurance", phone="+14155550120"),
    ]
    people: Iterable[tuple[str, str, tuple[str, ...]]] = (
        ("Avery Quinn", "avery.quinn", (SCHEDULING_ID,)),
        ("Jordan Blake", "jordan.blake", (SCHEDULING_ID,)),
        ("Riley Morgan", "riley.morgan", (SCHEDULING_ID, BILLING_ID)),
        ("Casey Lindqvist", "casey.lindqvist", (SCHEDULING_ID, BILLING_ID)),
        ("Sam Okafor", "sam.okafor", (BILLING_ID,)),
        ("Taylor Brooks", "taylor.brooks", (BILLING_ID,)),
    )
    agents = [
        SimAgent(
            id=f"{6104827395610001 + n}",
            name=name,
            email=f"{handle}@clinic.example",
            phone=f"+1415555{131 + n:04d}",
            call_center_ids=centers_of,
        )
        for n, (name, handle, centers_of) in enumerate(people)
    ]
    return Roster(agents=agents, call_centers=centers)


__all__ = ["DEFAULT_COMPANY_NUMBER", "Roster", "SimAgent", "SimCallCenter", "default_roster"]
