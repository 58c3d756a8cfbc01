"""FHIR R4 REST client: reads and searches over httpx, with the failures an agent can act on.

- ``Accept: application/fhir+json``; searches follow ``Bundle.link[relation=next]``
  up to a page cap (next links that point at another host are re-pointed at the
  configured base URL, the usual symptom of a server behind a proxy).
- OperationOutcome bodies become one readable line in a :class:`BackendError`
  subclass: 401 :class:`AuthError`, 403 :class:`PermissionDenied`, 404
  :class:`NotFound`, 400/422 :class:`BadRequest`, 429 :class:`RateLimited`,
  5xx/timeouts/refused connections :class:`Unavailable` ("EHR is not answering").
- GETs are retried on 5xx, timeouts and short 429s, with exponential backoff and
  jitter (tenacity). Nothing else is retried.
- Logs carry resource types, ids, counts and status codes only: never a URL with
  its query, a name, a number or a date of birth. httpx's own request log (which
  prints full URLs) is held at WARNING unless the application configured it.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from pa_tui.backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from pa_tui.backends.fhir.parse import bundle_page, operation_outcome_message

__all__ = ["FHIR_JSON", "PROFILES", "FhirClient", "SearchResult", "VendorProfile", "vendor_profile"]

log = logging.getLogger("pa_tui.backends.fhir")

# httpx logs every request URL (with its query: phone numbers, names) at INFO.
for _name in ("httpx", "httpcore"):
    _logger = logging.getLogger(_name)
    if _logger.level == logging.NOTSET:
        _logger.setLevel(logging.WARNING)

FHIR_JSON: Final = "application/fhir+json"
_TYPE_RE: Final = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

Params = Mapping[str, str] | Sequence[tuple[str, str]]


# --------------------------------------------------------------------------- vendor profiles
@dataclass(frozen=True)
class VendorProfile:
    """How one EHR's FHIR API is asked things. Vendor quirks live here, not in the callers.

    ``phone_formats`` are the forms a number is searched in, in order (each a key
    of :data:`pa_tui.backends.fhir.ehr.PHONE_FORMATS`): servers that compare the
    stored string exactly need the format their registration desk used.
    """

    name: str
    display: str
    phone_param: str = "phone"
    phone_fallback_param: str | None = "telecom"  # searched as telecom=phone|<value> when phone is refused
    phone_formats: tuple[str, ...] = ("national_digits",)
    page_size: int = 50
    max_pages: int = 10


#: Known vendors. Only the generic profile is tuned yet; the others use its
#: behaviour until their quirks are added (and are named in messages).
PROFILES: Final[dict[str, VendorProfile]] = {
    "generic": VendorProfile("generic", "the EHR"),
    "epic": VendorProfile("epic", "Epic"),
    "oracle-health": VendorProfile("oracle-health", "Oracle Health"),
    "athena": VendorProfile("athena", "athenahealth"),
}


def vendor_profile(vendor: str | VendorProfile) -> VendorProfile:
    if isinstance(vendor, VendorProfile):
        return vendor
    try:
        return PROFILES[vendor]
    except KeyError:
        raise ValueError(f"unknown FHIR vendor '{vendor}' (known: {', '.join(PROFILES)})") from None


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SearchResult:
    """A search's matches across the pages followed."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    included: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    pages: int = 0
    truncated: bool = False  # more pages existed than the cap allowed
    warnings: list[str] = field(default_factory=list)  # warning-level OperationOutcome lines (PHI-scrubbed)


class _Retryable(Exception):
    """Carries an Unavailable/RateLimited through tenacity; unwrapped when retries are exhausted."""

    def __init__(self, error: Unavailable | RateLimited) -> None:
        super().__init__(error.title)
        self.error = error


