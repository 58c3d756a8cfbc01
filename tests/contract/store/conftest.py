"""Fixtures for the Store contract suite: every test runs against SQLite and PostgreSQL.

Like Harlequin's ``all_adapters``: ``store`` is parametrized over
``["sqlite", "postgres"]``. The PostgreSQL side starts a throwaway cluster once
per session (``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``, data
in a temporary folder, listening on 127.0.0.1 on a free port and on a unix
socket in that folder) and gives each test a fresh database. As root, the
server runs as the ``postgres`` OS user (``runuser``). Without PostgreSQL the
postgres tests are skipped — except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pa_tui.backends.store import PostgresStore, SqliteStore

HERE = Path(__file__).parent
PROC_SCRIPT = HERE / "store_proc.py"
IN_CI = os.environ.get("CI", "").strip().lower() == "true"


def _version(path: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([\d.]+)/", path)
    return tuple(int(p) for p in m.group(1).split(".")) if m else (0,)


def find_pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _no_postgres(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI: {reason} (.ci/run installs Debian's postgresql)", pytrace=False)
    pytest.skip(f"PostgreSQL not available here: {reason}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    bindir: Path
    root: Path
    port: int
    password: str
    run_as: list[str]
    user: str = "patui"
    _admin: Any = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
            " -c synchronous_commit=off -c max_connections=200 -c shared_buffers=32MB"
        )
        self._pg_ctl("-l", str(self.root / "server.log"), "-w", "-t", "30", "-o", opts, "start")

    def stop(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
        self._pg_ctl("-m", "immediate", "stop", check=False)

    def admin(self) -> Any:
        import psycopg

        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(self.dsn(), autocommit=True)
        return self._admin

    def new_schema(self) -> tuple[str, str]:
        """A fresh, empty schema and a DSN whose search_path points at it.

        Cheaper than a database per test (CREATE DATABASE costs ~0.3-0.5 s here);
        the store only ever uses unqualified names, so a schema isolates it as well.
        """
        name = "t_" + uuid.uuid4().hex[:12]
        self.admin().execute(f'CREATE SCHEMA "{name}"')
        return name, f"{self.dsn()}?options=-csearch_path%3D{name}"

    def drop_schema(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.admin().execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


class NoPostgres(Exception):
    """PostgreSQL binaries (or a way to run them) are missing on this machine."""


@contextlib.contextmanager
def running_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for the duration of the block."""
    bindir = find_pg_bin()
    if bindir is None or not (bindir / "pg_ctl").exists():
        raise NoPostgres("no initdb/pg_ctl under /usr/lib/postgresql/*/bin")
    run_as: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            raise NoPostgres("running as root needs `runuser` and a `postgres` OS user to run the server")
        run_as = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="pa-tui-pg-"))
    try:
        password = secrets.token_urlsafe(16)
        (root / "pw").write_text(password + "\n")
        if owner is not None:
            for p in (root, root / "pw"):
                os.chown(p, owner.pw_uid, owner.pw_gid)
        cluster = PgCluster(bindir=bindir, root=root, port=_free_port(), password=password, run_as=run_as)
        init = subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(cluster.datadir),
                "-U",
                cluster.user,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={root / 'pw'}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()[-500:]}")
        try:
            try:
                cluster.start()
            except subprocess.CalledProcessError:  # the free port was taken meanwhile: once more
                cluster.port = _free_port()
                cluster.start()
        except subprocess.CalledProcessError as exc:
            log = (root / "server.log").read_text(errors="replace")[-800:] if (root / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {exc.stderr.strip()[-300:]} {log}") from None
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    try:
        with running_cluster() as cluster:
            yield cluster
    except NoPostgres as exc:
        _no_postgres(str(exc))


@dataclass
class StoreTarget:
    """Where a test's store lives; ``make()`` builds more stores on the same data (more consoles)."""

    backend: str
    path: Path | None = None
    dsn: str | None = None
    cluster: PgCluster | None = None

    @property
    def target(self) -> str:
        return str(self.path) if self.backend == "sqlite" else str(self.dsn)

    def make(self, **kwargs: Any) -> SqliteStore | PostgresStore:
        if self.backend == "sqlite":
            return SqliteStore(self.path, **kwargs)
        assert self.dsn is not None
        return PostgresStore(self.dsn, **kwargs)

    def raw(self) -> Any:
        """A plain DB-API connection, bypassing the Store API (autocommit)."""
        if self.backend == "sqlite":
            import sqlite3

            return sqlite3.connect(self.path, isolation_level=None)
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)


def _target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    if request.param == "sqlite":
        yield StoreTarget("sqlite", path=tmp_path / "data" / "pa-tui.db")
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name, dsn = cluster.new_schema()
    try:
        yield StoreTarget("postgres", dsn=dsn, cluster=cluster)
    finally:
        cluster.drop_schema(name)


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    yield from _target(request, tmp_path)


@pytest.fixture
async def store(store_target: StoreTarget) -> AsyncIterator[SqliteStore | PostgresStore]:
    s = store_target.make()
    await s.open()
    try:
        yield s
    finally:
        await s.aclose()


def _proc_cmd(mode: str, target: StoreTarget, *args: str, procs: int | None = None) -> list[str]:
    """The command line that runs ``store_proc.py`` (a small Store API client) in a subprocess;
    with ``procs``, in that many forked processes (``{n}`` in ``args`` is each one's number)."""
    fork = ["--procs", str(procs)] if procs else []
    return [sys.executable, str(PROC_SCRIPT), *fork, mode, target.backend, target.target, *args]


@pytest.fixture
def proc_cmd() -> Any:
    """``proc_cmd(mode, target, *args, procs=N)``: the command line of a Store API client process."""
    return _proc_cmd
