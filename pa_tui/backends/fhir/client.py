"""FHIR R4 REST client: reads, searches and writes over httpx, with the failures an agent can act on.

- ``Accept: application/fhir+json``; searches follow ``Bundle.link[relation=next]``
  up to a page cap (next links that point at another host are re-pointed at the
  configured base URL, the usual symptom of a server behind a proxy).
- Credentials come from an :class:`~pa_tui.backends.fhir.auth.Auth` (none, bearer,
  SMART Backend Services). A 401 asks the auth to sign in again once and repeats
  the request once; a second 401 is an :class:`AuthError` with the auth's fix.
- The :class:`~pa_tui.backends.fhir.profiles.VendorProfile` is obeyed here, at the
  one place every request passes: a Patient search the vendor does not allow is
  refused before it is sent (:class:`NotSupported`), parameters the vendor
  requires on every call are added (athenahealth ``ah-practice``), and the
  vendor's "too many matches" answer becomes :class:`TooManyMatches`.
- OperationOutcome bodies become one readable line in a :class:`BackendError`
  subclass: 401 :class:`AuthError`, 403 :class:`PermissionDenied`, 404
  :class:`NotFound`, 400/422 :class:`BadRequest`, 429 :class:`RateLimited`,
  5xx/timeouts/refused connections :class:`Unavailable` ("EHR is not answering").
- GETs are retried on 5xx, timeouts and short 429s, with exponential backoff and
  jitter (tenacity). Writes (POST, PUT) are never retried.
- Logs carry resource types, ids, counts and status codes only: never a URL with
  its query, a name, a number or a date of birth. httpx's own request log (which
  prints full URLs) is held at WARNING unless the application configured it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from pa_tui.backends.base import (
    AuthError,
    BackendError,
    BadRequest,
    NotFound,
    NotSupported,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from pa_tui.backends.fhir.auth import Auth, BearerAuth, NoAuth
from pa_tui.backends.fhir.parse import bundle_page, operation_outcome_message
from pa_tui.backends.fhir.profiles import PROFILES, VendorProfile, vendor_profile

__all__ = [
    "FHIR_JSON",
    "PROFILES",
    "FhirClient",
    "SearchResult",
    "TooManyMatches",
    "VendorProfile",
    "WriteResult",
    "vendor_profile",
]

log = logging.getLogger("pa_tui.backends.fhir")

# httpx logs every request URL (with its query: phone numbers, names) at INFO.
for _name in ("httpx", "httpcore"):
    _logger = logging.getLogger(_name)
    if _logger.level == logging.NOTSET:
        _logger.setLevel(logging.WARNING)

FHIR_JSON: Final = "application/fhir+json"
_TYPE_RE: Final = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID_RE: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_VERSION_RE: Final = re.compile(r'^(?:W/)?"?([^"]+)"?$')

Params = Mapping[str, str] | Sequence[tuple[str, str]]


class TooManyMatches(BadRequest):
    """The vendor refuses a search because it matches too many records (Oracle Health: 422 past 1,000)."""


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


@dataclass(frozen=True)
class WriteResult:
    """What a create or update left on the server."""

    id: str
    version_id: str | None = None
    resource: dict[str, Any] | None = None  # the server's copy, when it sent one back
    created: bool = True  # create: False when a conditional create found it already there; update: 201


class _Retryable(Exception):
    """Carries an Unavailable/RateLimited through tenacity; unwrapped when retries are exhausted."""

    def __init__(self, error: Unavailable | RateLimited) -> None:
        super().__init__(error.title)
        self.error = error


# --------------------------------------------------------------------------- client
class FhirClient:
    """An async FHIR R4 client for one server. Close it with :meth:`aclose` (or ``async with``).

    One instance is meant to be shared by every concurrent caller: one httpx
    connection pool, one token, one CapabilityStatement; no global state.
    """

    def __init__(
        self,
        base_url: str,
        *,
        vendor: str | VendorProfile = "generic",
        auth: Auth | None = None,
        practice_id: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int = 2,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        max_retry_after: float = 10.0,
        max_pages: int | None = None,
        max_connections: int = 50,
    ) -> None:
        url = httpx.URL(base_url.rstrip("/") + "/")
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("the FHIR base URL must be an http(s) URL with a host")
        self.base_url = str(url)
        self.profile = vendor_profile(vendor)
        headers = dict(headers or {})
        if auth is None:  # a bearer token passed as a header is a BearerAuth (and its 401 says so)
            key = next((k for k in headers if k.lower() == "authorization"), None)
            if key is not None and headers[key].lower().startswith("bearer "):
                auth = BearerAuth(SecretStr(headers.pop(key)))
        self.auth: Auth = auth if auth is not None else NoAuth()
        self._required: list[tuple[str, str]] = []
        if self.profile.practice_param:
            practice = (practice_id or "").strip()
            if not practice or not re.fullmatch(r"[A-Za-z0-9\-.]{1,32}", practice):
                raise ValueError(
                    f"{self.profile.display} needs its practice id: set fhir.practice_id (digits, e.g. 195900)"
                )
            self._required.append((self.profile.practice_param, self.profile.practice_value(practice)))
        self.practice_id = practice_id
        self.timeout = timeout
        self.retries = max(0, retries)
        self.max_pages = max_pages or self.profile.max_pages
        self._backoff_base = max(0.0, backoff)
        self._backoff_max = max(0.0, max_backoff)
        self._max_retry_after = max_retry_after
        all_headers = {"Accept": FHIR_JSON, "User-Agent": "pa-tui"}
        all_headers.update(headers)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            headers=all_headers,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._origin = (url.scheme, url.host, url.port)
        self._capabilities: dict[str, Any] | None = None
        self._search_params: dict[str, frozenset[str] | None] = {}
        self._caps_tried = False
        self._caps_lock: asyncio.Lock | None = None
        self._caps_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"FhirClient({self.base_url!r}, vendor={self.profile.name!r}, auth={type(self.auth).__name__})"

    # ---------------------------------------------------------------- reads
    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """``GET [base]/{type}/{id}``. NotFound when the server does not know the id."""
        resource, _ = await self.read_versioned(resource_type, resource_id)
        return resource

    async def read_versioned(self, resource_type: str, resource_id: str) -> tuple[dict[str, Any], str | None]:
        """A read and the resource's version id (``meta.versionId``, else the ETag)."""
        _check_type(resource_type)
        _check_id(resource_type, resource_id)
        what = f"{resource_type}/{resource_id}"
        response = await self._get(f"{resource_type}/{resource_id}", None, what=what, kind="read")
        body = self._json_body(response)
        if body.get("resourceType") != resource_type:
            raise _not_fhir(self.profile)
        log.debug("FHIR read %s ok", what)
        return body, _version_of(body, response)

    async def search(
        self,
        resource_type: str,
        params: Params | None = None,
        *,
        max_pages: int | None = None,
        count: int | None = None,
    ) -> SearchResult:
        """``GET [base]/{type}?…`` and the ``next`` pages after it (at most ``max_pages``).

        A Patient search the vendor profile does not allow raises :class:`NotSupported`
        (or :class:`BadRequest` for parameters that must not be combined) and is not sent.
        """
        _check_type(resource_type)
        query = list(params.items()) if isinstance(params, Mapping) else list(params or ())
        if resource_type == "Patient":
            self.profile.check_patient_search(k for k, _ in query)
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
            response = await self._get(url, query if first else None, what=what, kind="search")
            body = self._json_body(response)
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

    async def capabilities(self, *, refresh: bool = False) -> dict[str, Any]:
        """The server's CapabilityStatement (``GET [base]/metadata``), read once and kept."""
        if self._capabilities is not None and not refresh:
            return self._capabilities
        async with self._get_caps_lock():
            if self._capabilities is not None and not refresh:
                return self._capabilities
            self._caps_tried = True
            response = await self._get("metadata", None, what="capability statement", kind="metadata")
            body = self._json_body(response)
            if body.get("resourceType") != "CapabilityStatement":
                raise _not_fhir(self.profile)
            self._capabilities = body
            self._search_params.clear()
            return body

    async def search_params(self, resource_type: str) -> frozenset[str] | None:
        """The search parameters the CapabilityStatement lists for a type; ``None`` when it says nothing
        (no statement, the type not listed, or no parameters listed). Never raises: /metadata is read once."""
        if resource_type in self._search_params:
            return self._search_params[resource_type]
        caps = self._capabilities
        if caps is None and not self._caps_tried:
            try:
                caps = await self.capabilities()
            except BackendError as exc:
                log.info("FHIR capability statement unavailable (%s); using the profile's defaults", type(exc).__name__)
                caps = None
        names: set[str] | None = None
        for rest in _list(caps.get("rest") if caps else None):
            for res in _list(rest.get("resource") if isinstance(rest, dict) else None):
                if isinstance(res, dict) and res.get("type") == resource_type:
                    params = [p.get("name") for p in _list(res.get("searchParam")) if isinstance(p, dict)]
                    found = {p for p in params if isinstance(p, str) and p}
                    if found:
                        names = (names or set()) | found
        result = frozenset(names) if names else None
        self._search_params[resource_type] = result
        return result

    # ---------------------------------------------------------------- writes (never retried)
    async def create(
        self, resource_type: str, resource: Mapping[str, Any], *, if_none_exist: str | None = None
    ) -> WriteResult:
        """``POST [base]/{type}``; returns the new id and version. With ``if_none_exist`` (a search
        query such as ``identifier=sys|val``) it is a conditional create: a server that finds a match
        answers 200 and creates nothing. Not retried: the caller decides (see ``FhirEhr.write_note``)."""
        _check_type(resource_type)
        body = dict(resource)
        if body.get("resourceType", resource_type) != resource_type:
            raise BadRequest("the resource type does not match the create", "Create the resource under its own type")
        body["resourceType"] = resource_type
        body.pop("id", None)
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        what = f"{resource_type} create"
        response = await self._write("POST", resource_type, body, headers, what=what)
        created = not (if_none_exist and response.status_code == 200)
        result = self._write_result(response, resource_type, None, created=created)
        log.info("FHIR %s: %s/%s%s", what, resource_type, result.id, "" if result.created else " (already there)")
        return result

    async def update(self, resource: Mapping[str, Any], *, version_id: str | None = None) -> WriteResult:
        """``PUT [base]/{type}/{id}`` with ``If-Match`` when the version is known (``version_id``, else
        ``meta.versionId``): a resource changed meanwhile answers 409/412, never a lost update."""
        resource_type = resource.get("resourceType")
        resource_id = resource.get("id")
        if not isinstance(resource_type, str):
            raise BadRequest("not a FHIR resource", "An update needs a resourceType")
        _check_type(resource_type)
        _check_id(resource_type, resource_id)
        assert isinstance(resource_id, str)
        meta = resource.get("meta")
        version = version_id or (meta.get("versionId") if isinstance(meta, dict) else None)
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        if isinstance(version, str) and version:
            headers["If-Match"] = f'W/"{version}"'
        what = f"{resource_type} update"
        response = await self._write("PUT", f"{resource_type}/{resource_id}", dict(resource), headers, what=what)
        result = self._write_result(response, resource_type, resource_id, created=response.status_code == 201)
        log.info("FHIR %s: %s/%s", what, resource_type, result.id)
        return result

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> FhirClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- transport
    def _get_caps_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._caps_lock is None or self._caps_loop is not loop:
            self._caps_lock = asyncio.Lock()
            self._caps_loop = loop
        return self._caps_lock

    def _follow(self, next_url: str) -> str:
        """An absolute next link on our server, or the same path and query re-pointed at it."""
        url = httpx.URL(self.base_url).join(next_url)
        if (url.scheme, url.host, url.port) != self._origin:
            log.warning("FHIR server returned a next link on another host; following it on the configured base URL")
            base = httpx.URL(self.base_url)
            url = url.copy_with(scheme=base.scheme, host=base.host, port=base.port)
        return str(url)

    def _params(self, params: list[tuple[str, str]] | None) -> list[tuple[str, str]] | None:
        """The request's parameters plus those the vendor requires on every call."""
        if not self._required:
            return params
        out = [p for p in (params or []) if p[0] not in {k for k, _ in self._required}]
        return out + self._required

    async def _send(
        self,
        method: str,
        url: str,
        params: list[tuple[str, str]] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        *,
        what: str,
    ) -> httpx.Response:
        """One exchange with the server, signing in again once on a 401. Raises httpx errors as-is."""
        query = self._params(params)
        target: httpx.URL | str = url
        if query and httpx.URL(url).query:  # a next link: httpx would replace its query, not add to it
            target = httpx.URL(url).copy_merge_params(query)
            query = None
        auth_headers = dict(await self.auth.headers(self._http, self.base_url))
        response = await self._http.request(
            method, target, params=query, content=content, headers={**headers, **auth_headers}
        )
        if response.status_code == 401:
            fresh = await self.auth.refresh(self._http, self.base_url, auth_headers)
            if fresh is not None:
                log.info("FHIR %s: credentials refused (401); signing in again once", what)
                await response.aclose()
                response = await self._http.request(
                    method, target, params=query, content=content, headers={**headers, **dict(fresh)}
                )
        return response

    async def _get(self, url: str, params: list[tuple[str, str]] | None, *, what: str, kind: str) -> httpx.Response:
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
                    return await self._exchange("GET", url, params, None, {}, what=what, kind=kind)
        except _Retryable as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write(
        self, method: str, url: str, body: dict[str, Any], headers: Mapping[str, str], *, what: str
    ) -> httpx.Response:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            return await self._exchange(method, url, None, content, headers, what=what, kind="write")
        except _Retryable as exc:  # writes are never retried: the caller (the outbox) decides
            raise exc.error from None

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

    async def _exchange(
        self,
        method: str,
        url: str,
        params: list[tuple[str, str]] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        *,
        what: str,
        kind: str,
    ) -> httpx.Response:
        try:
            response = await self._send(method, url, params, content, headers, what=what)
        except (Unavailable, RateLimited) as exc:  # the token endpoint: retried like the server itself
            raise _Retryable(exc) from None
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
        return response

    def _json_body(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise _not_fhir(self.profile) from None
        if not isinstance(body, dict):
            raise _not_fhir(self.profile)
        return body

    def _write_result(
        self, response: httpx.Response, resource_type: str, resource_id: str | None, *, created: bool
    ) -> WriteResult:
        body: dict[str, Any] | None = None
        if response.content:
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and parsed.get("resourceType") == resource_type:
                body = parsed
        location = response.headers.get("location") or response.headers.get("content-location") or ""
        loc_id, loc_version = _parse_location(location, resource_type)
        rid = body.get("id") if body and isinstance(body.get("id"), str) else None
        rid = rid or loc_id or resource_id
        if not rid:
            raise BadRequest(
                f"{self.profile.display} accepted the {resource_type} but did not say its id",
                "Check fhir.vendor; the write may need to be checked in the EHR",
                status=response.status_code,
            )
        version = _version_of(body or {}, response) or loc_version
        return WriteResult(rid, version, body, created=created)

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
            return AuthError(f"{ehr} rejected pa-tui's credentials (401){suffix}", self.auth.rejection_fix, status=status)
        if status == 403:
            action = "write" if kind == "write" else "read"
            return PermissionDenied(
                f"{ehr} refused access to the {what} (403){suffix}",
                f"Ask the EHR administrator to grant pa-tui's client {action} access (scope) for this resource",
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
                    "pa-tui retried; keep working and try again shortly, or check the EHR's status page"
                    if kind != "write"
                    else "Nothing was retried; the write stays queued and is tried again later",
                    status=status,
                )
            )
        if kind == "search" and self.profile.too_many_status == status:
            limit = f" (more than {self.profile.too_many_limit:,})" if self.profile.too_many_limit else ""
            return TooManyMatches(
                f"{ehr} found too many matches for the {what}{limit}",
                "Narrow the search: add a date of birth, or more of the name",
                status=status,
            )
        if kind == "write":
            if status in (405, 501):
                return NotSupported(
                    f"{ehr} does not allow the {what} ({status}){suffix}",
                    "This EHR's FHIR API is read-only for this resource; make the change in the EHR itself",
                    status=status,
                )
            if status in (409, 412):
                return BadRequest(
                    f"The record changed in {ehr} meanwhile; the {what} was not applied ({status})",
                    "Open the record again and retry",
                    status=status,
                )
            return BadRequest(
                f"{ehr} rejected the {what} ({status}){suffix}",
                "Check fhir.vendor matches the EHR; the write was not applied",
                status=status,
            )
        if status in (400, 422):
            return BadRequest(f"{ehr} rejected the {what} ({status}){suffix}", _FIX_BAD_SEARCH, status=status)
        return BadRequest(
            f"{ehr} refused the {what} (HTTP {status}){suffix}", "Check fhir.base_url and fhir.vendor", status=status
        )


