"""Lookup tables for the synthetic clinical record: specialties, conditions, medicines,
visit charges, payors and plans, time zones, clinic names and note wording.

Codes come from the public terminologies FHIR R4 names (SNOMED CT, ICD-10-CM,
RxNorm ingredients, LOINC document types, HL7 code systems). Where a code would
be guesswork the concept is given as text only, which FHIR allows. Every payor,
plan, employer and clinic name is invented; Medicare and Medicaid are the real
public programmes, named as such.
"""

from __future__ import annotations

from typing import Final, NamedTuple

SCT: Final = "http://snomed.info/sct"
ICD10: Final = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC: Final = "http://loinc.org"
CPT: Final = "http://www.ama-assn.org/go/cpt"
UCUM: Final = "http://unitsofmeasure.org"
V2_0360: Final = "http://terminology.hl7.org/CodeSystem/v2-0360|2.7"
V2_0276: Final = "http://terminology.hl7.org/CodeSystem/v2-0276"
V3_ACTCODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SERVICE_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/service-category"
CANCEL_REASON: Final = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
ORG_TYPE: Final = "http://terminology.hl7.org/CodeSystem/organization-type"
LOCATION_PHYSICAL_TYPE: Final = "http://terminology.hl7.org/CodeSystem/location-physical-type"
COVERAGE_CLASS: Final = "http://terminology.hl7.org/CodeSystem/coverage-class"
COVERAGE_COPAY: Final = "http://terminology.hl7.org/CodeSystem/coverage-copay-type"
COVERAGE_SELFPAY: Final = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
SUBSCRIBER_RELATIONSHIP: Final = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
CLAIM_TYPE: Final = "http://terminology.hl7.org/CodeSystem/claim-type"
ADJUDICATION: Final = "http://terminology.hl7.org/CodeSystem/adjudication"
C4BB_ADJUDICATION: Final = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
PAYMENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
MED_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
MED_COURSE: Final = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy"
DOC_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"


# --------------------------------------------------------------------------- specialties
class Specialty(NamedTuple):
    key: str
    display: str  # as the console shows it
    practice: tuple[str, str] | None  # SNOMED practice-setting code and display
    occupation: tuple[str, str] | None  # SNOMED occupation code and display
    role_text: str  # the clinician's title
    degree: str  # v2-0360 code, or "" for text only
    degree_text: str
    primary: bool = False


