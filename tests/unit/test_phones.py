"""Phone parsing: every form EHRs and telephony send, and what is not a number."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pa_tui.domain.phones import (
    NO_CALLER_ID,
    NoCallerId,
    PhoneNumber,
    PhoneNumberError,
    format_human,
    mask_phone,
    parse_phone,
    same_number,
    try_parse_phone,
)

FORMS = [
    "(408) 555-1212",
    "408-555-1212",
    "+14085551212",
    "14085551212",
    "4085551212",
    "408.555.1212",
    "1-408-555-1212",
    "+1 (408) 555-1212",
    "tel:+1-408-555-1212",
    4085551212,
    "  408 555 1212  ",
]


@pytest.mark.parametrize("raw", FORMS)
def test_every_form_gives_the_same_e164(raw: object) -> None:
    number = parse_phone(raw)
    assert isinstance(number, PhoneNumber)
    assert number.e164 == "+14085551212"
    assert number.national_digits == "4085551212"
    assert number.region == "US"
    assert number.human == "(408) 555-1212"


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "anonymous", "Anonymous", "BLOCKED", "restricted", "Private", "unknown",
            "Unavailable", "WITHHELD", "0", "0000000000", "+0000", "266696687", "out-of-area"]
)
def test_withheld_numbers_are_no_caller_id(raw: object) -> None:
    assert parse_phone(raw) is NO_CALLER_ID
    assert str(parse_phone(raw)) == "No caller ID"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("hello", "no digits"),
        ("12", "too few digits"),
        ("(408) 555-12", "too short"),
        ("+999 1234567", "unknown country code"),
        ("4085551212; DROP TABLE", "not a phone number"),
        ("408<script>5551212", "characters"),
        ("1" * 20, "too many digits"),
    ],
)
def test_not_a_number_says_why_without_echoing_it(raw: str, why: str) -> None:
    with pytest.raises(PhoneNumberError) as info:
        parse_phone(raw)
    assert why in str(info.value)
    assert raw not in str(info.value)


def test_wrong_type_is_rejected() -> None:
    with pytest.raises(PhoneNumberError, match="expected text or digits"):
        parse_phone(4.5)
    with pytest.raises(PhoneNumberError):
        parse_phone(True)


def test_international_number_keeps_its_country() -> None:
    number = parse_phone("+44 20 7946 0018")
    assert isinstance(number, PhoneNumber)
    assert number.region == "GB"
    assert number.e164 == "+442079460018"
    assert format_human(number) == "+44 20 7946 0018"


def test_extension_is_kept_but_not_part_of_identity() -> None:
    a = parse_phone("408-555-1212 x23")
    b = parse_phone("4085551212")
    assert isinstance(a, PhoneNumber)
    assert a.extension == "23"
    assert same_number(a, b)
    assert format_human(a) == "(408) 555-1212 ext. 23"


def test_mask_and_no_caller_id_helpers() -> None:
    number = parse_phone("4085551212")
    assert mask_phone(number) == "(•••) •••-1212"
    assert mask_phone(NO_CALLER_ID) == "No caller ID"
    assert not same_number(NO_CALLER_ID, number)
    assert try_parse_phone("nonsense") is None


nanp = st.builds(
    lambda area, exch, line: f"{area}{exch}{line:04d}",
    st.integers(200, 999).map(str),
    st.integers(200, 999).map(str),
    st.integers(0, 9999),
)


@given(nanp, st.sampled_from(["{a}-{b}-{c}", "({a}) {b}-{c}", "+1{a}{b}{c}", "1{a}{b}{c}", "{a}.{b}.{c}", "{a}{b}{c}"]))
def test_any_nanp_number_round_trips_through_every_format(digits: str, template: str) -> None:
    raw = template.format(a=digits[:3], b=digits[3:6], c=digits[6:])
    number = parse_phone(raw)
    assert isinstance(number, PhoneNumber)
    assert number.e164 == "+1" + digits
    assert number.national_digits == digits
    again = parse_phone(number.human)
    assert isinstance(again, PhoneNumber) and again.e164 == number.e164


@given(st.one_of(st.text(max_size=40), st.integers(), st.none(), st.binary(max_size=20), st.floats()))
def test_parse_never_raises_anything_but_phone_number_error(raw: object) -> None:
    try:
        result = parse_phone(raw)
    except PhoneNumberError as exc:
        assert str(exc)
    else:
        assert isinstance(result, (PhoneNumber, NoCallerId))
        if isinstance(result, PhoneNumber):
            assert phonenumbers.is_possible_number(phonenumbers.parse(result.e164, None))