_FIX_BAD_SEARCH: Final = "Try another kind of search (name, date of birth, MRN), or check fhir.vendor matches the EHR"


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _check_type(resource_type: str) -> None:
    if not isinstance(resource_type, str) or not _TYPE_RE.match(resource_type):
        raise BadRequest("not a FHIR resource type", "Use a resource type such as Patient")


def _check_id(resource_type: str, resource_id: object) -> None:
    if not isinstance(resource_id, str) or not _ID_RE.match(resource_id):
        raise BadRequest(f"not a valid {resource_type} id", "FHIR ids are 1–64 letters, digits, '-' or '.'")


def _not_fhir(profile: VendorProfile) -> NotFound:
    return NotFound(
        f"{profile.display} did not answer with FHIR JSON",
        "Check fhir.base_url points at the FHIR R4 endpoint (not a web page or login portal)",
    )


def _version_of(body: Mapping[str, Any], response: httpx.Response) -> str | None:
    meta = body.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    if isinstance(version, str) and version:
        return version
    etag = response.headers.get("etag", "").strip()
    m = _VERSION_RE.match(etag) if etag else None
    return m.group(1) if m else None


def _parse_location(location: str, resource_type: str) -> tuple[str | None, str | None]:
    """``…/Type/id/_history/vid`` → (id, vid)."""
    parts = [p for p in httpx.URL(location).path.split("/") if p] if location else []
    for i in range(len(parts) - 1):
        if parts[i] == resource_type and _ID_RE.match(parts[i + 1]):
            version = parts[i + 3] if len(parts) > i + 3 and parts[i + 2] == "_history" else None
            return parts[i + 1], version
    return None, None


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
