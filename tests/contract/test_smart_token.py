"""SMART Backend Services on the FHIR sandbox, over loopback HTTP: discovery, the client_credentials
token exchange with RS384 and ES384 assertions, every refusal a real authorization server makes,
and bearer tokens (missing, unknown, expired, short of scope) on FHIR requests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.fhir_sandbox.smart import ASSERTION_TYPE, scope_covers
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    sandbox: FhirSandbox
    clock: Clock
    fhir: str
    token_url: str
    http: httpx.Client


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def env(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> Iterator[Env]:
    clock = Clock()
    sb = FhirSandbox(Population.generate(40, seed=3), auth=True, token_lifetime=120, clock=clock)
    sb.register_client("pa-tui-rsa", _pem(rsa_key), "rsa-1")
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    sb.register_client("pa-tui-ec", {"keys": [{**jwk, "kid": "ec-1", "use": "sig", "alg": "ES384"}]})
    sb.register_client("read-patients-only", _pem(rsa_key), "rsa-1", scopes=["system/Patient.read"])
    host = SimulatorHost()
    host.add("fhir", sb.app)
    host.start()
    try:
        with httpx.Client() as http:
            yield Env(sb, clock, sb.url(host.url("fhir")), sb.token_url(host.url("fhir")), http)
    finally:
        host.stop()


@pytest.fixture(autouse=True)
def _real_time(env: Env) -> None:
    env.clock.now = time.time()


def assertion(
    key: Any,
    kid: str,
    client: str,
    aud: str,
    *,
    alg: str = "RS384",
    exp_in: float = 240,
    jti: str | None = None,
    sub: str | None = None,
    now: float | None = None,
    **extra: Any,
) -> str:
    now = time.time() if now is None else now
    claims = {
        "iss": client,
        "sub": sub or client,
        "aud": aud,
        "exp": int(now + exp_in),
        "jti": jti or str(uuid.uuid4()),
        **extra,
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def request_token(env: Env, signed: str, scope: str | None = "system/*.read", **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}
    if scope is not None:
        data["scope"] = scope
    data.update(form)
    return env.http.post(env.token_url, data=data)


def _oauth_error(r: httpx.Response, status: int, error: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["error"] == error, body
    return body["error_description"]


def _outcome(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    OperationOutcome.model_validate(body)
    assert body["issue"][0]["code"] == code
    assert r.headers["www-authenticate"].startswith("Bearer")


# --------------------------------------------------------------------------- discovery
def test_discovery_and_metadata_need_no_token(env: Env) -> None:
    r = env.http.get(env.fhir + "/.well-known/smart-configuration")
    assert r.status_code == 200
    conf = r.json()
    assert conf["token_endpoint"] == env.token_url
    assert conf["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(conf["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert "client_credentials" in conf["grant_types_supported"] and "system/*.read" in conf["scopes_supported"]
    meta = env.http.get(env.fhir + "/metadata")
    assert meta.status_code == 200
    CapabilityStatement.model_validate(meta.json())
    security = meta.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert security["extension"][0]["extension"][0]["valueUri"] == env.token_url


# --------------------------------------------------------------------------- the happy paths
def test_rs384_assertion_gets_a_token_that_opens_fhir(env: Env, rsa_key: rsa.RSAPrivateKey) -> None:
    _outcome(env.http.get(env.fhir + "/Patient", params={"_count": "1"}), 401, "login")
    r = request_token(env, assertion(rsa_key, "rsa-1", "pa-tui-rsa", env.token_url), "system/*.read system/*.write")
    assert r.status_code == 200, r.text
    token = r.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 120
    assert token["scope"] == "system/*.read system/*.write" and token["access_token"]
    assert r.headers["cache-control"] == "no-store"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    found = env.http.get(env.fhir + "/Patient", params={"_count": "2"}, headers=headers)
    assert found.status_code == 200 and found.json()["total"] == 40
    appts = env.http.get(env.fhir + "/Appointment", params={"patient": "pt-000001"}, headers=headers)
    assert appts.status_code == 200


def test_es384_assertion_from_a_jwks(env: Env, ec_key: ec.EllipticCurvePrivateKey) -> None:
    r = request_token(env, assertion(ec_key, "ec-1", "pa-tui-ec", env.token_url, alg="ES384"), "system/Patient.rs")
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert env.http.get(env.fhir + "/Patient/pt-000001", headers=headers).status_code == 200
    # v2 "rs" allows read and search on Patient, nothing else
    _outcome(
        env.http.get(env.fhir + "/Appointment", params={"patient": "pt-000001"}, headers=headers), 403, "forbidden"
    )


# --------------------------------------------------------------------------- refusals
def test_wrong_key_wrong_aud_expired_and_reused_are_refused(
    env: Env, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert "signature" in _oauth_error(
        request_token(env, assertion(other, "rsa-1", "pa-tui-rsa", env.token_url)), 401, "invalid_client"
    )
    assert "aud" in _oauth_error(
        request_token(env, assertion(rsa_key, "rsa-1", "pa-tui-rsa", env.fhir)), 401, "invalid_client"
    )
    assert "expired" in _oauth_error(
        request_token(env, assertion(rsa_key, "rsa-1", "pa-tui-rsa", env.token_url, exp_in=-60)), 401, "invalid_client"
    )
    assert "five minutes" in _oauth_error(
        request_token(env, assertion(rsa_key, "rsa-1", "pa-tui-rsa", env.token_url, exp_in=3600)), 401, "invalid_client"
    )
    signed = assertion(rsa_key, "rsa-1", "pa-tui-rsa", env.token_url)
    assert request_token(env, signed).status_code == 200
    assert "jti" in _oauth_error(request_token(env, signed), 400, "invalid_grant")
    same_jti = assertion(rsa_key, "rsa-1", "pa-tui-rsa", env.token_url, jti="fixed-jti")
    assert request_token(env, same_jti).status_code == 200
    assert "jti" in _oauth_error(
        request_token(env, assertion(rsa_key, "rsa-1", "pa-tui-rsa", env.token_url, jti="fixed-jti")),
        400,
        "invalid_grant",
    )


@pytest.mark.parametrize(
    ("make", "status", "error", "words"),
    [
        (lambda e, k: assertion(k, "rsa-1", "nobody", e.token_url), 401, "invalid_client", "unknown client"),
        (lambda e, k: assertion(k, "rsa-9", "pa-tui-rsa", e.token_url), 401, "invalid_client", "kid"),
        (lambda e, k: assertion(k, "rsa-1", "pa-tui-rsa", e.token_url, alg="RS256"), 401, "invalid_client", "RS384"),
        (lambda e, k: assertion(k, "rsa-1", "pa-tui-rsa", e.token_url, sub="someone"), 401, "invalid_client", "sub"),
        (
            lambda e, k: assertion(k, "rsa-1", "pa-tui-rsa", e.token_url, nbf=int(time.time()) + 600),
            401,
            "invalid_client",
            "nbf",
        ),
        (lambda e, k: "not.a.jwt", 401, "invalid_client", "JWT"),
        (
            lambda e, k: jwt.encode(
                {"iss": "pa-tui-rsa", "sub": "pa-tui-rsa", "aud": e.token_url, "exp": int(time.time()) + 60},
                k,
                algorithm="RS384",
                headers={"kid": "rsa-1"},
            ),
            401,
            "invalid_client",
            "jti",
        ),
    ],
)
def test_bad_assertions_are_invalid_client(
    env: Env, rsa_key: rsa.RSAPrivateKey, make: Any, status: int, error: str, words: str
) -> None:
    assert words in _oauth_error(request_token(env, make(env, rsa_key)), status, error)


def test_bad_requests_and_scopes(env: Env, rsa_key: rsa.RSAPrivateKey) -> None:
    def fresh(client: str = "pa-tui-rsa") -> str:
        return assertion(rsa_key, "rsa-1", client, env.token_url)

    _oauth_error(request_token(env, fresh(), grant_type="authorization_code"), 400, "unsupported_grant_type")
    _oauth_error(request_token(env, fresh(), client_assertion_type="urn:other"), 401, "invalid_client")
    _oauth_error(env.http.post(env.token_url, data={"grant_type": "client_credentials"}), 400, "invalid_request")
    _oauth_error(env.http.post(env.token_url, json={"grant_type": "client_credentials"}), 400, "invalid_request")
    _oauth_error(request_token(env, fresh(), scope=None), 400, "invalid_scope")
    _oauth_error(request_token(env, fresh(), scope="patient/*.read"), 400, "invalid_scope")
    _oauth_error(request_token(env, fresh(), scope="system/Spaceship.read"), 400, "invalid_scope")
    _oauth_error(request_token(env, fresh("read-patients-only"), scope="system/*.read"), 400, "invalid_scope")
    assert request_token(env, fresh("read-patients-only"), scope="system/Patient.read").status_code == 200
    _oauth_error(request_token(env, fresh(), client_id="someone-else"), 401, "invalid_client")


# --------------------------------------------------------------------------- bearer tokens
def test_bearer_tokens_on_fhir_requests(env: Env, rsa_key: rsa.RSAPrivateKey) -> None:
    r = request_token(env, assertion(rsa_key, "rsa-1", "pa-tui-rsa", env.token_url, now=env.clock.now), "system/*.read")
    token = r.json()["access_token"]
    ok = {"Authorization": f"Bearer {token}"}
    assert env.http.get(env.fhir + "/Patient/pt-000002", headers=ok).status_code == 200
    _outcome(env.http.get(env.fhir + "/Patient/pt-000002"), 401, "login")
    _outcome(env.http.get(env.fhir + "/Patient/pt-000002", headers={"Authorization": "Bearer nope"}), 401, "login")
    _outcome(env.http.get(env.fhir + "/Patient/pt-000002", headers={"Authorization": f"Basic {token}"}), 401, "login")
    # read scope only: no writes
    doc = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": "Patient/pt-000002"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}],
    }
    _outcome(
        env.http.post(
            env.fhir + "/DocumentReference", json=doc, headers={**ok, "Content-Type": "application/fhir+json"}
        ),
        403,
        "forbidden",
    )
    # the token expires with the (test) clock
    env.clock.now += 121
    r = env.http.get(env.fhir + "/Patient/pt-000002", headers=ok)
    _outcome(r, 401, "expired")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_write_scope_allows_the_note_create(env: Env) -> None:
    token = env.sandbox.issue_token("pa-tui-rsa", "system/DocumentReference.c system/Patient.read")
    doc = {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": "Patient/pt-000002"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "aGk="}}],
    }
    r = env.http.post(
        env.fhir + "/DocumentReference",
        json=doc,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 201, r.text


def test_scope_rules() -> None:
    assert scope_covers(["system/*.read"], "Patient", "search")
    assert not scope_covers(["system/*.read"], "DocumentReference", "create")
    assert scope_covers(["system/DocumentReference.write"], "DocumentReference", "create")
    assert scope_covers(["system/Appointment.u"], "Appointment", "update")
    assert not scope_covers(["system/Appointment.r"], "Appointment", "search")
    assert scope_covers(["system/*.*"], "Coverage", "read")
    assert not scope_covers(["patient/*.read", "user/*.read"], "Patient", "read")


def test_auth_is_off_unless_asked() -> None:
    sb = FhirSandbox()
    with pytest.raises(RuntimeError):
        sb.register_client("c", "pem", "k")
    with pytest.raises(ValueError):
        FhirSandbox(auth=True).register_client("c", "not a key", "k")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError):
        FhirSandbox(auth=True).register_client("c", _pem(small), "k")
