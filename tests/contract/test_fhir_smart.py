"""SMART Backend Services sign-in, bearer tokens and what a 401 does.

Against a scripted authorization server (httpx.MockTransport) that checks the client
assertion the way an EHR does, and — where the demo sandbox has auth enabled — against
the sandbox's own token endpoint over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from pa_tui.backends.base import AuthError, PermissionDenied, Unavailable
from pa_tui.backends.fhir import BearerAuth, FhirClient, NoAuth, SmartBackendAuth

BASE = "https://ehr.example.org/fhir/r4"
TOKEN_URL = "https://auth.example.org/oauth2/token"
CLIENT_ID = "pa-tui-test-client"
KID = "key-2026"


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


class Clock:
    def __init__(self, now: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now


class AuthServer:
    """An EHR: a SMART configuration, a token endpoint checking assertions, a FHIR endpoint checking tokens."""

    def __init__(self, public_key: Any, clock: Clock, *, lifetime: int = 300, advertise: bool = True) -> None:
        self.public_key = public_key
        self.clock = clock
        self.lifetime = lifetime
        self.advertise = advertise
        self.tokens: dict[str, float] = {}  # token -> expiry
        self.revoked: set[str] = set()
        self.jtis: set[str] = set()
        self.token_requests: list[dict[str, str]] = []
        self.fhir_requests: list[httpx.Request] = []
        self.token_status: int | None = None  # force a token endpoint answer
        self.token_error = "invalid_client"
        self.always_401 = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url == f"{BASE}/.well-known/smart-configuration":
            if not self.advertise:
                return httpx.Response(404, json={"error": "not found"})
            return httpx.Response(
                200,
                json={
                    "token_endpoint": TOKEN_URL,
                    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                    "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                },
            )
        if url == TOKEN_URL:
            return self._token(request)
        self.fhir_requests.append(request)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if self.always_401 or token not in self.tokens or token in self.revoked or self.tokens[token] <= self.clock():
            return httpx.Response(
                401,
                json={"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]},
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p1"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = dict(parse_qsl(request.content.decode()))
        self.token_requests.append(form)
        if self.token_status:
            return httpx.Response(self.token_status, json={"error": self.token_error, "error_description": "nope"})
        assert form["grant_type"] == "client_credentials"
        assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        assertion = form["client_assertion"]
        header = jwt.get_unverified_header(assertion)
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS384", "ES384"],
                audience=TOKEN_URL,
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            return httpx.Response(401, json={"error": "invalid_client", "error_description": "bad signature"})
        assert header["kid"] == KID and header["alg"] in ("RS384", "ES384")
        assert claims["iss"] == claims["sub"] == CLIENT_ID and claims["aud"] == TOKEN_URL
        assert 0 < claims["exp"] - self.clock() <= 300
        assert claims["jti"] not in self.jtis, "jti reused"
        self.jtis.add(claims["jti"])
        token = f"tok-{len(self.tokens) + 1}"
        self.tokens[token] = self.clock() + self.lifetime
        return httpx.Response(
            200, json={"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime, "scope": form["scope"]}
        )


def _client(server: AuthServer, auth: Any, **kwargs: Any) -> FhirClient:
    return FhirClient(BASE, auth=auth, transport=httpx.MockTransport(server.handler), backoff=0, max_backoff=0, **kwargs)


def _smart(key: Any, clock: Clock, **kwargs: Any) -> SmartBackendAuth:
    alg = "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"
    return SmartBackendAuth(CLIENT_ID, SecretStr(_pem(key)), KID, alg, clock=clock, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the happy path
@pytest.mark.parametrize("which", ["rsa", "ec"])
async def test_discovers_signs_in_once_and_reuses_the_token(
    which: str, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    key = rsa_key if which == "rsa" else ec_key
    clock = Clock()
    server = AuthServer(key.public_key(), clock)
    auth = _smart(key, clock)
    client = _client(server, auth)
    results = await asyncio.gather(*(client.read("Patient", "p1") for _ in range(12)))
    assert all(r["id"] == "p1" for r in results)
    assert len(server.token_requests) == 1, "one sign-in serves every concurrent request"
    assert auth.token_url == TOKEN_URL and server.token_requests[0]["scope"] == "system/*.read"
    clock.now += 200  # still well inside the 300 s token
    await client.read("Patient", "p1")
    assert len(server.token_requests) == 1
    clock.now += 70  # within the refresh margin before expiry: sign in again before it runs out
    await client.read("Patient", "p1")
    assert len(server.token_requests) == 2
    assert all(r.headers["authorization"].startswith("Bearer tok-") for r in server.fhir_requests)
    await client.aclose()


async def test_a_configured_token_url_skips_discovery(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock()
    server = AuthServer(rsa_key.public_key(), clock, advertise=False)
    client = _client(server, _smart(rsa_key, clock, token_url=TOKEN_URL, scope="system/Patient.read"))
    assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert server.token_requests[0]["scope"] == "system/Patient.read"
    await client.aclose()


# --------------------------------------------------------------------------- 401: refresh once, then a clear error
async def test_an_expired_token_is_refreshed_once(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock()
    server = AuthServer(rsa_key.public_key(), clock)
    client = _client(server, _smart(rsa_key, clock))
    await client.read("Patient", "p1")
    server.revoked.update(server.tokens)  # the EHR dropped the token early (restart, revocation)
    assert (await client.read("Patient", "p1"))["id"] == "p1"
    assert len(server.token_requests) == 2
    assert [r.headers["authorization"] for r in server.fhir_requests] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]
    await client.aclose()


async def test_concurrent_401s_sign_in_again_only_once(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock()
    server = AuthServer(rsa_key.public_key(), clock)
    client = _client(server, _smart(rsa_key, clock))
    await client.read("Patient", "p1")
    server.revoked.update(server.tokens)
    await asyncio.gather(*(client.read("Patient", "p1") for _ in range(8)))
    assert len(server.token_requests) == 2
    await client.aclose()


async def test_a_persistent_401_is_an_auth_error_with_the_fix(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock()
    server = AuthServer(rsa_key.public_key(), clock)
    server.always_401 = True
    client = _client(server, _smart(rsa_key, clock), retries=3)
    with pytest.raises(AuthError) as exc:
        await client.search("Patient", {"_id": "p1"})
    await client.aclose()
    assert len(server.fhir_requests) == 2, "one retry after signing in again, no more"
    assert len(server.token_requests) == 2
    fix = exc.value.fix
    assert CLIENT_ID in fix and KID in fix and "clock" in fix and "public key" in fix
    assert exc.value.status == 401


async def test_a_wrong_key_is_refused_with_the_fix(rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock()
    server = AuthServer(rsa_key.public_key(), clock)
    client = _client(server, _smart(other_rsa_key, clock))
    with pytest.raises(AuthError) as exc:
        await client.read("Patient", "p1")
    await client.aclose()
    assert "invalid_client" in exc.value.title and "bad signature" in exc.value.title
    assert "registered" in exc.value.fix and CLIENT_ID in exc.value.fix
    assert server.fhir_requests == [], "no FHIR request without a token"
    assert len(server.token_requests) == 1, "a refused sign-in is not retried"


@pytest.mark.parametrize(
    ("status", "error", "expected", "words"),
    [
        (400, "invalid_scope", PermissionDenied, ["scope", "system/*.read"]),
        (400, "invalid_grant", AuthError, ["invalid_grant"]),
        (401, "unauthorized_client", AuthError, ["unauthorized_client"]),
        (503, "temporarily_unavailable", Unavailable, ["not answering"]),
    ],
)
async def test_token_endpoint_errors(
    rsa_key: rsa.RSAPrivateKey, status: int, error: str, expected: type, words: list[str]
) -> None:
    clock = Clock()
    server = AuthServer(rsa_key.public_key(), clock)
    server.token_status, server.token_error = status, error
    client = _client(server, _smart(rsa_key, clock), retries=1)
    with pytest.raises(expected) as exc:
        await client.read("Patient", "p1")
    await client.aclose()
    for w in words:
        assert w in str(exc.value)
    assert len(server.token_requests) == (2 if status >= 500 else 1), "only a server error is retried (reads)"


async def test_no_smart_configuration_says_set_the_token_url(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock()
    server = AuthServer(rsa_key.public_key(), clock, advertise=False)
    client = _client(server, _smart(rsa_key, clock))
    with pytest.raises(AuthError) as exc:
        await client.read("Patient", "p1")
    await client.aclose()
    assert "SMART configuration" in exc.value.title and "fhir.token_url" in exc.value.fix


async def test_discovered_token_endpoints_must_be_https(rsa_key: rsa.RSAPrivateKey) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token_endpoint": "http://auth.example.org/token"})

    client = FhirClient(BASE, auth=_smart(rsa_key, Clock()), transport=httpx.MockTransport(handler))
    with pytest.raises(AuthError, match="not HTTPS"):
        await client.read("Patient", "p1")
    await client.aclose()


# --------------------------------------------------------------------------- secrets stay secret
async def test_key_and_tokens_never_in_logs_reprs_or_errors(
    rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pem = _pem(other_rsa_key)
    body = "".join(pem.splitlines()[1:-1])
    clock = Clock()
    server = AuthServer(other_rsa_key.public_key(), clock)
    auth = _smart(other_rsa_key, clock)
    client = _client(server, auth)
    await client.read("Patient", "p1")
    server.revoked.update(server.tokens)
    await client.read("Patient", "p1")
    server.public_key = rsa_key.public_key()  # the EHR no longer trusts this key
    server.revoked.update(server.tokens)
    with pytest.raises(AuthError) as exc:
        await client.read("Patient", "p1")
    await client.aclose()
    texts = [r.getMessage() for r in caplog.records] + [repr(auth), str(auth), repr(client), str(exc.value)]
    assertions = [f["client_assertion"] for f in server.token_requests]
    for secret in [body[:40], body[-40:], *server.tokens, *(a[-30:] for a in assertions)]:
        assert not any(secret in t for t in texts)
    with pytest.raises(TypeError):
        pickle.dumps(auth)
    assert "SecretStr" in repr(BearerAuth(SecretStr("abc.def"))) and "abc.def" not in repr(BearerAuth("abc.def"))


async def test_bearer_and_no_auth() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(401, json={"resourceType": "OperationOutcome", "issue": []})

    bearer = FhirClient(BASE, auth=BearerAuth(SecretStr("Bearer  t0k.en ")), transport=httpx.MockTransport(handler))
    with pytest.raises(AuthError) as exc:
        await bearer.read("Patient", "p1")
    await bearer.aclose()
    assert seen == ["Bearer t0k.en"], "a fixed token is not retried"
    assert "pa-tui auth set fhir" in exc.value.fix
    none = FhirClient(BASE, auth=NoAuth(), transport=httpx.MockTransport(handler))
    with pytest.raises(AuthError) as exc:
        await none.read("Patient", "p1")
    await none.aclose()
    assert seen[-1] is None and "fhir.auth" in exc.value.fix
    with pytest.raises(AuthError):
        BearerAuth(SecretStr("   "))
    legacy = FhirClient(BASE, headers={"Authorization": "Bearer s3cret"}, transport=httpx.MockTransport(handler))
    assert isinstance(legacy.auth, BearerAuth) and "s3cret" not in repr(legacy) + repr(legacy.auth)
    with pytest.raises(AuthError) as exc:
        await legacy.read("Patient", "p1")
    await legacy.aclose()
    assert seen[-1] == "Bearer s3cret" and "pa-tui auth set fhir" in exc.value.fix


async def test_writes_sign_in_again_once_too(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock()
    server = AuthServer(rsa_key.public_key(), clock)
    created: list[dict[str, Any]] = []
    inner: Callable[[httpx.Request], httpx.Response] = server.handler

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and str(request.url).startswith(BASE):
            answer = inner(request)
            if answer.status_code == 401:
                return answer
            created.append(json.loads(request.content))
            return httpx.Response(201, json={**created[-1], "id": "doc-1", "meta": {"versionId": "1"}})
        return inner(request)

    client = FhirClient(BASE, auth=_smart(rsa_key, clock), transport=httpx.MockTransport(handler))
    await client.read("Patient", "p1")
    server.revoked.update(server.tokens)
    result = await client.create("DocumentReference", {"status": "current"})
    await client.aclose()
    assert (result.id, result.version_id, len(created)) == ("doc-1", "1", 1)
    assert len(server.token_requests) == 2


# --------------------------------------------------------------------------- against the sandbox's token endpoint
sandbox_auth = pytest.mark.skipif(
    not hasattr(__import__("pa_tui.demo.fhir_sandbox", fromlist=["FhirSandbox"]).FhirSandbox, "register_client"),
    reason="the sandbox has no SMART token endpoint yet",
)


@pytest.fixture(scope="module")
def smart_sandbox(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> Any:
    from pa_tui.demo.fhir_sandbox import FhirSandbox
    from pa_tui.demo.host import SimulatorHost
    from pa_tui.demo.population import Population

    clock = Clock(__import__("time").time())
    sb = FhirSandbox(Population.generate(60, seed=3), auth=True, token_lifetime=300, clock=clock)
    public = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    sb.register_client(CLIENT_ID, public.decode(), KID)
    sb.register_client("ec-client", ec_key.public_key(), KID)
    sb.register_client("reader", public.decode(), KID, scopes=["system/*.read"])
    host = SimulatorHost()
    host.add("fhir", sb.app)
    host.start()
    try:
        yield sb, sb.url(host.url("fhir")), clock
    finally:
        host.stop()


def _sandbox_ehr(url: str, auth: SmartBackendAuth) -> Any:
    from pa_tui.backends.fhir import FhirEhr

    return FhirEhr(FhirClient(url, auth=auth, backoff=0, max_backoff=0), today=__import__("datetime").date(2026, 1, 1))


@sandbox_auth
async def test_sandbox_sign_in_and_record(smart_sandbox: Any, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> None:
    from pa_tui.domain.records import Section

    sb, url, clock = smart_sandbox
    sb.request_log.clear()
    scope = "system/*.read system/DocumentReference.write system/Appointment.write"
    ehr = _sandbox_ehr(url, _smart(rsa_key, clock, scope=scope))
    pid = "pt-000001"
    views = await asyncio.gather(*(ehr.load_section(pid, s) for s in Section))
    assert all(not isinstance(v, BaseException) for v in views)
    assert ehr.client.auth.token_url == url.rsplit("/fhir", 1)[0] + "/auth/token"  # discovered, loopback HTTP
    assert sum(line.startswith("POST /auth/token") for line in sb.request_log) == 1
    ec_auth = SmartBackendAuth("ec-client", SecretStr(_pem(ec_key)), KID, "ES384", clock=clock)
    ec_ehr = _sandbox_ehr(url, ec_auth)
    assert (await ec_ehr.patient(pid)).id == pid
    await ehr.aclose()
    await ec_ehr.aclose()


@sandbox_auth
async def test_sandbox_refuses_a_wrong_key(smart_sandbox: Any, other_rsa_key: rsa.RSAPrivateKey) -> None:
    sb, url, clock = smart_sandbox
    ehr = _sandbox_ehr(url, _smart(other_rsa_key, clock))
    with pytest.raises(AuthError) as exc:
        await ehr.patient("pt-000001")
    await ehr.aclose()
    assert "invalid_client" in exc.value.title and "signature" in exc.value.title
    assert CLIENT_ID in exc.value.fix and "public key" in exc.value.fix


@sandbox_auth
async def test_sandbox_expired_token_is_refreshed_once(smart_sandbox: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    sb, url, clock = smart_sandbox
    client_clock = Clock(clock.now)  # pa-tui's clock stands still: it believes its token is still good
    ehr = _sandbox_ehr(url, _smart(rsa_key, client_clock))
    await ehr.patient("pt-000001")
    sb.request_log.clear()
    clock.now += 400  # the server's clock moves past the token's 300 s
    client_clock.now = clock.now - 250
    assert (await ehr.patient("pt-000002")).id == "pt-000002"
    log = list(sb.request_log)
    assert [line.split("?")[0] for line in log] == [
        "GET /fhir/Patient/pt-000002",  # 401: expired
        "POST /auth/token",
        "GET /fhir/Patient/pt-000002",
    ]
    await ehr.aclose()


@sandbox_auth
async def test_sandbox_scope_refusals(smart_sandbox: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    from datetime import UTC, datetime

    from pa_tui.domain.notes import Note

    sb, url, clock = smart_sandbox
    reader = _sandbox_ehr(url, SmartBackendAuth("reader", SecretStr(_pem(rsa_key)), KID, clock=clock))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(PermissionDenied) as exc:
        await reader.write_note(Note(id="n-s", patient_id="pt-000001", agent_id="a", text="t", created_at=now, updated_at=now))
    assert "write access" in exc.value.fix
    greedy = _sandbox_ehr(url, SmartBackendAuth("reader", SecretStr(_pem(rsa_key)), KID, scope="system/*.write", clock=clock))
    with pytest.raises(PermissionDenied) as exc:
        await greedy.patient("pt-000001")
    assert "scope" in exc.value.title
    await reader.aclose()
    await greedy.aclose()
