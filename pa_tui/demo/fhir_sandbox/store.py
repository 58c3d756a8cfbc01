"""The sandbox's resource store and search indexes. Pure: no HTTP.

Every search parameter is answered from an index (dict look-ups and bisects,
never a scan of all patients), so a 100,000 patient population answers a phone
search in microseconds. An index is built the first time its parameter is
searched (or when :meth:`ResourceStore.prebuild` asks) and kept up to date as
resources are added or updated after that, so loading a large population is
quick and only the searches a client uses cost memory. Phone numbers are
indexed by their normalised E.164 form whatever format they were stored in,
which is what a well-behaved FHIR server does and many real ones do not.

A *record source* (a :class:`~pa_tui.demo.population.Population`) can be
attached: its per-patient records are added to the store when a search, read or
write first needs them — the patients a ``patient`` parameter names, the patient
an id belongs to, the patients with appointments in a searched date range, or,
for a search that names none of those, everyone. Results of those types are
ordered by id, so they do not depend on which patients were added first.
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
from typing import Any, Final, Protocol

from pa_tui.domain.phones import PhoneNumber, try_parse_phone

FhirJson = dict[str, Any]

ID_RE: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_DIGITS_RE: Final = re.compile(r"\D+")
_PHONE_PUNCTUATION: Final = str.maketrans("", "", " ()-.+/\t")
_EXT_RE: Final = re.compile(r"\s*(?:;\s*ext=|,|(?:ext\.?|extension|x|#)\s*)\s*\d+\s*$", re.IGNORECASE)
_DATE_RE: Final = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?$")
_DATETIME_RE: Final = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_EPOCH: Final = date(1970, 1, 1).toordinal()
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
    digits = text.translate(_PHONE_PUNCTUATION)
    if not (digits.isascii() and digits.isdigit()):  # letters, extensions, commas…: the careful way
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
        elif not bucket or bucket[-1] != pos:
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


def parse_fhir_instant(text: str) -> tuple[int, int, int, int, bool] | None:
    """A FHIR date/dateTime/instant as the ranges it covers:
    ``(first local day, last local day, first UTC second, last UTC second, has a time)``.

    Days are the calendar dates as written (a clinic's local date); seconds are UTC
    (a value without a time zone is taken as UTC, the server's zone).
    """
    m = _DATETIME_RE.match(text.strip()) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day, hour, minute, second, tz = m.groups()
    try:
        if hour is not None:
            d = date(int(year), int(month), int(day))
            h, mi, s = int(hour), int(minute), int(second or 0)
            if h > 23 or mi > 59 or s > 60:
                return None
            offset = 0
            if tz and tz != "Z":
                sign = -1 if tz[0] == "-" else 1
                offset = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
            secs = (d.toordinal() - _EPOCH) * 86_400 + h * 3600 + mi * 60 + s - offset
            span = 0 if second is not None else 59
            return d.toordinal(), d.toordinal(), secs, secs + span, True
    except ValueError:
        return None
    rng = parse_fhir_date(text)
    if rng is None:
        return None
    lo, hi = rng
    return lo, hi, (lo - _EPOCH) * 86_400, (hi - _EPOCH) * 86_400 + 86_399, False


def parse_reference(ref: str) -> tuple[str, str] | None:
    """ "Patient/1", "https://h/fhir/Patient/1" or "Patient/1/_history/2" → ("Patient", "1")."""
    parts = ref.strip().rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-2].isalpha() and ID_RE.match(parts[-1]):
        return parts[-2], parts[-1]
    return None


@dataclass
class _PointIndex:
    """dateTimes as ranges, sorted by start and by end for bisecting, in local days and UTC seconds."""

    entries: dict[int, list[tuple[int, int, int, int]]] = field(default_factory=dict)  # pos -> ranges
    _by: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # "dlo"/"dhi"/"slo"/"shi" -> (value, pos)
    _dirty: bool = False

    def add(self, rng: tuple[int, int, int, int], pos: int) -> None:
        self.entries.setdefault(pos, []).append(rng)
        self._dirty = True

    def remove(self, pos: int) -> None:
        if self.entries.pop(pos, None) is not None:
            self._dirty = True

    def _sorted(self, key: str) -> list[tuple[int, int]]:
        if self._dirty or not self._by:
            column = {"dlo": 0, "dhi": 1, "slo": 2, "shi": 3}
            self._by = {
                k: sorted((r[c], pos) for pos, ranges in self.entries.items() for r in ranges)
                for k, c in column.items()
            }
            self._dirty = False
        return self._by[key]

    def _between(self, key: str, lo: int | None, hi: int | None) -> set[int]:
        keys = self._sorted(key)
        start = 0 if lo is None else bisect_left(keys, (lo, -1))
        stop = len(keys) if hi is None else bisect_right(keys, (hi, 1 << 62))
        return {pos for _, pos in keys[start:stop]}

    def search(self, prefix: str, q: tuple[int, int, int, int, bool], every: Callable[[], set[int]]) -> set[int]:
        if q[4]:
            lo_key, hi_key, qlo, qhi = "slo", "shi", q[2], q[3]
        else:
            lo_key, hi_key, qlo, qhi = "dlo", "dhi", q[0], q[1]
        if prefix == "eq":
            inside = self._between(lo_key, qlo, qhi)
            return inside & self._between(hi_key, None, qhi)
        if prefix == "ne":
            return every() - self.search("eq", q, every)
        if prefix in ("gt", "sa"):
            return self._between(hi_key, qhi + 1, None)
        if prefix in ("lt", "eb"):
            return self._between(lo_key, None, qlo - 1)
        if prefix == "ge":
            return self._between(hi_key, qlo, None)
        if prefix == "le":
            return self._between(lo_key, None, qhi)
        raise SearchError("date", f"the '{prefix}' prefix is not supported on this date parameter")


class TypeStore:
    """All resources of one type, in insertion order, with their search indexes.

    Indexes are built per *group* (parameters sharing an index, e.g. ``phone`` and
    ``telecom``) on first use; :attr:`built` names the groups kept up to date.
    """

    def __init__(self, resource_type: str) -> None:
        self.type = resource_type
        self.items: list[FhirJson] = []
        self.pos_by_id: dict[str, int] = {}
        self.tokens: dict[str, dict[str, list[int]]] = {}  # param -> key -> positions
        self.strings: dict[str, _PrefixIndex] = {}
        self.dates: dict[str, _DateIndex] = {}
        self.points: dict[str, _PointIndex] = {}
        self.built: set[str] = set()
        self.sort_by_id = False  # results in id order (types filled lazily from a record source)

    def __len__(self) -> int:
        return len(self.items)

    def add_token(self, param: str, key: str, pos: int) -> None:
        # Positions arrive in increasing order (or all at once for one re-indexed resource),
        # so a repeat of the same position can only be the last one in a bucket.
        index = self.tokens.get(param)
        if index is None:
            index = self.tokens[param] = {}
        bucket = index.get(key)
        if bucket is None:
            index[key] = [pos]
        elif not bucket or bucket[-1] != pos:
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

    def point_index(self, param: str) -> _PointIndex:
        idx = self.points.get(param)
        if idx is None:
            idx = self.points[param] = _PointIndex()
        return idx

    def every(self) -> set[int]:
        return set(range(len(self.items)))

    def unindex(self, pos: int, resource: FhirJson, groups: Iterable[SearchParam]) -> None:
        """Take ``resource`` (at ``pos``) out of the indexes of ``groups``."""
        scratch = TypeStore(self.type)
        for param in groups:
            if param.index is not None:
                param.index(scratch, resource, pos)
        for name, keys in scratch.tokens.items():
            index = self.tokens.get(name, {})
            for key in keys:
                bucket = index.get(key)
                if bucket and pos in bucket:
                    bucket.remove(pos)
        for name, prefix_index in scratch.strings.items():
            target = self.strings.get(name)
            for key in prefix_index.by_key if target else ():
                bucket = target.by_key.get(key)  # type: ignore[union-attr]
                if bucket and pos in bucket:
                    bucket.remove(pos)
        for name, date_index in scratch.dates.items():
            target_dates = self.dates.get(name)
            if target_dates is None:
                continue
            for day in date_index.days:
                target_dates.days.get(day, set()).discard(pos)
            target_dates.partial = [e for e in target_dates.partial if e[2] != pos]
        for name in scratch.points:
            if name in self.points:
                self.points[name].remove(pos)


# --------------------------------------------------------------------------- search parameters
@dataclass(frozen=True)
class SearchParam:
    """One supported search parameter: how to index a resource and how to answer a value.

    ``index`` is ``None`` for a parameter answered from another's index (its ``group``).
    ``patient_scoped`` parameters name the patients whose records a search is about.
    ``sort`` gives, for ``_sort``, a resource's sort value (date parameters).
    ``in_records`` is false for a parameter the generated records never carry (a search
    using it need not generate any).
    """

    name: str
    type: str  # FHIR search param type: token | string | date | reference
    doc: str
    index: Callable[[TypeStore, FhirJson, int], None] | None
    search: Callable[[TypeStore, str, str | None], set[int]]  # (store, one OR-alternative, modifier)
    modifiers: frozenset[str] = frozenset()
    group: str | None = None
    patient_scoped: bool = False
    sort: Callable[[FhirJson], Any] | None = None
    in_records: bool = True  # False: generated records never match it, so a search on it generates none

    @property
    def index_group(self) -> str:
        return self.group or self.name


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


def _index_phone(store: TypeStore, res: FhirJson, pos: int) -> None:
    """The hot path (caller identification): phone numbers only, one token each."""
    telecom = res.get("telecom")
    if not isinstance(telecom, list):
        return
    index = store.tokens.get("phone")
    if index is None:
        index = store.tokens["phone"] = {}
    for cp in telecom:
        if not isinstance(cp, dict) or cp.get("system", "phone") not in ("phone", None, ""):
            continue
        value = cp.get("value")
        if not isinstance(value, str) or not value:
            continue
        key = phone_key(value) or digits_key(value)
        if key is None:
            continue
        bucket = index.get(key)
        if bucket is None:
            index[key] = [pos]
        elif not bucket or bucket[-1] != pos:
            bucket.append(pos)


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


def _index_plain_name(store: TypeStore, res: FhirJson, pos: int) -> None:
    """``name`` and ``alias`` strings (Organization, Location)."""
    idx = store.string_index("name")
    for text in [res.get("name"), *_list(res.get("alias"))]:
        if _str(text):
            for tok in fold_tokens(text):
                idx.add(tok, pos)


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
Extract = Callable[[FhirJson], Iterable[Any]]


def _at(*path: str) -> Extract:
    """Values at a dotted path, flattening lists on the way (``_at("participant", "actor")``)."""

    def extract(res: FhirJson) -> Iterator[Any]:
        level: list[Any] = [res]
        for key in path:
            nxt: list[Any] = []
            for node in level:
                value = node.get(key) if isinstance(node, dict) else None
                if isinstance(value, list):
                    nxt.extend(value)
                elif value is not None:
                    nxt.append(value)
            level = nxt
        return iter(level)

    return extract


def _reference_param(
    name: str, extract: Extract, targets: tuple[str, ...], *, doc: str | None = None, patient_scoped: bool = False
) -> SearchParam:
    """A reference parameter over the References ``extract`` yields, to resources of ``targets``."""
    target_text = " or ".join(targets)

    def index(store: TypeStore, res: FhirJson, pos: int) -> None:
        for ref in extract(res):
            parsed = parse_reference(_str(_dict(ref).get("reference")) or "")
            if parsed and parsed[0] in targets:
                store.add_token(name, f"{parsed[0]}/{parsed[1]}", pos)

    def search(store: TypeStore, value: str, modifier: str | None) -> set[int]:
        value = value.strip()
        keys: list[str] = []
        if "/" in value:
            parsed = parse_reference(value)
            if parsed and parsed[0] in targets:
                keys.append(f"{parsed[0]}/{parsed[1]}")
        elif value and ID_RE.match(value):
            keys = [f"{t}/{value}" for t in targets]
        if not keys:
            example = targets[0]
            raise SearchError(name, f"the value of '{name}' is not a reference to a {target_text} (id or {example}/id)")
        out: set[int] = set()
        for key in keys:
            out |= store.token(name, key)
        return out

    return SearchParam(
        name, "reference", doc or f"{target_text} the resource is about", index, search, patient_scoped=patient_scoped
    )


def _patient_param(extract: Extract, name: str = "patient", doc: str | None = None) -> SearchParam:
    return _reference_param(
        name, extract, ("Patient",), doc=doc or "The patient (id or Patient/id)", patient_scoped=True
    )


# ---- codes and concepts
def _code_param(name: str, element: str, allowed: Iterable[str], doc: str) -> SearchParam:
    allowed = frozenset(allowed)

    def index(store: TypeStore, res: FhirJson, pos: int) -> None:
        code = _str(res.get(element))
        if code:
            store.add_token(name, code, pos)

    def search(store: TypeStore, value: str, modifier: str | None) -> set[int]:
        code = value.rpartition("|")[2].strip()
        if code not in allowed:
            raise SearchError(name, f"the value of '{name}' must be one of: {', '.join(sorted(allowed))}")
        if modifier == "not":
            return store.every() - store.token(name, code)
        return store.token(name, code)

    return SearchParam(name, "token", doc, index, search, frozenset({"not"}))


def _concept_param(name: str, extract: Extract, doc: str) -> SearchParam:
    """A token parameter over CodeableConcepts: ``system|code``, ``code``, ``|code`` or ``system|``."""

    def index(store: TypeStore, res: FhirJson, pos: int) -> None:
        for concept in extract(res):
            for coding in _list(_dict(concept).get("coding")):
                coding = _dict(coding)
                code = _str(coding.get("code"))
                system = _str(coding.get("system")) or ""
                if code:
                    store.add_token(name, f"{system}|{code}", pos)
                    store.add_token(name, f"={code}", pos)
                if system:
                    store.add_token(name, f"{system}|", pos)

    def search(store: TypeStore, value: str, modifier: str | None) -> set[int]:
        value = value.strip()
        if not value or value == "|":
            raise SearchError(name, f"'{name}' needs a code (system|code, code or system|)")
        if "|" not in value:
            return store.token(name, f"={value}")
        return store.token(name, value)

    return SearchParam(name, "token", doc, index, search)


# ---- dateTimes
def _point_param(name: str, extract: Extract, doc: str) -> SearchParam:
    def index(store: TypeStore, res: FhirJson, pos: int) -> None:
        for value in extract(res):
            parsed = parse_fhir_instant(value) if isinstance(value, str) else None
            if parsed:
                store.point_index(name).add(parsed[:4], pos)

    def search(store: TypeStore, value: str, modifier: str | None) -> set[int]:
        value = value.strip()
        prefix = "eq"
        if value[:2] in _DATE_PREFIXES:
            prefix, value = value[:2], value[2:]
        parsed = parse_fhir_instant(value)
        if parsed is None or prefix == "ap":
            raise SearchError(
                name,
                f"the value of '{name}' is not a FHIR date or dateTime (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz, "
                "optionally prefixed eq/ne/gt/lt/ge/le/sa/eb)",
            )
        return store.point_index(name).search(prefix, parsed, store.every)

    def sort_key(res: FhirJson) -> Any:
        for value in extract(res):
            parsed = parse_fhir_instant(value) if isinstance(value, str) else None
            if parsed:
                return parsed[2]
        return None

    return SearchParam(name, "date", doc, index, search, sort=sort_key)


def date_query_ranges(value: str) -> tuple[str, tuple[int, int, int, int, bool]] | None:
    """(prefix, parsed range) of a date search value, or ``None`` if malformed."""
    value = value.strip()
    prefix = "eq"
    if value[:2] in _DATE_PREFIXES:
        prefix, value = value[:2], value[2:]
    parsed = parse_fhir_instant(value)
    return None if parsed is None else (prefix, parsed)


_ID_PARAM: Final = SearchParam("_id", "token", "Logical id of the resource", None, _search_id, group="_id")


def _params(*params: SearchParam) -> dict[str, SearchParam]:
    return {p.name: p for p in (_ID_PARAM, *params)}


_APPOINTMENT_STATUS: Final = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
)
_REQUEST_STATUS: Final = ("draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown")
_MED_STATUS: Final = ("active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown")
_MED_INTENT: Final = (
    "proposal",
    "plan",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
)

#: Search parameters per resource type.
SEARCH_PARAMS: Final[dict[str, dict[str, SearchParam]]] = {
    "Patient": _params(
        SearchParam(
            "phone",
            "token",
            "A phone number, in any format (matched after normalisation)",
            _index_phone,
            _search_phone,
        ),
        SearchParam("telecom", "token", "Any contact point: system|value or value", _index_telecom, _search_telecom),
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
            None,
            _string_search("family"),
            frozenset({"exact", "contains"}),
            group="name",
        ),
        SearchParam(
            "given",
            "string",
            "Given name (starts with; :exact, :contains)",
            None,
            _string_search("given"),
            frozenset({"exact", "contains"}),
            group="name",
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
    ),
    "RelatedPerson": _params(
        _patient_param(_at("patient"), doc="The patient this person is related to"),
        SearchParam(
            "identifier", "token", "An identifier: system|value or value", _index_identifier, _search_identifier
        ),
    ),
    "Appointment": _params(
        _patient_param(_at("participant", "actor"), doc="A patient participant (id or Patient/id)"),
        _point_param(
            "date",
            _at("start"),
            "Appointment start (eq, ne, gt, lt, ge, le, sa, eb; a date compares "
            "with the clinic's local date, a dateTime with the instant)",
        ),
        _code_param("status", "status", _APPOINTMENT_STATUS, "Appointment status (booked, fulfilled, …; :not)"),
        _reference_param("practitioner", _at("participant", "actor"), ("Practitioner",)),
        _reference_param("location", _at("participant", "actor"), ("Location",)),
    ),
    "ServiceRequest": _params(
        _patient_param(_at("subject")),
        _concept_param(
            "category", _at("category"), "Category: system|code or code (referral: http://snomed.info/sct|3457005)"
        ),
        _code_param("status", "status", _REQUEST_STATUS, "Request status (active, completed, …; :not)"),
    ),
    "Account": _params(
        _patient_param(_at("subject")),
        _code_param(
            "status", "status", ("active", "inactive", "entered-in-error", "on-hold", "unknown"), "Account status"
        ),
    ),
    "Coverage": _params(
        _patient_param(_at("beneficiary"), doc="The covered patient (as beneficiary)"),
        _patient_param(_at("beneficiary"), name="beneficiary", doc="The covered patient"),
        _code_param("status", "status", ("active", "cancelled", "draft", "entered-in-error"), "Coverage status"),
    ),
    "ExplanationOfBenefit": _params(
        _patient_param(_at("patient")),
        _point_param("created", _at("created"), "When the claim was adjudicated (date prefixes)"),
        _code_param("status", "status", ("active", "cancelled", "draft", "entered-in-error"), "Claim status"),
    ),
    "MedicationRequest": _params(
        _patient_param(_at("subject")),
        _code_param("status", "status", _MED_STATUS, "Prescription status (active, stopped, …; :not)"),
        _code_param("intent", "intent", _MED_INTENT, "Request intent (order, plan, …)"),
    ),
    "CareTeam": _params(
        _patient_param(_at("subject")),
        _code_param(
            "status", "status", ("proposed", "active", "suspended", "inactive", "entered-in-error"), "Care team status"
        ),
    ),
    "DocumentReference": _params(
        _patient_param(_at("subject")),
        _concept_param(
            "type",
            _at("type"),
            "Document type: system|code or code (LOINC, e.g. http://loinc.org|34748-4 telephone encounter note)",
        ),
        _point_param("date", _at("date"), "When the document was written (date prefixes)"),
        _code_param("status", "status", ("current", "superseded", "entered-in-error"), "Document status"),
        SearchParam(
            "identifier",
            "token",
            "An identifier: system|value or value (e.g. a client's own note id)",
            _index_identifier,
            _search_identifier,
            in_records=False,
        ),
    ),
    "Practitioner": _params(
        SearchParam(
            "name",
            "string",
            "Any part of the name (starts with; :exact, :contains)",
            _index_names,
            _string_search("name"),
            frozenset({"exact", "contains"}),
        ),
        SearchParam(
            "identifier", "token", "An identifier: system|value or value", _index_identifier, _search_identifier
        ),
    ),
    "PractitionerRole": _params(
        _reference_param("practitioner", _at("practitioner"), ("Practitioner",)),
        _reference_param("location", _at("location"), ("Location",)),
    ),
    "Location": _params(
        SearchParam(
            "name",
            "string",
            "Name or alias (starts with; :exact, :contains)",
            _index_plain_name,
            _string_search("name"),
            frozenset({"exact", "contains"}),
        ),
    ),
    "Organization": _params(
        SearchParam(
            "name",
            "string",
            "Name or alias (starts with; :exact, :contains)",
            _index_plain_name,
            _string_search("name"),
            frozenset({"exact", "contains"}),
        ),
        SearchParam(
            "identifier", "token", "An identifier: system|value or value", _index_identifier, _search_identifier
        ),
    ),
}

#: Result-shaping parameters every search accepts.
CONTROL_PARAMS: Final = frozenset({"_count", "_page", "_format", "_pretty", "_sort"})


def _group_owner(params: Mapping[str, SearchParam], group: str) -> SearchParam | None:
    owner = params.get(group)
    return owner if owner is not None and owner.index is not None else None


class RecordSource(Protocol):
    """Per-patient records generated on demand (what :class:`~pa_tui.demo.population.Population` offers)."""

    record_types: frozenset[str]
    by_id: Mapping[str, Any]

    def records(self, patient_id: str) -> Mapping[str, list[FhirJson]]: ...

    def patient_for(self, resource_type: str, resource_id: str) -> str | None: ...

    def appointment_patients(
        self, *, days: tuple[int, int] | None = None, seconds: tuple[int, int] | None = None
    ) -> set[str]: ...


class ResourceStore:
    """Every resource the sandbox serves, per type, indexed for the supported searches."""

    def __init__(self) -> None:
        self.types: dict[str, TypeStore] = {}
        self.sources: list[RecordSource] = []
        self._materialised: set[tuple[int, str]] = set()
        self._complete: set[int] = set()  # sources whose every patient is materialised

    # ---------------------------------------------------------------- adding
    def _type_store(self, rtype: str) -> TypeStore:
        store = self.types.get(rtype)
        if store is None:
            store = self.types[rtype] = TypeStore(rtype)
            store.sort_by_id = any(rtype in s.record_types for s in self.sources)
        return store

    def add(self, resource: FhirJson, *, replace: bool = False) -> bool:
        """Add one resource; with ``replace`` an existing one of that id is updated instead of refused.
        Returns whether it was new."""
        rtype = resource.get("resourceType")
        rid = resource.get("id")
        if not isinstance(rtype, str) or not isinstance(rid, str) or not ID_RE.match(rid):
            raise ValueError("a resource needs a resourceType and a valid id")
        store = self._type_store(rtype)
        if rid in store.pos_by_id:
            if not replace:
                raise ValueError(f"{rtype}/{rid} is already loaded")
            self.replace(resource)
            return False
        pos = len(store.items)
        store.items.append(resource)
        store.pos_by_id[rid] = pos
        if store.built:
            params = SEARCH_PARAMS.get(rtype, {})
            for group in store.built:
                owner = _group_owner(params, group)
                if owner is not None:
                    owner.index(store, resource, pos)  # type: ignore[misc]
        return True

    def replace(self, resource: FhirJson) -> FhirJson:
        """Put ``resource`` in place of the stored one with its type and id (re-indexed). Returns the old one."""
        rtype, rid = resource["resourceType"], resource["id"]
        store = self.types[rtype]
        pos = store.pos_by_id[rid]
        old = store.items[pos]
        params = SEARCH_PARAMS.get(rtype, {})
        owners = [o for o in (_group_owner(params, g) for g in store.built) if o is not None]
        store.unindex(pos, old, owners)
        store.items[pos] = resource
        for owner in owners:
            owner.index(store, resource, pos)  # type: ignore[misc]
        return old

    def add_all(self, resources: Iterable[FhirJson], *, replace: bool = False) -> int:
        """Add resources (Bundles are unpacked as they are); returns how many. The cyclic GC pauses meanwhile."""
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._add_all(resources, replace)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _add_all(self, resources: Iterable[FhirJson], replace: bool) -> int:
        n = 0
        for r in resources:
            if r.get("resourceType") == "Bundle":
                n += self._add_all(
                    (_dict(e).get("resource") for e in _list(r.get("entry")) if _dict(e).get("resource")), replace
                )
            else:
                self.add(r, replace=replace)
                n += 1
        return n

    def prebuild(self, resource_type: str, param: str) -> None:
        """Build the index a parameter uses now rather than on its first search."""
        p = SEARCH_PARAMS.get(resource_type, {}).get(param)
        if p is not None:
            self._ensure_index(self._type_store(resource_type), p)

    def _ensure_index(self, store: TypeStore, param: SearchParam) -> None:
        group = param.index_group
        if group in store.built:
            return
        owner = _group_owner(SEARCH_PARAMS.get(store.type, {}), group)
        store.built.add(group)
        if owner is None:
            return
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            index = owner.index
            for pos, item in enumerate(store.items):
                index(store, item, pos)  # type: ignore[misc]
        finally:
            if gc_was_enabled:
                gc.enable()

    # ---------------------------------------------------------------- record sources
    def attach(self, source: RecordSource) -> None:
        """Serve ``source``'s per-patient records, adding each patient's when first needed."""
        self.sources.append(source)
        for rtype in source.record_types:
            self._type_store(rtype).sort_by_id = True

    def materialise(self, patient_ids: Iterable[str]) -> None:
        """Add the records of these patients (from every attached source that knows them)."""
        for k, source in enumerate(self.sources):
            for pid in patient_ids:
                if (k, pid) in self._materialised or pid not in source.by_id:
                    continue
                self._materialised.add((k, pid))
                for items in source.records(pid).values():
                    for r in items:
                        store = self._type_store(r["resourceType"])
                        if r["id"] not in store.pos_by_id:
                            self.add(r)

    def materialise_all(self) -> None:
        for k, source in enumerate(self.sources):
            if k not in self._complete:
                gc_was_enabled = gc.isenabled()
                gc.disable()
                try:
                    self.materialise(list(source.by_id))
                finally:
                    if gc_was_enabled:
                        gc.enable()
                self._complete.add(k)

    def _lazy(self, resource_type: str) -> bool:
        return any(resource_type in s.record_types for s in self.sources)

    def _prepare_read(self, resource_type: str, resource_id: str) -> None:
        if not self._lazy(resource_type):
            return
        for source in self.sources:
            pid = source.patient_for(resource_type, resource_id) if resource_type in source.record_types else None
            if pid is not None:
                self.materialise([pid])

    def _prepare_search(self, resource_type: str, params: list[tuple[str, str]]) -> None:
        """Materialise every patient whose records could match (a superset is fine)."""
        if not self._lazy(resource_type) or all(k in self._complete for k in range(len(self.sources))):
            return
        supported = SEARCH_PARAMS.get(resource_type, {})
        candidates: set[str] | None = None

        def narrow(ids: set[str]) -> None:
            nonlocal candidates
            candidates = ids if candidates is None else candidates & ids

        date_params: list[str] = []
        for raw_name, value in params:
            name, _, modifier = raw_name.partition(":")
            param = supported.get(name)
            if param is not None and not param.in_records and modifier != "missing":
                return  # no generated record can match: generate none
            if param is None or modifier:
                continue
            if param.patient_scoped:
                ids = set()
                for alt in split_or(value):
                    parsed = parse_reference(alt) if "/" in alt else ("Patient", alt.strip())
                    if parsed and parsed[0] == "Patient":
                        ids.add(parsed[1])
                narrow(ids)
            elif name == "_id":
                ids = set()
                for alt in split_or(value):
                    for source in self.sources:
                        pid = source.patient_for(resource_type, alt.strip())
                        if pid is not None:
                            ids.add(pid)
                narrow(ids)
            elif resource_type == "Appointment" and name == "date":
                date_params.append(value)
        if candidates is None and date_params:
            for value in date_params:
                ids = set()
                for alt in split_or(value):
                    found = self._appointment_candidates(alt)
                    if found is None:
                        return self._prepare_fallback(date_params)
                    ids |= found
                narrow(ids)
        if candidates is None:
            self.materialise_all()
        else:
            self.materialise(sorted(candidates))

    def _prepare_fallback(self, date_params: list[str]) -> None:
        if all(date_query_ranges(a) is not None for v in date_params for a in split_or(v)):
            self.materialise_all()  # well-formed but open-ended (ne): everyone
        # malformed: the search itself reports it

    def _appointment_candidates(self, value: str) -> set[str] | None:
        parsed = date_query_ranges(value)
        if parsed is None:
            return None
        prefix, q = parsed
        lo, hi = (q[2], q[3]) if q[4] else (q[0], q[1])
        big = 1 << 40
        ranges = {
            "eq": (lo, hi),
            "ge": (lo, big),
            "gt": (hi + 1, big),
            "sa": (hi + 1, big),
            "le": (0, hi),
            "lt": (0, lo - 1),
            "eb": (0, lo - 1),
        }
        if prefix not in ranges:
            return None
        span = ranges[prefix]
        out: set[str] = set()
        for source in self.sources:
            if "Appointment" in source.record_types:
                out |= source.appointment_patients(**({"seconds": span} if q[4] else {"days": span}))
        return out

    # ---------------------------------------------------------------- reading
    def read(self, resource_type: str, resource_id: str) -> FhirJson | None:
        store = self.types.get(resource_type)
        pos = store.pos_by_id.get(resource_id) if store is not None else None
        if pos is None and self.sources:
            self._prepare_read(resource_type, resource_id)
            store = self.types.get(resource_type)
            pos = store.pos_by_id.get(resource_id) if store is not None else None
        return None if pos is None or store is None else store.items[pos]

    def supported_types(self) -> list[str]:
        return sorted(set(SEARCH_PARAMS) | set(self.types))

    def search(
        self,
        resource_type: str,
        params: list[tuple[str, str]],
        *,
        lenient: bool = False,
        sort: str | None = None,
    ) -> tuple[list[FhirJson], list[str]]:
        """Resources matching every parameter (AND), plus warnings.

        Results come in insertion order (id order for record-source types), or as ``sort``
        says (``_sort``: comma-separated date parameters or ``_id``, ``-`` for descending).
        ``params`` excludes the control parameters. Raises :class:`SearchError` for an
        unknown parameter or modifier (unless ``lenient``) or a malformed value.
        """
        supported = SEARCH_PARAMS.get(resource_type, {"_id": _ID_PARAM})
        sort_keys = self._sort_keys(resource_type, supported, sort) if sort else []
        if self.sources:
            self._prepare_search(resource_type, params)
        store = self.types.get(resource_type) or TypeStore(resource_type)
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
            self._ensure_index(store, param)
            hits: set[int] = set()
            for alternative in split_or(value):
                hits |= param.search(store, alternative, modifier or None)
            result = hits if result is None else result & hits
        positions = store.every() if result is None else result
        items = [store.items[p] for p in sorted(positions)]
        if store.sort_by_id:
            items.sort(key=lambda r: r["id"])
        for key, descending in reversed(sort_keys):  # stable sorts, last key first; missing values last
            present = [r for r in items if key(r) is not None]
            present.sort(key=key, reverse=descending)
            items = present + [r for r in items if key(r) is None]
        return items, warnings

    @staticmethod
    def _sort_keys(
        resource_type: str, supported: Mapping[str, SearchParam], sort: str
    ) -> list[tuple[Callable[[FhirJson], Any], bool]]:
        keys: list[tuple[Callable[[FhirJson], Any], bool]] = []
        for part in sort.split(","):
            part = part.strip()
            descending = part.startswith("-")
            name = part.lstrip("-")
            if name == "_id":
                keys.append((lambda r: r.get("id"), descending))
                continue
            param = supported.get(name)
            if param is None or param.sort is None:
                sortable = sorted(n for n, p in supported.items() if p.sort is not None) + ["_id"]
                raise SearchError(
                    "_sort",
                    f"cannot sort {resource_type} by '{name}'; sortable: {', '.join(sortable)}",
                    code="not-supported",
                )
            keys.append((param.sort, descending))
        return keys
