"""A FHIR R4 server simulator: the synthetic population (and any Bundles) over real HTTP.

``FhirSandbox(population).app`` is a Starlette app that :class:`pa_tui.demo.host.SimulatorHost`
serves on 127.0.0.1. It answers what pa-tui's FHIR client asks, with the shapes
and errors a real server gives:

- ``GET {base}/metadata`` — a CapabilityStatement listing every type, interaction and
  search parameter supported (see :data:`~pa_tui.demo.fhir_sandbox.store.SEARCH_PARAMS`);
- ``GET {base}/{type}/{id}`` — a read, with ``ETag`` from ``meta.versionId``; 404 OperationOutcome
  for an unknown id; ``GET {base}/{type}/{id}/_history/{n}`` — a version read;
- ``GET {base}/{type}?…`` — a ``searchset`` Bundle with ``total`` and ``link`` self/next/previous
  (the next link carries an opaque ``_page`` token), ``_count`` and ``_sort`` (date parameters
  and ``_id``). Patients by ``phone`` (any format), ``telecom``, ``name``, ``family``, ``given``,
  ``birthdate``, ``identifier``, ``gender``; records by ``patient`` and their own parameters. An
  unknown parameter or a malformed value is a 400 OperationOutcome naming the parameter (unless
  the request says ``Prefer: handling=lenient``, when it becomes a warning in the Bundle);
- ``POST {base}/DocumentReference`` — create (validated; 201 with ``Location``; 400 otherwise);
- ``PUT {base}/Appointment/{id}`` — update (validated, versioned; ``If-Match`` honoured: 412 on
  a stale version);
- with ``auth=True``, SMART Backend Services: ``{base}/.well-known/smart-configuration`` and
  ``POST /auth/token`` (see :mod:`.smart`), and a bearer token on every other FHIR request.

References carry a ``display`` (patient, practitioner and clinic names), so a client
needs no extra reads to show them.

Fault knobs, settable at any time from any thread: :attr:`latency` (seconds added
to every request), :attr:`down` (every request answers 503), :attr:`fail_next`
(the next N requests answer 503, then it recovers).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pa_tui.demo.fhir_sandbox.bundles import BundleError, load_bundle_path, resources_from_bundles
from pa_tui.demo.fhir_sandbox.smart import TOKEN_PATH, AuthFailure, OAuthError, SmartAuth
from pa_tui.demo.fhir_sandbox.store import (
    CONTROL_PARAMS,
    ID_RE,
    SEARCH_PARAMS,
    ResourceStore,
    SearchError,
    parse_reference,
)
from pa_tui.demo.fhir_sandbox.validate import validate

__all__ = [
    "FHIR_JSON",
    "BundleError",
    "FhirSandbox",
    "SearchError",
    "SmartAuth",
    "load_bundle_path",
    "operation_outcome",
    "resources_from_bundles",
]

log = logging.getLogger(__name__)

FHIR_JSON: Final = "application/fhir+json"
DEFAULT_COUNT: Final = 50
MAX_COUNT: Final = 500
FhirJson = dict[str, Any]


class _HasResources(Protocol):
    resources: dict[str, list[FhirJson]]


#: Writes the sandbox accepts: resource type → interaction.
WRITABLE: Final = {"DocumentReference": "create", "Appointment": "update"}


def operation_outcome(code: str, diagnostics: str, *, severity: str = "error", more: Iterable[str] = ()) -> FhirJson:
    """An OperationOutcome with one issue (plus one more issue per entry of ``more``)."""
    issues = [{"severity": severity, "code": code, "diagnostics": diagnostics}]
    issues += [{"severity": severity, "code": code, "diagnostics": d} for d in more]
    return {"resourceType": "OperationOutcome", "issue": issues}


def _encode_page(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_page(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        tag, _, num = raw.partition(":")
        offset = int(num)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SearchError("_page", "the '_page' token is not one this server issued") from None
    if tag != "o" or offset < 0:
        raise SearchError("_page", "the '_page' token is not one this server issued")
    return offset


class FhirSandbox:
    """In-memory FHIR R4 server for demos and tests. See the module docstring.

    ``population``: a :class:`~pa_tui.demo.population.Population` (its records are served
    lazily), resources, Bundles, or a path to Bundle JSON (file or folder). ``bundles``:
    more Bundle JSON to load beside it (``--fhir-bundle``). ``auth``: require SMART Backend
    Services tokens (register clients with :meth:`register_client`); ``token_lifetime``
    (seconds) and ``clock`` shape the tokens.
    """

    def __init__(
        self,
        population: _HasResources | Iterable[FhirJson] | str | os.PathLike[str] | None = None,
        *,
        base_path: str = "/fhir",
        latency: float = 0.0,
        down: bool = False,
        auth: bool = False,
        token_lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
        bundles: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
    ) -> None:
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.latency = latency
        self.down = down
        self.fail_next = 0
        self.clock = clock
        self.store = ResourceStore()
        self.auth: SmartAuth | None = (
            SmartAuth(token_lifetime=token_lifetime, clock=clock, resource_types=SEARCH_PARAMS) if auth else None
        )
        self._history: dict[tuple[str, str], list[FhirJson]] = {}
        #: The last requests (method and path with query), oldest first: for tests and `sim` diagnostics.
        self.request_log: deque[str] = deque(maxlen=2000)
        if population is not None:
            self.load(population)
        if bundles is not None:
            paths = [bundles] if isinstance(bundles, str | os.PathLike) else list(bundles)
            for path in paths:
                self.load(path)
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
        self.app = Starlette(
            routes=[
                Route(TOKEN_PATH, self._token, methods=methods),
                Route(self.base_path + "/{path:path}", self._dispatch, methods=methods),
                Route(self.base_path or "/", self._dispatch, methods=methods),
            ]
        )

    # ------------------------------------------------------------------ data
    def load(self, source: _HasResources | Iterable[FhirJson] | str | os.PathLike[str]) -> int:
        """Add a population, resources, Bundles, or Bundle JSON on disk (a file or a folder of
        them, see :func:`load_bundle_path`). Returns how many resources were added or updated.

        A population's per-patient records are served lazily. References between the
        entries of loaded Bundles are rewritten to ``Type/id``; a loaded resource with the
        id of one already served replaces it.
        """
        if isinstance(source, str | os.PathLike):
            return self.store.add_all(load_bundle_path(source), replace=True)
        if hasattr(source, "record_types") and hasattr(source, "records") and hasattr(source, "resources"):
            n = self.store.add_all(r for items in source.resources.values() for r in items)
            self.store.attach(source)  # type: ignore[arg-type]
            return n
        resources = source.resources if hasattr(source, "resources") else source
        if isinstance(resources, dict):
            resources = [r for items in resources.values() for r in items]
        items = list(resources)
        bundles = [r for r in items if r.get("resourceType") == "Bundle"]
        n = self.store.add_all(r for r in items if r.get("resourceType") != "Bundle")
        if bundles:
            n += self.store.add_all(resources_from_bundles(bundles), replace=True)
        return n

    def url(self, host_url: str) -> str:
        """The FHIR base URL where ``host_url`` (e.g. ``SimulatorHost.url("fhir")``) serves this sandbox."""
        return host_url.rstrip("/") + self.base_path

    def token_url(self, host_url: str) -> str:
        """The SMART token endpoint where ``host_url`` serves this sandbox (the assertions' ``aud``)."""
        return host_url.rstrip("/") + TOKEN_PATH

    def register_client(
        self, client_id: str, public_key: Any, kid: str | None = None, *, scopes: Iterable[str] | None = None
    ) -> None:
        """Register a SMART backend client's public key (PEM, JWK, JWKS or key object) under ``kid``.
        ``scopes`` limits the scopes it may request. Needs ``auth=True``."""
        if self.auth is None:
            raise RuntimeError("this sandbox was built without auth=True")
        self.auth.register_client(client_id, public_key, kid, scopes=scopes)

    def issue_token(self, client_id: str = "test-client", scope: str = "system/*.read system/*.write") -> str:
        """An access token without the JWT exchange, for tests of components other than the auth client."""
        if self.auth is None:
            raise RuntimeError("this sandbox was built without auth=True")
        return self.auth.issue(client_id, scope)

    # ------------------------------------------------------------------ HTTP
    async def _faults(self, request: Request) -> Response | None:
        self.request_log.append(
            f"{request.method} {request.url.path}{'?' + request.url.query if request.url.query else ''}"
        )
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self.down or self.fail_next > 0:
            if self.fail_next > 0:
                self.fail_next -= 1
            return self._outcome(503, "transient", "the FHIR server is temporarily unavailable")
        return None

    async def _token(self, request: Request) -> Response:
        fault = await self._faults(request)
        if fault is not None:
            return fault
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.auth is None:
            return self._plain(404, {"error": "invalid_request", "error_description": "SMART auth is not enabled"})
        if request.method != "POST":
            return self._plain(405, {"error": "invalid_request", "error_description": "use POST"}, headers)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return self._plain(
                400,
                {"error": "invalid_request", "error_description": "send application/x-www-form-urlencoded"},
                headers,
            )
        try:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return self._plain(400, {"error": "invalid_request", "error_description": "the body is not UTF-8"}, headers)
        token_url = str(request.base_url).rstrip("/") + TOKEN_PATH
        try:
            answer = self.auth.token(form, token_url)
        except OAuthError as exc:
            extra = {"WWW-Authenticate": 'Bearer error="invalid_client"'} if exc.status == 401 else {}
            return self._plain(exc.status, exc.body(), {**headers, **extra})
        return self._plain(200, answer, headers)

    async def _dispatch(self, request: Request) -> Response:
        fault = await self._faults(request)
        if fault is not None:
            return fault
        parts = [p for p in request.path_params.get("path", "").split("/") if p]
        method = request.method
        if parts == [".well-known", "smart-configuration"] and method in ("GET", "HEAD"):
            if self.auth is None:
                return self._outcome(404, "not-found", "SMART auth is not enabled on this sandbox")
            token_url = str(request.base_url).rstrip("/") + TOKEN_PATH
            return self._plain(200, self.auth.configuration(token_url))
        accept = request.headers.get("accept", "")
        if accept and "json" not in accept and "*/*" not in accept:
            return self._outcome(406, "not-supported", "this server answers in JSON only (application/fhir+json)")
        fmt = request.query_params.get("_format")
        if fmt and "json" not in fmt:
            return self._outcome(406, "not-supported", "this server answers in JSON only (_format=json)")
        if parts == ["metadata"] and method in ("GET", "HEAD"):
            return self._json(200, self.capability_statement(str(request.base_url).rstrip("/") + TOKEN_PATH))
        if self.auth is not None:
            interaction = {"POST": "create", "PUT": "update"}.get(method, "search" if len(parts) == 1 else "read")
            rtype = parts[0] if parts and self._known_type(parts[0]) else None
            try:
                self.auth.check(request.headers.get("authorization"), rtype, interaction)
            except AuthFailure as exc:
                return self._outcome(exc.status, exc.code, exc.message, headers={"WWW-Authenticate": exc.challenge})
        try:
            if method in ("GET", "HEAD"):
                if len(parts) == 1:
                    return self._search(request, parts[0])
                if len(parts) == 2:
                    return self._read(parts[0], parts[1])
                if len(parts) == 4 and parts[2] == "_history":
                    return self._vread(parts[0], parts[1], parts[3])
            elif method == "POST" and len(parts) == 1:
                return await self._create(request, parts[0])
            elif method == "PUT" and len(parts) == 2:
                return await self._update(request, parts[0], parts[1])
            elif method not in ("GET", "HEAD"):
                return self._outcome(
                    405,
                    "not-supported",
                    f"{method} is not supported here (this sandbox creates DocumentReference "
                    "and updates Appointment only)",
                )
        except SearchError as exc:
            return self._outcome(400, exc.code, str(exc))
        except Exception:  # a simulator must answer, not hang up: report a 500 as a server would
            log.exception("FHIR sandbox failed on a request")
            return self._outcome(500, "exception", "internal error in the FHIR sandbox")
        return self._outcome(404, "not-found", "no such endpoint on this FHIR server")

    def _check_type_and_id(self, rtype: str, rid: str) -> Response | None:
        if not self._known_type(rtype):
            return self._outcome(404, "not-supported", f"resource type '{rtype}' is not supported by this server")
        if not ID_RE.match(rid):
            return self._outcome(400, "invalid", "the id is not a valid FHIR id ([A-Za-z0-9-.], 1–64 characters)")
        return None

    def _read(self, rtype: str, rid: str) -> Response:
        bad = self._check_type_and_id(rtype, rid)
        if bad is not None:
            return bad
        resource = self.store.read(rtype, rid)
        if resource is None:
            return self._outcome(404, "not-found", f"{rtype}/{rid} is not known to this server")
        return self._json(200, resource, headers=self._version_headers(resource))

    def _vread(self, rtype: str, rid: str, vid: str) -> Response:
        bad = self._check_type_and_id(rtype, rid)
        if bad is not None:
            return bad
        current = self.store.read(rtype, rid)
        if current is None:
            return self._outcome(404, "not-found", f"{rtype}/{rid} is not known to this server")
        for resource in [current, *self._history.get((rtype, rid), [])]:
            if _version(resource) == vid:
                return self._json(200, resource, headers=self._version_headers(resource))
        return self._outcome(404, "not-found", f"{rtype}/{rid} has no version {vid!r}")

    def _version_headers(self, resource: FhirJson) -> dict[str, str]:
        vid = _version(resource)
        headers = {
            "ETag": f'W/"{vid}"',
            "Content-Location": f"{self.base_path}/{resource['resourceType']}/{resource['id']}/_history/{vid}",
        }
        updated = (resource.get("meta") or {}).get("lastUpdated")
        if isinstance(updated, str):
            try:
                stamp = datetime.fromisoformat(updated)
                headers["Last-Modified"] = formatdate(stamp.timestamp(), usegmt=True)
            except ValueError:
                pass
        return headers

    def _search(self, request: Request, rtype: str) -> Response:
        if not self._known_type(rtype):
            return self._outcome(404, "not-supported", f"resource type '{rtype}' is not supported by this server")
        items = request.query_params.multi_items()
        lenient = "handling=lenient" in request.headers.get("prefer", "").replace(" ", "").lower()
        count = DEFAULT_COUNT
        offset = 0
        sort: str | None = None
        search_params: list[tuple[str, str]] = []
        for name, value in items:
            if name == "_count":
                try:
                    count = int(value)
                except ValueError:
                    raise SearchError("_count", "'_count' must be a whole number") from None
                if count < 0:
                    raise SearchError("_count", "'_count' must not be negative")
                count = min(count, MAX_COUNT)
            elif name == "_page":
                offset = _decode_page(value)
            elif name == "_sort":
                sort = value
            elif name in CONTROL_PARAMS:
                continue
            else:
                search_params.append((name, value))
        matches, warnings = self.store.search(rtype, search_params, lenient=lenient, sort=sort)
        total = len(matches)
        page = matches[offset : offset + count]
        base = str(request.base_url).rstrip("/") + self.base_path

        def link(relation: str, page_offset: int | None) -> FhirJson:
            query = [*search_params, *([("_sort", sort)] if sort else []), ("_count", str(count))]
            if page_offset:
                query.append(("_page", _encode_page(page_offset)))
            return {"relation": relation, "url": f"{base}/{rtype}?{urlencode(query)}"}

        links = [link("self", offset)]
        if count and offset + count < total:
            links.append(link("next", offset + count))
        if offset > 0 and count:
            links.append(link("previous", max(0, offset - count)))
        entries: list[FhirJson] = [
            {"fullUrl": f"{base}/{rtype}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in page
        ]
        for warning in warnings:
            entries.append(
                {
                    "resource": operation_outcome("not-supported", warning, severity="warning"),
                    "search": {"mode": "outcome"},
                }
            )
        bundle: FhirJson = {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"lastUpdated": _now()},
            "type": "searchset",
            "total": total,
            "link": links,
        }
        if entries:
            bundle["entry"] = entries
        return self._json(200, bundle)

    # ------------------------------------------------------------------ writes
    async def _body(self, request: Request) -> tuple[Any, Response | None]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("application/fhir+json", "application/json", "application/json+fhir"):
            return None, self._outcome(415, "not-supported", "send the resource as application/fhir+json")
        try:
            return json.loads(await request.body()), None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, self._outcome(400, "structure", f"the body is not JSON ({exc})")

    def _invalid(self, problems: list[str]) -> Response:
        first, *rest = problems
        return self._json(400, operation_outcome("invalid", first, more=rest))

    def _written(self, request: Request, status: int, resource: FhirJson, headers: dict[str, str]) -> Response:
        prefer = request.headers.get("prefer", "").replace(" ", "").lower()
        if "return=minimal" in prefer:
            return Response(b"", status_code=status, headers=headers)
        if "return=operationoutcome" in prefer:
            verb = "created" if status == 201 else "updated"
            return self._json(
                status,
                operation_outcome(
                    "informational", f"{resource['resourceType']}/{resource['id']} {verb}", severity="information"
                ),
                headers=headers,
            )
        return self._json(status, resource, headers=headers)

    def _subject_problems(self, resource: FhirJson) -> list[str]:
        subject = resource.get("subject")
        ref = subject.get("reference") if isinstance(subject, dict) else None
        if not isinstance(ref, str):
            return ["DocumentReference.subject: a reference to the Patient is required by this server"]
        parsed = parse_reference(ref)
        if parsed is None or parsed[0] != "Patient":
            return [f"DocumentReference.subject: {ref!r} is not a Patient reference (Patient/id)"]
        if self.store.read("Patient", parsed[1]) is None:
            return [f"DocumentReference.subject: Patient/{parsed[1]} is not known to this server"]
        return []

    async def _create(self, request: Request, rtype: str) -> Response:
        if not self._known_type(rtype):
            return self._outcome(404, "not-supported", f"resource type '{rtype}' is not supported by this server")
        if WRITABLE.get(rtype) != "create":
            return self._outcome(
                405,
                "not-supported",
                f"POST (create) is not supported for {rtype} by this sandbox (it creates DocumentReference only)",
            )
        body, error = await self._body(request)
        if error is not None:
            return error
        problems = validate(body, rtype)
        if not problems:
            problems = self._subject_problems(body)
        if problems:
            return self._invalid(problems)
        subject = parse_reference(body["subject"]["reference"])
        if subject is not None:
            self.store.materialise([subject[1]])  # the patient's generated notes first
        condition = request.headers.get("if-none-exist")
        if condition:  # conditional create: only if nothing matches the search
            criteria = parse_qsl(condition.lstrip("?").split("?", 1)[-1], keep_blank_values=True)
            if not criteria:
                return self._outcome(400, "invalid", "If-None-Exist must hold search parameters (name=value&…)")
            matches, _ = self.store.search(rtype, criteria)
            if len(matches) > 1:
                return self._outcome(
                    412, "duplicate", f"If-None-Exist matches {len(matches)} resources; make the criteria selective"
                )
            if matches:
                return self._written(request, 200, matches[0], self._version_headers(matches[0]))
        rid = str(uuid.uuid4())
        meta = {k: v for k, v in (body.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
        resource = {
            "resourceType": rtype,
            "id": rid,
            "meta": {**meta, "versionId": "1", "lastUpdated": self._stamp()},
            **{k: v for k, v in body.items() if k not in ("resourceType", "id", "meta")},
        }
        self.store.add(resource)
        base = str(request.base_url).rstrip("/") + self.base_path
        headers = self._version_headers(resource)
        headers["Location"] = f"{base}/{rtype}/{rid}/_history/1"
        return self._written(request, 201, resource, headers)

    async def _update(self, request: Request, rtype: str, rid: str) -> Response:
        bad = self._check_type_and_id(rtype, rid)
        if bad is not None:
            return bad
        if WRITABLE.get(rtype) != "update":
            return self._outcome(
                405,
                "not-supported",
                f"PUT (update) is not supported for {rtype} by this sandbox (it updates Appointment only)",
            )
        body, error = await self._body(request)
        if error is not None:
            return error
        problems = validate(body, rtype)
        if isinstance(body, dict) and body.get("id") != rid:
            problems.insert(0, f"{rtype}.id: must be present and equal the id in the URL ({rid!r})")
        if problems:
            return self._invalid(problems)
        current = self.store.read(rtype, rid)
        if current is None:
            return self._outcome(404, "not-found", f"{rtype}/{rid} is not known to this server (update cannot create)")
        version = _version(current)
        if_match = request.headers.get("if-match")
        if if_match is not None and if_match.strip().removeprefix("W/").strip('"') != version:
            return self._outcome(
                412, "conflict", f"{rtype}/{rid} is at version {version}, not {if_match}; read it again and retry"
            )
        claimed = (body.get("meta") or {}).get("versionId")
        if claimed is not None and str(claimed) != version:
            return self._outcome(
                409, "conflict", f"{rtype}/{rid} is at version {version}, the update was based on version {claimed}"
            )
        meta = {k: v for k, v in (body.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
        resource = {
            "resourceType": rtype,
            "id": rid,
            "meta": {
                **meta,
                "versionId": str(int(version) + 1 if version.isdigit() else 2),
                "lastUpdated": self._stamp(),
            },
            **{k: v for k, v in body.items() if k not in ("resourceType", "id", "meta")},
        }
        self._history.setdefault((rtype, rid), []).insert(0, current)
        self.store.replace(resource)
        base = str(request.base_url).rstrip("/") + self.base_path
        headers = self._version_headers(resource)
        headers["Location"] = f"{base}/{rtype}/{rid}/_history/{resource['meta']['versionId']}"
        return self._written(request, 200, resource, headers)

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _known_type(self, rtype: str) -> bool:
        return rtype in SEARCH_PARAMS or rtype in self.store.types

    # ------------------------------------------------------------------ documents
    def capability_statement(self, token_url: str | None = None) -> FhirJson:
        resources = []
        for rtype in self.store.supported_types():
            params = SEARCH_PARAMS.get(rtype, {})
            interactions = [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}]
            write = WRITABLE.get(rtype)
            if write:
                interactions.append({"code": write})
            sortable = [p.name for p in params.values() if p.sort is not None] + ["_id"]
            entry: FhirJson = {
                "type": rtype,
                "documentation": f"_sort by {', '.join(sortable)} ('-' for descending).",
                "interaction": interactions,
                "versioning": "versioned-update" if write == "update" else "versioned",
                "readHistory": False,
            }
            if write == "update":
                entry["updateCreate"] = False
            if write == "create":
                entry["conditionalCreate"] = True
            entry["searchParam"] = [
                {"name": p.name, "type": p.type, "documentation": p.doc} for p in params.values()
            ] + [
                {
                    "name": "_count",
                    "type": "number",
                    "documentation": f"Page size (default {DEFAULT_COUNT}, at most {MAX_COUNT})",
                },
            ]
            resources.append(entry)
        rest: FhirJson = {
            "mode": "server",
            "documentation": "Reads and searches on every type; creates DocumentReference; updates Appointment. "
            "Phone searches match numbers whatever format they were stored in.",
        }
        if self.auth is not None:
            security: FhirJson = {
                "service": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                "code": "SMART-on-FHIR",
                            }
                        ]
                    }
                ],
                "description": "SMART Backend Services: client_credentials with a private_key_jwt assertion "
                "(RS384 or ES384); see .well-known/smart-configuration.",
            }
            if token_url:
                security["extension"] = [
                    {
                        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                        "extension": [{"url": "token", "valueUri": token_url}],
                    }
                ]
            rest["security"] = security
        rest["resource"] = resources
        return {
            "resourceType": "CapabilityStatement",
            "id": "pa-tui-sandbox",
            "name": "PaTuiFhirSandbox",
            "title": "pa-tui FHIR R4 sandbox",
            "status": "active",
            "experimental": True,
            "date": "2026-01-01",
            "publisher": "pa-tui",
            "description": "Synthetic patients for pa-tui demos and tests. No real patient data.",
            "kind": "instance",
            "software": {"name": "pa-tui FHIR sandbox"},
            "implementation": {"description": "pa-tui FHIR sandbox (synthetic data)"},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
            "rest": [rest],
        }

    def _json(self, status: int, body: FhirJson, headers: dict[str, str] | None = None) -> Response:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(content, status_code=status, media_type=FHIR_JSON, headers=headers)

    def _plain(self, status: int, body: FhirJson, headers: dict[str, str] | None = None) -> Response:
        content = json.dumps(body, separators=(",", ":")).encode()
        return Response(content, status_code=status, media_type="application/json", headers=headers)

    def _outcome(self, status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None) -> Response:
        return self._json(status, operation_outcome(code, diagnostics), headers=headers)


def _version(resource: FhirJson) -> str:
    vid = (resource.get("meta") or {}).get("versionId")
    return vid if isinstance(vid, str) and vid else "1"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