SPECIALTIES: Final[dict[str, Specialty]] = {
    s.key: s
    for s in (
        Specialty(
            "family",
            "Family medicine",
            ("394814009", "General practice"),
            ("446050000", "Primary care physician"),
            "Primary care physician",
            "MD",
            "Doctor of Medicine",
            True,
        ),
        Specialty(
            "internal",
            "Internal medicine",
            ("419192003", "Internal medicine"),
            ("446050000", "Primary care physician"),
            "Primary care physician",
            "DO",
            "Doctor of Osteopathy",
            True,
        ),
        Specialty(
            "pediatrics",
            "Pediatrics",
            ("394537008", "Pediatric specialty"),
            ("82296001", "Pediatrician"),
            "Pediatrician",
            "MD",
            "Doctor of Medicine",
            True,
        ),
        Specialty(
            "np",
            "Family medicine",
            ("394814009", "General practice"),
            ("224571005", "Nurse practitioner"),
            "Nurse practitioner",
            "NP",
            "Nurse Practitioner",
            True,
        ),
        Specialty(
            "cardiology",
            "Cardiology",
            ("394579002", "Cardiology"),
            ("17561000", "Cardiologist"),
            "Cardiologist",
            "MD",
            "Doctor of Medicine",
        ),
        Specialty(
            "dermatology",
            "Dermatology",
            ("394582007", "Dermatology"),
            ("18803008", "Dermatologist"),
            "Dermatologist",
            "MD",
            "Doctor of Medicine",
        ),
        Specialty(
            "endocrinology",
            "Endocrinology",
            ("394583002", "Endocrinology"),
            ("61894003", "Endocrinologist"),
            "Endocrinologist",
            "MD",
            "Doctor of Medicine",
        ),
        Specialty(
            "gastroenterology",
            "Gastroenterology",
            ("394584008", "Gastroenterology"),
            ("71838004", "Gastroenterologist"),
            "Gastroenterologist",
            "MD",
            "Doctor of Medicine",
        ),
        Specialty(
            "neurology",
            "Neurology",
            ("394591006", "Neurology"),
            ("56397003", "Neurologist"),
            "Neurologist",
            "DO",
            "Doctor of Osteopathy",
        ),
        Specialty(
            "ophthalmology",
            "Ophthalmology",
            ("394594003", "Ophthalmology"),
            ("422234006", "Ophthalmologist"),
            "Ophthalmologist",
            "MD",
            "Doctor of Medicine",
        ),
        Specialty(
            "orthopedics",
            "Orthopedics",
            ("394801008", "Trauma and orthopedics"),
            ("22731001", "Orthopedic surgeon"),
            "Orthopedic surgeon",
            "MD",
            "Doctor of Medicine",
        ),
        Specialty(
            "behavioral",
            "Behavioral health",
            ("394587001", "Psychiatry"),
            ("80584001", "Psychiatrist"),
            "Psychiatrist",
            "MD",
            "Doctor of Medicine",
        ),
        Specialty(
            "physical_therapy",
            "Physical therapy",
            None,
            ("36682004", "Physiotherapist"),
            "Physical therapist",
            "",
            "DPT",
        ),
        Specialty("pulmonology", "Pulmonology", None, None, "Pulmonologist", "MD", "Doctor of Medicine"),
        Specialty("allergy", "Allergy and immunology", None, None, "Allergist", "MD", "Doctor of Medicine"),
        Specialty(
            "nursing",
            "Care coordination",
            None,
            ("224535009", "Registered nurse"),
            "Care coordinator (RN)",
            "RN",
            "Registered Nurse",
        ),
        Specialty(
            "pharmacy",
            "Pharmacy",
            None,
            ("46255001", "Pharmacist"),
            "Clinical pharmacist",
            "PharmD",
            "Doctor of Pharmacy",
        ),
        Specialty("social_work", "Social work", None, ("106328005", "Social worker"), "Social worker", "", "LCSW"),
    )
}

#: Who works at every clinic (specialty keys, one practitioner each).
CLINIC_STAFF: Final = (
    "family",
    "family",
    "internal",
    "pediatrics",
    "np",
    "cardiology",
    "dermatology",
    "endocrinology",
    "gastroenterology",
    "neurology",
    "ophthalmology",
    "orthopedics",
    "behavioral",
    "physical_therapy",
    "pulmonology",
    "allergy",
    "nursing",
    "nursing",
    "pharmacy",
    "social_work",
)

CLINIC_STEMS: Final = (
    "Parkview",
    "Riverside",
    "Northgate",
    "Lakeside",
    "Hillcrest",
    "Westside",
    "Eastview",
    "Midtown",
    "Oak Grove",
    "Cedar Hill",
    "Harbor Point",
    "Brookside",
    "Maple Ridge",
    "Fairview",
    "Stonebridge",
    "Willow Creek",
)

# --------------------------------------------------------------------------- time zones
#: (standard UTC offset in hours, observes US daylight saving time)
STATE_TZ: Final[dict[str, tuple[int, bool]]] = {
    **{
        s: (-5, True)
        for s in ("NY", "DC", "PA", "FL", "GA", "MA", "MD", "NC", "OH", "VA", "MI", "NJ", "CT", "RI", "KY", "IN")
    },
    **{s: (-6, True) for s in ("IL", "TX", "MN", "MO", "WI", "OK", "LA", "AL", "NE", "IA", "TN")},
    **{s: (-7, True) for s in ("CO", "UT", "NM", "ID")},
    "AZ": (-7, False),
    **{s: (-8, True) for s in ("CA", "WA", "OR", "NV")},
    "AK": (-9, True),
    "HI": (-10, False),
}
CITY_TZ: Final[dict[str, tuple[int, bool]]] = {"El Paso": (-7, True)}


# --------------------------------------------------------------------------- medicines
class Medicine(NamedTuple):
    key: str
    rxcui: str  # RxNorm ingredient
    ingredient: str
    text: str  # product as prescribed
    sig: str  # patient instructions
    per_day: float  # doses a day (0 = as needed)
    unit: str  # dose form for quantities
    ucum: str
    chronic: bool


