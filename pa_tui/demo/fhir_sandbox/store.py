"""The sandbox's resource store and search indexes. Pure: no HTTP.

Every search parameter is answered from an index built when resources are
added (dict look-ups and bisects, never a scan of all patients), so a 100,000
patient population answers a phone search in microseconds. Phone numbers are
indexed by their normalised E.164 form whatever format they were stored in,
which is what a well-behaved FHIR server does and many real ones do not.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from pa_tui.domain.phones import PhoneNumber, try_parse_phone

FhirJson = dict[str, Any]

ID_RE: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_DIGITS_RE: Final = re.compile(r"\D+")
_EXT_RE: Final = re.compile(r"\s*(?:;\s*ext=|,|(?:ext\.?|extension|x|#)\s*)\s*\d+\s*$", re.IGNORECASE)
_DATE_RE: Final = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?$")
_DATE_PREFIXES: Final = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
PHONE_LIKE_SYSTEMS: Final = frozenset({"phone", "sms", "fax", "pager"})


class SearchError(ValueError):
    """A search the sandbox must refuse: ``param`` names the parameter, ``code`` the FHIR issue type."""

    def __init__(self, param: str, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


# --------------------------------------------------------------------------- normalisation
def phone_key(raw: object) -> str | None:
    """The E.164 form of a stored or searched phone number, or ``None`` if it is not one.

    A fast path handles the NANP shapes EHRs hold ("(408) 555-1212", "408.555.1212",
    "+14085551212", "1-408-555-1212", with or without an extension); anything else
    goes through :func:`pa_tui.domain.phones.parse_phone`.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text[:4].lower() == "tel:":
        text = text[4:]
    text = _EXT_RE.sub("", text)
    digits = _DIGITS_RE.sub("", text)
    plus = text.startswith("+")
    if len(digits) == 10 and not plus and digits[0] in "23456789":
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "23456789":
        return "+" + digits
    parsed = try_parse_phone(raw)
    return parsed.e164 if isinstance(parsed, PhoneNumber) else None


def digits_key(raw: str) -> str | None:
    """Fallback key for values that are not phone numbers to ``phonenumbers`` (e.g. "0648352638")."""
    digits = _DIGITS_RE.sub("", raw)
    return "#" + digits if len(digits) >= 4 else None


@functools.lru_cache(maxsize=65_536)
def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a name part: "Peña" → "pena", "O'Brien" → "obrien"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isalnum()).casefold()


@functools.lru_cache(maxsize=65_536)
def fold_tokens(text: str) -> frozenset[str]:
    """The folded whole plus each word: "Murphy-Sullivan" → {"murphysullivan", "murphy", "sullivan"}."""
    out = {fold(text)}
    out.update(fold(word) for word in re.split(r"[\s\-]+", text))
    out.discard("")
    return frozenset(out)


def parse_fhir_date(text: str) -> tuple[int, int] | None:
    """A FHIR date/dateTime as the inclusive ordinal range it covers ("1980" → all of 1980)."""
    m = _DATE_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    try:
        if day is not None:
            d = date(year, int(month), int(day)).toordinal()
            return d, d
        if month is not None:
            mo = int(month)
            start = date(year, mo, 1)
            end = date(year + (mo == 12), mo % 12 + 1, 1)
            return start.toordinal(), end.toordinal() - 1
        return date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
    except ValueError:
        return None


def reference_id(value: str, resource_type: str) -> str | None:
    """ "123", "Patient/123" or "https://h/fhir/Patient/123" → "123" (``None`` if another type)."""
    value = value.strip()
    if "/" not in value:
        return value or None
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1] or None
    if len(parts) >= 4 and parts[-3] == "_history" and parts[-4] == resource_type:
        return parts[-2] or None  # Patient/123/_history/2
    return None


def split_or(value: str) -> list[str]:
    """FHIR's comma means OR; a backslash escapes a literal comma."""
    out, cur, esc = [], [], False
    for ch in value:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


