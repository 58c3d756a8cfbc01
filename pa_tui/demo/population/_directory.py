"""The health system's directory: one Organization for the provider group, the payors,
a clinic (Location) in every city the population lives in, and the clinicians who
work there (Practitioner + PractitionerRole), each with a direct line.

Built once per population, after the patients, from its own random stream for names
and from the population's number pool for phone numbers, so no clinic or clinician
number is ever a patient's number.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from pa_tui.demo.population import _clinical as C
from pa_tui.demo.population import _tables as T

if TYPE_CHECKING:  # pragma: no cover
    from pa_tui.demo.population import _Generator

FhirJson = dict[str, Any]

PROVIDER_ORG_ID: Final = "org-shs"
PROVIDER_ORG_NAME: Final = "Synthetic Health System"
STAFF_ID_SYSTEM: Final = "urn:oid:2.16.840.1.113883.19.5.99.3"
ORG_ID_SYSTEM: Final = "urn:oid:2.16.840.1.113883.19.5.99.6"
EMAIL_DOMAIN: Final = "synthetic-health.example"
_OFFICE_FORMAT: Final = "({a}) {b}-{c}"
_WEEKDAYS: Final = ["mon", "tue", "wed", "thu", "fri"]


def city_key(city: T.City) -> str:
    return f"{city.name}|{city.state}"


def location_id(city: T.City) -> str:
    return "loc-" + re.sub(r"[^a-z0-9]+", "-", city.name.lower()).strip("-") + "-" + city.state.lower()


def _office(national: str) -> str:
    return _OFFICE_FORMAT.format(a=national[:3], b=national[3:6], c=national[6:])


def _ascii(text: str) -> str:
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if ch.isascii() and ch.isalnum()).lower()


def build(gen: _Generator) -> tuple[dict[str, list[FhirJson]], dict[str, Any]]:
    """Directory resources per type, and the index the record generator uses:
    ``{"City|ST": {"location": id, "staff": {specialty key: [practitioner id, …]}}}``."""
    rng = gen.rng
    orgs: list[FhirJson] = []
    locations: list[FhirJson] = []
    practitioners: list[FhirJson] = []
    roles: list[FhirJson] = []
    index: dict[str, Any] = {}

    head_office = T.CITIES[0]
    main_line = gen.numbers.take(head_office)
    orgs.append(
        {
            "resourceType": "Organization",
            "id": PROVIDER_ORG_ID,
            "identifier": [{"system": ORG_ID_SYSTEM, "value": "SHS-0001"}],
            "active": True,
            "type": [{"coding": [{"system": C.ORG_TYPE, "code": "prov", "display": "Healthcare Provider"}]}],
            "name": PROVIDER_ORG_NAME,
            "alias": ["SHS"],
            "telecom": [
                {"system": "phone", "value": _office(main_line), "use": "work"},
                {"system": "url", "value": f"https://www.{EMAIL_DOMAIN}", "use": "work"},
            ],
            "address": [
                {
                    "use": "work",
                    "type": "both",
                    "line": [f"{rng.randint(100, 999)} {rng.choice(T.STREETS)} Plaza", "Floor 12"],
                    "city": head_office.name,
                    "state": head_office.state,
                    "postalCode": f"{head_office.zip3}{rng.randint(1, 99):02d}",
                    "country": "US",
                }
            ],
        }
    )
    for serial, (org_id, name, government) in enumerate(C.PAYORS, start=2):
        city = T.CITIES[rng.randrange(len(T.CITIES))]
        codings = [{"system": C.ORG_TYPE, "code": "pay", "display": "Payer"}]
        codings.append(
            {"system": C.ORG_TYPE, "code": "govt", "display": "Government"}
            if government
            else {"system": C.ORG_TYPE, "code": "ins", "display": "Insurance Company"}
        )
        orgs.append(
            {
                "resourceType": "Organization",
                "id": org_id,
                "identifier": [{"system": ORG_ID_SYSTEM, "value": f"PAY-{serial:04d}"}],
                "active": True,
                "type": [{"coding": codings}],
                "name": name,
                "telecom": [
                    {"system": "phone", "value": _office(gen.numbers.take(city)), "use": "work", "rank": 1},
                ],
            }
        )

    staff_serial = 0
    used_stems: set[str] = set()
    for city in T.CITIES:
        stem = rng.choice(C.CLINIC_STEMS)
        if stem in used_stems and rng.random() < 0.7:
            stem = rng.choice(C.CLINIC_STEMS)
        used_stems.add(stem)
        loc_id = location_id(city)
        name = f"{stem} Clinic, {city.name}"
        address = {
            "use": "work",
            "type": "both",
            "line": [
                f"{rng.randint(100, 4999)} {rng.choice(T.STREETS)} {rng.choice(('Ave', 'Blvd', 'St', 'Pkwy', 'Dr'))}",
                f"Suite {rng.randint(1, 6)}{rng.randint(0, 2)}{rng.randint(0, 9)}",
            ],
            "city": city.name,
            "state": city.state,
            "postalCode": f"{city.zip3}{rng.randint(1, 99):02d}",
            "country": "US",
        }
        phone = _office(gen.numbers.take(city))
        fax = _office(gen.numbers.take(city))
        locations.append(
            {
                "resourceType": "Location",
                "id": loc_id,
                "status": "active",
                "name": name,
                "alias": [f"SHS {city.name}"],
                "description": "Primary care, pediatrics and specialty clinics; laboratory on site.",
                "mode": "instance",
                "telecom": [
                    {"system": "phone", "value": phone, "use": "work", "rank": 1},
                    {"system": "fax", "value": fax, "use": "work"},
                ],
                "address": address,
                "physicalType": {"coding": [{"system": C.LOCATION_PHYSICAL_TYPE, "code": "bu", "display": "Building"}]},
                "managingOrganization": {"reference": f"Organization/{PROVIDER_ORG_ID}", "display": PROVIDER_ORG_NAME},
                "hoursOfOperation": [
                    {"daysOfWeek": list(_WEEKDAYS), "openingTime": "08:00:00", "closingTime": "17:00:00"},
                    {"daysOfWeek": ["sat", "sun"], "openingTime": "09:00:00", "closingTime": "12:00:00"},
                ],
            }
        )
        staff: dict[str, list[str]] = {}
        for spec_key in C.CLINIC_STAFF:
            spec = C.SPECIALTIES[spec_key]
            staff_serial += 1
            pr_id = f"pr-{staff_serial:04d}"
            sex = "female" if rng.random() < (0.85 if spec_key == "nursing" else 0.52) else "male"
            given = gen.given_name(sex)
            family = gen.family_name()
            degree = {"MD": "MD", "DO": "DO"}.get(spec.degree, spec.degree_text if not spec.degree else spec.degree)
            physician = spec.degree in ("MD", "DO")
            display = f"{given} {family}, {degree}"
            direct = _office(gen.numbers.take(city))
            human_name: FhirJson = {"use": "official", "text": display, "family": family, "given": [given]}
            if physician:
                human_name["prefix"] = ["Dr."]
            human_name["suffix"] = [degree]
            qualification_code: FhirJson = {"text": spec.degree_text}
            if spec.degree:
                qualification_code["coding"] = [{"system": C.V2_0360, "code": spec.degree, "display": spec.degree_text}]
            practitioners.append(
                {
                    "resourceType": "Practitioner",
                    "id": pr_id,
                    "identifier": [
                        {"use": "official", "system": STAFF_ID_SYSTEM, "value": f"S{100000 + staff_serial}"}
                    ],
                    "active": True,
                    "name": [human_name],
                    "telecom": [
                        {"system": "phone", "value": direct, "use": "work", "rank": 1},
                        {"system": "phone", "value": phone, "use": "work", "rank": 2},
                        {"system": "email", "value": f"{_ascii(given)}.{_ascii(family)}@{EMAIL_DOMAIN}", "use": "work"},
                    ],
                    "address": [dict(address)],
                    "gender": sex,
                    "qualification": [
                        {"code": qualification_code, "issuer": {"display": f"{city.state} licensing board"}}
                    ],
                }
            )
            role_code: FhirJson = {"text": spec.role_text}
            if spec.occupation:
                role_code["coding"] = [{"system": C.SCT, "code": spec.occupation[0], "display": spec.occupation[1]}]
            specialty: FhirJson = {"text": spec.display}
            if spec.practice:
                specialty["coding"] = [{"system": C.SCT, "code": spec.practice[0], "display": spec.practice[1]}]
            roles.append(
                {
                    "resourceType": "PractitionerRole",
                    "id": f"prr-{staff_serial:04d}",
                    "active": True,
                    "practitioner": {"reference": f"Practitioner/{pr_id}", "display": display},
                    "organization": {"reference": f"Organization/{PROVIDER_ORG_ID}", "display": PROVIDER_ORG_NAME},
                    "code": [role_code],
                    "specialty": [specialty],
                    "location": [{"reference": f"Location/{loc_id}", "display": name}],
                    "telecom": [{"system": "phone", "value": direct, "use": "work"}],
                    "availableTime": [
                        {
                            "daysOfWeek": list(_WEEKDAYS),
                            "availableStartTime": "08:00:00",
                            "availableEndTime": "17:00:00",
                        }
                    ],
                }
            )
            staff.setdefault(spec_key, []).append(pr_id)
        index[city_key(city)] = {"location": loc_id, "staff": staff}
    resources = {
        "Organization": orgs,
        "Location": locations,
        "Practitioner": practitioners,
        "PractitionerRole": roles,
    }
    return resources, index
