"""check_answers and friends: tolerant comparison that never needs to show the stored value."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pa_tui.domain.patients import Address, PatientPhone, PatientSummary
from pa_tui.domain.phones import parse_phone
from pa_tui.domain.verification import (
    FIELDS,
    MASKED_DOB,
    MASKED_MRN,
    MASKED_NUMBER,
    FieldCheck,
    Verification,
    available_fields,
    check_answers,
    check_field,
    dob_for,
    mask_name,
    mrn_for,
    name_for,
    normalize_id,
    number_for,
    parse_dob,
)

TODAY = date(2026, 11, 21)
AT = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
CALLER = parse_phone("(408) 555-1212")
MARIA = PatientSummary(
    id="pat-1",
    mrn="00482913",
    display_name="Maria Garcia",
    birth_date=date(1984, 3, 14),
    phones=(PatientPhone(number=CALLER), PatientPhone(number=parse_phone("408-555-9876"))),
    address=Address(line=("742 N. Evergreen Terrace", "Apt 4B"), postal_code="95014-2083"),
)


# --------------------------------------------------------------------------- dates
@pytest.mark.parametrize(
    "text",
    [
        "03/14/1984", "3/14/1984", "3/14/84", "03-14-1984", "03.14.1984", "1984-03-14", "1984/3/14",
        "14 Mar 1984", "14 march 1984", "Mar 14 1984", "March 14, 1984", "March 14th, 1984", "14-MAR-84",
        "1984 Mar 14", "03141984", "031484", " 3 / 14 / 1984 ", "14/03/1984",
    ],
)  # fmt: skip
def test_parse_dob_accepts_what_callers_say(text: str) -> None:
    assert parse_dob(text, TODAY) == date(1984, 3, 14)


@pytest.mark.parametrize("text", ["", "hello", "3/14", "2/30/1984", "13/13/1984", "14 Foo 1984", "1/1/1700", "123"])
def test_parse_dob_rejects_what_is_not_a_date(text: str) -> None:
    assert parse_dob(text, TODAY) is None


def test_two_digit_years_are_never_in_the_future() -> None:
    assert parse_dob("1/2/25", TODAY) == date(2025, 1, 2)
    assert parse_dob("11/21/26", TODAY) == date(2026, 11, 21)
    assert parse_dob("12/31/26", TODAY) == date(1926, 12, 31)
    assert parse_dob("3/14/84", TODAY) == date(1984, 3, 14)


def test_compact_dates_only_when_allowed() -> None:
    assert parse_dob("03141984", TODAY, compact=False) is None


# --------------------------------------------------------------------------- fields
@pytest.mark.parametrize(
    ("field", "answer", "expected"),
    [
        ("dob", "3/14/84", FieldCheck.MATCH),
        ("dob", "3/15/84", FieldCheck.MISMATCH),
        ("dob", "not a date", FieldCheck.UNREADABLE),
        ("dob", "  ", FieldCheck.EMPTY),
        ("mrn", "482913", FieldCheck.MATCH),
        ("mrn", "MRN: 0048-2913", FieldCheck.MATCH),
        ("mrn", "482914", FieldCheck.MISMATCH),
        ("mrn", "--", FieldCheck.UNREADABLE),
        ("address", "742 95014", FieldCheck.MATCH),
        ("address", "742 evergreen", FieldCheck.MATCH),
        ("address", "0742 Evergreen Terr.", FieldCheck.MATCH),
        ("address", "742 North Evergreen Terrace, apartment 4B", FieldCheck.MATCH),
        ("address", "742 95014-2083", FieldCheck.MATCH),
        ("address", "742", FieldCheck.UNREADABLE),  # the house number alone proves nothing
        ("address", "Evergreen Terrace 95014", FieldCheck.MISMATCH),  # no house number: wrong number
        ("address", "evergreen terrace", FieldCheck.UNREADABLE),
        ("address", "743 Evergreen", FieldCheck.MISMATCH),
        ("address", "742 Elm", FieldCheck.MISMATCH),
        ("address", "742 95015", FieldCheck.MISMATCH),
        ("phone_last4", "9876", FieldCheck.MATCH),
        ("phone_last4", "408 555 9876", FieldCheck.MATCH),
        ("phone_last4", "1212", FieldCheck.MISMATCH),  # the number being called from does not count
        ("phone_last4", "98", FieldCheck.UNREADABLE),
    ],
)
def test_check_field(field: str, answer: str, expected: FieldCheck) -> None:
    assert check_field(MARIA, field, answer, today=TODAY, caller=CALLER) is expected


def test_the_zip_must_be_a_different_word_from_the_house_number() -> None:
    same = MARIA.model_copy(update={"address": Address(line=("95014 Main St",), postal_code="95014")})
    assert check_field(same, "address", "95014", caller=CALLER) is FieldCheck.UNREADABLE
    assert check_field(same, "address", "95014 95014", caller=CALLER) is FieldCheck.MATCH


def test_fields_not_on_file() -> None:
    bare = PatientSummary(id="p", display_name="X", phones=(PatientPhone(number=CALLER),))
    assert available_fields(bare, CALLER) == dict.fromkeys(FIELDS, False)
    for field in FIELDS:
        assert check_field(bare, field, "anything 123", caller=CALLER) is FieldCheck.NOT_ON_FILE
    # With no caller number, the one phone on file can be used.
    assert available_fields(bare)["phone_last4"] is True


def test_unknown_field_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown verification field"):
        check_field(MARIA, "ssn", "123")
    with pytest.raises(ValueError, match="unknown verification field"):
        check_answers(MARIA, {"ssn": "123"})


# --------------------------------------------------------------------------- check_answers
def test_passes_with_dob_and_one_alternative() -> None:
    v = check_answers(MARIA, {"dob": "14 Mar 1984", "mrn": "482913"}, today=TODAY, caller=CALLER, at=AT)
    assert v == Verification(passed=True, methods=("dob", "mrn"), failed=(), at=AT, patient_id="pat-1")


def test_fails_without_an_alternative_or_with_a_wrong_dob() -> None:
    only_dob = check_answers(MARIA, {"dob": "3/14/84"}, today=TODAY, caller=CALLER, at=AT)
    assert not only_dob.passed and only_dob.methods == ("dob",) and only_dob.failed == ()
    wrong = check_answers(MARIA, {"dob": "3/15/84", "mrn": "482913"}, today=TODAY, caller=CALLER, at=AT)
    assert not wrong.passed and wrong.methods == ("mrn",) and wrong.failed == ("dob",)


def test_required_and_one_of_are_configurable() -> None:
    v = check_answers(MARIA, {"mrn": "482913"}, required=("mrn",), one_of=(), at=AT)
    assert v.passed and v.methods == ("mrn",)
    v = check_answers(MARIA, {"dob": "3/14/84", "mrn": "1"}, required=("dob", "mrn"), one_of=(), today=TODAY, at=AT)
    assert not v.passed and v.failed == ("mrn",)


def test_a_verification_never_carries_the_stored_values() -> None:
    v = check_answers(MARIA, {"dob": "3/15/84", "address": "1 Elm 00000", "mrn": "1", "phone_last4": "0000"}, at=AT)
    dumped = v.model_dump_json()
    for secret in ("1984", "482913", "Evergreen", "95014", "9876"):
        assert secret not in dumped


# --------------------------------------------------------------------------- property tests
_FORMATS = (
    lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
    lambda d: f"{d.month}/{d.day}/{d.year}",
    lambda d: d.isoformat(),
    lambda d: f"{d.day} {d:%b} {d.year}",
    lambda d: f"{d:%B} {d.day}, {d.year}",
    lambda d: f"{d.month}-{d.day}-{d.year}",
    lambda d: f"{d:%m%d%Y}",
    lambda d: f"{d.day}-{d:%b}-{d.year}".upper(),
)
dobs = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)


@settings(max_examples=150, deadline=None)
@given(dob=dobs, fmt=st.sampled_from(_FORMATS))
def test_any_common_spelling_of_the_dob_matches(dob: date, fmt: object) -> None:
    patient = MARIA.model_copy(update={"birth_date": dob})
    assert check_field(patient, "dob", fmt(dob), today=TODAY) is FieldCheck.MATCH  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(dob=dobs, other=dobs, fmt=st.sampled_from(_FORMATS))
def test_another_date_never_matches(dob: date, other: date, fmt: object) -> None:
    patient = MARIA.model_copy(update={"birth_date": dob})
    result = check_field(patient, "dob", fmt(other), today=TODAY)  # type: ignore[operator]
    assert (result is FieldCheck.MATCH) == (other == dob)


@settings(max_examples=150, deadline=None)
@given(
    mrn=st.from_regex(r"[A-Z]{0,2}[1-9][0-9]{3,9}", fullmatch=True),
    zeros=st.integers(0, 3),
    sep=st.sampled_from(["", "-", " ", "."]),
    lower=st.booleans(),
)
def test_mrn_ignores_case_punctuation_and_leading_zeros(mrn: str, zeros: int, sep: str, lower: bool) -> None:
    patient = MARIA.model_copy(update={"mrn": mrn})
    zeros_before = "0" * zeros if mrn[0].isdigit() else ""  # leading zeros only make sense before digits
    typed = zeros_before + sep.join([mrn[: len(mrn) // 2], mrn[len(mrn) // 2 :]])
    assert check_field(patient, "mrn", typed.lower() if lower else typed) is FieldCheck.MATCH


@settings(max_examples=150, deadline=None)
@given(answers=st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=40)))
def test_check_answers_never_raises_and_is_consistent(answers: dict[str, str]) -> None:
    v = check_answers(MARIA, answers, today=TODAY, caller=CALLER, at=AT)
    assert set(v.methods) <= set(FIELDS) and set(v.failed) <= set(FIELDS)
    assert not set(v.methods) & set(v.failed)
    assert v.passed == ("dob" in v.methods and bool(set(v.methods) & {"address", "mrn", "phone_last4"}))


@given(text=st.text(max_size=30))
def test_normalize_id_is_idempotent(text: str) -> None:
    assert normalize_id(normalize_id(text)) == normalize_id(text)


# --------------------------------------------------------------------------- privacy mask
def test_mask_helpers() -> None:
    assert mask_name(2) == "Patient 2"
    assert name_for(MARIA, 3, masked=True) == "Patient 3" and name_for(MARIA, 3) == "Maria Garcia"
    assert dob_for(MARIA, masked=True) == MASKED_DOB == "••/••/••••" and dob_for(MARIA) == "03/14/1984"
    assert number_for(CALLER, masked=True) == MASKED_NUMBER == "(•••) •••-••••"
    assert number_for(CALLER) == "(408) 555-1212"
    assert number_for("(408) 555-1212", masked=True) == MASKED_NUMBER
    assert number_for("Front desk line", masked=True) == "Front desk line"
    assert mrn_for("00482913", masked=True) == MASKED_MRN == "•••••" and mrn_for(None) == "—"