# --------------------------------------------------------------------------- client
class FhirClient:
    """An async FHIR R4 client for one server. Close it with :meth:`aclose` (or ``async with``)."""

    def __init__(
        self,
        base_url: str,
        *,
        vendor: str | VendorProfile = "generic",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int = 2,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        max_retry_after: float = 10.0,
        max_pages: int | None = None,
    ) -> None:
        url = httpx.URL(base_url.rstrip("/") + "/")
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("the FHIR base URL must be an http(s) URL with a host")
        self.base_url = str(url)
        self.profile = vendor_profile(vendor)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.max_pages = max_pages or self.profile.max_pages
        self._backoff_base = max(0.0, backoff)
        self._backoff_max = max(0.0, max_backoff)
        self._max_retry_after = max_retry_after
        all_headers = {"Accept": FHIR_JSON, "User-Agent": "pa-tui"}
        all_headers.update(headers or {})
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            headers=all_headers,
            follow_redirects=True,
        )
        self._origin = (url.scheme, url.host, url.port)

    # ---------------------------------------------------------------- public API
    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """``GET [base]/{type}/{id}``. NotFound when the server does not know the id."""
        _check_type(resource_type)
        if not isinstance(resource_id, str) or not _ID_RE.match(resource_id):
            raise BadRequest(f"not a valid {resource_type} id", "FHIR ids are 1–64 letters, digits, '-' or '.'")
        what = f"{resource_type}/{resource_id}"
        body = await self._get(f"{resource_type}/{resource_id}", None, what=what, kind="read")
        if body.get("resourceType") != resource_type:
            raise _not_fhir(self.profile)
        log.debug("FHIR read %s ok", what)
        return body

    async def search(
        self,
        resource_type: str,
        params: Params | None = None,
        *,
        max_pages: int | None = None,
        count: int | None = None,
    ) -> SearchResult:
        """``GET [base]/{type}?…`` and the ``next`` pages after it (at most ``max_pages``)."""
        _check_type(resource_type)
        query = list(params.items()) if isinstance(params, Mapping) else list(params or ())
        if not any(k == "_count" for k, _ in query):
            query.append(("_count", str(count or self.profile.page_size)))
        limit = max_pages or self.max_pages
        what = f"{resource_type} search"
        resources: list[dict[str, Any]] = []
        included: list[dict[str, Any]] = []
        warnings: list[str] = []
        total: int | None = None
        pages = 0
        url: str | None = resource_type
        seen: set[str] = set()
        first = True
        while url is not None and pages < limit:
            body = await self._get(url, query if first else None, what=what, kind="search")
            first = False
            pages += 1
            if body.get("resourceType") == "OperationOutcome":
                message = operation_outcome_message(body)
                if message:
                    raise BadRequest(
                        f"{self.profile.display} refused the {what}: {message}", _FIX_BAD_SEARCH, status=200
                    )
                warnings.extend(filter(None, [operation_outcome_message(body, severities=("warning", "information"))]))
                break
            if body.get("resourceType") != "Bundle":
                raise _not_fhir(self.profile)
            page = bundle_page(body)
            for res in page.matches:
                (resources if res.get("resourceType") == resource_type else included).append(res)
            included.extend(page.included)
            for outcome in page.outcomes:
                line = operation_outcome_message(outcome, severities=("fatal", "error", "warning", "information"))
                if line:
                    warnings.append(line)
            if total is None:
                total = page.total
            url = self._follow(page.next_url) if page.next_url else None
            if url is not None:
                if url in seen:
                    log.warning("FHIR %s: the server's next link repeats a page; stopping", what)
                    url = None
                else:
                    seen.add(url)
        truncated = url is not None
        log.debug(
            "FHIR %s: %d resources in %d page(s)%s", what, len(resources), pages, " (truncated)" if truncated else ""
        )
        return SearchResult(resources, included, total, pages, truncated, warnings)

    async def capabilities(self) -> dict[str, Any]:
        """The server's CapabilityStatement (``GET [base]/metadata``)."""
        body = await self._get("metadata", None, what="capability statement", kind="metadata")
        if body.get("resourceType") != "CapabilityStatement":
            raise _not_fhir(self.profile)
        return body

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- transport
    def _follow(self, next_url: str) -> str:
        """An absolute next link on our server, or the same path and query re-pointed at it."""
        url = httpx.URL(self.base_url).join(next_url)
        if (url.scheme, url.host, url.port) != self._origin:
            log.warning("FHIR server returned a next link on another host; following it on the configured base URL")
            base = httpx.URL(self.base_url)
            url = url.copy_with(scheme=base.scheme, host=base.host, port=base.port)
        return str(url)

    async def _get(self, url: str, params: list[tuple[str, str]] | None, *, what: str, kind: str) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable) and self._may_retry(e.error)),
            before_sleep=lambda state: log.info(
                "FHIR %s failed (%s); retry %d of %d", what, _status_of(state), state.attempt_number, self.retries
            ),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._get_once(url, params, what=what, kind=kind)
        except _Retryable as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _may_retry(self, error: BackendError) -> bool:
        if isinstance(error, RateLimited):
            return error.retry_after <= self._max_retry_after
        return True

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and isinstance(exc.error, RateLimited):
            return min(exc.error.retry_after, self._max_retry_after)
        # exponential backoff with "full" jitter on top: base·2^(n-1) + U(0, base), capped
        delay = self._backoff_base * 2 ** (state.attempt_number - 1) + random.uniform(0, self._backoff_base)
        return min(delay, self._backoff_max)

    async def _get_once(
        self, url: str, params: list[tuple[str, str]] | None, *, what: str, kind: str
    ) -> dict[str, Any]:
        try:
            response = await self._http.get(url, params=params)
        except httpx.TimeoutException:
            log.warning("FHIR %s timed out after %.1f s", what, self.timeout)
            raise _Retryable(
                Unavailable(
                    f"EHR is not answering: {self.profile.display} did not reply within {self.timeout:g} s",
                    "The EHR is slow or unreachable. Check the network or VPN, or raise fhir.timeout; "
                    "the console keeps working and you can search again",
                )
            ) from None
        except httpx.TransportError as exc:
            log.warning("FHIR %s: cannot connect (%s)", what, type(exc).__name__)
            raise _Retryable(
                Unavailable(
                    f"EHR is not answering: cannot connect to {self.profile.display}",
                    "Check fhir.base_url and the network or VPN; the console keeps working without the EHR",
                )
            ) from None
        status = response.status_code
        log.debug("FHIR %s -> %d", what, status)
        if status >= 400:
            raise self._error(response, what=what, kind=kind)
        try:
            body = response.json()
        except ValueError:
            raise _not_fhir(self.profile) from None
        if not isinstance(body, dict):
            raise _not_fhir(self.profile)
        return body

    def _error(self, response: httpx.Response, *, what: str, kind: str) -> BackendError | _Retryable:
        status = response.status_code
        detail = _outcome_line(response)
        suffix = f": {detail}" if detail else ""
        ehr = self.profile.display
        log.log(
            logging.WARNING if status >= 500 or status in (401, 403, 429) else logging.INFO,
            "FHIR %s failed with HTTP %d",
            what,
            status,
        )
        if status == 401:
            return AuthError(
                f"{ehr} rejected pa-tui's credentials (401){suffix}",
                "Check or renew the FHIR credentials: `pa-tui auth set fhir` (a token may have expired)",
                status=status,
            )
        if status == 403:
            return PermissionDenied(
                f"{ehr} refused access to the {what} (403){suffix}",
                "Ask the EHR administrator to grant pa-tui's client read access (scope) for this resource",
                status=status,
            )
        if status == 404:
            if kind == "read":
                return NotFound(
                    f"{what} was not found in {ehr}",
                    "The record may have been merged or removed; search for the patient again",
                    status=status,
                )
            return NotFound(
                f"{ehr} has no FHIR endpoint for the {what} at the configured address (404)",
                "Check fhir.base_url: it usually ends in /fhir, /R4 or /api/FHIR/R4",
                status=status,
            )
        if status == 429:
            retry_after = _retry_after(response)
            return _Retryable(
                RateLimited(
                    f"{ehr} is rate limiting pa-tui (429)",
                    f"Wait about {retry_after:.0f} s before searching again",
                    retry_after=retry_after,
                )
            )
        if status >= 500:
            return _Retryable(
                Unavailable(
                    f"EHR is not answering: {ehr} reported a server error ({status}){suffix}",
                    "pa-tui retried; keep working and try again shortly, or check the EHR's status page",
                    status=status,
                )
            )
        if status in (400, 422):
            return BadRequest(f"{ehr} rejected the {what} ({status}){suffix}", _FIX_BAD_SEARCH, status=status)
        return BadRequest(
            f"{ehr} refused the {what} (HTTP {status}){suffix}", "Check fhir.base_url and fhir.vendor", status=status
        )


_FIX_BAD_SEARCH: Final = "Try another kind of search (name, date of birth, MRN), or check fhir.vendor matches the EHR"


def _check_type(resource_type: str) -> None:
    if not isinstance(resource_type, str) or not _TYPE_RE.match(resource_type):
        raise BadRequest("not a FHIR resource type", "Use a resource type such as Patient")


def _not_fhir(profile: VendorProfile) -> NotFound:
    return NotFound(
        f"{profile.display} did not answer with FHIR JSON",
        "Check fhir.base_url points at the FHIR R4 endpoint (not a web page or login portal)",
    )


def _outcome_line(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return operation_outcome_message(body) or operation_outcome_message(body, severities=("warning", "information"))
    return None


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 30.0  # an HTTP-date or nothing: be patient


def _status_of(state: RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Retryable):
        return f"HTTP {exc.error.status}" if exc.error.status else "no answer"
    return "error"
