"""The inbound listener's pure parts: endpoint file, replay cache, facts, construction. No sockets."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from pa_tui.backends.inbound import (
    ConfirmationDigits,
    ConsoleNotRunning,
    InboundListener,
    PopRequested,
    ReplayCache,
    default_endpoint_paths,
    read_pop_endpoint,
    remove_pop_endpoint,
    write_pop_endpoint,
)
from pa_tui.config import ListenSettings, Settings
from pa_tui.domain.phones import NO_CALLER_ID, parse_phone

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes and owners")


# --------------------------------------------------------------------------- endpoint file
@posix_only
def test_endpoint_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = write_pop_endpoint("http://127.0.0.1:8765", "t0ken", tmp_path / "d" / "pop.json")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    endpoint = read_pop_endpoint(path)
    assert (endpoint.url, endpoint.token, endpoint.pid) == ("http://127.0.0.1:8765", "t0ken", os.getpid())
    assert "t0ken" not in repr(endpoint)


@posix_only
def test_endpoint_file_readable_by_others_is_ignored(tmp_path: Path) -> None:
    path = write_pop_endpoint("http://127.0.0.1:8765", "t0ken", tmp_path / "pop.json")
    path.chmod(0o644)
    with pytest.raises(ConsoleNotRunning):
        read_pop_endpoint(path)


def test_endpoint_file_of_a_dead_process_or_another_host_is_ignored(tmp_path: Path) -> None:
    path = write_pop_endpoint("http://127.0.0.1:8765", "t0ken", tmp_path / "pop.json")
    data = json.loads(path.read_text())
    if sys.platform != "win32":
        data["pid"] = 2**22 + 12345  # beyond any pid_max default
        path.write_text(json.dumps(data))
        with pytest.raises(ConsoleNotRunning):
            read_pop_endpoint(path)
    data["pid"] = os.getpid()
    data["host"] = socket.gethostname() + "-elsewhere"
    path.write_text(json.dumps(data))
    with pytest.raises(ConsoleNotRunning):
        read_pop_endpoint(path)


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"url": "ftp://x", "token": "t"}', '{"url": "http://x"}'])
def test_garbage_endpoint_file_means_no_console(tmp_path: Path, content: str) -> None:
    path = tmp_path / "pop.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ConsoleNotRunning, match="no pa-tui console is running for this user"):
        read_pop_endpoint(path)


def test_remove_only_removes_our_own_file(tmp_path: Path) -> None:
    path = write_pop_endpoint("http://127.0.0.1:1", "mine", tmp_path / "pop.json")
    remove_pop_endpoint(path, "someone-elses")
    assert path.exists()
    remove_pop_endpoint(path, "mine")
    assert not path.exists()
    remove_pop_endpoint(path, "mine")  # already gone: fine


def test_default_paths_prefer_the_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    paths = default_endpoint_paths()
    if sys.platform.startswith("linux"):
        assert paths[0] == run / "pa-tui" / "pop.json"
    assert paths[-1].name == "pop.json" and len(paths) <= 2
    written = write_pop_endpoint("http://127.0.0.1:2", "tok")
    assert written == paths[0]
    assert read_pop_endpoint().token == "tok"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG runtime dir")
@pytest.mark.parametrize("runtime", ["missing", "shared"])
def test_default_paths_fall_back_to_the_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: str
) -> None:
    run = tmp_path / "run"
    if runtime == "shared":
        run.mkdir()
        run.chmod(0o777)  # not private: no place for a token (platformdirs would pick /tmp/runtime-UID)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    paths = default_endpoint_paths()
    assert len(paths) == 1 and str(paths[0]).startswith(os.environ["XDG_STATE_HOME"])
    assert write_pop_endpoint("http://127.0.0.1:3", "tok") == paths[0]
    assert read_pop_endpoint().url == "http://127.0.0.1:3"


# --------------------------------------------------------------------------- replay cache
def test_replay_cache_remembers_until_expiry() -> None:
    now = [1000.0]
    cache = ReplayCache(max_entries=10, clock=lambda: now[0])
    assert not cache.seen("a", "1")
    cache.add("a", "1", ttl=60)
    assert cache.seen("a", "1") and not cache.seen("a", "2") and not cache.seen("a1")
    now[0] += 61
    assert not cache.seen("a", "1")


def test_replay_cache_is_bounded() -> None:
    now = [0.0]
    cache = ReplayCache(max_entries=3, clock=lambda: now[0])
    for i in range(10):
        cache.add(str(i), ttl=100)
    assert len(cache) == 3
    assert cache.seen("9") and not cache.seen("0")
    now[0] = 50
    cache.add("short", ttl=1)
    now[0] = 52
    cache.add("x", ttl=100)
    cache.add("y", ttl=100)  # the expired entry goes before any live one
    assert len(cache) == 3 and not cache.seen("short")


# --------------------------------------------------------------------------- facts
def test_facts_keep_numbers_out_of_their_repr() -> None:
    pop = PopRequested(ani=parse_phone("(408) 555-1212"), dnis=parse_phone("8005550100"), source="8x8")
    text = repr(pop) + str(pop)
    assert "408" not in text and "555" not in text and "800" not in text
    assert "8x8" in text
    withheld = PopRequested(ani=NO_CALLER_ID, source="cli")
    assert "withheld=True" in repr(withheld)
    digits = ConfirmationDigits(call_sid="CA" + "0" * 32, digits="2")
    assert digits.choice == "reschedule"
    assert ConfirmationDigits(call_sid="CA" + "0" * 32, digits="7").choice == "other"
    with pytest.raises(ValueError):
        PopRequested(ani=NO_CALLER_ID, source="web")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- construction
def test_listener_defaults_and_settings() -> None:
    listener = InboundListener(endpoint_file=False)
    assert (listener.host, listener.port, listener.loopback, listener.pop_token_required) == (
        "127.0.0.1", 8765, True, False
    )
    assert InboundListener(host="0.0.0.0", endpoint_file=False).pop_token_required
    assert InboundListener(host="::1", endpoint_file=False).loopback
    assert InboundListener(trust_proxy=True, endpoint_file=False).pop_token_required
    assert not InboundListener(host="0.0.0.0", require_pop_token=False, endpoint_file=False).pop_token_required

    from_listen = InboundListener.from_settings(ListenSettings(host="127.0.0.1", port=9123), endpoint_file=False)
    assert from_listen.port == 9123
    settings = Settings(listen={"port": 9124}, region="CA")
    from_settings = InboundListener.from_settings(settings, endpoint_file=False)
    assert from_settings.port == 9124 and from_settings.config.region == "CA"


@pytest.mark.parametrize(
    "url", ["pa.clinic.example", "ftp://pa.clinic.example", "https://x.example/?a=1", "https://:99"]
)
def test_public_base_url_must_be_an_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="public_base_url"):
        InboundListener(public_base_url=url, endpoint_file=False)


def test_public_base_url_is_normalised() -> None:
    listener = InboundListener(public_base_url=" https://pa.clinic.example/ ", endpoint_file=False)
    assert listener.public_base_url == "https://pa.clinic.example"
