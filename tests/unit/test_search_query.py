"""classify_query / interpret_query: what the agent typed into the search, and what to send the EHR."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pa_tui.backends.fhir.ehr import classify_query as fhir_classify
from pa_tui.domain.search import ParsedQuery, QueryKind, classify_query, interpret_query, no_match_suggestion

TODAY = date(2026, 11, 21)


@pytest.mark.parametrize(
    ("text", "kind", "search_text"),
    [
        ("", QueryKind.EMPTY, ""),
        ("   ", QueryKind.EMPTY, ""),
        ("(408) 555-1212", QueryKind.PHONE, "+14085551212"),
        ("408-555-1212", QueryKind.PHONE, "+14085551212"),
        ("4085551212", QueryKind.PHONE, "+14085551212"),
        ("+1 408 555 1212", QueryKind.PHONE, "+14085551212"),
        ("+44 20 7946 0018", QueryKind.PHONE, "+442079460018"),
        ("03/14/1984", QueryKind.DOB, "1984-03-14"),
        ("3/14/84", QueryKind.DOB, "1984-03-14"),
        ("1984-03-14", QueryKind.DOB, "1984-03-14"),
        ("14 Mar 1984", QueryKind.DOB, "1984-03-14"),
        ("March 14, 1984", QueryKind.DOB, "1984-03-14"),
        ("00482913", QueryKind.ID, "00482913"),
        ("MRN-123", QueryKind.ID, "MRN-123"),
        ("pat-1", QueryKind.ID, "pat-1"),
        ("Garcia", QueryKind.NAME, "Garcia"),
        ("Garcia, Maria", QueryKind.NAME, "Garcia, Maria"),
        ("maria  garcia", QueryKind.NAME, "maria garcia"),
        ("O'Brien", QueryKind.NAME, "O'Brien"),
        ("José Núñez", QueryKind.NAME, "José Núñez"),
        ("Garcia 3/14/84", QueryKind.NAME, "Garcia 1984-03-14"),
        ("14 Mar 1984 Garcia", QueryKind.NAME, "Garcia 1984-03-14"),
        ("(408) 555", QueryKind.UNCLEAR, ""),
        ("12ab 34", QueryKind.UNCLEAR, ""),
        ("+999 1234567890", QueryKind.UNCLEAR, ""),
    ],
)
def test_interpret_query(text: str, kind: QueryKind, search_text: str) -> None:
    parsed = interpret_query(text, today=TODAY)
    assert (parsed.kind, parsed.search_text) == (kind, search_text)
    assert classify_query(text, today=TODAY) is kind
    assert parsed.hint


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("(408) 555-1212", "Searching by phone number"),
        ("3/14/84", "Searching by date of birth"),
        ("00482913", "Searching by MRN or patient id"),
        ("Garcia", "Searching by name"),
        ("Garcia 3/14/84", "Searching by name and date of birth"),
        ("(408) 555", "Looks like part of a phone number: keep typing (10 digits)"),
        ("", 'Type a name ("Garcia, Maria" or "Maria Garcia"), a date of birth, a phone number or an MRN'),
    ],
)
def test_hints(text: str, hint: str) -> None:
    assert interpret_query(text, today=TODAY).hint == hint


def test_no_match_suggestions_per_kind_and_masked() -> None:
    def say(text: str, masked: bool = False) -> str:
        return no_match_suggestion(interpret_query(text, today=TODAY), masked=masked)

    assert (
        say("Garcia") == 'No patients match “Garcia” — try the last name only, "Last, First", or add the date of birth'
    )
    assert "check the month and day order" in say("3/14/84")
    assert "the number may not be on file" in say("4085551212")
    assert "check the MRN digits" in say("00482913")
    assert say("Garcia", masked=True).startswith("No patients match this name —")
    assert "4085551212" not in say("4085551212", masked=True)
    assert len(say("x" * 80)) < 200


# --------------------------------------------------------------------------- properties
_BACKEND_KIND = {QueryKind.PHONE: "phone", QueryKind.DOB: "date", QueryKind.ID: "id", QueryKind.NAME: "name"}


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40))
def test_never_raises_and_the_backend_reads_search_text_the_same_way(text: str) -> None:
    parsed = interpret_query(text, today=TODAY)
    assert isinstance(parsed, ParsedQuery)
    assert parsed.kind.searchable == bool(parsed.search_text)
    if parsed.kind.searchable:
        assert fhir_classify(parsed.search_text)[0] == _BACKEND_KIND[parsed.kind]


us_numbers = st.tuples(
    st.integers(2, 9), st.integers(0, 9), st.integers(0, 9), st.integers(2, 9), st.integers(0, 99), st.integers(0, 9999)
).map(lambda t: f"{t[0]}{t[1]}{t[2]}{t[3]}{t[4]:02d}{t[5]:04d}")
phone_formats = st.sampled_from(
    [
        lambda d: d,
        lambda d: f"({d[:3]}) {d[3:6]}-{d[6:]}",
        lambda d: f"{d[:3]}-{d[3:6]}-{d[6:]}",
        lambda d: f"{d[:3]}.{d[3:6]}.{d[6:]}",
        lambda d: f"+1 {d[:3]} {d[3:6]} {d[6:]}",
        lambda d: f"1{d}",
    ]
)


@settings(max_examples=150, deadline=None)
@given(digits=us_numbers, fmt=phone_formats)
def test_phone_numbers_in_any_us_format(digits: str, fmt: object) -> None:
    parsed = interpret_query(fmt(digits), today=TODAY)  # type: ignore[operator]
    assert parsed.kind is QueryKind.PHONE and parsed.search_text == f"+1{digits}"


date_formats = st.sampled_from(
    [
        lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
        lambda d: f"{d.month}/{d.day}/{d.year}",
        lambda d: d.isoformat(),
        lambda d: f"{d.day} {d:%b} {d.year}",
        lambda d: f"{d:%B} {d.day}, {d.year}",
    ]
)


@settings(max_examples=150, deadline=None)
@given(d=st.dates(min_value=date(1900, 1, 1), max_value=TODAY), fmt=date_formats)
def test_dates_of_birth(d: date, fmt: object) -> None:
    parsed = interpret_query(fmt(d), today=TODAY)  # type: ignore[operator]
    assert parsed.kind is QueryKind.DOB and parsed.dob == d and parsed.search_text == d.isoformat()


names = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(words=st.lists(names, min_size=1, max_size=3), comma=st.booleans())
def test_names(words: list[str], comma: bool) -> None:
    text = f"{words[0]}, {' '.join(words[1:])}" if comma and len(words) > 1 else " ".join(words)
    parsed = interpret_query(text, today=TODAY)
    assert parsed.kind is QueryKind.NAME and parsed.name


@settings(max_examples=200, deadline=None)
@given(mrn=st.from_regex(r"[0-9]{4,9}|[A-Z]{1,3}-?[0-9]{3,8}", fullmatch=True))
def test_identifiers(mrn: str) -> None:
    assert classify_query(mrn, today=TODAY) is QueryKind.ID