MEDICINES: Final[dict[str, Medicine]] = {
    m.key: m
    for m in (
        Medicine(
            "lisinopril",
            "29046",
            "lisinopril",
            "Lisinopril 10 mg oral tablet",
            "Take 1 tablet by mouth once daily.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "losartan",
            "52175",
            "losartan",
            "Losartan potassium 50 mg oral tablet",
            "Take 1 tablet by mouth once daily.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "amlodipine",
            "17767",
            "amlodipine",
            "Amlodipine 5 mg oral tablet",
            "Take 1 tablet by mouth once daily.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "hctz",
            "5487",
            "hydrochlorothiazide",
            "Hydrochlorothiazide 25 mg oral tablet",
            "Take 1 tablet by mouth every morning.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "atorvastatin",
            "83367",
            "atorvastatin",
            "Atorvastatin 20 mg oral tablet",
            "Take 1 tablet by mouth at bedtime.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "simvastatin",
            "36567",
            "simvastatin",
            "Simvastatin 20 mg oral tablet",
            "Take 1 tablet by mouth in the evening.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "metformin",
            "6809",
            "metformin",
            "Metformin hydrochloride 500 mg oral tablet",
            "Take 1 tablet by mouth twice daily with meals.",
            2,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "levothyroxine",
            "10582",
            "levothyroxine",
            "Levothyroxine sodium 50 mcg oral tablet",
            "Take 1 tablet by mouth every morning on an empty stomach.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "omeprazole",
            "7646",
            "omeprazole",
            "Omeprazole 20 mg delayed-release oral capsule",
            "Take 1 capsule by mouth daily before breakfast.",
            1,
            "capsule",
            "{cap}",
            True,
        ),
        Medicine(
            "albuterol",
            "435",
            "albuterol",
            "Albuterol 90 mcg/actuation inhaler",
            "Inhale 2 puffs every 4 to 6 hours as needed for wheezing or shortness of breath.",
            0,
            "inhaler",
            "{inhaler}",
            True,
        ),
        Medicine(
            "fluticasone",
            "41126",
            "fluticasone",
            "Fluticasone propionate 50 mcg/actuation nasal spray",
            "Use 2 sprays in each nostril once daily.",
            0,
            "bottle",
            "{bottle}",
            True,
        ),
        Medicine(
            "sertraline",
            "36437",
            "sertraline",
            "Sertraline 50 mg oral tablet",
            "Take 1 tablet by mouth once daily.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "escitalopram",
            "321988",
            "escitalopram",
            "Escitalopram 10 mg oral tablet",
            "Take 1 tablet by mouth once daily.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "meloxicam",
            "41493",
            "meloxicam",
            "Meloxicam 15 mg oral tablet",
            "Take 1 tablet by mouth once daily with food.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "sumatriptan",
            "37418",
            "sumatriptan",
            "Sumatriptan 50 mg oral tablet",
            "Take 1 tablet at migraine onset; may repeat once after 2 hours. Max 4 tablets a day.",
            0,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "apixaban",
            "1364430",
            "apixaban",
            "Apixaban 5 mg oral tablet",
            "Take 1 tablet by mouth twice daily.",
            2,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "metoprolol",
            "6918",
            "metoprolol",
            "Metoprolol succinate ER 25 mg oral tablet",
            "Take 1 tablet by mouth once daily.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "cetirizine",
            "20610",
            "cetirizine",
            "Cetirizine 10 mg oral tablet",
            "Take 1 tablet by mouth once daily as needed for allergy symptoms.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "montelukast",
            "88249",
            "montelukast",
            "Montelukast 10 mg oral tablet",
            "Take 1 tablet by mouth every evening.",
            1,
            "tablet",
            "{tbl}",
            True,
        ),
        Medicine(
            "triamcinolone",
            "10759",
            "triamcinolone",
            "Triamcinolone acetonide 0.1% topical cream",
            "Apply a thin layer to affected areas twice daily for up to 2 weeks.",
            0,
            "tube",
            "{tube}",
            True,
        ),
        Medicine(
            "tretinoin",
            "10753",
            "tretinoin",
            "Tretinoin 0.025% topical cream",
            "Apply a pea-sized amount to the face at bedtime.",
            0,
            "tube",
            "{tube}",
            True,
        ),
        Medicine(
            "gabapentin",
            "25480",
            "gabapentin",
            "Gabapentin 300 mg oral capsule",
            "Take 1 capsule by mouth at bedtime.",
            1,
            "capsule",
            "{cap}",
            True,
        ),
        Medicine(
            "amoxicillin",
            "723",
            "amoxicillin",
            "Amoxicillin 500 mg oral capsule",
            "Take 1 capsule by mouth three times daily for 10 days.",
            3,
            "capsule",
            "{cap}",
            False,
        ),
        Medicine(
            "amoxicillin_susp",
            "723",
            "amoxicillin",
            "Amoxicillin 400 mg/5 mL oral suspension",
            "Give 5 mL by mouth twice daily for 10 days. Shake well.",
            2,
            "bottle",
            "{bottle}",
            False,
        ),
        Medicine(
            "azithromycin",
            "18631",
            "azithromycin",
            "Azithromycin 250 mg oral tablet",
            "Take 2 tablets on day 1, then 1 tablet daily on days 2 to 5.",
            1,
            "tablet",
            "{tbl}",
            False,
        ),
        Medicine(
            "prednisone",
            "8640",
            "prednisone",
            "Prednisone 20 mg oral tablet",
            "Take 2 tablets by mouth once daily for 5 days with food.",
            2,
            "tablet",
            "{tbl}",
            False,
        ),
        Medicine(
            "nitrofurantoin",
            "7454",
            "nitrofurantoin",
            "Nitrofurantoin monohydrate/macrocrystals 100 mg capsule",
            "Take 1 capsule by mouth twice daily for 5 days.",
            2,
            "capsule",
            "{cap}",
            False,
        ),
        Medicine(
            "ibuprofen",
            "5640",
            "ibuprofen",
            "Ibuprofen 600 mg oral tablet",
            "Take 1 tablet by mouth every 8 hours as needed for pain, with food.",
            3,
            "tablet",
            "{tbl}",
            False,
        ),
        Medicine(
            "cyclobenzaprine",
            "21949",
            "cyclobenzaprine",
            "Cyclobenzaprine 5 mg oral tablet",
            "Take 1 tablet by mouth at bedtime as needed for muscle spasm.",
            1,
            "tablet",
            "{tbl}",
            False,
        ),
    )
}


