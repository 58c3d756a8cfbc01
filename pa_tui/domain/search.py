"""What an agent typed into the patient search, understood. Pure: no I/O.

:func:`classify_query` says what kind of search a query is (phone, date of
birth, MRN / patient id, name); :func:`interpret_query` also gives the hint the
search screen shows and ``search_text``: the query rewritten so the EHR's search
(:meth:`pa_tui.backends.base.EHR.search`) reads it the same way — a phone as
E.164, a date of birth as ISO ``YYYY-MM-DD``.

The rules agree with :func:`pa_tui.backends.fhir.ehr.classify_query`: ten or
more digits in phone punctuation is a phone number; one token holding digits is
an identifier; words (with an optional date of birth) are a name.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict

from pa_tui.domain.phones import DEFAULT_REGION, PhoneNumber, PhoneNumberError, parse_phone
from pa_tui.domain.verification import parse_dob

__all__ = ["ParsedQuery", "QueryKind", "classify_query", "interpret_query", "no_match_suggestion"]


class QueryKind(StrEnum):
    EMPTY = "empty"
    PHONE = "phone"
    DOB = "dob"
    ID = "id"  # MRN or the EHR's patient id
    NAME = "name"  # optionally narrowed by a date of birth
    UNCLEAR = "unclear"

    @property
    def searchable(self) -> bool:
        return self not in (QueryKind.EMPTY, QueryKind.UNCLEAR)


class ParsedQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: QueryKind
    text: str  # as typed, whitespace collapsed
    search_text: str = ""  # what to hand to EHR.search; "" when there is nothing to search
    hint: str
    phone: PhoneNumber | None = None
    dob: date | None = None
    name: str | None = None


_PHONE_CHARS_RE: Final = re.compile(r"^[\s\d+().\-]+$")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_NAME_WORD_RE: Final = re.compile(r"^[^\W\d_][\w'’.\-]*$", re.UNICODE)

_HELP: Final = 'Type a name ("Garcia, Maria" or "Maria Garcia"), a date of birth, a phone number or an MRN'


def _as_dob(text: str, today: date | None) -> date | None:
    # "03141984" alone is more likely an MRN than a date: no compact dates in search.
    return parse_dob(text, today, compact=False)


def _trailing_or_leading_dob(tokens: list[str], today: date | None) -> tuple[date | None, list[str]]:
    """A date of birth written at either end of a name query, and the remaining tokens."""
    for size in (3, 2, 1):
        if len(tokens) > size:
            d = _as_dob(" ".join(tokens[-size:]), today)
            if d:
                return d, tokens[:-size]
            d = _as_dob(" ".join(tokens[:size]), today)
            if d:
                return d, tokens[size:]
    return None, tokens


def interpret_query(text: str, *, today: date | None = None, region: str = DEFAULT_REGION) -> ParsedQuery:
    q = " ".join(text.split())
    if not q:
        return ParsedQuery(kind=QueryKind.EMPTY, text="", hint=_HELP)
    whole = _as_dob(q, today)
    if whole:
        return ParsedQuery(
            kind=QueryKind.DOB, text=q, search_text=whole.isoformat(), dob=whole, hint="Searching by date of birth"
        )
    digits = sum(c.isdigit() for c in q)
    if _PHONE_CHARS_RE.match(q):
        if digits >= 10 or (q.startswith("+") and digits >= 8):
            try:
                number = parse_phone(q, region)
            except PhoneNumberError as exc:
                return ParsedQuery(kind=QueryKind.UNCLEAR, text=q, hint=f"Not a phone number: {exc}")
            if isinstance(number, PhoneNumber):
                return ParsedQuery(
                    kind=QueryKind.PHONE,
                    text=q,
                    search_text=number.e164,
                    phone=number,
                    hint="Searching by phone number",
                )
        elif " " in q or "(" in q or q.startswith("+"):
            return ParsedQuery(
                kind=QueryKind.UNCLEAR, text=q, hint="Looks like part of a phone number: keep typing (10 digits)"
            )
    tokens = q.split(" ")
    if len(tokens) == 1 and digits and _ID_RE.match(q):
        return ParsedQuery(kind=QueryKind.ID, text=q, search_text=q, hint="Searching by MRN or patient id")
    dob, rest = _trailing_or_leading_dob(tokens, today)
    words: list[str] = []
    for tok in rest:
        if _NAME_WORD_RE.match(tok.strip(",")) or tok == ",":
            words.append(tok)
        else:
            return ParsedQuery(kind=QueryKind.UNCLEAR, text=q, hint=f"Can't tell what to search for. {_HELP}")
    name = " ".join(words).strip(" ,")
    if not name:
        return ParsedQuery(kind=QueryKind.UNCLEAR, text=q, hint=f"Can't tell what to search for. {_HELP}")
    if dob:
        return ParsedQuery(
            kind=QueryKind.NAME,
            text=q,
            search_text=f"{name} {dob.isoformat()}",
            name=name,
            dob=dob,
            hint="Searching by name and date of birth",
        )
    return ParsedQuery(kind=QueryKind.NAME, text=q, search_text=name, name=name, hint="Searching by name")


def classify_query(text: str, *, today: date | None = None, region: str = DEFAULT_REGION) -> QueryKind:
    """Phone, date of birth, MRN / patient id, name — or empty / unclear."""
    return interpret_query(text, today=today, region=region).kind


def no_match_suggestion(query: ParsedQuery, *, masked: bool = False) -> str:
    """What to say when a search found nobody: 'No patients match …' plus what to try next.

    With ``masked`` the query is not repeated (it may be a name, a date of birth or a number).
    """
    if masked:
        head = f"No patients match this {_KIND_WORDS.get(query.kind, 'search')}"
    else:
        shown = query.text if len(query.text) <= 40 else query.text[:39] + "…"
        head = f"No patients match “{shown}”"
    tip = {
        QueryKind.PHONE: "the number may not be on file — try the patient's name or date of birth",
        QueryKind.DOB: "check the month and day order (MM/DD/YYYY), or add the last name",
        QueryKind.ID: "check the MRN digits, or search by name and date of birth",
        QueryKind.NAME: 'try the last name only, "Last, First", or add the date of birth',
    }.get(query.kind, _HELP)
    return f"{head} — {tip}"


_KIND_WORDS: Final = {
    QueryKind.PHONE: "phone number",
    QueryKind.DOB: "date of birth",
    QueryKind.ID: "MRN",
    QueryKind.NAME: "name",
}
