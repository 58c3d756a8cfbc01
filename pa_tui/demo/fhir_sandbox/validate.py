"""Structural validation of the resources the sandbox accepts in writes (R4 4.0.1).

Not a full FHIR validator: it checks what a client can get wrong and a real
server refuses — the element names of the resource, required elements and
their cardinality, codes from required value sets, primitive formats (id,
instant, dateTime, base64), and the shape of References, CodeableConcepts,
Attachments and Periods — and reports every problem with its path, as an
OperationOutcome would.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any, Final

FhirJson = dict[str, Any]
Check = Callable[[Any, str, list[str]], None]

_ID: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_INSTANT: Final = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$"
)
_DATETIME: Final = re.compile(
    r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?$"
)
_DATE: Final = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
_CODE: Final = re.compile(r"^[^\s]+(\s[^\s]+)*$")
_COMMON: Final = frozenset(
    {"resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"}
)


def _string(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{path}: must be a non-empty string")


def _pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, str) or not regex.match(value):
            errors.append(f"{path}: must be {what}")

    return check


_instant = _pattern(_INSTANT, "an instant with seconds and a time zone (2026-01-02T09:30:00-05:00)")
_datetime = _pattern(_DATETIME, "a FHIR dateTime (a time needs a time zone)")
_date = _pattern(_DATE, "a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)")
_code = _pattern(_CODE, "a code (no leading, trailing or double spaces)")


def _one_of(*codes: str) -> Check:
    allowed = frozenset(codes)

    def check(value: Any, path: str, errors: list[str]) -> None:
        if value not in allowed:
            errors.append(f"{path}: must be one of {', '.join(codes)}")

    return check


def _integer(minimum: int) -> Check:
    def check(value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            errors.append(f"{path}: must be a whole number ≥ {minimum}")

    return check


def _boolean(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, bool):
        errors.append(f"{path}: must be true or false")


def _base64(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"{path}: must be base64 text")
        return
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        errors.append(f"{path}: is not valid base64")


def _object(fields: dict[str, tuple[Check, bool, bool]], *, extra: frozenset[str] = frozenset()) -> Check:
    """A complex type: ``fields`` maps element → (check, required, repeating)."""
    known = frozenset(fields) | extra | {"id", "extension", "modifierExtension"}

    def check(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, dict):
            errors.append(f"{path}: must be an object")
            return
        for key in value:
            if key not in known and not key.startswith("_"):
                errors.append(f"{path}.{key}: unknown element")
        for key, (sub, required, repeating) in fields.items():
            if key not in value:
                if required:
                    errors.append(f"{path}.{key}: is required")
                continue
            item = value[key]
            if repeating:
                if not isinstance(item, list) or not item:
                    errors.append(f"{path}.{key}: must be a non-empty array")
                    continue
                for i, element in enumerate(item):
                    sub(element, f"{path}.{key}[{i}]", errors)
            elif isinstance(item, list):
                errors.append(f"{path}.{key}: must not be an array")
            else:
                sub(item, f"{path}.{key}", errors)

    return check


def _anything(value: Any, path: str, errors: list[str]) -> None:
    if value is None:
        errors.append(f"{path}: must not be null")


_coding = _object(
    {
        "system": (_string, False, False),
        "version": (_string, False, False),
        "code": (_code, False, False),
        "display": (_string, False, False),
        "userSelected": (_boolean, False, False),
    }
)
_concept = _object({"coding": (_coding, False, True), "text": (_string, False, False)})
_identifier = _object(
    {
        "use": (_one_of("usual", "official", "temp", "secondary", "old"), False, False),
        "type": (_concept, False, False),
        "system": (_string, False, False),
        "value": (_string, False, False),
        "period": (_anything, False, False),
        "assigner": (_anything, False, False),
    }
)
_period = _object({"start": (_datetime, False, False), "end": (_datetime, False, False)})


def _reference_shape(value: Any, path: str, errors: list[str]) -> None:
    _object(
        {
            "reference": (_string, False, False),
            "type": (_string, False, False),
            "identifier": (_identifier, False, False),
            "display": (_string, False, False),
        }
    )(value, path, errors)
    if isinstance(value, dict) and not any(k in value for k in ("reference", "identifier", "display")):
        errors.append(f"{path}: a Reference needs a reference, an identifier or a display")


_attachment = _object(
    {
        "contentType": (_code, False, False),
        "language": (_code, False, False),
        "data": (_base64, False, False),
        "url": (_string, False, False),
        "size": (_integer(0), False, False),
        "hash": (_base64, False, False),
        "title": (_string, False, False),
        "creation": (_datetime, False, False),
    }
)


def _attachment_with_type(value: Any, path: str, errors: list[str]) -> None:
    _attachment(value, path, errors)
    if isinstance(value, dict):
        if "data" in value and "contentType" not in value:
            errors.append(f"{path}.contentType: is required when data is present (att-1)")
        if "data" not in value and "url" not in value:
            errors.append(f"{path}: needs data or a url")


_annotation = _object(
    {
        "authorReference": (_reference_shape, False, False),
        "authorString": (_string, False, False),
        "time": (_datetime, False, False),
        "text": (_string, True, False),
    }
)

DOCUMENT_REFERENCE: Final = _object(
    {
        "masterIdentifier": (_identifier, False, False),
        "identifier": (_identifier, False, True),
        "status": (_one_of("current", "superseded", "entered-in-error"), True, False),
        "docStatus": (_one_of("preliminary", "final", "amended", "entered-in-error"), False, False),
        "type": (_concept, False, False),
        "category": (_concept, False, True),
        "subject": (_reference_shape, False, False),
        "date": (_instant, False, False),
        "author": (_reference_shape, False, True),
        "authenticator": (_reference_shape, False, False),
        "custodian": (_reference_shape, False, False),
        "relatesTo": (
            _object(
                {
                    "code": (_one_of("replaces", "transforms", "signs", "appends"), True, False),
                    "target": (_reference_shape, True, False),
                }
            ),
            False,
            True,
        ),
        "description": (_string, False, False),
        "securityLabel": (_concept, False, True),
        "content": (
            _object({"attachment": (_attachment_with_type, True, False), "format": (_coding, False, False)}),
            True,
            True,
        ),
        "context": (
            _object(
                {
                    "encounter": (_reference_shape, False, True),
                    "event": (_concept, False, True),
                    "period": (_period, False, False),
                    "facilityType": (_concept, False, False),
                    "practiceSetting": (_concept, False, False),
                    "sourcePatientInfo": (_reference_shape, False, False),
                    "related": (_reference_shape, False, True),
                }
            ),
            False,
            False,
        ),
    },
    extra=_COMMON,
)

APPOINTMENT_STATUS: Final = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
)
APPOINTMENT: Final = _object(
    {
        "identifier": (_identifier, False, True),
        "status": (_one_of(*APPOINTMENT_STATUS), True, False),
        "cancelationReason": (_concept, False, False),
        "serviceCategory": (_concept, False, True),
        "serviceType": (_concept, False, True),
        "specialty": (_concept, False, True),
        "appointmentType": (_concept, False, False),
        "reasonCode": (_concept, False, True),
        "reasonReference": (_reference_shape, False, True),
        "priority": (_integer(0), False, False),
        "description": (_string, False, False),
        "supportingInformation": (_reference_shape, False, True),
        "start": (_instant, False, False),
        "end": (_instant, False, False),
        "minutesDuration": (_integer(1), False, False),
        "slot": (_reference_shape, False, True),
        "created": (_datetime, False, False),
        "comment": (_string, False, False),
        "patientInstruction": (_string, False, False),
        "basedOn": (_reference_shape, False, True),
        "participant": (
            _object(
                {
                    "type": (_concept, False, True),
                    "actor": (_reference_shape, False, False),
                    "required": (_one_of("required", "optional", "information-only"), False, False),
                    "status": (_one_of("accepted", "declined", "tentative", "needs-action"), True, False),
                    "period": (_period, False, False),
                }
            ),
            True,
            True,
        ),
        "requestedPeriod": (_period, False, True),
    },
    extra=_COMMON,
)


def _common(resource: FhirJson, errors: list[str]) -> None:
    if "id" in resource and (not isinstance(resource["id"], str) or not _ID.match(resource["id"])):
        errors.append("id: is not a valid FHIR id")
    meta = resource.get("meta")
    if meta is not None and not isinstance(meta, dict):
        errors.append("meta: must be an object")
    for key in ("contained", "extension", "modifierExtension"):
        if key in resource and not isinstance(resource[key], list):
            errors.append(f"{key}: must be an array")
    text = resource.get("text")
    if text is not None and (not isinstance(text, dict) or "div" not in text or "status" not in text):
        errors.append("text: a Narrative needs status and div")


def validate(resource: Any, resource_type: str) -> list[str]:
    """Problems with ``resource`` as a ``resource_type`` (empty when it is acceptable)."""
    if not isinstance(resource, dict):
        return ["the body must be a JSON object (a FHIR resource)"]
    if resource.get("resourceType") != resource_type:
        return [f"resourceType must be {resource_type!r} (got {resource.get('resourceType')!r})"]
    checker = {"DocumentReference": DOCUMENT_REFERENCE, "Appointment": APPOINTMENT}.get(resource_type)
    errors: list[str] = []
    _common(resource, errors)
    if checker is not None:
        checker(resource, resource_type, errors)
    if resource_type == "Appointment":
        if ("start" in resource) != ("end" in resource):
            errors.append("Appointment: start and end must both be present or both absent (app-2)")
        if "start" not in resource and resource.get("status") not in ("proposed", "cancelled", "waitlist"):
            errors.append("Appointment: start and end are required unless proposed, cancelled or waitlist (app-3)")
        start, end = resource.get("start"), resource.get("end")
        if isinstance(start, str) and isinstance(end, str) and _INSTANT.match(start) and _INSTANT.match(end):
            from pa_tui.demo.fhir_sandbox.store import parse_fhir_instant

            s, e = parse_fhir_instant(start), parse_fhir_instant(end)
            if s and e and e[2] < s[2]:
                errors.append("Appointment.end: must not be before start")
        for i, p in enumerate(resource.get("participant") or []):
            if isinstance(p, dict) and "type" not in p and "actor" not in p:
                errors.append(f"Appointment.participant[{i}]: needs a type or an actor (app-1)")
    return errors
