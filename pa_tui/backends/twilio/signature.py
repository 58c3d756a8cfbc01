"""Twilio request signatures (``X-Twilio-Signature``): compute and verify.

Twilio signs every webhook it sends (status callbacks, incoming messages, call
TwiML fetches) so the receiver can tell it came from Twilio and was not
altered. The signature is the base64 of HMAC-SHA1, keyed with the account's
auth token, over:

- the full URL Twilio requested (scheme, host, port if any, path and query), then
- for form-encoded POSTs, every parameter name followed by its value, sorted by
  name (case-sensitive, byte order); a name sent several times contributes each
  of its (distinct) values, sorted.

Twilio is not consistent about the port: a URL configured as
``https://example.com/sms`` may be signed as ``https://example.com:443/sms``
and the other way round, so :func:`verify_signature` accepts the URL as given,
without its port, and with the scheme's default port (443 for https, 80 for
http) added — the same rule as Twilio's own helper libraries.

Webhooks with a JSON body carry ``bodySHA256=<hex sha256 of the body>`` in the
URL's query; the signature then covers the URL only, and the body must match
that hash. Pass the raw body (``str`` or ``bytes``) as ``params`` to verify one.

Nothing here logs, and no function puts the token or a parameter value in an
exception message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias
from urllib.parse import SplitResult, parse_qs, urlsplit, urlunsplit

from pydantic import SecretStr

__all__ = [
    "SIGNATURE_HEADER",
    "Params",
    "body_sha256",
    "compute_signature",
    "url_variants",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "X-Twilio-Signature"
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}

#: Form parameters as a mapping of name to one value or several (a name sent more than once).
Params: TypeAlias = Mapping[str, str | Iterable[str]] | Iterable[tuple[str, str]]


def _token_bytes(auth_token: str | SecretStr) -> bytes:
    raw = auth_token.get_secret_value() if isinstance(auth_token, SecretStr) else auth_token
    return raw.encode("utf-8")


def _grouped(params: Params | None) -> dict[str, set[str]]:
    """Name → distinct values, from a mapping, a multi-dict or ``(name, value)`` pairs."""
    grouped: dict[str, set[str]] = {}
    if not params:
        return grouped
    if isinstance(params, Mapping):
        getall = getattr(params, "getlist", None) or getattr(params, "getall", None)
        for name in params:
            value = getall(name) if getall is not None else params[name]
            values = [value] if isinstance(value, str) else list(value)
            grouped.setdefault(str(name), set()).update(str(v) for v in values)
    else:
        for name, value in params:
            grouped.setdefault(str(name), set()).add(str(value))
    return grouped


def _payload(url: str, params: Params | None) -> bytes:
    parts = [url]
    grouped = _grouped(params)
    for name in sorted(grouped):
        for value in sorted(grouped[name]):
            parts.append(name)
            parts.append(value)
    return "".join(parts).encode("utf-8")


def compute_signature(url: str, params: Params | None, auth_token: str | SecretStr) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a POST of ``params`` to ``url``.

    For a GET (or a JSON-body webhook) pass ``params=None``: only the URL is signed.
    """
    mac = hmac.new(_token_bytes(auth_token), _payload(url, params), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def body_sha256(body: str | bytes) -> str:
    """Hex SHA-256 of a JSON webhook body, as Twilio puts it in the ``bodySHA256`` query parameter."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(data).hexdigest()


def _with_netloc(parts: SplitResult, netloc: str) -> str:
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def url_variants(url: str) -> list[str]:
    """``url`` as given, without its port, and with the scheme's default port (no duplicates)."""
    variants = [url]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number: only the URL as given can match
        return variants
    netloc = parts.netloc
    userinfo, _, hostport = netloc.rpartition("@")
    prefix = f"{userinfo}@" if userinfo else ""
    if port is not None:
        host = hostport.rsplit(":", 1)[0]
        variants.append(_with_netloc(parts, prefix + host))
    else:
        default = _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
        variants.append(_with_netloc(parts, f"{netloc}:{default}"))
    return list(dict.fromkeys(variants))


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def verify_signature(
    url: str,
    params: Params | str | bytes | None,
    signature: str | None,
    auth_token: str | SecretStr,
) -> bool:
    """True when ``signature`` is Twilio's signature of this request. Constant-time compare.

    ``params`` is the form body (mapping or pairs), or for a webhook whose URL
    carries ``bodySHA256`` the raw body, which must hash to that value.
    Never raises on malformed input: anything that does not verify is ``False``.
    """
    if not signature or not isinstance(signature, str):
        return False
    form: Params | None
    body_ok = True
    if isinstance(params, (str, bytes)):
        try:
            query = parse_qs(urlsplit(url).query)
        except ValueError:
            return False
        expected_hash = query.get("bodySHA256", [None])[0]
        if expected_hash is None:
            return False  # a raw body is only signed through bodySHA256
        body_ok = _same(body_sha256(params), expected_hash)
        form = None
    else:
        form = params
    try:
        matches = [_same(compute_signature(candidate, form, auth_token), signature) for candidate in url_variants(url)]
    except (TypeError, ValueError):
        return False
    return body_ok and any(matches)
