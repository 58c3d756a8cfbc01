"""`pa-tui` configured for SMART Backend Services signs in to the EHR and identifies callers."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pa_tui.backends.base import AuthError
from pa_tui.config import load_settings
from pa_tui.demo.fhir_sandbox import FhirSandbox
from pa_tui.demo.host import SimulatorHost
from pa_tui.demo.population import Population
from pa_tui.domain.phones import parse_phone
from pa_tui.wiring import build_ehr


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def smart_sandbox():  # type: ignore[no-untyped-def]
    population = Population.generate(size=120, seed=3)
    sandbox = FhirSandbox(population, auth=True)
    host = SimulatorHost()
    host.add("fhir", sandbox.app)
    host.start()
    try:
        yield population, sandbox, sandbox.url(host.url("fhir"))
    finally:
        host.stop()


def _config(tmp_path: Path, base: str, key_file: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[fhir]\nbase_url = "{base}"\nauth = "smart-backend"\nclient_id = "pa-tui-site"\n'
        f'key_id = "site-key-1"\nprivate_key_path = "{key_file}"\n'
    )
    return config


async def test_smart_backend_sign_in_from_config(smart_sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    population, sandbox, base = smart_sandbox
    key = _key()
    sandbox.register_client("pa-tui-site", _public_pem(key).decode(), kid="site-key-1")
    key_file = tmp_path / "site.pem"
    key_file.write_bytes(_pem(key))
    key_file.chmod(0o600)
    ehr = build_ehr(load_settings(_config(tmp_path, base, key_file)))
    number = population.household_numbers()[0]
    match = await ehr.find_by_phone(parse_phone(number))  # type: ignore[arg-type]
    await ehr.aclose()
    assert {p.id for p in match.candidates} == set(population.households[number])


async def test_a_key_the_ehr_does_not_know_is_refused_clearly(smart_sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    population, sandbox, base = smart_sandbox
    registered, other = _key(), _key()
    sandbox.register_client("pa-tui-site", _public_pem(registered).decode(), kid="site-key-1")
    key_file = tmp_path / "wrong.pem"
    key_file.write_bytes(_pem(other))
    ehr = build_ehr(load_settings(_config(tmp_path, base, key_file)))
    with pytest.raises(AuthError) as info:
        await ehr.find_by_phone(parse_phone(population.household_numbers()[0]))  # type: ignore[arg-type]
    await ehr.aclose()
    assert "pa-tui-site" in str(info.value) and "BEGIN" not in str(info.value)
