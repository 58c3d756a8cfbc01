"""SMART Backend Services (``client_credentials`` with a signed JWT) for the FHIR sandbox.

What an EHR's authorization server does for a backend client such as pa-tui:

- ``GET {fhir base}/.well-known/smart-configuration`` names the token endpoint,
  ``private_key_jwt`` client authentication, the RS384/ES384 algorithms and the scopes;
- ``POST /auth/token`` (form-encoded ``grant_type=client_credentials``,
  ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``,
  ``client_assertion``, ``scope``) checks the assertion — signed RS384 or ES384 by a
  key registered for the client under the header's ``kid``; ``iss`` = ``sub`` = the
  client id; ``aud`` = the token endpoint URL; ``exp`` in the future and at most five
  minutes away; ``jti`` never seen before — and answers an access token with a short
  lifetime, or an OAuth 2.0 error (``invalid_request``, ``invalid_client``,
  ``invalid_grant``, ``invalid_scope``, ``unsupported_grant_type``);
- every FHIR request then needs ``Authorization: Bearer <token>``, unexpired and with
  a scope covering the resource type and interaction.

Time comes from ``clock`` (default :func:`time.time`) so tests can move it.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["ASSERTION_TYPE", "SIGNING_ALGS", "AuthFailure", "OAuthError", "SmartAuth"]

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGS: Final = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME: Final = 300  # seconds: SMART says exp no more than five minutes ahead
CLOCK_SKEW: Final = 5  # seconds of tolerance either way
TOKEN_PATH: Final = "/auth/token"
_SCOPE_RE: Final = re.compile(r"^system/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|[cruds]+)$")

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class OAuthError(Exception):
    """An OAuth 2.0 error response: ``error`` code, HTTP status and a description (no secrets)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class AuthFailure(Exception):
    """A FHIR request the bearer token does not allow: 401 (no/bad/expired token) or 403 (scope)."""

    def __init__(self, status: int, code: str, message: str, challenge: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.challenge = challenge


@dataclass
class _Client:
    keys: dict[str, PublicKey] = field(default_factory=dict)
    scopes: frozenset[str] | None = None  # None: any supported scope


@dataclass(frozen=True)
class _Token:
    client_id: str
    expires_at: float
    scopes: frozenset[str]


def _load_key(key: Any) -> PublicKey:
    """A public key from a PEM (public or private), a JWK dict, or a cryptography key object."""
    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return key
    if isinstance(key, dict):
        try:
            loaded = jwt.PyJWK(key).key
        except (jwt.PyJWKError, jwt.InvalidKeyError) as exc:
            raise ValueError(f"not a usable JWK: {exc}") from None
        return _load_key(loaded)
    if isinstance(key, str):
        key = key.encode()
    if isinstance(key, bytes):
        if b"PRIVATE KEY" in key:
            return _load_key(serialization.load_pem_private_key(key, password=None))
        try:
            return _load_key(serialization.load_pem_public_key(key))
        except ValueError:
            raise ValueError("not a PEM public key") from None
    raise ValueError("a key is a PEM string, a JWK dict, a JWKS dict or a cryptography key")


def _alg_for(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError("RSA keys must have at least 2048 bits")
        return "RS384"
    if isinstance(key.curve, ec.SECP384R1):
        return "ES384"
    raise ValueError("EC keys must be on P-384 (ES384)")


def scope_covers(scopes: Iterable[str], resource_type: str, interaction: str) -> bool:
    """Whether SMART ``system/`` scopes (v1 ``read``/``write``/``*``, v2 ``cruds``) allow an
    ``interaction`` (read, search, create, update) on ``resource_type``."""
    v1 = "read" if interaction in ("read", "search") else "write"
    v2 = {"read": "r", "search": "s", "create": "c", "update": "u", "delete": "d"}[interaction]
    for scope in scopes:
        m = _SCOPE_RE.match(scope)
        if not m or m.group(1) not in ("*", resource_type):
            continue
        perm = m.group(2)
        if perm in ("*", v1) or (perm not in ("read", "write") and v2 in perm):
            return True
    return False


class SmartAuth:
    """Registered clients, issued tokens and the checks. Thread-safe."""

    def __init__(
        self,
        *,
        token_lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
        resource_types: Iterable[str] = (),
    ) -> None:
        if token_lifetime <= 0:
            raise ValueError("token_lifetime must be positive")
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.resource_types = frozenset(resource_types)
        self._clients: dict[str, _Client] = {}
        self._tokens: dict[str, _Token] = {}
        self._jtis: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- clients
    def register_client(
        self, client_id: str, public_key: Any, kid: str | None = None, *, scopes: Iterable[str] | None = None
    ) -> None:
        """Accept assertions from ``client_id`` signed by ``public_key``: a PEM, a JWK, a JWKS
        (``{"keys": [...]}``, each under its own ``kid``) or a cryptography key. ``kid`` names
        the key (required unless the JWK/JWKS carries one). ``scopes`` limits what the client
        may ask for (default: any supported scope). Registering again adds keys."""
        if not client_id:
            raise ValueError("client_id must not be empty")
        jwks = public_key.get("keys") if isinstance(public_key, dict) and "keys" in public_key else None
        entries = [(k, kid or k.get("kid")) for k in jwks] if jwks is not None else [(public_key, kid)]
        if not entries:
            raise ValueError("the JWKS holds no keys")
        loaded: dict[str, PublicKey] = {}
        for key, key_id in entries:
            if key_id is None and isinstance(key, dict):
                key_id = key.get("kid")
            if not key_id:
                raise ValueError("each key needs a kid (pass kid=… or put one in the JWK)")
            pub = _load_key(key)
            _alg_for(pub)
            loaded[str(key_id)] = pub
        with self._lock:
            client = self._clients.setdefault(client_id, _Client())
            client.keys.update(loaded)
            if scopes is not None:
                client.scopes = frozenset(scopes)

    def issue(self, client_id: str, scope: str = "system/*.read", lifetime: float | None = None) -> str:
        """A token for ``client_id`` without the JWT dance (for tests of other components)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _Token(
                client_id, self.clock() + (lifetime or self.token_lifetime), frozenset(scope.split())
            )
        return token

    # ---------------------------------------------------------------- discovery
    def configuration(self, token_url: str) -> dict[str, Any]:
        types = sorted(self.resource_types)
        scopes = ["system/*.read", "system/*.rs", "system/*.write", "system/*.cruds"]
        scopes += [f"system/{t}.read" for t in types] + [f"system/{t}.rs" for t in types]
        scopes += [
            "system/DocumentReference.write",
            "system/DocumentReference.c",
            "system/Appointment.write",
            "system/Appointment.u",
        ]
        return {
            "token_endpoint": token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGS),
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": scopes,
            "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
        }

    # ---------------------------------------------------------------- token endpoint
    def token(self, form: Mapping[str, str], token_url: str) -> dict[str, Any]:
        """Answer a token request (form fields) or raise :class:`OAuthError`."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only grant_type=client_credentials is supported")
        assertion_type = form.get("client_assertion_type")
        assertion = form.get("client_assertion")
        if not assertion_type or not assertion:
            raise OAuthError(
                "invalid_request", "client_assertion_type and client_assertion are required (private_key_jwt)"
            )
        if assertion_type != ASSERTION_TYPE:
            raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}", 401)
        client_id, claims = self._verify_assertion(assertion, token_url, form.get("client_id"))
        scopes = self._granted_scopes(client_id, form.get("scope"))
        now = self.clock()
        with self._lock:
            self._remember_jti(client_id, claims, now)
            token = secrets.token_urlsafe(32)
            self._tokens[token] = _Token(client_id, now + self.token_lifetime, frozenset(scopes))
            self._tokens = {k: v for k, v in self._tokens.items() if v.expires_at > now - 3600}
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(self.token_lifetime),
            "scope": " ".join(scopes),
        }

    def _verify_assertion(self, assertion: str, token_url: str, form_client: str | None) -> tuple[str, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_client", "client_assertion is not a JWT", 401) from None
        alg = header.get("alg")
        if alg not in SIGNING_ALGS:
            raise OAuthError("invalid_client", f"the assertion must be signed with {' or '.join(SIGNING_ALGS)}", 401)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise OAuthError("invalid_client", "the assertion header needs the kid of a registered key", 401)
        client_id = unverified.get("iss")
        if not isinstance(client_id, str) or not client_id:
            raise OAuthError("invalid_client", "the assertion needs iss (the client id)", 401)
        if form_client is not None and form_client != client_id:
            raise OAuthError("invalid_client", "client_id does not match the assertion's iss", 401)
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client", 401)
        key = client.keys.get(kid)
        if key is None:
            raise OAuthError("invalid_client", f"no key with kid {kid!r} is registered for this client", 401)
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                audience=token_url,
                options={
                    "require": ["iss", "sub", "aud", "exp", "jti"],
                    "verify_exp": False,  # checked below against self.clock
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_client", f"aud must be the token endpoint URL ({token_url})", 401) from None
        except jwt.MissingRequiredClaimError as exc:
            raise OAuthError("invalid_client", f"the assertion needs the {exc.claim} claim", 401) from None
        except (jwt.InvalidSignatureError, jwt.InvalidKeyError, jwt.InvalidAlgorithmError):
            raise OAuthError(
                "invalid_client", "the assertion signature does not verify with the registered key", 401
            ) from None
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_client", f"the assertion is not valid ({type(exc).__name__})", 401) from None
        if claims.get("sub") != client_id:
            raise OAuthError("invalid_client", "the assertion's sub must equal its iss (the client id)", 401)
        now = self.clock()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise OAuthError("invalid_client", "exp must be a number of seconds", 401)
        if exp <= now - CLOCK_SKEW:
            raise OAuthError("invalid_client", "the assertion has expired (check the clock)", 401)
        if exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
            raise OAuthError("invalid_client", "the assertion's exp is more than five minutes in the future", 401)
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + CLOCK_SKEW:
            raise OAuthError("invalid_client", "the assertion is not valid yet (nbf; check the clock)", 401)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise OAuthError("invalid_client", "the assertion needs a jti", 401)
        return client_id, claims

    def _remember_jti(self, client_id: str, claims: dict[str, Any], now: float) -> None:
        self._jtis = {k: v for k, v in self._jtis.items() if v > now - CLOCK_SKEW}
        key = (client_id, claims["jti"])
        if key in self._jtis:
            raise OAuthError("invalid_grant", "this assertion's jti was already used; sign a fresh assertion", 400)
        self._jtis[key] = float(claims["exp"])

    def _granted_scopes(self, client_id: str, requested: str | None) -> list[str]:
        if not requested or not requested.split():
            raise OAuthError("invalid_scope", "scope is required (e.g. system/*.read)")
        scopes = requested.split()
        with self._lock:
            allowed = self._clients[client_id].scopes
        for scope in scopes:
            m = _SCOPE_RE.match(scope)
            if not m:
                raise OAuthError("invalid_scope", f"{scope!r} is not a SMART system scope (system/Type.read)")
            if m.group(1) != "*" and self.resource_types and m.group(1) not in self.resource_types:
                raise OAuthError("invalid_scope", f"{scope!r} names a resource type this server does not have")
            if allowed is not None and scope not in allowed:
                raise OAuthError("invalid_scope", f"{scope!r} is not granted to this client")
        return scopes

    # ---------------------------------------------------------------- resource server
    def check(self, authorization: str | None, resource_type: str | None, interaction: str) -> str:
        """The client id a request's ``Authorization`` header stands for, or :class:`AuthFailure`."""
        realm = 'Bearer realm="pa-tui FHIR sandbox"'
        if not authorization:
            raise AuthFailure(401, "login", "this server needs a bearer token (SMART Backend Services)", realm)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure(401, "login", "the Authorization header must be 'Bearer <token>'", realm)
        with self._lock:
            found = self._tokens.get(token.strip())
        if found is None:
            raise AuthFailure(
                401, "login", "the access token is not one this server issued", realm + ', error="invalid_token"'
            )
        if found.expires_at <= self.clock():
            raise AuthFailure(
                401,
                "expired",
                "the access token has expired; request a new one",
                realm + ', error="invalid_token", error_description="expired"',
            )
        if resource_type is not None and not scope_covers(found.scopes, resource_type, interaction):
            raise AuthFailure(
                403,
                "forbidden",
                f"the token's scopes do not allow {interaction} on {resource_type}",
                realm + ', error="insufficient_scope"',
            )
        return found.client_id