# --------------------------------------------------------------------------- conditions
class Condition(NamedTuple):
    key: str
    icd10: str
    display: str
    short: str  # how a note says it
    # prevalence by age band: <18, 18-39, 40-64, 65+ (female, male)
    prevalence: tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]
    medicines: tuple[str, ...]  # first choice first; the second is a switch target
    referral: tuple[str, ...]  # specialties a PCP refers to for it
    refer_p: float  # chance a patient with it has been referred


CONDITIONS: Final[dict[str, Condition]] = {
    c.key: c
    for c in (
        Condition(
            "hypertension",
            "I10",
            "Essential (primary) hypertension",
            "hypertension",
            ((0, 0), (0.06, 0.09), (0.30, 0.36), (0.58, 0.62)),
            ("lisinopril", "losartan", "amlodipine", "hctz"),
            ("cardiology",),
            0.08,
        ),
        Condition(
            "hyperlipidemia",
            "E78.5",
            "Hyperlipidemia, unspecified",
            "high cholesterol",
            ((0, 0), (0.04, 0.06), (0.25, 0.30), (0.42, 0.45)),
            ("atorvastatin", "simvastatin"),
            ("cardiology",),
            0.05,
        ),
        Condition(
            "diabetes",
            "E11.9",
            "Type 2 diabetes mellitus without complications",
            "type 2 diabetes",
            ((0.002, 0.002), (0.03, 0.03), (0.12, 0.14), (0.21, 0.24)),
            ("metformin",),
            ("endocrinology", "ophthalmology"),
            0.45,
        ),
        Condition(
            "prediabetes",
            "R73.03",
            "Prediabetes",
            "prediabetes",
            ((0, 0), (0.04, 0.05), (0.12, 0.13), (0.12, 0.12)),
            (),
            (),
            0.0,
        ),
        Condition(
            "hypothyroidism",
            "E03.9",
            "Hypothyroidism, unspecified",
            "hypothyroidism",
            ((0.002, 0.001), (0.04, 0.01), (0.10, 0.03), (0.14, 0.05)),
            ("levothyroxine",),
            ("endocrinology",),
            0.2,
        ),
        Condition(
            "gerd",
            "K21.9",
            "Gastro-esophageal reflux disease without esophagitis",
            "acid reflux",
            ((0.01, 0.01), (0.07, 0.07), (0.12, 0.12), (0.14, 0.14)),
            ("omeprazole",),
            ("gastroenterology",),
            0.15,
        ),
        Condition(
            "asthma",
            "J45.909",
            "Unspecified asthma, uncomplicated",
            "asthma",
            ((0.07, 0.09), (0.08, 0.06), (0.08, 0.05), (0.07, 0.05)),
            ("albuterol", "montelukast"),
            ("pulmonology", "allergy"),
            0.2,
        ),
        Condition(
            "depression",
            "F32.9",
            "Major depressive disorder, single episode, unspecified",
            "depression",
            ((0.02, 0.01), (0.10, 0.06), (0.09, 0.05), (0.07, 0.04)),
            ("sertraline", "escitalopram"),
            ("behavioral",),
            0.4,
        ),
        Condition(
            "anxiety",
            "F41.1",
            "Generalized anxiety disorder",
            "anxiety",
            ((0.03, 0.02), (0.10, 0.05), (0.08, 0.04), (0.05, 0.03)),
            ("escitalopram", "sertraline"),
            ("behavioral",),
            0.35,
        ),
        Condition(
            "osteoarthritis",
            "M17.9",
            "Osteoarthritis of knee, unspecified",
            "knee osteoarthritis",
            ((0, 0), (0.01, 0.01), (0.10, 0.08), (0.25, 0.18)),
            ("meloxicam",),
            ("orthopedics", "physical_therapy"),
            0.4,
        ),
        Condition(
            "back_pain",
            "M54.50",
            "Low back pain, unspecified",
            "low back pain",
            ((0.005, 0.005), (0.06, 0.07), (0.09, 0.09), (0.08, 0.07)),
            ("cyclobenzaprine",),
            ("physical_therapy", "orthopedics"),
            0.45,
        ),
        Condition(
            "migraine",
            "G43.909",
            "Migraine, unspecified, not intractable, without status migrainosus",
            "migraines",
            ((0.02, 0.01), (0.12, 0.04), (0.09, 0.03), (0.03, 0.01)),
            ("sumatriptan",),
            ("neurology",),
            0.25,
        ),
        Condition(
            "afib",
            "I48.91",
            "Unspecified atrial fibrillation",
            "atrial fibrillation",
            ((0, 0), (0.001, 0.002), (0.015, 0.025), (0.07, 0.09)),
            ("apixaban", "metoprolol"),
            ("cardiology",),
            0.9,
        ),
        Condition(
            "allergic_rhinitis",
            "J30.9",
            "Allergic rhinitis, unspecified",
            "seasonal allergies",
            ((0.10, 0.10), (0.12, 0.10), (0.10, 0.09), (0.07, 0.06)),
            ("cetirizine", "fluticasone"),
            ("allergy",),
            0.08,
        ),
        Condition(
            "eczema",
            "L20.9",
            "Atopic dermatitis, unspecified",
            "eczema",
            ((0.10, 0.10), (0.03, 0.03), (0.02, 0.02), (0.02, 0.02)),
            ("triamcinolone",),
            ("dermatology",),
            0.3,
        ),
        Condition(
            "acne",
            "L70.0",
            "Acne vulgaris",
            "acne",
            ((0.06, 0.07), (0.05, 0.03), (0.01, 0.005), (0, 0)),
            ("tretinoin",),
            ("dermatology",),
            0.5,
        ),
        Condition(
            "cataract",
            "H26.9",
            "Unspecified cataract",
            "cataract",
            ((0, 0), (0, 0), (0.02, 0.02), (0.16, 0.14)),
            (),
            ("ophthalmology",),
            0.9,
        ),
        Condition(
            "neuropathy",
            "G62.9",
            "Polyneuropathy, unspecified",
            "neuropathy",
            ((0, 0), (0.002, 0.002), (0.02, 0.02), (0.05, 0.05)),
            ("gabapentin",),
            ("neurology",),
            0.5,
        ),
    )
}