# --------------------------------------------------------------------------- indexes
@dataclass
class _PrefixIndex:
    """Folded token → positions, answering "starts with" with a bisect over the sorted keys."""

    by_key: dict[str, list[int]] = field(default_factory=dict)
    _sorted: list[str] | None = None

    def add(self, key: str, pos: int) -> None:
        bucket = self.by_key.get(key)
        if bucket is None:
            self.by_key[key] = [pos]
            self._sorted = None
        elif bucket[-1] != pos:
            bucket.append(pos)

    def keys(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.by_key)
        return self._sorted

    def starts_with(self, prefix: str) -> set[int]:
        keys = self.keys()
        lo = bisect_left(keys, prefix)
        hi = bisect_left(keys, prefix + "\U0010ffff")
        out: set[int] = set()
        for k in keys[lo:hi]:
            out.update(self.by_key[k])
        return out

    def exact(self, key: str) -> set[int]:
        return set(self.by_key.get(key, ()))

    def contains(self, part: str) -> set[int]:
        out: set[int] = set()
        for k, v in self.by_key.items():
            if part in k:
                out.update(v)
        return out


@dataclass
class _DateIndex:
    """Birth dates: exact days in a sorted array (bisect), partial dates ("1980") in a short list."""

    days: dict[int, set[int]] = field(default_factory=dict)
    partial: list[tuple[int, int, int]] = field(default_factory=list)  # (lo, hi, pos)
    _sorted: list[int] | None = None

    def add(self, rng: tuple[int, int], pos: int) -> None:
        lo, hi = rng
        if lo == hi:
            self.days.setdefault(lo, set()).add(pos)
            self._sorted = None
        else:
            self.partial.append((lo, hi, pos))

    def _day_keys(self) -> list[int]:
        if self._sorted is None:
            self._sorted = sorted(self.days)
        return self._sorted

    def _days_between(self, lo: int, hi: int) -> set[int]:
        keys = self._day_keys()
        out: set[int] = set()
        for k in keys[bisect_left(keys, lo) : bisect_right(keys, hi)]:
            out |= self.days[k]
        return out

    def search(self, prefix: str, lo: int, hi: int, every: Callable[[], set[int]]) -> set[int]:
        big = 10**7  # beyond any ordinal
        if prefix == "eq":
            return self._days_between(lo, hi) | {p for a, b, p in self.partial if a >= lo and b <= hi}
        if prefix == "ne":
            return every() - self.search("eq", lo, hi, every)
        if prefix in ("gt", "sa"):
            return self._days_between(hi + 1, big) | {p for a, b, p in self.partial if b > hi}
        if prefix in ("lt", "eb"):
            return self._days_between(0, lo - 1) | {p for a, b, p in self.partial if a < lo}
        if prefix == "ge":
            return self._days_between(lo, big) | {p for a, b, p in self.partial if b >= lo}
        if prefix == "le":
            return self._days_between(0, hi) | {p for a, b, p in self.partial if a <= hi}
        if prefix == "ap":  # "approximately": within 10% of the gap to today, at least a year
            margin = max(366, (date.today().toordinal() - lo) // 10)
            return self._days_between(lo - margin, hi + margin) | {
                p for a, b, p in self.partial if b >= lo - margin and a <= hi + margin
            }
        raise AssertionError(prefix)


class TypeStore:
    """All resources of one type, in insertion order, with their search indexes."""

    def __init__(self, resource_type: str) -> None:
        self.type = resource_type
        self.items: list[FhirJson] = []
        self.pos_by_id: dict[str, int] = {}
        self.tokens: dict[str, dict[str, list[int]]] = {}  # param -> key -> positions (ascending)
        self.strings: dict[str, _PrefixIndex] = {}
        self.dates: dict[str, _DateIndex] = {}

    def __len__(self) -> int:
        return len(self.items)

    def add_token(self, param: str, key: str, pos: int) -> None:
        # Buckets are lists: positions arrive in increasing order, so a repeat can only be the last one.
        index = self.tokens.get(param)
        if index is None:
            index = self.tokens[param] = {}
        bucket = index.get(key)
        if bucket is None:
            index[key] = [pos]
        elif bucket[-1] != pos:
            bucket.append(pos)

    def token(self, param: str, key: str) -> set[int]:
        return set(self.tokens.get(param, {}).get(key, ()))

    def string_index(self, param: str) -> _PrefixIndex:
        idx = self.strings.get(param)
        if idx is None:
            idx = self.strings[param] = _PrefixIndex()
        return idx

    def date_index(self, param: str) -> _DateIndex:
        idx = self.dates.get(param)
        if idx is None:
            idx = self.dates[param] = _DateIndex()
        return idx

    def every(self) -> set[int]:
        return set(range(len(self.items)))


# --------------------------------------------------------------------------- search parameters
@dataclass(frozen=True)
class SearchParam:
    """One supported search parameter: how to index a resource and how to answer a value."""

    name: str
    type: str  # FHIR search param type: token | string | date | reference
    doc: str
    index: Callable[[TypeStore, FhirJson, int], None]
    search: Callable[[TypeStore, str, str | None], set[int]]  # (store, one OR-alternative, modifier)
    modifiers: frozenset[str] = frozenset()


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# ---- telecom (phone, telecom)
def _contact_keys(cp: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    system = _str(cp.get("system")) or ""
    value = _str(cp.get("value"))
    if value is None:
        return
    if system in PHONE_LIKE_SYSTEMS or not system:
        key = phone_key(value) or digits_key(value)
        if key:
            yield system or "phone", key
    if system not in PHONE_LIKE_SYSTEMS:
        yield system, value.strip().casefold()


def _index_telecom(store: TypeStore, res: FhirJson, pos: int) -> None:
    for cp in _list(res.get("telecom")):
        for system, key in _contact_keys(_dict(cp)):
            store.add_token("telecom", f"{system}|{key}", pos)
            store.add_token("telecom", f"|{key}", pos)  # any system
            if system == "phone":
                store.add_token("phone", key, pos)


def _phone_query_keys(param: str, value: str) -> list[str]:
    value = value.strip()
    if not value:
        raise SearchError(param, f"'{param}' needs a phone number")
    keys = []
    e164 = phone_key(value)
    if e164:
        keys.append(e164)
    raw = digits_key(value)
    if raw:
        keys.append(raw)
    if not keys or not re.fullmatch(r"[\s\d+().\-/xX#;:=a-zA-Z,]*", value) or not any(c.isdigit() for c in value):
        raise SearchError(param, f"the value of '{param}' is not a phone number")
    return keys


def _search_phone(store: TypeStore, value: str, modifier: str | None) -> set[int]:
    if "|" in value:  # tolerate the token form phone=|4085551212
        value = value.split("|", 1)[1]
    out: set[int] = set()
    for key in _phone_query_keys("phone", value):
        out |= store.token("phone", key)
    return out


def _search_telecom(store: TypeStore, value: str, modifier: str | None) -> set[int]:
    system, sep, val = value.partition("|")
    if not sep:
        system, val = "", value
    system, val = system.strip(), val.strip()
    if not val:
        raise SearchError("telecom", "'telecom' needs a value (system|value or value)")
    out: set[int] = set()
    if system in PHONE_LIKE_SYSTEMS:
        for key in _phone_query_keys("telecom", val):
            out |= store.token("telecom", f"{system}|{key}")
        return out
    if not system:  # any system: the value may be a number in any format, or an address
        with contextlib.suppress(SearchError):
            for key in _phone_query_keys("telecom", val):
                out |= store.token("telecom", f"|{key}")
    return out | store.token("telecom", f"{system}|{val.casefold()}")


# ---- names (name, family, given)
def _index_names(store: TypeStore, res: FhirJson, pos: int) -> None:
    name_idx, family_idx, given_idx = (
        store.string_index("name"),
        store.string_index("family"),
        store.string_index("given"),
    )
    for hn in _list(res.get("name")):
        hn = _dict(hn)
        family = _str(hn.get("family"))
        if family:
            for tok in fold_tokens(family):
                family_idx.add(tok, pos)
                name_idx.add(tok, pos)
        for g in _list(hn.get("given")):
            if _str(g):
                for tok in fold_tokens(g):
                    given_idx.add(tok, pos)
                    name_idx.add(tok, pos)
        for key in ("prefix", "suffix"):
            for part in _list(hn.get(key)):
                if _str(part):
                    for tok in fold_tokens(part):
                        name_idx.add(tok, pos)
        text = _str(hn.get("text"))
        if text:
            for tok in fold_tokens(text):
                name_idx.add(tok, pos)


def _string_search(param: str) -> Callable[[TypeStore, str, str | None], set[int]]:
    def search(store: TypeStore, value: str, modifier: str | None) -> set[int]:
        terms = [fold(t) for t in value.split()]
        terms = [t for t in terms if t]
        if not terms:
            raise SearchError(param, f"'{param}' needs some letters to search for")
        idx = store.string_index(param)
        result: set[int] | None = None
        for term in terms:
            if modifier == "exact":
                hits = idx.exact(term)
            elif modifier == "contains":
                hits = idx.contains(term)
            else:
                hits = idx.starts_with(term)
            result = hits if result is None else result & hits
            if not result:
                return set()
        return result or set()

    return search


# ---- birthdate
def _index_birthdate(store: TypeStore, res: FhirJson, pos: int) -> None:
    bd = _str(res.get("birthDate"))
    rng = parse_fhir_date(bd) if bd else None
    if rng:
        store.date_index("birthdate").add(rng, pos)


def _search_birthdate(store: TypeStore, value: str, modifier: str | None) -> set[int]:
    value = value.strip()
    prefix = "eq"
    if value[:2] in _DATE_PREFIXES:
        prefix, value = value[:2], value[2:]
    rng = parse_fhir_date(value)
    if rng is None:
        raise SearchError(
            "birthdate",
            "the value of 'birthdate' is not a FHIR date "
            "(YYYY, YYYY-MM or YYYY-MM-DD, optionally prefixed eq/ne/gt/lt/ge/le)",
        )
    return store.date_index("birthdate").search(prefix, rng[0], rng[1], store.every)


# ---- identifier
def _index_identifier(store: TypeStore, res: FhirJson, pos: int) -> None:
    for ident in _list(res.get("identifier")):
        ident = _dict(ident)
        value = _str(ident.get("value"))
        if value is None:
            continue
        system = _str(ident.get("system")) or ""
        store.add_token("identifier", f"{system}|{value}", pos)
        store.add_token("identifier", f"*|{value}", pos)
        store.add_token("identifier", f"{system}|*", pos)


def _search_identifier(store: TypeStore, value: str, modifier: str | None) -> set[int]:
    if not value.strip():
        raise SearchError("identifier", "'identifier' needs a value (system|value or value)")
    if "|" not in value:
        return store.token("identifier", f"*|{value.strip()}")
    system, _, val = value.partition("|")
    if not val:
        return store.token("identifier", f"{system}|*")
    return store.token("identifier", f"{system}|{val}")


# ---- gender
def _index_gender(store: TypeStore, res: FhirJson, pos: int) -> None:
    g = _str(res.get("gender"))
    if g:
        store.add_token("gender", g, pos)


def _search_gender(store: TypeStore, value: str, modifier: str | None) -> set[int]:
    value = value.split("|")[-1].strip()
    if value not in ("male", "female", "other", "unknown"):
        raise SearchError("gender", "the value of 'gender' must be male, female, other or unknown")
    return store.token("gender", value)


# ---- _id
def _search_id(store: TypeStore, value: str, modifier: str | None) -> set[int]:
    value = value.strip()
    if not ID_RE.match(value):
        raise SearchError("_id", "the value of '_id' is not a FHIR id")
    pos = store.pos_by_id.get(value)
    return set() if pos is None else {pos}


# ---- references
def _reference_param(name: str, element: str, target: str) -> SearchParam:
    def index(store: TypeStore, res: FhirJson, pos: int) -> None:
        ref = _str(_dict(res.get(element)).get("reference"))
        rid = reference_id(ref, target) if ref else None
        if rid:
            store.add_token(name, rid, pos)

    def search(store: TypeStore, value: str, modifier: str | None) -> set[int]:
        rid = reference_id(value, target)
        if rid is None or not ID_RE.match(rid):
            raise SearchError(name, f"the value of '{name}' is not a reference to a {target} (id or {target}/id)")
        return store.token(name, rid)

    return SearchParam(name, "reference", f"{target} the resource is about", index, search)


_ID_PARAM: Final = SearchParam("_id", "token", "Logical id of the resource", lambda s, r, p: None, _search_id)

#: Search parameters per resource type. Later record types add their entries here.
SEARCH_PARAMS: Final[dict[str, dict[str, SearchParam]]] = {
    "Patient": {
        p.name: p
        for p in (
            _ID_PARAM,
            SearchParam(
                "phone",
                "token",
                "A phone number, in any format (matched after normalisation)",
                _index_telecom,
                _search_phone,
            ),
            SearchParam(
                "telecom", "token", "Any contact point: system|value or value", lambda s, r, p: None, _search_telecom
            ),
            SearchParam(
                "name",
                "string",
                "Any part of any name (starts with; :exact, :contains)",
                _index_names,
                _string_search("name"),
                frozenset({"exact", "contains"}),
            ),
            SearchParam(
                "family",
                "string",
                "Family name (starts with; :exact, :contains)",
                lambda s, r, p: None,
                _string_search("family"),
                frozenset({"exact", "contains"}),
            ),
            SearchParam(
                "given",
                "string",
                "Given name (starts with; :exact, :contains)",
                lambda s, r, p: None,
                _string_search("given"),
                frozenset({"exact", "contains"}),
            ),
            SearchParam(
                "birthdate",
                "date",
                "Date of birth (eq, ne, gt, lt, ge, le prefixes)",
                _index_birthdate,
                _search_birthdate,
            ),
            SearchParam(
                "identifier",
                "token",
                "An identifier: system|value, |value, system| or value",
                _index_identifier,
                _search_identifier,
            ),
            SearchParam("gender", "token", "Administrative gender", _index_gender, _search_gender),
        )
    },
    "RelatedPerson": {
        p.name: p
        for p in (
            _ID_PARAM,
            _reference_param("patient", "patient", "Patient"),
            SearchParam(
                "identifier", "token", "An identifier: system|value or value", _index_identifier, _search_identifier
            ),
        )
    },
}

#: Result-shaping parameters every search accepts.
CONTROL_PARAMS: Final = frozenset({"_count", "_page", "_format", "_pretty"})


class ResourceStore:
    """Every resource the sandbox serves, per type, indexed for the supported searches."""

    def __init__(self) -> None:
        self.types: dict[str, TypeStore] = {}

    def add(self, resource: FhirJson) -> None:
        rtype = resource.get("resourceType")
        rid = resource.get("id")
        if not isinstance(rtype, str) or not isinstance(rid, str) or not ID_RE.match(rid):
            raise ValueError("a resource needs a resourceType and a valid id")
        store = self.types.get(rtype)
        if store is None:
            store = self.types[rtype] = TypeStore(rtype)
        if rid in store.pos_by_id:
            raise ValueError(f"{rtype}/{rid} is already loaded")
        pos = len(store.items)
        store.items.append(resource)
        store.pos_by_id[rid] = pos
        for param in SEARCH_PARAMS.get(rtype, {}).values():
            param.index(store, resource, pos)

    def add_all(self, resources: Iterable[FhirJson]) -> int:
        """Add resources (Bundles are unpacked); returns how many. The cyclic GC pauses meanwhile."""
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._add_all(resources)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _add_all(self, resources: Iterable[FhirJson]) -> int:
        n = 0
        for r in resources:
            if r.get("resourceType") == "Bundle":
                n += self._add_all(_dict(e).get("resource") for e in _list(r.get("entry")) if _dict(e).get("resource"))
            else:
                self.add(r)
                n += 1
        return n

    def read(self, resource_type: str, resource_id: str) -> FhirJson | None:
        store = self.types.get(resource_type)
        if store is None:
            return None
        pos = store.pos_by_id.get(resource_id)
        return None if pos is None else store.items[pos]

    def supported_types(self) -> list[str]:
        return sorted(set(SEARCH_PARAMS) | set(self.types))

    def search(
        self, resource_type: str, params: list[tuple[str, str]], *, lenient: bool = False
    ) -> tuple[list[FhirJson], list[str]]:
        """Resources matching every parameter (AND), in insertion order, plus warnings.

        ``params`` excludes the control parameters. Raises :class:`SearchError` for an
        unknown parameter or modifier (unless ``lenient``) or a malformed value.
        """
        store = self.types.get(resource_type) or TypeStore(resource_type)
        supported = SEARCH_PARAMS.get(resource_type, {"_id": _ID_PARAM})
        warnings: list[str] = []
        result: set[int] | None = None
        for raw_name, value in params:
            name, _, modifier = raw_name.partition(":")
            param = supported.get(name)
            if param is None:
                message = (
                    f"unknown search parameter '{name}' for {resource_type}; supported: {', '.join(sorted(supported))}"
                )
                if lenient:
                    warnings.append(message)
                    continue
                raise SearchError(name, message, code="not-supported")
            if modifier and modifier not in param.modifiers:
                message = f"modifier ':{modifier}' is not supported on '{name}'"
                if lenient:
                    warnings.append(message)
                    continue
                raise SearchError(raw_name, message, code="not-supported")
            hits: set[int] = set()
            for alternative in split_or(value):
                hits |= param.search(store, alternative, modifier or None)
            result = hits if result is None else result & hits
        positions = sorted(store.every() if result is None else result)
        return [store.items[p] for p in positions], warnings
