"""FHIR R4 backend: a REST client, vendor profiles, sign-in, tolerant parsing into domain views, and
the EHR on top.

Construct for a server (production or the demo sandbox alike)::

    auth = SmartBackendAuth(client_id, SecretStr(pem), kid="key-1", alg="RS384")
    client = FhirClient(base_url, vendor="epic", auth=auth)
    ehr = FhirEhr(client, minor_age=18, chart_url_template="https://ehr.example/chart?mrn={mrn}")
    match = await ehr.find_by_phone(parse_phone("+14085551212"))
    appointments = await ehr.load_section(match.candidates[0].id, Section.APPOINTMENTS)
    ...
    await ehr.aclose()
"""

from pa_tui.backends.fhir.auth import Auth, BearerAuth, NoAuth, SmartBackendAuth
from pa_tui.backends.fhir.client import FhirClient, SearchResult, TooManyMatches, WriteResult
from pa_tui.backends.fhir.ehr import NOTE_TYPE, FhirEhr, classify_query
from pa_tui.backends.fhir.parse import (
    BundlePage,
    RelatedPersonView,
    bundle_page,
    operation_outcome_message,
    patient_summary,
    related_person,
)
from pa_tui.backends.fhir.profiles import PROFILES, REFERRAL_CATEGORY, VendorProfile, vendor_profile
from pa_tui.backends.fhir.sections import NOTE_IDENTIFIER_SYSTEM, RecordSummary

__all__ = [
    "NOTE_IDENTIFIER_SYSTEM",
    "NOTE_TYPE",
    "PROFILES",
    "REFERRAL_CATEGORY",
    "Auth",
    "BearerAuth",
    "BundlePage",
    "FhirClient",
    "FhirEhr",
    "NoAuth",
    "RecordSummary",
    "RelatedPersonView",
    "SearchResult",
    "SmartBackendAuth",
    "TooManyMatches",
    "VendorProfile",
    "WriteResult",
    "bundle_page",
    "classify_query",
    "operation_outcome_message",
    "patient_summary",
    "related_person",
    "vendor_profile",
]
