"""A FHIR R4 server simulator: the synthetic population (and any Bundles) over real HTTP.

``FhirSandbox(population).app`` is a Starlette app that :class:`pa_tui.demo.host.SimulatorHost`
serves on 127.0.0.1. It answers what pa-tui's FHIR client asks, with the shapes
and errors a real server gives:

- ``GET {base}/metadata`` — a CapabilityStatement listing the types and search parameters;
- ``GET {base}/{type}/{id}`` — a read; 404 OperationOutcome for an unknown id;
- ``GET {base}/{type}?…`` — a ``searchset`` Bundle with ``total`` and ``link`` self/next/previous
  (the next link carries an opaque ``_page`` token); ``Patient`` supports ``phone``, ``telecom``,
  ``name``, ``family``, ``given``, ``birthdate``, ``identifier``, ``gender``, ``_id``;
  ``RelatedPerson`` supports ``patient``, ``identifier``, ``_id``. An unknown parameter or a
  malformed value is a 400 OperationOutcome naming the parameter (unless the request says
  ``Prefer: handling=lenient``, when it becomes a warning in the Bundle).

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
import uuid
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pa_tui.demo.fhir_sandbox.store import (
    CONTROL_PARAMS,
    ID_RE,
    SEARCH_PARAMS,
    ResourceStore,
    SearchError,
)

__all__ = ["FHIR_JSON", "FhirSandbox", "SearchError", "operation_outcome"]

log = logging.getLogger(__name__)

FHIR_JSON: Final = "application/fhir+json"
DEFAULT_COUNT: Final = 50
MAX_COUNT: Final = 500
FhirJson = dict[str, Any]


class _HasResources(Protocol):
    resources: dict[str, list[FhirJson]]


def operation_outcome(code: str, diagnostics: str, *, severity: str = "error") -> FhirJson:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


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
    """In-memory FHIR R4 server for demos and tests. See the module docstring."""

    def __init__(
        self,
        population: _HasResources | Iterable[FhirJson] | None = None,
        *,
        base_path: str = "/fhir",
        latency: float = 0.0,
        down: bool = False,
    ) -> None:
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.latency = latency
        self.down = down
        self.fail_next = 0
        self.store = ResourceStore()
        #: The last requests (method and path with query), oldest first: for tests and `sim` diagnostics.
        self.request_log: deque[str] = deque(maxlen=2000)
        if population is not None:
            self.load(population)
        self.app = Starlette(
            routes=[
                Route(
                    self.base_path + "/{path:path}",
                    self._dispatch,
                    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
                ),
                Route(self.base_path or "/", self._dispatch, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
            ]
        )

    # ------------------------------------------------------------------ data
    def load(self, source: _HasResources | Iterable[FhirJson]) -> int:
        """Add a population (anything with ``.resources``), resources or Bundles. Returns how many."""
        resources = source.resources if hasattr(source, "resources") else source
        if isinstance(resources, dict):
            resources = (r for items in resources.values() for r in items)
        return self.store.add_all(resources)

    def url(self, host_url: str) -> str:
        """The FHIR base URL where ``host_url`` (e.g. ``SimulatorHost.url("fhir")``) serves this sandbox."""
        return host_url.rstrip("/") + self.base_path

    # ------------------------------------------------------------------ HTTP
    async def _dispatch(self, request: Request) -> Response:
        self.request_log.append(
            f"{request.method} {request.url.path}{'?' + request.url.query if request.url.query else ''}"
        )
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self.down or self.fail_next > 0:
            if self.fail_next > 0:
                self.fail_next -= 1
            return self._outcome(503, "transient", "the FHIR server is temporarily unavailable")
        if request.method not in ("GET", "HEAD"):
            return self._outcome(405, "not-supported", f"{request.method} is not supported by this sandbox (read-only)")
        accept = request.headers.get("accept", "")
        if accept and "json" not in accept and "*/*" not in accept:
            return self._outcome(406, "not-supported", "this server answers in JSON only (application/fhir+json)")
        fmt = request.query_params.get("_format")
        if fmt and "json" not in fmt:
            return self._outcome(406, "not-supported", "this server answers in JSON only (_format=json)")
        parts = [p for p in request.path_params.get("path", "").split("/") if p]
        try:
            if parts == ["metadata"]:
                return self._json(200, self.capability_statement())
            if len(parts) == 1:
                return self._search(request, parts[0])
            if len(parts) == 2:
                return self._read(parts[0], parts[1])
        except SearchError as exc:
            return self._outcome(400, exc.code, str(exc))
        except Exception:  # a simulator must answer, not hang up: report a 500 as a server would
            log.exception("FHIR sandbox failed on a request")
            return self._outcome(500, "exception", "internal error in the FHIR sandbox")
        return self._outcome(404, "not-found", "no such endpoint on this FHIR server")

    def _read(self, rtype: str, rid: str) -> Response:
        if not self._known_type(rtype):
            return self._outcome(404, "not-supported", f"resource type '{rtype}' is not supported by this server")
        if not ID_RE.match(rid):
            return self._outcome(400, "invalid", "the id is not a valid FHIR id ([A-Za-z0-9-.], 1–64 characters)")
        resource = self.store.read(rtype, rid)
        if resource is None:
            return self._outcome(404, "not-found", f"{rtype}/{rid} is not known to this server")
        return self._json(
            200, resource, headers={"ETag": 'W/"1"', "Content-Location": f"{self.base_path}/{rtype}/{rid}/_history/1"}
        )

    def _search(self, request: Request, rtype: str) -> Response:
        if not self._known_type(rtype):
            return self._outcome(404, "not-supported", f"resource type '{rtype}' is not supported by this server")
        items = request.query_params.multi_items()
        lenient = "handling=lenient" in request.headers.get("prefer", "").replace(" ", "").lower()
        count = DEFAULT_COUNT
        offset = 0
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
            elif name in CONTROL_PARAMS:
                continue
            else:
                search_params.append((name, value))
        matches, warnings = self.store.search(rtype, search_params, lenient=lenient)
        total = len(matches)
        page = matches[offset : offset + count]
        base = str(request.base_url).rstrip("/") + self.base_path

        def link(relation: str, page_offset: int | None) -> FhirJson:
            query = [*search_params, ("_count", str(count))]
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

    def _known_type(self, rtype: str) -> bool:
        return rtype in SEARCH_PARAMS or rtype in self.store.types

    # ------------------------------------------------------------------ documents
    def capability_statement(self) -> FhirJson:
        resources = []
        for rtype in self.store.supported_types():
            params = SEARCH_PARAMS.get(rtype, {})
            resources.append(
                {
                    "type": rtype,
                    "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": [{"name": p.name, "type": p.type, "documentation": p.doc} for p in params.values()]
                    + [
                        {
                            "name": "_count",
                            "type": "number",
                            "documentation": f"Page size (default {DEFAULT_COUNT}, at most {MAX_COUNT})",
                        },
                    ],
                }
            )
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
            "rest": [
                {
                    "mode": "server",
                    "documentation": "Read-only. Phone searches match numbers whatever format they were stored in.",
                    "resource": resources,
                }
            ],
        }

    def _json(self, status: int, body: FhirJson, headers: dict[str, str] | None = None) -> Response:
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(content, status_code=status, media_type=FHIR_JSON, headers=headers)

    def _outcome(self, status: int, code: str, diagnostics: str) -> Response:
        return self._json(status, operation_outcome(code, diagnostics))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
