"""DESIGN.md's boundary: domain and backends work without the UI."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pa_tui.backends
import pa_tui.domain


def _modules(package: object) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]  # type: ignore[attr-defined]


def test_domain_and_backends_import_without_textual() -> None:
    modules = _modules(pa_tui.domain) + _modules(pa_tui.backends)
    assert "pa_tui.domain.phones" in modules and "pa_tui.backends.base" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')"
        " or m.startswith('pa_tui.screens') or m.startswith('pa_tui.widgets') or m == 'pa_tui.app')\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"UI modules imported by domain/backends: {out.stdout.strip()}"


def test_domain_does_no_io() -> None:
    modules = _modules(pa_tui.domain)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "io = ('httpx', 'websockets', 'sqlite3', 'psycopg', 'uvicorn', 'starlette', 'keyring')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in io)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"I/O libraries imported by domain: {out.stdout.strip()}"
