"""The on-disk cache behind :meth:`Population.cached`.

One file per ``(size, seed, as_of, generator version, Python version)``: a text
header naming the key, then the population's up-front data (resources and
indexes, plain JSON-like values) in :mod:`marshal` form, which loads several
times faster than JSON or pickle for millions of small dicts. The file is the
user's own (their cache directory) and written atomically; a file whose header
does not match, or that fails to load, is regenerated.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import marshal
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # pragma: no cover
    from pa_tui.demo.population import Population

log = logging.getLogger(__name__)

#: Bump whenever generation changes what a seed produces, so stale caches are not served.
GENERATOR_VERSION: Final = 2
_MAGIC: Final = b"PA-TUI-POPULATION 1\n"


def cache_dir() -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("pa-tui") / "population"


def cache_key(size: int, seed: int, as_of: date) -> str:
    py = f"py{sys.version_info[0]}{sys.version_info[1]}m{marshal.version}"
    return f"size={size} seed={seed} as_of={as_of.isoformat()} gen={GENERATOR_VERSION} {py}"


def cache_file(size: int, seed: int, as_of: date, directory: str | os.PathLike[str] | None = None) -> Path:
    folder = Path(directory) if directory is not None else cache_dir()
    name = f"population-{size}-{seed}-{as_of.isoformat()}-g{GENERATOR_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    return folder / f"{name}.marshal"


def _payload(pop: Population) -> dict[str, Any]:
    return {
        "seed": pop.seed,
        "as_of": pop.as_of.isoformat(),
        "resources": pop.resources,
        "holders": pop._holders,
        "preferred": pop._preferred,
        "relations": pop._relations,
        "directory": pop.directory_index,
    }


def save(pop: Population, path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = marshal.dumps(_payload(pop))
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC)
            fh.write(key.encode() + b"\n")
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load(cls: type[Population], path: Path, key: str) -> Population | None:
    try:
        with path.open("rb") as fh:
            if fh.readline() != _MAGIC or fh.readline() != key.encode() + b"\n":
                return None
            data = fh.read()
    except OSError:
        return None
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        payload = marshal.loads(data)
        return cls(
            payload["resources"],
            seed=payload["seed"],
            as_of=date.fromisoformat(payload["as_of"]),
            phone_holders=payload["holders"],
            preferred_phone=payload["preferred"],
            relations=payload["relations"],
            directory_index=payload["directory"],
        )
    except (ValueError, EOFError, TypeError, KeyError):
        log.warning("ignoring an unreadable population cache file; it will be rebuilt")
        return None
    finally:
        if gc_was_enabled:
            gc.enable()


def cached(
    cls: type[Population],
    size: int,
    seed: int,
    *,
    as_of: date,
    cache_dir: str | os.PathLike[str] | None,
    progress: Callable[[int, int], None] | None,
) -> Population:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError("size must be a whole number of patients, 0 or more")
    path = cache_file(size, seed, as_of, cache_dir)
    key = cache_key(size, seed, as_of)
    pop = load(cls, path, key)
    if pop is not None:
        if progress is not None:
            progress(size, size)
        return pop
    pop = cls.generate(size, seed, as_of=as_of, progress=progress)
    try:
        save(pop, path, key)
    except OSError as exc:
        log.warning("could not write the population cache (%s); the next start will generate again", exc.strerror)
    return pop
