"""A small in-memory FHIR server behind httpx.MockTransport, for the FHIR client/EHR tests.

Imported explicitly (``from test_fhir_sections_support import MiniFhir``); it holds no tests.
It answers reads, searches (crude but strict enough: every ``|``-separated part of a
value must occur in the resource), creates, updates with If-Match, and /metadata; it
records every request, and can delay or fail chosen resource types.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import httpx

from pa_tui.backends.fhir import FhirClient, FhirEhr

BASE = "https://ehr.example.org/fhir"
CONTROL = {"_count", "_page", "ah-practice", "_sort"}
Json = dict[str, Any]


def fhir_response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/fhir+json", **(headers or {})},
    )


def outcome(diagnostics: str, code: str = "invalid", severity: str = "error") -> Json:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


def bundle(resources: Iterable[Json], *, next_url: str | None = None, total: int | None = None) -> Json:
    items = list(resources)
    b: Json = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(items) if total is None else total,
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in items],
        "link": [{"relation": "self", "url": "x"}],
    }
    if next_url:
        b["link"].append({"relation": "next", "url": next_url})
    return b


class MiniFhir:
    """In-memory FHIR server. ``handler`` is an async MockTransport handler."""

    def __init__(self, *resources: Json, capabilities: Json | None = None, page_size: int | None = None) -> None:
        self.store: dict[str, dict[str, Json]] = {}
        self.requests: list[httpx.Request] = []
        self.delay: dict[str, float] = {}  # resource type -> seconds
        self.fail: dict[tuple[str, str], int] = {}  # (method, type) -> status
        self.capabilities = capabilities
        self.page_size = page_size
        self.conditional_create = True
        self.hooks: list[Callable[[httpx.Request], httpx.Response | None]] = []
        for r in resources:
            self.add(r)

    def add(self, resource: Json) -> Json:
        self.store.setdefault(resource["resourceType"], {})[resource["id"]] = resource
        return resource

    def get(self, rtype: str, rid: str) -> Json | None:
        return self.store.get(rtype, {}).get(rid)

    # ---------------------------------------------------------------- requests seen
    def sent(self, method: str | None = None, rtype: str | None = None) -> list[httpx.Request]:
        out = []
        for r in self.requests:
            parts = self._parts(r)
            if method and r.method != method:
                continue
            if rtype and (not parts or parts[0] != rtype):
                continue
            out.append(r)
        return out

    @staticmethod
    def _parts(request: httpx.Request) -> list[str]:
        path = request.url.path
        base_path = httpx.URL(BASE).path.rstrip("/")
        if path.startswith(base_path):
            path = path[len(base_path) :]
        return [p for p in path.split("/") if p]

    # ---------------------------------------------------------------- handler
    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for hook in self.hooks:
            answer = hook(request)
            if answer is not None:
                return answer
        parts = self._parts(request)
        rtype = parts[0] if parts else ""
        if rtype in self.delay:
            await asyncio.sleep(self.delay[rtype])
        status = self.fail.get((request.method, rtype))
        if status:
            return fhir_response(status, outcome(f"scripted failure {status}", "exception"))
        if parts == ["metadata"]:
            if self.capabilities is None:
                return fhir_response(404, outcome("no metadata here", "not-found"))
            return fhir_response(200, self.capabilities)
        if request.method == "GET" and len(parts) == 1:
            return self._search(request, rtype)
        if request.method == "GET" and len(parts) == 2:
            found = self.get(rtype, parts[1])
            if found is None:
                return fhir_response(404, outcome(f"{rtype}/{parts[1]} is not known", "not-found"))
            version = (found.get("meta") or {}).get("versionId", "1")
            return fhir_response(200, found, {"ETag": f'W/"{version}"'})
        if request.method == "POST" and len(parts) == 1:
            return self._create(request, rtype)
        if request.method == "PUT" and len(parts) == 2:
            return self._update(request, rtype, parts[1])
        return fhir_response(405, outcome("not supported", "not-supported"))

    def _matches(self, resource: Json, name: str, value: str) -> bool:
        text = json.dumps(resource)
        name = name.partition(":")[0]
        for alt in value.split(","):
            if name == "_id":
                if resource.get("id") == alt:
                    return True
                continue
            if name in ("patient", "subject", "beneficiary"):
                if f'"Patient/{alt}"' in text:
                    return True
                continue
            if name == "telecom" and alt.startswith("phone|"):
                alt = alt[6:]
            tokens = [t for t in alt.split("|") if t]
            if name in ("phone", "telecom"):
                digits = "".join(c for c in alt if c.isdigit())[-10:]
                flat = "".join(c for c in text if c.isdigit())
                if digits and digits in flat:
                    return True
                continue
            if all(t.lower() in text.lower() for t in tokens):
                return True
        return False

    def _search(self, request: httpx.Request, rtype: str) -> httpx.Response:
        items = list(self.store.get(rtype, {}).values())
        for name, value in request.url.params.multi_items():
            if name in CONTROL:
                continue
            items = [r for r in items if self._matches(r, name, value)]
        offset = int(request.url.params.get("_page", "0"))
        size = self.page_size or int(request.url.params.get("_count", "50"))
        page = items[offset : offset + size]
        next_url = None
        if offset + size < len(items):
            next_url = str(request.url.copy_merge_params({"_page": str(offset + size)}))
        return fhir_response(200, bundle(page, next_url=next_url, total=len(items)))

    def _create(self, request: httpx.Request, rtype: str) -> httpx.Response:
        condition = request.headers.get("if-none-exist")
        if condition and self.conditional_create:
            name, _, value = condition.partition("=")
            existing = [r for r in self.store.get(rtype, {}).values() if self._matches(r, name, value)]
            if existing:
                return fhir_response(200, existing[0])
        body = json.loads(request.content)
        n = len(self.store.get(rtype, {})) + 1
        body["id"] = f"{rtype.lower()[:3]}-new-{n}"
        body["meta"] = {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00Z"}
        self.add(body)
        return fhir_response(
            201, body, {"Location": f"{BASE}/{rtype}/{body['id']}/_history/1", "ETag": 'W/"1"'}
        )

    def _update(self, request: httpx.Request, rtype: str, rid: str) -> httpx.Response:
        current = self.get(rtype, rid)
        if current is None:
            return fhir_response(404, outcome("unknown", "not-found"))
        version = (current.get("meta") or {}).get("versionId", "1")
        match = request.headers.get("if-match")
        if match and match not in (f'W/"{version}"', f'"{version}"'):
            return fhir_response(412, outcome("version conflict", "conflict"))
        body = json.loads(request.content)
        body["meta"] = {"versionId": str(int(version) + 1)}
        self.add(body)
        return fhir_response(200, body, {"ETag": f'W/"{int(version) + 1}"'})

    # ---------------------------------------------------------------- clients
    def client(self, vendor: str = "generic", **kwargs: Any) -> FhirClient:
        kwargs.setdefault("backoff", 0.0)
        kwargs.setdefault("max_backoff", 0.0)
        return FhirClient(BASE, vendor=vendor, transport=httpx.MockTransport(self.handler), **kwargs)

    def ehr(self, vendor: str = "generic", *, client_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> FhirEhr:
        kwargs.setdefault("today", date(2026, 1, 1))
        return FhirEhr(self.client(vendor, **(client_kwargs or {})), **kwargs)


def capability_statement(patient_params: Iterable[str]) -> Json:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {"type": "Patient", "searchParam": [{"name": p, "type": "token"} for p in patient_params]},
                    {"type": "Appointment", "searchParam": [{"name": "patient", "type": "reference"}]},
                ],
            }
        ],
    }


def patient(
    pid: str,
    phone: str | None = "4085551212",
    *,
    use: str = "mobile",
    family: str = "Doe",
    given: str = "Jo",
    birth: str | None = "1980-01-02",
    **extra: Any,
) -> Json:
    p: Json = {"resourceType": "Patient", "id": pid, "name": [{"family": family, "given": [given]}], **extra}
    if phone:
        p["telecom"] = [{"system": "phone", "value": phone, "use": use}]
    if birth:
        p["birthDate"] = birth
    return p
