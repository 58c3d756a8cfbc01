"""Where reminders come from: the day's booked appointments in the EHR, and each patient.

:class:`FhirAppointmentSource` is the FHIR edge for reminders: it searches
``Appointment?date=YYYY-MM-DD&status=booked`` (valid FHIR R4 search syntax; a
date compares with the appointment's start on that day), turns each resource into
a :class:`~pa_tui.reminders.model.DueAppointment` through the FHIR package's own
tolerant parser, and reads each clinic's Location once for its address. FHIR
JSON does not leave this module. Logs carry counts and ids only.

(The EHR protocol has no "appointments on a day" yet; when it grows one this
module becomes a thin adapter.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol, runtime_checkable

from pa_tui.backends.base import BackendError, NotSupported
from pa_tui.backends.fhir.ehr import FhirEhr
from pa_tui.backends.fhir.sections import appointment_view, reference_key
from pa_tui.domain.patients import PatientSummary
from pa_tui.reminders.model import DueAppointment

__all__ = ["AppointmentSource", "FhirAppointmentSource"]

log = logging.getLogger("pa_tui.reminders")

MAX_PAGES = 50  # 5,000 appointments a day at 100 a page


@runtime_checkable
class AppointmentSource(Protocol):
    """What the reminder batch needs of the EHR."""

    async def appointments_on(self, day: date) -> list[DueAppointment]:
        """Every booked appointment starting on ``day``, with its patient's id and its clinic."""
        ...

    async def patient(self, patient_id: str) -> PatientSummary: ...


def _objs(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _address_text(location: Mapping[str, Any]) -> str | None:
    address = location.get("address")
    if not isinstance(address, Mapping):
        return None
    lines = [str(line).strip() for line in address.get("line") or () if isinstance(line, str) and line.strip()]
    if lines:
        return ", ".join(lines[:2])
    text = address.get("text")
    return text.strip() if isinstance(text, str) and text.strip() else None


class FhirAppointmentSource:
    """:class:`AppointmentSource` over a :class:`FhirEhr` (production or the demo sandbox alike)."""

    def __init__(self, ehr: FhirEhr, *, concurrency: int = 8) -> None:
        self.ehr = ehr
        self._addresses: dict[str, str | None] = {}
        self._names: dict[str, str | None] = {}
        self._gate = asyncio.Semaphore(max(1, concurrency))

    async def appointments_on(self, day: date) -> list[DueAppointment]:
        profile = self.ehr.profile
        if not profile.appointment_search:
            raise NotSupported(
                f"{profile.display} does not list appointments by date over FHIR",
                "Send reminders from the EHR's own reminder tool, or one at a time from a patient's Appointments tab",
            )
        result = await self.ehr.client.search(
            "Appointment", [("date", day.isoformat()), ("status", "booked")], max_pages=MAX_PAGES, count=100
        )
        if result.truncated:
            log.warning("reminders: more than %d pages of appointments on one day; the rest were not read", MAX_PAGES)
        out: list[DueAppointment] = []
        for resource in result.resources:
            if resource.get("status") != "booked":  # a lenient server may have ignored status=
                continue
            patient_id: str | None = None
            location_id: str | None = None
            location_name: str | None = None
            for part in _objs(resource.get("participant")):
                actor = part.get("actor")
                key = reference_key(actor) or ""
                if key.startswith("Patient/") and patient_id is None:
                    patient_id = key.split("/", 1)[1]
                elif key.startswith("Location/") and location_id is None:
                    location_id = key.split("/", 1)[1]
                    display = actor.get("display") if isinstance(actor, Mapping) else None
                    location_name = display.strip() if isinstance(display, str) and display.strip() else None
            if patient_id is None:
                continue  # a block of time, not a patient's visit
            view = appointment_view(resource, patient_id=patient_id)
            out.append(
                DueAppointment(
                    appointment=view,
                    patient_id=patient_id,
                    location_id=location_id,
                    location_name=location_name or view.location,
                )
            )
        await self._fill_locations(out)
        out = [self._with_location(d) for d in out]
        out.sort(key=lambda d: (d.appointment.start is None, d.appointment.start, d.id))
        log.info("reminders: %d booked appointments found", len(out))
        return out

    async def _fill_locations(self, due: list[DueAppointment]) -> None:
        wanted = {d.location_id for d in due if d.location_id and d.location_id not in self._addresses}

        async def read(location_id: str) -> None:
            async with self._gate:
                try:
                    resource = await self.ehr.client.read("Location", location_id)
                except BackendError as exc:
                    log.info("reminders: Location/%s not read (%s)", location_id, type(exc).__name__)
                    self._addresses[location_id] = None
                    return
            self._addresses[location_id] = _address_text(resource)
            if not any(d.location_name for d in due if d.location_id == location_id):
                name = resource.get("name")
                self._names[location_id] = name.strip() if isinstance(name, str) and name.strip() else None

        await asyncio.gather(*(read(i) for i in sorted(wanted)))

    def _with_location(self, d: DueAppointment) -> DueAppointment:
        if not d.location_id:
            return d
        return d.model_copy(
            update={
                "location_address": self._addresses.get(d.location_id),
                "location_name": d.location_name or self._names.get(d.location_id),
            }
        )

    async def patient(self, patient_id: str) -> PatientSummary:
        async with self._gate:
            return await self.ehr.patient(patient_id)
