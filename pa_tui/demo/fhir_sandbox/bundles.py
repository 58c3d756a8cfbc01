"""FHIR Bundles from disk (``--fhir-bundle PATH``): files or a folder, Synthea output included.

Synthea writes one ``transaction`` Bundle per patient (plus hospital and
practitioner Bundles) whose entries are named by ``urn:uuid:`` fullUrls and
point at each other with those URNs, or with conditional references such as
``Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999912345``. A server
processing the transaction resolves them; so does :func:`resources_from_bundles`:
every reference that names an entry of the loaded Bundles (by fullUrl, or by
identifier for a conditional reference) is rewritten to ``Type/id``. References
to anything else are kept as they are, as a server keeps external references.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pa_tui.demo.fhir_sandbox.store import ID_RE

__all__ = ["BundleError", "load_bundle_path", "resources_from_bundles"]

FhirJson = dict[str, Any]


class BundleError(ValueError):
    """A Bundle file that cannot be loaded; the message names the file and what is wrong."""


def load_bundle_path(path: str | os.PathLike[str]) -> list[FhirJson]:
    """The resources of a Bundle JSON file, or of every ``*.json`` Bundle in a folder (sorted by
    name, not recursive), with references between them rewritten to ``Type/id``.

    Raises :class:`BundleError` naming the file for a missing path, an empty folder,
    unreadable or non-JSON content, or JSON that is not a FHIR Bundle.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise BundleError(f"{p}: no such file or folder")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() == ".json")
        if not files:
            raise BundleError(f"{p}: the folder holds no .json files")
    else:
        files = [p]
    bundles: list[tuple[str, FhirJson]] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise BundleError(f"{f}: is not UTF-8 text, so not FHIR JSON") from None
        except OSError as exc:
            raise BundleError(f"{f}: cannot be read ({exc.strerror or exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BundleError(f"{f}: is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            kind = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
            raise BundleError(f"{f}: is not a FHIR Bundle (resourceType {kind!r}); give Bundle JSON files")
        if not isinstance(data.get("entry", []), list):
            raise BundleError(f"{f}: Bundle.entry is not a list")
        bundles.append((str(f), data))
    return resources_from_bundles(bundles)


def _entries(source: str, bundle: FhirJson) -> Iterable[tuple[str, FhirJson, FhirJson]]:
    for entry in bundle.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            continue  # e.g. a DELETE in a transaction
        if resource["resourceType"] == "Bundle":
            yield from _entries(source, resource)
            continue
        if resource["resourceType"] == "OperationOutcome" or (entry.get("search") or {}).get("mode") == "outcome":
            continue  # messages about a search, not data
        yield source, entry, resource


def _id_for(entry: FhirJson, resource: FhirJson, source: str, n: int) -> str:
    rid = resource.get("id")
    if isinstance(rid, str) and ID_RE.match(rid):
        return rid
    full = entry.get("fullUrl")
    if isinstance(full, str):
        tail = full.rsplit(":", 1)[-1] if full.startswith("urn:") else full.rstrip("/").rsplit("/", 1)[-1]
        if ID_RE.match(tail):
            return tail
    url = (entry.get("request") or {}).get("url")
    if isinstance(url, str) and "?" not in url and "/" in url:
        tail = url.rstrip("/").rsplit("/", 1)[-1]
        if ID_RE.match(tail):
            return tail
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pa-tui-bundle:{source}#{n}"))


def resources_from_bundles(bundles: Iterable[FhirJson | tuple[str, FhirJson]]) -> list[FhirJson]:
    """The resources of ``bundles`` (Bundles, or ``(name, Bundle)`` pairs), copied, each with an
    id, and with references to each other rewritten to ``Type/id``. OperationOutcome entries
    (search messages) are left out."""
    collected: list[tuple[str, FhirJson, FhirJson, str]] = []
    for n, item in enumerate(bundles):
        source, bundle = item if isinstance(item, tuple) else (f"bundle {n + 1}", item)
        for k, (src, entry, resource) in enumerate(_entries(source, bundle)):
            collected.append((src, entry, resource, _id_for(entry, resource, src, k)))
    by_url: dict[str, str] = {}
    by_identifier: dict[tuple[str, str], str] = {}
    for _, entry, resource, rid in collected:
        target = f"{resource['resourceType']}/{rid}"
        full = entry.get("fullUrl")
        if isinstance(full, str) and full:
            by_url[full] = target
        for ident in resource.get("identifier") or []:
            if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                system = ident.get("system") if isinstance(ident.get("system"), str) else ""
                by_identifier.setdefault((resource["resourceType"], f"{system}|{ident['value']}"), target)
                by_identifier.setdefault((resource["resourceType"], ident["value"]), target)

    def resolve(ref: str) -> str:
        found = by_url.get(ref)
        if found is not None:
            return found
        rtype, sep, query = ref.partition("?")
        if sep and rtype.isalpha() and query.startswith("identifier="):
            value = query.removeprefix("identifier=").replace("%7C", "|").replace("%7c", "|")
            return by_identifier.get((rtype, value), ref)
        return ref

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "reference" and isinstance(value, str):
                    out[key] = resolve(value)
                else:
                    out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    out: list[FhirJson] = []
    for _, _, resource, rid in collected:
        copy = rewrite(resource)
        copy.pop("id", None)
        out.append({"resourceType": copy.pop("resourceType"), "id": rid, **copy})
    return out