class Acute(NamedTuple):
    key: str
    icd10: str
    display: str
    short: str
    medicine: str | None
    min_age: int
    max_age: int


ACUTE: Final = (
    Acute("uri", "J06.9", "Acute upper respiratory infection, unspecified", "cold symptoms", None, 0, 120),
    Acute("otitis", "H66.90", "Otitis media, unspecified, unspecified ear", "ear infection", "amoxicillin_susp", 0, 11),
    Acute("sinusitis", "J01.90", "Acute sinusitis, unspecified", "sinus infection", "amoxicillin", 12, 120),
    Acute("strep", "J02.0", "Streptococcal pharyngitis", "strep throat", "amoxicillin", 3, 120),
    Acute(
        "uti",
        "N39.0",
        "Urinary tract infection, site not specified",
        "urinary tract infection",
        "nitrofurantoin",
        16,
        120,
    ),
    Acute("bronchitis", "J20.9", "Acute bronchitis, unspecified", "bronchitis", "azithromycin", 12, 120),
    Acute(
        "sprain",
        "S93.401A",
        "Sprain of unspecified ligament of right ankle, initial encounter",
        "ankle sprain",
        "ibuprofen",
        8,
        80,
    ),
    Acute("rash", "L30.9", "Dermatitis, unspecified", "rash", "prednisone", 2, 120),
)


