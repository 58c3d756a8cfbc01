"""Vendor profiles: what each EHR's FHIR API allows, stated once and obeyed by the client and the EHR.

A :class:`VendorProfile` is data, not code paths: the client checks every Patient
search against it before anything is sent (so a search the vendor refuses, such
as a bare phone search on Epic, never leaves the machine), adds the parameters
the vendor requires on every call (athenahealth's ``ah-practice``), and the EHR
asks it which sections and writes exist.

Known profiles (``fhir.vendor``):

``generic``
    US Core search parameters. Whether a number is searched with ``phone`` or
    ``telecom`` is read from the server's CapabilityStatement (``/metadata``, once).
``epic``
    A Patient search must hold one of Epic's minimum parameter sets: ``_id``;
    ``identifier`` (as ``type|value``); ``given`` + ``family`` + ``birthdate``;
    ``given`` + ``family`` + ``gender`` (legal sex) + ``phone`` or ``email``.
    A bare phone search is never sent: callers are identified with the form.
    No Appointment writes.
``oracle-health``
    ``phone`` is a Patient search parameter; ``name`` is never combined with
    ``family``/``given``; a search matching more than 1,000 patients answers 422,
    reported as "narrow the search".
``athena``
    Every call carries ``ah-practice=Organization/a-1.Practice-{practice_id}``.
    No phone search on Patient; Appointments are read by id only (no search by
    patient); billing resources are not exposed. No Appointment writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from pa_tui.backends.base import BadRequest, NotSupported

__all__ = [
    "CONTROL_PARAMS",
    "PROFILES",
    "REFERRAL_CATEGORY",
    "VendorProfile",
    "vendor_profile",
]

#: Result-shaping parameters: they never count towards a minimum search set.
CONTROL_PARAMS: Final = frozenset(
    {"_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total", "_format", "_pretty", "_page"}
)

#: SNOMED CT 3457005 "Patient referral": the ServiceRequest.category US Core uses for referrals.
REFERRAL_CATEGORY: Final = "http://snomed.info/sct|3457005"


def _sets(*groups: Iterable[str]) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(g) for g in groups)


@dataclass(frozen=True)
class VendorProfile:
    """How one EHR's FHIR API is asked things, and what it allows. Vendor quirks live here.

    ``phone_formats`` are the forms a number is searched in, in order (each a key
    of :data:`pa_tui.backends.fhir.ehr.PHONE_FORMATS`): servers that compare the
    stored string exactly need the format their registration desk used.
    """

    name: str
    display: str
    # ---- caller identification
    phone_param: str | None = "phone"  # None: the EHR has no phone search on Patient
    phone_fallback_param: str | None = "telecom"  # searched as telecom=phone|<value> when phone is refused
    phone_from_capabilities: bool = False  # choose phone/telecom from the CapabilityStatement
    phone_formats: tuple[str, ...] = ("national_digits",)
    #: A Patient search must contain every parameter of at least one of these sets (empty: any search).
    patient_minimum_sets: tuple[frozenset[str], ...] = ()
    #: (parameter, parameters it must never be combined with) on Patient searches.
    exclusive_params: tuple[tuple[str, frozenset[str]], ...] = ()
    #: ``identifier`` searches are sent as ``{identifier_type}|{value}`` (Epic: an ID type such as MRN).
    identifier_type: str | None = None
    #: The status a search with too many matches answers (Oracle Health: 422 past 1,000).
    too_many_status: int | None = None
    too_many_limit: int | None = None
    # ---- parameters every call carries
    practice_param: str | None = None  # athenahealth: "ah-practice"
    practice_reference: str = "Organization/a-1.Practice-{id}"
    # ---- what the record exposes
    appointment_search: bool = True  # Appointment?patient=…
    billing: bool = True  # Account, Coverage, ExplanationOfBenefit
    referral_category: str | None = REFERRAL_CATEGORY
    # ---- writes
    appointment_updates: bool = True  # PUT Appointment (confirmations)
    note_writes: bool = True  # POST DocumentReference
    # ---- paging
    page_size: int = 50
    max_pages: int = 10
    notes: tuple[str, ...] = field(default=(), compare=False)

    # ---------------------------------------------------------------- rules
    def patient_search_allowed(self, names: Iterable[str]) -> bool:
        """Whether a Patient search with these parameter names may be sent."""
        try:
            self.check_patient_search(names)
        except (NotSupported, BadRequest):
            return False
        return True

    def check_patient_search(self, names: Iterable[str]) -> None:
        """Raise unless the vendor accepts a Patient search with these parameter names.

        :class:`NotSupported` when no minimum set is met (the search is never sent),
        :class:`BadRequest` for parameters that must not be combined.
        """
        present = {n.partition(":")[0] for n in names} - CONTROL_PARAMS
        if self.practice_param:
            present.discard(self.practice_param)
        for param, excluded in self.exclusive_params:
            clash = present & excluded
            if param in present and clash:
                raise BadRequest(
                    f"{self.display} does not allow '{param}' together with '{sorted(clash)[0]}' in a patient search",
                    "Search by the whole name, or by first and last name, not both",
                )
        if self.patient_minimum_sets and not any(s <= present for s in self.patient_minimum_sets):
            raise NotSupported(
                f"{self.display} does not allow this patient search",
                f"{self.display} needs {self.minimum_sets_text()}",
            )

    def minimum_sets_text(self) -> str:
        labels = {
            "_id": "the patient id",
            "identifier": "an MRN",
            "given": "first name",
            "family": "last name",
            "birthdate": "date of birth",
            "gender": "legal sex",
            "phone": "phone",
            "email": "e-mail",
        }
        parts = [" + ".join(labels.get(p, p) for p in _ordered(s)) for s in self.patient_minimum_sets]
        return ", or ".join(parts) if parts else "any search"

    def practice_value(self, practice_id: str) -> str:
        return self.practice_reference.format(id=practice_id)


_ORDER: Final = ("_id", "identifier", "given", "family", "birthdate", "gender", "phone", "email")


def _ordered(names: frozenset[str]) -> list[str]:
    return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


#: Known vendors.
PROFILES: Final[dict[str, VendorProfile]] = {
    "generic": VendorProfile(
        "generic",
        "the EHR",
        phone_from_capabilities=True,
        notes=("US Core search parameters; phone or telecom as the CapabilityStatement advertises",),
    ),
    "epic": VendorProfile(
        "epic",
        "Epic",
        phone_param="phone",
        phone_fallback_param=None,
        patient_minimum_sets=_sets(
            ["_id"],
            ["identifier"],
            ["given", "family", "birthdate"],
            ["given", "family", "gender", "phone"],
            ["given", "family", "gender", "email"],
        ),
        identifier_type="MRN",
        appointment_updates=False,
        notes=("Patient searches need one of Epic's minimum sets; no bare phone search",),
    ),
    "oracle-health": VendorProfile(
        "oracle-health",
        "Oracle Health",
        phone_param="phone",
        phone_fallback_param=None,
        exclusive_params=(("name", frozenset({"family", "given"})),),
        too_many_status=422,
        too_many_limit=1000,
        notes=("phone is a search parameter; name never with family/given; > 1,000 matches is a 422",),
    ),
    "athena": VendorProfile(
        "athena",
        "athenahealth",
        phone_param=None,
        phone_fallback_param=None,
        practice_param="ah-practice",
        appointment_search=False,
        billing=False,
        appointment_updates=False,
        notes=("ah-practice on every call; no phone search; appointments by id only; no billing",),
    ),
}


def vendor_profile(vendor: str | VendorProfile) -> VendorProfile:
    if isinstance(vendor, VendorProfile):
        return vendor
    try:
        return PROFILES[vendor]
    except KeyError:
        raise ValueError(f"unknown FHIR vendor '{vendor}' (known: {', '.join(PROFILES)})") from None
