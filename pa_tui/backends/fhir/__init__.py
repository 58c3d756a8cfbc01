"""FHIR R4 backend: a REST client, tolerant parsing into domain views, and the EHR on top.

Construct for a server (production or the demo sandbox alike)::

    ehr = FhirEhr(FhirClient(base_url, vendor="generic", headers={"Authorization": "Bearer …"}))
    match = await ehr.find_by_phone(parse_phone("+14085551212"))
    ...
    await ehr.aclose()
"""

from pa_tui.backends.fhir.client import PROFILES, FhirClient, SearchResult, VendorProfile, vendor_profile
from pa_tui.backends.fhir.ehr import FhirEhr, classify_query
from pa_tui.backends.fhir.parse import (
    BundlePage,
    RelatedPersonView,
    bundle_page,
    operation_outcome_message,
    patient_summary,
    related_person,
)

__all__ = [
    "PROFILES",
    "BundlePage",
    "FhirClient",
    "FhirEhr",
    "RelatedPersonView",
    "SearchResult",
    "VendorProfile",
    "bundle_page",
    "classify_query",
    "operation_outcome_message",
    "patient_summary",
    "related_person",
    "vendor_profile",
]