# --------------------------------------------------------------------------- charges
class Charge(NamedTuple):
    cpt: str
    display: str
    billed_cents: int
    preventive: bool = False


CHARGES: Final[dict[str, Charge]] = {
    c.cpt: c
    for c in (
        Charge("99213", "Office visit, established patient, low complexity", 18_500),
        Charge("99214", "Office visit, established patient, moderate complexity", 26_500),
        Charge("99203", "Office visit, new patient, low complexity", 24_000),
        Charge("99204", "Office visit, new patient, moderate complexity", 36_000),
        Charge("99392", "Preventive visit, established patient, age 1-4", 24_000, True),
        Charge("99393", "Preventive visit, established patient, age 5-11", 24_500, True),
        Charge("99394", "Preventive visit, established patient, age 12-17", 25_500, True),
        Charge("99395", "Preventive visit, established patient, age 18-39", 27_500, True),
        Charge("99396", "Preventive visit, established patient, age 40-64", 29_500, True),
        Charge("99397", "Preventive visit, established patient, age 65 and over", 31_000, True),
        Charge("80053", "Comprehensive metabolic panel", 6_200),
        Charge("85025", "Complete blood count with differential", 3_800),
        Charge("80061", "Lipid panel", 5_800),
        Charge("83036", "Hemoglobin A1c", 4_500),
        Charge("36415", "Routine venipuncture", 1_800),
        Charge("93000", "Electrocardiogram with interpretation", 9_500),
        Charge("87880", "Rapid strep test", 3_500),
        Charge("90686", "Influenza vaccine, quadrivalent, preservative free", 4_500, True),
        Charge("90471", "Immunization administration", 4_000, True),
        Charge("92014", "Eye exam, established patient, comprehensive", 19_000),
        Charge("97161", "Physical therapy evaluation, low complexity", 21_000),
        Charge("97110", "Therapeutic exercise, each 15 minutes", 9_500),
        Charge("90834", "Psychotherapy, 45 minutes", 17_500),
    )
}


# --------------------------------------------------------------------------- payors and plans
class Plan(NamedTuple):
    key: str
    payor: str  # Organization id
    name: str
    kind: str  # commercial | medicare | medicaid | advantage | supplement | selfpay
    plan_code: str
    pcp_copay: int  # cents
    specialist_copay: int
    deductible: int  # cents a year
    coinsurance: int  # percent after the deductible
    allowed_pct: int  # share of billed charges the plan allows


PAYORS: Final = (
    # id, name, is government, member services line area
    ("org-medicare", "Medicare", True),
    ("org-medicaid", "State Medicaid Program", True),
    ("org-bluewater", "Bluewater Health Plan", False),
    ("org-cascade", "Cascade Mutual Insurance", False),
    ("org-pinnacle", "Pinnacle Health Partners", False),
    ("org-harborline", "Harborline Health", False),
    ("org-summit", "Summit Benefit Administrators", False),
)

