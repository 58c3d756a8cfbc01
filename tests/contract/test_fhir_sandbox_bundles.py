"""Bundles from disk (``--fhir-bundle``): Synthea-style transaction Bundles whose entries refer to
each other by ``urn:uuid:`` fullUrls and conditional references, HL7's official example Bundles,
and the errors a user sees for a wrong path or file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pa_tui.demo.fhir_sandbox import BundleError, FhirSandbox, load_bundle_path, resources_from_bundles
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "fhir-examples"
PATIENT = "a1b2c3d4-0000-4000-8000-000000000001"
CHILD = "a1b2c3d4-0000-4000-8000-000000000002"
NPI = "http://hl7.org/fhir/sid/us-npi"


def _entry(resource: dict, uuid: str | None = None) -> dict:
    uuid = uuid or resource["id"]
    return {
        "fullUrl": f"urn:uuid:{uuid}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def synthea_patient_bundle() -> dict:
    """Shaped like Synthea's output: a transaction, urn:uuid references, conditional references to
    the practitioner and organization (which live in other files)."""
    prac_ref = {"reference": f"Practitioner?identifier={NPI}|9999912345", "display": "Dr. Ada Synth"}
    org_ref = {"reference": "Organization?identifier=https://github.com/synthetichealth/synthea|org-1"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            _entry(
                {
                    "resourceType": "Patient",
                    "id": PATIENT,
                    "name": [{"use": "official", "family": "Quigley", "given": ["Marta"]}],
                    "telecom": [{"system": "phone", "value": "555-864-2277", "use": "home"}],
                    "gender": "female",
                    "birthDate": "1961-04-12",
                }
            ),
            _entry(
                {
                    "resourceType": "Patient",
                    "id": CHILD,
                    "name": [{"use": "official", "family": "Quigley", "given": ["Tom"]}],
                    "telecom": [{"system": "phone", "value": "(555) 864-2277", "use": "home"}],
                    "gender": "male",
                    "birthDate": "2014-09-30",
                }
            ),
            _entry(
                {
                    "resourceType": "Encounter",
                    "id": "e0000001-0000-4000-8000-000000000001",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "subject": {"reference": f"urn:uuid:{PATIENT}"},
                    "participant": [{"individual": prac_ref}],
                    "serviceProvider": org_ref,
                }
            ),
            _entry(
                {
                    "resourceType": "MedicationRequest",
                    "id": "m0000001-0000-4000-8000-000000000001",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": {"text": "lisinopril 10 MG Oral Tablet"},
                    "subject": {"reference": f"urn:uuid:{PATIENT}"},
                    "encounter": {"reference": "urn:uuid:e0000001-0000-4000-8000-000000000001"},
                    "requester": prac_ref,
                }
            ),
            # no id in the resource: the server takes the fullUrl's uuid
            {
                "fullUrl": "urn:uuid:d0000001-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "subject": {"reference": f"urn:uuid:{PATIENT}"},
                    "date": "2024-05-01T10:00:00Z",
                    "content": [{"attachment": {"contentType": "text/plain", "data": "T2ZmaWNlIHZpc2l0Lg=="}}],
                },
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {"request": {"method": "DELETE", "url": "Observation/old"}},
        ],
    }


def synthea_practitioner_bundle() -> dict:
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            _entry(
                {
                    "resourceType": "Practitioner",
                    "id": "p0000001-0000-4000-8000-000000000001",
                    "identifier": [{"system": NPI, "value": "9999912345"}],
                    "name": [{"family": "Synth", "given": ["Ada"], "prefix": ["Dr."]}],
                }
            ),
            _entry(
                {
                    "resourceType": "Organization",
                    "id": "o0000001-0000-4000-8000-000000000001",
                    "identifier": [{"system": "https://github.com/synthetichealth/synthea", "value": "org-1"}],
                    "name": "Synthea General",
                }
            ),
        ],
    }


@pytest.fixture
def synthea_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "fhir"
    folder.mkdir()
    (folder / "Marta_Quigley.json").write_text(json.dumps(synthea_patient_bundle()))
    (folder / "practitionerInformation.json").write_text(json.dumps(synthea_practitioner_bundle()))
    (folder / "notes.txt").write_text("not a bundle, and not .json: ignored")
    return folder


def _serve(sb: FhirSandbox) -> Iterator[httpx.Client]:
    host = SimulatorHost()
    host.add("fhir", sb.app)
    host.start()
    try:
        with httpx.Client(base_url=sb.url(host.url("fhir")) + "/") as client:
            yield client
    finally:
        host.stop()


def test_references_are_rewritten_across_files(synthea_dir: Path) -> None:
    resources = load_bundle_path(synthea_dir)
    by_type = {r["resourceType"]: r for r in resources}
    assert len(resources) == 7  # the DELETE entry carries no resource
    med = next(r for r in resources if r["resourceType"] == "MedicationRequest")
    assert med["subject"]["reference"] == f"Patient/{PATIENT}"
    assert med["encounter"]["reference"] == "Encounter/e0000001-0000-4000-8000-000000000001"
    assert med["requester"] == {
        "reference": "Practitioner/p0000001-0000-4000-8000-000000000001",
        "display": "Dr. Ada Synth",
    }
    enc = by_type["Encounter"]
    assert enc["serviceProvider"]["reference"] == "Organization/o0000001-0000-4000-8000-000000000001"
    doc = by_type["DocumentReference"]
    assert doc["id"] == "d0000001-0000-4000-8000-000000000001" and list(doc)[:2] == ["resourceType", "id"]
    assert doc["subject"]["reference"] == f"Patient/{PATIENT}"
    # the input is not modified
    assert synthea_patient_bundle()["entry"][3]["resource"]["subject"]["reference"] == f"urn:uuid:{PATIENT}"


def test_loaded_beside_the_population_over_http(synthea_dir: Path) -> None:
    population = Population.generate(60, seed=4)
    sb = FhirSandbox(population, bundles=synthea_dir)
    for http in _serve(sb):
        found = http.get("Patient", params={"phone": "5558642277"}).json()
        assert sorted(e["resource"]["id"] for e in found["entry"]) == sorted([PATIENT, CHILD])
        meds = http.get("MedicationRequest", params={"patient": PATIENT}).json()
        assert [e["resource"]["id"] for e in meds["entry"]] == ["m0000001-0000-4000-8000-000000000001"]
        assert http.get("Practitioner/p0000001-0000-4000-8000-000000000001").status_code == 200
        docs = http.get("DocumentReference", params={"patient": f"Patient/{PATIENT}"}).json()
        assert docs["total"] == 1
        # the synthetic population is still there
        assert http.get("Patient", params={"_count": "0"}).json()["total"] == 62
        number = population.household_numbers()[0]
        assert http.get("Patient", params={"phone": number}).json()["total"] == len(population.households[number])


def test_bundles_instead_of_the_population(synthea_dir: Path) -> None:
    sb = FhirSandbox(synthea_dir / "Marta_Quigley.json")
    found, _ = sb.store.search("Patient", [("phone", "+15558642277")])
    assert sorted(p["id"] for p in found) == sorted([PATIENT, CHILD])
    assert sb.store.read("Encounter", "e0000001-0000-4000-8000-000000000001") is not None
    # loading the same file again updates in place, no duplicates
    assert sb.load(synthea_dir / "Marta_Quigley.json") == 5
    found, _ = sb.store.search("Patient", [("phone", "5558642277")])
    assert len(found) == 2
    # and Bundles handed over in memory get the same treatment
    sb2 = FhirSandbox([synthea_patient_bundle(), synthea_practitioner_bundle()])
    med = sb2.store.read("MedicationRequest", "m0000001-0000-4000-8000-000000000001")
    assert med["requester"]["reference"].startswith("Practitioner/p0000001")


def test_official_example_bundles() -> None:
    paths = sorted(EXAMPLES.glob("Bundle-*.json"))
    if not paths:
        pytest.skip(f"official examples not found under {EXAMPLES}")
    resources = [r for p in paths for r in load_bundle_path(p)]
    assert {(r["resourceType"], r["id"]) for r in resources} == {
        ("MedicationRequest", "3123"),
        ("Medication", "example"),
    }
    sb = FhirSandbox(Population.generate(10, seed=1))
    for p in paths:
        sb.load(p)
    found, _ = sb.store.search("MedicationRequest", [("patient", "347")])
    assert [r["id"] for r in found] == ["3123"]
    med = sb.store.read("MedicationRequest", "3123")
    assert med["medicationReference"]["reference"] == "Medication/example"  # absolute fullUrl → Type/id
    assert sb.store.read("Medication", "example") is not None


def test_official_example_resources_are_searchable() -> None:
    """HL7's single-resource examples (contained resources, dangling references, odd telecoms)
    loaded as one collection Bundle: every one is readable and findable by its patient."""
    files = sorted(p for p in EXAMPLES.glob("*.json") if not p.name.startswith("Bundle-"))
    if not files:
        pytest.skip(f"official examples not found under {EXAMPLES}")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": json.loads(p.read_text())} for p in files],
    }
    sb = FhirSandbox([bundle])
    for p in files:
        r = json.loads(p.read_text())
        assert sb.store.read(r["resourceType"], r["id"]) is not None, p.name
    assert [a["id"] for a in sb.store.search("Appointment", [("patient", "example")])[0]] == ["2docs", "example"]
    assert sb.store.search("Coverage", [("beneficiary", "Patient/4")])[0][0]["id"] == "9876B1"
    assert sb.store.search("DocumentReference", [("patient", "xcda")])[0][0]["id"] == "example"
    assert sb.store.search("CareTeam", [("patient", "example")])[0][0]["id"] == "example"
    assert sb.store.search("Patient", [("phone", "(03) 5555 6473")])[0][0]["id"] == "example"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing.json", ["missing.json", "no such file"]),
        (lambda d: _write(d / "empty", None), ["empty", "no .json files"]),
        (lambda d: _write(d / "broken.json", '{"resourceType": "Bundle",'), ["broken.json", "not JSON", "line 1"]),
        (
            lambda d: _write(d / "patient.json", json.dumps({"resourceType": "Patient", "id": "x"})),
            ["patient.json", "not a FHIR Bundle", "Patient"],
        ),
        (lambda d: _write(d / "list.json", "[1, 2]"), ["list.json", "not a FHIR Bundle"]),
        (
            lambda d: _write(d / "entries.json", json.dumps({"resourceType": "Bundle", "entry": {}})),
            ["entries.json", "entry"],
        ),
        (lambda d: _write_bytes(d / "latin1.json", '{"name": "Pe\xf1a"}'.encode("latin-1")), ["latin1.json", "UTF-8"]),
    ],
)
def test_clear_errors_name_the_file(tmp_path: Path, make: object, words: list[str]) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(BundleError) as exc:
        load_bundle_path(path)
    for w in words:
        assert w in str(exc.value)
    with pytest.raises(BundleError):
        FhirSandbox(path)


def _write(path: Path, text: str | None) -> Path:
    if text is None:
        path.mkdir()
    else:
        path.write_text(text)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_resources_without_ids_get_stable_ones() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {"resourceType": "Patient", "name": [{"family": "Nobody"}]}},
            {"fullUrl": "http://example.org/fhir/Patient/abc", "resource": {"resourceType": "Patient"}},
            {"resource": {"resourceType": "Patient"}, "request": {"method": "PUT", "url": "Patient/put-id"}},
        ],
    }
    first = resources_from_bundles([bundle])
    assert [r["id"] for r in first][1:] == ["abc", "put-id"]
    assert first[0]["id"] == resources_from_bundles([bundle])[0]["id"]
