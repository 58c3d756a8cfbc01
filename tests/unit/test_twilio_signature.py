"""X-Twilio-Signature: pa-tui's compute/verify agree with Twilio's own RequestValidator (the oracle)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from pa_tui.backends.twilio.signature import body_sha256, compute_signature, url_variants, verify_signature

twilio_validator = pytest.importorskip("twilio.request_validator")
RequestValidator = twilio_validator.RequestValidator

TOKEN = "12345abcdef67890fedcba0987654321"

# Twilio's documented worked example (https://www.twilio.com/docs/usage/security).
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_TOKEN = "12345"
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

STATUS_PARAMS = {
    "AccountSid": "AC5e0de000000000000000000000000001",
    "ApiVersion": "2010-04-01",
    "From": "+14155550123",
    "MessageSid": "SM" + "a" * 32,
    "MessageStatus": "delivered",
    "SmsSid": "SM" + "a" * 32,
    "SmsStatus": "delivered",
    "To": "+14085551212",
}


def oracle_sign(url: str, params: object, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def oracle_valid(url: str, params: object, signature: str, token: str = TOKEN) -> bool:
    return bool(RequestValidator(token).validate(url, params, signature))


def test_twilio_documented_example() -> None:
    assert compute_signature(DOC_URL, DOC_PARAMS, DOC_TOKEN) == DOC_SIGNATURE
    assert oracle_sign(DOC_URL, DOC_PARAMS, DOC_TOKEN) == DOC_SIGNATURE
    assert verify_signature(DOC_URL, DOC_PARAMS, DOC_SIGNATURE, DOC_TOKEN)


@pytest.mark.parametrize(
    "url",
    [
        "https://pa.example.org/twilio/status",
        "https://pa.example.org:443/twilio/status",
        "http://127.0.0.1:8787/twilio/sms?site=north",
        "http://pa.example.org/twilio/sms",
        "http://pa.example.org:80/twilio/sms",
    ],
)
def test_signature_matches_oracle(url: str) -> None:
    ours = compute_signature(url, STATUS_PARAMS, TOKEN)
    assert ours == oracle_sign(url, STATUS_PARAMS)
    assert verify_signature(url, STATUS_PARAMS, ours, TOKEN)
    assert oracle_valid(url, STATUS_PARAMS, ours)


def test_secret_str_token_and_pairs() -> None:
    pairs = list(STATUS_PARAMS.items())
    assert compute_signature("https://a.example/x", pairs, SecretStr(TOKEN)) == oracle_sign(
        "https://a.example/x", STATUS_PARAMS
    )


@pytest.mark.parametrize(
    ("signed_url", "presented_url"),
    [
        ("https://pa.example.org/twilio/status", "https://pa.example.org:443/twilio/status"),
        ("https://pa.example.org:443/twilio/status", "https://pa.example.org/twilio/status"),
        ("http://pa.example.org/twilio/status", "http://pa.example.org:80/twilio/status"),
        ("http://pa.example.org:80/twilio/status", "http://pa.example.org/twilio/status"),
        ("https://pa.example.org/twilio/status?x=1", "https://pa.example.org:443/twilio/status?x=1"),
    ],
)
def test_port_variants_accepted_like_oracle(signed_url: str, presented_url: str) -> None:
    signature = compute_signature(signed_url, STATUS_PARAMS, TOKEN)
    assert verify_signature(presented_url, STATUS_PARAMS, signature, TOKEN)
    assert oracle_valid(presented_url, STATUS_PARAMS, signature)


@pytest.mark.parametrize(
    ("signed_url", "presented_url"),
    [
        ("https://pa.example.org/twilio/status", "https://pa.example.org/twilio/sms"),
        ("https://pa.example.org/twilio/status", "http://pa.example.org/twilio/status"),
        ("https://pa.example.org/twilio/status", "https://evil.example.org/twilio/status"),
        ("https://pa.example.org/twilio/status", "https://pa.example.org/twilio/status?x=1"),
        ("https://pa.example.org:8443/twilio/status", "https://pa.example.org:9443/twilio/status"),
    ],
)
def test_changed_url_rejected_like_oracle(signed_url: str, presented_url: str) -> None:
    signature = compute_signature(signed_url, STATUS_PARAMS, TOKEN)
    assert not verify_signature(presented_url, STATUS_PARAMS, signature, TOKEN)
    assert not oracle_valid(presented_url, STATUS_PARAMS, signature)


def test_changed_param_added_param_and_wrong_token_rejected() -> None:
    url = "https://pa.example.org/twilio/status"
    signature = compute_signature(url, STATUS_PARAMS, TOKEN)
    changed = {**STATUS_PARAMS, "MessageStatus": "failed"}
    added = {**STATUS_PARAMS, "ErrorCode": "30006"}
    dropped = {k: v for k, v in STATUS_PARAMS.items() if k != "To"}
    for params in (changed, added, dropped):
        assert not verify_signature(url, params, signature, TOKEN)
        assert not oracle_valid(url, params, signature)
    assert not verify_signature(url, STATUS_PARAMS, signature, TOKEN + "x")
    assert not oracle_valid(url, STATUS_PARAMS, signature, TOKEN + "x")


@pytest.mark.parametrize("bad", [None, "", "not-base64", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "ü" * 28])
def test_garbage_signatures_are_false_not_errors(bad: str | None) -> None:
    assert verify_signature("https://pa.example.org/x", STATUS_PARAMS, bad, TOKEN) is False


def test_malformed_url_is_false_not_error() -> None:
    signature = compute_signature("http://host:notaport/x", {}, TOKEN)
    assert verify_signature("http://host:notaport/x", {}, signature, TOKEN)  # as given still matches
    assert verify_signature("http://host:notaport/y", {}, signature, TOKEN) is False


def test_repeated_parameter_values_sorted_like_oracle() -> None:
    url = "https://pa.example.org/twilio/status"
    multi = {"StatusCallbackEvent": ["ringing", "answered", "completed"], "To": "+14085551212"}
    ours = compute_signature(url, multi, TOKEN)

    class MultiDict(dict):  # what Flask/Werkzeug hand to the oracle
        def getall(self, name: str) -> list[str]:
            value = self[name]
            return value if isinstance(value, list) else [value]

    assert ours == oracle_sign(url, MultiDict(multi))
    pairs = [("To", "+14085551212"), ("StatusCallbackEvent", "completed"), ("StatusCallbackEvent", "ringing"),
             ("StatusCallbackEvent", "answered")]
    assert compute_signature(url, pairs, TOKEN) == ours


def test_json_body_with_body_sha256() -> None:
    body = json.dumps({"MessageSid": "SM" + "b" * 32, "status": "delivered"})
    url = f"https://pa.example.org/twilio/events?{urlencode({'bodySHA256': body_sha256(body)})}"
    signature = compute_signature(url, None, TOKEN)
    assert signature == oracle_sign(url, {})
    assert verify_signature(url, body, signature, TOKEN)
    assert oracle_valid(url, body, signature)
    assert verify_signature(url, body.encode(), signature, TOKEN)
    tampered = body.replace("delivered", "failed")
    assert not verify_signature(url, tampered, signature, TOKEN)
    assert not oracle_valid(url, tampered, signature)
    # a raw body without bodySHA256 in the URL is never accepted
    plain = "https://pa.example.org/twilio/events"
    assert not verify_signature(plain, body, compute_signature(plain, None, TOKEN), TOKEN)


def test_url_variants() -> None:
    assert url_variants("https://a.example/x") == ["https://a.example/x", "https://a.example:443/x"]
    assert url_variants("http://a.example:8080/x?q=1") == ["http://a.example:8080/x?q=1", "http://a.example/x?q=1"]


# --------------------------------------------------------------------------- property tests
_names = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=1, max_size=12)
_values = st.text(max_size=40)
_params = st.dictionaries(_names, _values, max_size=8)
_hosts = st.sampled_from(["pa.example.org", "127.0.0.1", "localhost", "twilio-hooks.example.com"])
_paths = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=8), max_size=3)
_ports = st.one_of(st.none(), st.sampled_from([80, 443, 8080, 8443]), st.integers(1, 65535))
_queries = st.dictionaries(st.sampled_from(["a", "b", "site", "id"]), st.text(alphabet="xyz019", max_size=5), max_size=2)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(_hosts)
    port = draw(_ports)
    netloc = f"{host}:{port}" if port is not None else host
    path = "/" + "/".join(draw(_paths))
    query = draw(_queries)
    return f"{scheme}://{netloc}{path}" + (f"?{urlencode(query)}" if query else "")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(url=urls(), params=_params, token=st.text(min_size=1, max_size=40))
def test_property_agrees_with_oracle(url: str, params: dict[str, str], token: str) -> None:
    ours = compute_signature(url, params, token)
    assert ours == oracle_sign(url, params, token)
    assert verify_signature(url, params, ours, token)
    assert oracle_valid(url, params, ours, token)


@settings(max_examples=150, deadline=None)
@given(url=urls(), params=_params, other=_params, other_url=urls())
def test_property_verdicts_agree_with_oracle(
    url: str, params: dict[str, str], other: dict[str, str], other_url: str
) -> None:
    """For a signature made for one request, ours and the oracle agree on any presented request."""
    signature = oracle_sign(url, params)
    for presented_url, presented in ((url, params), (url, other), (other_url, params), (other_url, other)):
        assert verify_signature(presented_url, presented, signature, TOKEN) == oracle_valid(
            presented_url, presented, signature
        )


@settings(max_examples=100, deadline=None)
@given(url=urls(), params=_params.filter(bool), data=st.data())
def test_property_any_single_change_is_rejected(url: str, params: dict[str, str], data: st.DataObject) -> None:
    signature = compute_signature(url, params, TOKEN)
    name = data.draw(st.sampled_from(sorted(params)))
    new_value = data.draw(_values.filter(lambda v: v != params[name]))
    tampered = {**params, name: new_value}
    assert not verify_signature(url, tampered, signature, TOKEN)
    assert not oracle_valid(url, tampered, signature)
