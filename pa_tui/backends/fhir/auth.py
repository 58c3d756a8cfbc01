"""How the FHIR client signs in: no credentials, a bearer token, or SMART Backend Services.

:class:`FhirClient <pa_tui.backends.fhir.client.FhirClient>` asks its :class:`Auth`
for headers before each request. On a 401 from the FHIR server it asks
:meth:`Auth.refresh` once; when that gives new headers the request is sent once
more, and a second 401 is an :class:`AuthError` carrying :attr:`Auth.rejection_fix`.

:class:`SmartBackendAuth` implements SMART App Launch "Backend Services"
(client-credentials grant with a signed JWT client assertion, RFC 7523):

- the token endpoint is ``token_url``, or discovered once from
  ``{base}/.well-known/smart-configuration``;
- the assertion is signed with PyJWT (RS384 or ES384), header ``kid``, claims
  ``iss = sub = client_id``, ``aud = token URL``, a random ``jti``, ``iat`` and an
  ``exp`` at most five minutes ahead;
- the access token is kept until shortly before ``expires_in`` runs out, and one
  sign-in serves every concurrent request (a per-instance lock, no global one).

Secrets stay secret: the private key, the assertion and the access token are
never logged, never in a ``repr`` and never in an error message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, Protocol, runtime_checkable

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from pa_tui.backends.base import AuthError, BackendError, PermissionDenied, RateLimited, Unavailable
from pa_tui.backends.fhir.parse import scrub

__all__ = [
    "ASSERTION_TYPE",
    "Auth",
    "BearerAuth",
    "NoAuth",
    "SmartBackendAuth",
    "load_private_key",
]

log = logging.getLogger("pa_tui.backends.fhir")

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME: Final = 300  # seconds; SMART: "no more than five minutes in the future"
_JSON: Final = "application/json"


@runtime_checkable
class Auth(Protocol):
    """Credentials for a FHIR server."""

    async def headers(self, http: httpx.AsyncClient, base_url: str) -> Mapping[str, str]:
        """Headers to add to the next request (``{}`` for none)."""
        ...

    async def refresh(
        self, http: httpx.AsyncClient, base_url: str, rejected: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        """After a 401 for a request sent with ``rejected``: new headers to retry with once, or
        ``None`` when signing in again cannot help (a fixed token)."""
        ...

    @property
    def rejection_fix(self) -> str:
        """What to do when the FHIR server still answers 401."""
        ...


# --------------------------------------------------------------------------- no credentials, bearer
class NoAuth:
    """No credentials: an open server (the demo sandbox) or one behind a trusted proxy."""

    async def headers(self, http: httpx.AsyncClient, base_url: str) -> Mapping[str, str]:
        return {}

    async def refresh(
        self, http: httpx.AsyncClient, base_url: str, rejected: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        return None

    @property
    def rejection_fix(self) -> str:
        return (
            'The EHR requires sign-in: set fhir.auth to "bearer" (`pa-tui auth set fhir`) '
            'or "smart-backend" with fhir.client_id and a registered key'
        )

    def __repr__(self) -> str:
        return "NoAuth()"


class BearerAuth:
    """A fixed bearer token (from the keyring). It cannot be renewed by pa-tui."""

    def __init__(self, token: SecretStr | str) -> None:
        value = token.get_secret_value() if isinstance(token, SecretStr) else token
        value = value.strip() if isinstance(value, str) else ""
        if value.lower().startswith("bearer "):
            value = value[7:].strip()
        if not value or any(c.isspace() for c in value):
            raise AuthError(
                "The FHIR bearer token is empty or malformed",
                "Store the access token itself (no 'Bearer ' prefix, no spaces): `pa-tui auth set fhir`",
            )
        self._token = SecretStr(value)

    async def headers(self, http: httpx.AsyncClient, base_url: str) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    async def refresh(
        self, http: httpx.AsyncClient, base_url: str, rejected: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        return None

    @property
    def rejection_fix(self) -> str:
        return (
            "The bearer token was refused or has expired: get a new one from the EHR administrator and "
            "`pa-tui auth set fhir` (or use fhir.auth = \"smart-backend\", which renews itself)"
        )

    def __repr__(self) -> str:
        return "BearerAuth(token=SecretStr('**********'))"


# --------------------------------------------------------------------------- SMART Backend Services
PrivateKeySource = SecretStr | str | bytes | os.PathLike[str]


def load_private_key(
    source: PrivateKeySource, alg: str
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A PEM private key (the PEM text as a SecretStr, str or bytes, or a path to a file) checked
    against ``alg``. Errors name the file, never its content."""
    where = ""
    if isinstance(source, SecretStr):
        pem = source.get_secret_value().encode()
    elif isinstance(source, bytes):
        pem = source
    elif isinstance(source, str) and "-----BEGIN" in source:
        pem = source.encode()
    elif isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source)).expanduser()
        where = f" in {path}"
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise AuthError(
                f"Cannot read the FHIR private key file {path} ({exc.strerror or type(exc).__name__})",
                "Check fhir.private_key_path, or store the key with `pa-tui auth set fhir --from-file KEY.pem`",
            ) from None
    else:
        raise AuthError("No FHIR private key configured", "Store it with `pa-tui auth set fhir --from-file KEY.pem`")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise AuthError(
            f"The FHIR private key{where} is encrypted with a passphrase",
            "Export it without a passphrase (it is kept in the OS keyring) and store it again",
        ) from None
    except Exception:  # noqa: BLE001 - cryptography's messages are fine, but say it our way, from None
        raise AuthError(
            f"The FHIR private key{where} is not a PEM private key",
            "Store the private key (-----BEGIN PRIVATE KEY-----), not the public key or certificate",
        ) from None
    if alg == "RS384":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise AuthError(
                f"The FHIR private key{where} is not an RSA key, but the algorithm is RS384",
                'Use an RSA key (2048 bits or more), or set the algorithm to "ES384" for a P-384 EC key',
            )
        if key.key_size < 2048:
            raise AuthError(f"The FHIR RSA key{where} is too short", "Use an RSA key of 2048 bits or more")
    elif alg == "ES384":
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp384r1":
            raise AuthError(
                f"The FHIR private key{where} is not a P-384 EC key, but the algorithm is ES384",
                'Use an EC key on curve P-384 (secp384r1), or set the algorithm to "RS384" for an RSA key',
            )
    else:
        raise AuthError(f"Unsupported SMART signing algorithm '{alg}'", 'Use "RS384" or "ES384"')
    return key