PLANS: Final[dict[str, Plan]] = {
    p.key: p
    for p in (
        Plan(
            "medicare",
            "org-medicare",
            "Original Medicare (Parts A and B)",
            "medicare",
            "MEDICARE-AB",
            0,
            0,
            25_700,
            20,
            48,
        ),
        Plan("medicaid", "org-medicaid", "Medicaid Managed Care", "medicaid", "MEDICAID-MC", 0, 0, 0, 0, 33),
        Plan("chip", "org-medicaid", "Children's Health Insurance Program (CHIP)", "medicaid", "CHIP", 0, 0, 0, 0, 33),
        Plan(
            "bw_gold", "org-bluewater", "Bluewater Gold PPO", "commercial", "BW-GOLD-PPO", 2_500, 5_000, 100_000, 20, 62
        ),
        Plan(
            "bw_silver",
            "org-bluewater",
            "Bluewater Silver HMO",
            "commercial",
            "BW-SILVER-HMO",
            3_000,
            6_000,
            250_000,
            30,
            60,
        ),
        Plan(
            "cm_choice",
            "org-cascade",
            "Cascade Choice PPO",
            "commercial",
            "CM-CHOICE-PPO",
            2_000,
            4_500,
            150_000,
            20,
            64,
        ),
        Plan("cm_hsa", "org-cascade", "Cascade HSA Bronze", "commercial", "CM-HSA-BRZ", 0, 0, 600_000, 40, 64),
        Plan(
            "ph_pos",
            "org-pinnacle",
            "Pinnacle Open Access POS",
            "commercial",
            "PH-OA-POS",
            2_500,
            5_500,
            200_000,
            20,
            61,
        ),
        Plan(
            "hh_essential",
            "org-harborline",
            "Harborline Essential HMO",
            "commercial",
            "HH-ESS-HMO",
            1_500,
            4_000,
            50_000,
            10,
            58,
        ),
        Plan(
            "sb_employer",
            "org-summit",
            "Summit Employer PPO",
            "commercial",
            "SB-EMP-PPO",
            3_000,
            6_000,
            150_000,
            20,
            63,
        ),
        Plan(
            "bw_advantage",
            "org-bluewater",
            "Bluewater Medicare Advantage HMO",
            "advantage",
            "BW-MA-HMO",
            0,
            3_500,
            0,
            0,
            50,
        ),
        Plan(
            "ph_senior", "org-pinnacle", "Pinnacle Senior Advantage PPO", "advantage", "PH-SR-PPO", 500, 4_000, 0, 0, 50
        ),
        Plan("bw_medigap", "org-bluewater", "Bluewater Medigap Plan G", "supplement", "BW-MEDIGAP-G", 0, 0, 0, 0, 48),
        Plan("selfpay", "org-shs", "Self-pay", "selfpay", "SELF-PAY", 0, 0, 0, 100, 65),
    )
}
COMMERCIAL_PLANS: Final = ("bw_gold", "bw_silver", "cm_choice", "cm_hsa", "ph_pos", "hh_essential", "sb_employer")
ADVANTAGE_PLANS: Final = ("bw_advantage", "ph_senior")

EMPLOYERS: Final = (
    "Northside Logistics",
    "Brightwater Schools",
    "Meridian Retail Group",
    "Ironwood Manufacturing",
    "Clearpath Software",
    "Granite County Government",
    "Seaside Hospitality",
    "Lakeshore Credit Union",
    "Evergreen Home Services",
    "Summit Ridge University",
    "Copperline Utilities",
    "Bluebird Transit Authority",
)

# --------------------------------------------------------------------------- notes
#: LOINC document types the generated notes use.
NOTE_TYPES: Final[dict[str, tuple[str, str]]] = {
    "progress": ("11506-3", "Progress note"),
    "telephone": ("34748-4", "Telephone encounter Note"),
    "referral": ("57133-1", "Referral note"),
    "nurse": ("34746-8", "Nurse Note"),
}

CANCEL_REASONS: Final = (
    ("pat", "Patient"),
    ("pat-cpp", "Patient: Canceled via Patient Portal"),
    ("pat-crs", "Patient: Canceled via automated reminder system"),
    ("pat-fb", "Patient: Feel Better"),
    ("pat-lt", "Patient: Lack of Transportation"),
)
PROVIDER_CANCEL: Final = ("prov", "Provider")

PHARMACIES: Final = (
    "Corner Drug",
    "Main Street Pharmacy",
    "CityCare Pharmacy",
    "Greenleaf Apothecary",
    "Neighborhood Rx",
    "Plaza Community Pharmacy",
)

DENIAL_REASONS: Final = (
    "Denied: prior authorization was not obtained.",
    "Denied: service not covered under the member's plan.",
    "Denied: coverage was not active on the date of service.",
)
