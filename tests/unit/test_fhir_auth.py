"""SmartBackendAuth's key handling and client assertion, without a network."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from pa_tui.backends.base import AuthError
from pa_tui.backends.fhir import SmartBackendAuth
from pa_tui.backends.fhir.auth import load_private_key

TOKEN_URL = "https://auth.example.org/token"


def _pem(key: object, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ec_pem() -> bytes:
    return _pem(ec.generate_private_key(ec.SECP384R1()))


def _body(pem: bytes) -> str:
    return "".join(pem.decode().splitlines()[1:-1])


def test_the_key_comes_as_secret_text_bytes_or_a_file(rsa_pem: bytes, tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(rsa_pem)
    for source in (SecretStr(rsa_pem.decode()), rsa_pem.decode(), rsa_pem, path, str(path)):
        assert isinstance(load_private_key(source, "RS384"), rsa.RSAPrivateKey)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "alg", "words"),
    [
        (lambda r, e, p: SecretStr(e.decode()), "RS384", "not an RSA key"),
        (lambda r, e, p: SecretStr(r.decode()), "ES384", "not a P-384 EC key"),
        (lambda r, e, p: SecretStr(_pem(ec.generate_private_key(ec.SECP256R1())).decode()), "ES384", "P-384"),
        (lambda r, e, p: SecretStr(_pem(rsa.generate_private_key(65537, 1024)).decode()), "RS384", "too short"),
        (lambda r, e, p: SecretStr(_pem(rsa.generate_private_key(65537, 2048), b"pw").decode()), "RS384", "passphrase"),
        (lambda r, e, p: SecretStr("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"), "RS384", "not a PEM"),
        (lambda r, e, p: p / "missing.pem", "RS384", "Cannot read"),
        (lambda r, e, p: SecretStr(r.decode()), "HS256", "Unsupported"),
    ],
)
def test_unusable_keys_are_refused_without_showing_them(
    rsa_pem: bytes, ec_pem: bytes, tmp_path: Path, make, alg: str, words: str  # type: ignore[no-untyped-def]
) -> None:
    source = make(rsa_pem, ec_pem, tmp_path)
    with pytest.raises(AuthError) as exc:
        load_private_key(source, alg)
    text = str(exc.value)
    assert words in text
    assert _body(rsa_pem)[:30] not in text and _body(ec_pem)[:30] not in text
    assert exc.value.__cause__ is None and (exc.value.__context__ is None or exc.value.__suppress_context__)


def test_configuration_errors_are_clear(rsa_pem: bytes) -> None:
    key = SecretStr(rsa_pem.decode())
    with pytest.raises(AuthError, match="client id"):
        SmartBackendAuth(" ", key, "k1")
    with pytest.raises(AuthError, match="kid"):
        SmartBackendAuth("c", key, "")
    with pytest.raises(AuthError, match="scope"):
        SmartBackendAuth("c", key, "k1", scope="  ")
    with pytest.raises(AuthError, match="not HTTPS"):
        SmartBackendAuth("c", key, "k1", token_url="http://auth.example.org/token")
    local = SmartBackendAuth("c", key, "k1", token_url="http://127.0.0.1:8080/auth/token")
    assert local.token_url == "http://127.0.0.1:8080/auth/token"  # loopback (the demo sandbox) may be plain HTTP


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_the_client_assertion(rsa_pem: bytes, ec_pem: bytes, alg: str) -> None:
    pem = rsa_pem if alg == "RS384" else ec_pem
    now = 1_767_225_600
    auth = SmartBackendAuth("client-1", SecretStr(pem.decode()), "kid-9", alg, clock=lambda: now)  # type: ignore[arg-type]
    a1, a2 = auth.client_assertion(TOKEN_URL), auth.client_assertion(TOKEN_URL)
    public = serialization.load_pem_private_key(pem, None).public_key()
    header = jwt.get_unverified_header(a1)
    assert header == {"alg": alg, "kid": "kid-9", "typ": "JWT"}
    claims = jwt.decode(a1, public, algorithms=[alg], audience=TOKEN_URL, options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == claims["sub"] == "client-1" and claims["aud"] == TOKEN_URL
    assert claims["iat"] == now and claims["exp"] == now + 300
    assert len(claims["jti"]) >= 20
    assert jwt.decode(a2, options={"verify_signature": False})["jti"] != claims["jti"]
    short = SmartBackendAuth("client-1", SecretStr(pem.decode()), "kid-9", alg, assertion_lifetime=3600, clock=lambda: now)  # type: ignore[arg-type]
    exp = jwt.decode(short.client_assertion(TOKEN_URL), options={"verify_signature": False})["exp"]
    assert exp - now == 300, "never more than five minutes"


def test_repr_names_the_client_not_the_key(rsa_pem: bytes) -> None:
    auth = SmartBackendAuth("client-1", SecretStr(rsa_pem.decode()), "kid-9", token_url=TOKEN_URL)
    text = repr(auth) + str(auth)
    assert "client-1" in text and "kid-9" in text and "RS384" in text
    assert "PRIVATE" not in text and _body(rsa_pem)[:20] not in text
