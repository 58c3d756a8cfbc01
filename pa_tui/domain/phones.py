"""Phone numbers as telephony and EHRs send them.

Built on ``phonenumbers``. Everything that carries a number across a layer
boundary carries a :class:`PhoneNumber` (E.164 plus national digits), or
:data:`NO_CALLER_ID` when the network withheld it. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

import phonenumbers
from pydantic import BaseModel, ConfigDict

DEFAULT_REGION: Final = "US"

# What carriers, PBXs and CTI connectors put where a number would be when the
# caller withheld it. Compared case-insensitively after stripping punctuation.
_NO_CALLER_ID_WORDS: Final = frozenset(
    {
        "",
        "anonymous",
        "blocked",
        "restricted",
        "private",
        "privatenumber",
        "withheld",
        "unknown",
        "unavailable",
        "notavailable",
        "outofarea",
        "none",
        "null",
        "nocallerid",
        "0",
        "00",
        "000",
        "0000",
    }
)
# Placeholders some switches send as digits: all zeros, or "266696687" (ANONYMOUS on a keypad).
_PLACEHOLDER_DIGITS: Final = frozenset({"266696687", "8464647"})


class PhoneNumberError(ValueError):
    """A value that is neither a phone number nor a recognised "no caller ID" marker.

    The message says what was wrong without repeating the value (it may be PHI).
    """


class PhoneNumber(BaseModel):
    """A parsed, possible phone number. ``e164`` is the identity; compare on it."""

    model_config = ConfigDict(frozen=True)

    e164: str
    region: str | None = None
    national_digits: str
    valid: bool = True
    extension: str | None = None

    def __str__(self) -> str:  # never the raw input: always normalised
        return self.e164

    @property
    def human(self) -> str:
        return format_human(self)

    @property
    def last4(self) -> str:
        return self.national_digits[-4:]


class NoCallerId(BaseModel):
    """The network withheld or did not deliver the caller's number."""

    model_config = ConfigDict(frozen=True)

    reason: str = "no caller ID"

    def __str__(self) -> str:
        return "No caller ID"

    @property
    def human(self) -> str:
        return "No caller ID"


NO_CALLER_ID: Final = NoCallerId()


class UnreadableNumber(BaseModel):
    """A caller number arrived but is not a phone number. ``reason`` never repeats the value."""

    model_config = ConfigDict(frozen=True)

    reason: str

    def __str__(self) -> str:
        return "Unreadable number"

    @property
    def human(self) -> str:
        return "Unreadable caller number"


CallerNumber = PhoneNumber | NoCallerId | UnreadableNumber

_DIGITS_RE: Final = re.compile(r"\d")
_ALLOWED_RE: Final = re.compile(r"^[\s\d+().\-/#*xX;:=a-zA-Z,]*$")


def is_no_caller_id(raw: object) -> bool:
    if raw is None:
        return True
    text = str(raw).strip()
    key = re.sub(r"[\s_\-.()]", "", text).lower()
    if key in _NO_CALLER_ID_WORDS:
        return True
    digits = "".join(_DIGITS_RE.findall(text))
    if key.startswith("+"):
        key = key[1:]
    return key.isdigit() and (set(digits) == {"0"} or digits in _PLACEHOLDER_DIGITS)


def parse_phone(raw: object, region: str = DEFAULT_REGION) -> PhoneNumber | NoCallerId:
    """Parse whatever a telephony platform or EHR sent as a phone number.

    Accepts "(408) 555-1212", "408-555-1212", "+14085551212", "14085551212",
    "4085551212", "tel:+1-408-555-1212", integers, and extensions.
    Returns :data:`NO_CALLER_ID` for anonymous/blocked/restricted/empty.
    Raises :class:`PhoneNumberError` for anything that is not a possible number.
    """
    if is_no_caller_id(raw):
        return NO_CALLER_ID
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise PhoneNumberError(f"expected text or digits for a phone number, got {type(raw).__name__}")
    text = str(raw).strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    if not _ALLOWED_RE.match(text):
        raise PhoneNumberError("phone number contains characters that are not digits or punctuation")
    digits = "".join(_DIGITS_RE.findall(text))
    if not digits:
        raise PhoneNumberError("phone number contains no digits")
    if len(digits) < 3:
        raise PhoneNumberError("phone number has too few digits")
    if len(digits) > 17:
        raise PhoneNumberError("phone number has too many digits")
    candidate = text
    # "14085551212": a NANP number with its trunk prefix but no "+".
    if not text.startswith("+") and region == "US" and len(digits) == 11 and digits.startswith("1"):
        candidate = "+" + digits
    # "0014085551212" / "011..." international prefixes are handled by phonenumbers itself.
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberError(f"not a phone number ({_reason(exc)})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise PhoneNumberError(_impossible_reason(parsed))
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    national = str(parsed.national_number)
    if parsed.italian_leading_zero:
        national = "0" * (parsed.number_of_leading_zeros or 1) + national
    return PhoneNumber(
        e164=e164,
        region=phonenumbers.region_code_for_number(parsed),
        national_digits=national,
        valid=phonenumbers.is_valid_number(parsed),
        extension=parsed.extension or None,
    )


def try_parse_phone(raw: object, region: str = DEFAULT_REGION) -> PhoneNumber | NoCallerId | None:
    """Like :func:`parse_phone` but ``None`` where the value is not a number."""
    try:
        return parse_phone(raw, region)
    except PhoneNumberError:
        return None


def _reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "no digits in the right places",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, "unrecognised format")


def _impossible_reason(parsed: phonenumbers.PhoneNumber) -> str:
    result = phonenumbers.is_possible_number_with_reason(parsed)
    why = {
        phonenumbers.ValidationResult.TOO_SHORT: "too short",
        phonenumbers.ValidationResult.TOO_LONG: "too long",
        phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.ValidationResult.INVALID_LENGTH: "wrong number of digits",
    }.get(result, "not a possible number")
    return f"not a possible phone number ({why})"


def format_human(number: CallerNumber | None, region: str = DEFAULT_REGION) -> str:
    """"(408) 555-1212" for a number of the home region, "+44 20 7946 0018" otherwise."""
    if number is None or isinstance(number, NoCallerId):
        return "No caller ID"
    if isinstance(number, UnreadableNumber):
        return number.human
    parsed = phonenumbers.parse(number.e164, None)
    if number.region == region:
        text = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    else:
        text = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if number.extension:
        text += f" ext. {number.extension}"
    return text


def mask_phone(number: CallerNumber | None) -> str:
    """A number with all but its last four digits hidden: "(•••) •••-1212"."""
    if number is None or isinstance(number, NoCallerId):
        return "No caller ID"
    if isinstance(number, UnreadableNumber):
        return number.human
    return f"(•••) •••-{number.last4}"


def same_number(a: CallerNumber | None, b: CallerNumber | None) -> bool:
    """True when two parsed values are the same real number (extensions ignored)."""
    if not isinstance(a, PhoneNumber) or not isinstance(b, PhoneNumber):
        return False
    return a.e164 == b.e164