def _loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_token_url(url: str, where: str) -> str:
    try:
        parsed = httpx.URL(url)
    except Exception:  # noqa: BLE001
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise AuthError(f"The SMART token endpoint from {where} is not a URL", "Set fhir.token_url to the EHR's token URL")
    if parsed.scheme == "http" and not _loopback(parsed.host):
        raise AuthError(
            f"The SMART token endpoint from {where} is not HTTPS",
            "Credentials are only sent over HTTPS: set fhir.token_url to the https:// token URL",
        )
    return str(parsed)


class SmartBackendAuth:
    """SMART Backend Services (client credentials + signed JWT assertion). See the module docstring."""

    def __init__(
        self,
        client_id: str,
        private_key: PrivateKeySource,
        kid: str,
        alg: Literal["RS384", "ES384"] = "RS384",
        scope: str = "system/*.read",
        token_url: str | None = None,
        *,
        assertion_lifetime: int = MAX_ASSERTION_LIFETIME,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(client_id, str) or not client_id.strip():
            raise AuthError("No SMART client id configured", "Set fhir.client_id to the id the EHR gave pa-tui")
        if not isinstance(kid, str) or not kid.strip():
            raise AuthError(
                "No key id (kid) configured for the SMART key", "Set fhir.key_id to the kid of the registered public key"
            )
        if alg not in ("RS384", "ES384"):
            raise AuthError(f"Unsupported SMART signing algorithm '{alg}'", 'Use "RS384" or "ES384"')
        if not isinstance(scope, str) or not scope.split():
            raise AuthError("No SMART scope configured", 'Use a scope such as "system/*.read"')
        self.client_id = client_id.strip()
        self.kid = kid.strip()
        self.alg = alg
        self.scope = " ".join(scope.split())
        self._key = load_private_key(private_key, alg)
        self.token_url = _check_token_url(token_url, "fhir.token_url") if token_url else None
        self.assertion_lifetime = max(1, min(int(assertion_lifetime), MAX_ASSERTION_LIFETIME))
        self.refresh_margin = max(0.0, refresh_margin)
        self._clock = clock
        self._token: SecretStr | None = None
        self._expires_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.sign_ins = 0  # how many tokens were obtained (diagnostics and tests)

    def __repr__(self) -> str:
        return (
            f"SmartBackendAuth(client_id={self.client_id!r}, kid={self.kid!r}, alg={self.alg!r}, "
            f"scope={self.scope!r}, token_url={self.token_url!r})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle the key along with the object
        raise TypeError("SmartBackendAuth holds a private key and cannot be pickled")

    # ---------------------------------------------------------------- Auth protocol
    @property
    def rejection_fix(self) -> str:
        return (
            f"Check that the EHR has pa-tui's public key registered for client id '{self.client_id}' "
            f"(kid '{self.kid}', {self.alg}), that fhir.client_id is that client, that the client is allowed "
            f"the scope '{self.scope}', and that this computer's clock is right"
        )

    async def headers(self, http: httpx.AsyncClient, base_url: str) -> Mapping[str, str]:
        token = self._valid_token()
        if token is None:
            async with self._get_lock():
                token = self._valid_token()
                if token is None:
                    token = await self._sign_in(http, base_url)
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    async def refresh(
        self, http: httpx.AsyncClient, base_url: str, rejected: Mapping[str, str]
    ) -> Mapping[str, str] | None:
        async with self._get_lock():
            current = self._valid_token()
            if current is not None and rejected.get("Authorization") != f"Bearer {current.get_secret_value()}":
                token = current  # another request already signed in again
            else:
                self.invalidate()
                token = await self._sign_in(http, base_url)
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    def invalidate(self) -> None:
        """Forget the access token: the next request signs in again."""
        self._token = None
        self._expires_at = 0.0

    @property
    def expires_at(self) -> float:
        return self._expires_at

    # ---------------------------------------------------------------- internals
    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        return self._lock

    def _valid_token(self) -> SecretStr | None:
        if self._token is not None and self._clock() < self._expires_at:
            return self._token
        return None

    def client_assertion(self, token_url: str) -> str:
        """The signed JWT client assertion for ``token_url`` (exposed for tests and `doctor`)."""
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "exp": now + self.assertion_lifetime,
        }
        try:
            return jwt.encode(claims, self._key, algorithm=self.alg, headers={"kid": self.kid, "typ": "JWT"})
        except Exception:  # noqa: BLE001 - never let a library message carry key material
            raise AuthError(
                "pa-tui could not sign the SMART client assertion", "Check the FHIR private key and fhir algorithm"
            ) from None

    async def _token_endpoint(self, http: httpx.AsyncClient, base_url: str) -> str:
        if self.token_url:
            return self.token_url
        url = base_url.rstrip("/") + "/.well-known/smart-configuration"
        where = f"{url}"
        fix = "Set fhir.token_url to the EHR's SMART token endpoint"
        try:
            response = await http.get(url, headers={"Accept": _JSON})
        except httpx.TimeoutException:
            raise Unavailable("EHR sign-in is not answering: SMART configuration timed out", fix) from None
        except httpx.TransportError:
            raise Unavailable("EHR sign-in is not answering: cannot reach the SMART configuration", fix) from None
        if response.status_code >= 500:
            raise Unavailable(
                f"EHR sign-in is not answering: SMART configuration answered {response.status_code}",
                "Try again shortly; " + fix,
                status=response.status_code,
            )
        if response.status_code != 200:
            raise AuthError(
                f"The EHR publishes no SMART configuration ({response.status_code})",
                fix,
                status=response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        endpoint = body.get("token_endpoint") if isinstance(body, dict) else None
        if not isinstance(endpoint, str) or not endpoint.strip():
            raise AuthError("The EHR's SMART configuration names no token endpoint", fix)
        algs = body.get("token_endpoint_auth_signing_alg_values_supported") if isinstance(body, dict) else None
        if isinstance(algs, list) and algs and self.alg not in algs:
            supported = ", ".join(a for a in algs if isinstance(a, str) and a in ("RS384", "ES384"))
            raise AuthError(
                f"The EHR does not accept {self.alg} client assertions",
                f"Use a key and algorithm it accepts ({supported or 'none that pa-tui supports'})",
            )
        self.token_url = _check_token_url(endpoint.strip(), where)
        log.debug("SMART token endpoint discovered")
        return self.token_url

    async def _sign_in(self, http: httpx.AsyncClient, base_url: str) -> SecretStr:
        token_url = await self._token_endpoint(http, base_url)
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(token_url),
        }
        started = self._clock()
        try:
            response = await http.post(token_url, data=form, headers={"Accept": _JSON})
        except httpx.TimeoutException:
            raise Unavailable(
                "EHR sign-in is not answering: the token endpoint timed out",
                "The EHR is slow or unreachable; pa-tui signs in again with the next request",
            ) from None
        except httpx.TransportError:
            raise Unavailable(
                "EHR sign-in is not answering: cannot reach the token endpoint",
                "Check fhir.token_url and the network or VPN",
            ) from None
        token, expires_in = self._token_response(response)
        self._token = token
        lifetime = max(1.0, float(expires_in))
        self._expires_at = started + lifetime - min(self.refresh_margin, lifetime / 2)
        self.sign_ins += 1
        log.info("FHIR SMART sign-in ok (token valid %d s)", int(lifetime))
        return token

    def _token_response(self, response: httpx.Response) -> tuple[SecretStr, float]:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        if status == 200:
            token = body.get("access_token")
            token_type = body.get("token_type", "bearer")
            if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token.strip()):
                raise AuthError("The EHR's token endpoint returned no access token", self.rejection_fix)
            if isinstance(token_type, str) and token_type.lower() != "bearer":
                raise AuthError(
                    f"The EHR's token endpoint returned a '{scrub(token_type, 40)}' token, not a bearer token",
                    "Ask the EHR administrator to issue bearer tokens to pa-tui's client",
                )
            expires_in = body.get("expires_in")
            if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or expires_in <= 0:
                expires_in = 300
            return SecretStr(token.strip()), float(expires_in)
        error = body.get("error") if isinstance(body.get("error"), str) else None
        description = body.get("error_description") if isinstance(body.get("error_description"), str) else None
        detail = f": {scrub(description)}" if description else ""
        log.warning("FHIR SMART sign-in refused (HTTP %d, %s)", status, error or "no error code")
        if status == 429:
            retry_after = response.headers.get("retry-after", "")
            try:
                wait = max(0.0, float(retry_after))
            except ValueError:
                wait = 30.0
            return self._raise(
                RateLimited(
                    "The EHR's token endpoint is rate limiting pa-tui (429)",
                    f"Wait about {wait:.0f} s",
                    retry_after=wait,
                )
            )
        if status >= 500:
            return self._raise(
                Unavailable(
                    f"EHR sign-in is not answering: the token endpoint reported a server error ({status})",
                    "Try again shortly; pa-tui signs in again with the next request",
                    status=status,
                )
            )
        if error == "invalid_scope":
            return self._raise(
                PermissionDenied(
                    f"The EHR refused the scope '{self.scope}' for pa-tui's client{detail}",
                    f"Ask the EHR administrator to grant client '{self.client_id}' the scope, or change the scope",
                    status=status,
                )
            )
        label = error or f"HTTP {status}"
        return self._raise(AuthError(f"The EHR refused pa-tui's sign-in ({label}){detail}", self.rejection_fix, status=status))

    @staticmethod
    def _raise(error: BackendError) -> Any:
        raise error
