"""Shared test harness: a real host served by uvicorn on a free port (see :mod:`host.testing`).

``start_host(db="sqlite"|"postgres", config={...}, features=[...])`` is an
async context manager yielding a :class:`HostHandle`; here discovery of the
installed features is on by default. On PostgreSQL every
host gets its own schemas (``pluginDivisionMode: schema`` with a unique
prefix) in the ``test`` database, dropped afterwards. With ``CI=true`` a
missing PostgreSQL or Redis fails the run instead of skipping.

``make test`` runs the suite on several pytest-xdist workers (``--dist
loadfile``): every name a test takes from a shared server (schema prefix,
NOTIFY channel, Redis channel, port) is unique per test, and the tests of one
file run on one worker in file order, so the tests that share a module-scoped
fixture see it as in a serial run. (``--dist loadgroup`` with ``xdist_group``
marks does not group on pytest 9.2: xdist 3.8 renames ``item._nodeid``, which
pytest 9.2 no longer reads, so every test was spread on its own.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from host.config import Config, deep_merge
from host.testing import (
    IN_CI,
    PG_DSN,
    REDIS_URL,
    SERVICE_SUBJECT,
    SERVICE_TOKEN,
    HostHandle,
    base_config,
    drop_pg_schemas,
    free_port,
    pg_connection_config,
)
from host.testing import start_host as _start_host

__all__ = [
    "IN_CI",
    "PG_DSN",
    "REDIS_URL",
    "SERVICE_SUBJECT",
    "SERVICE_TOKEN",
    "HostHandle",
    "base_config",
    "drop_pg_schemas",
    "free_port",
    "install_distribution",
    "on_sys_path",
    "pg_connection_config",
    "pip_install_target",
    "start_host",
    "startup_error",
]


def start_host(*args: Any, discover: bool = True, **kwargs: Any) -> Any:
    """:func:`host.testing.start_host`, with discovery of the installed features on by default."""
    return _start_host(*args, discover=discover, **kwargs)


async def startup_error(
    data_dir: Path,
    *,
    config: dict[str, Any] | None = None,
    features: Iterable[Any] = (),
    plugins: Iterable[str] | None = None,
) -> str:
    """Start a backend that must fail (SQLite in ``data_dir``); return its error and every cause, joined.

    With ``plugins`` only those entry points are discovered; without, only ``features`` are added.
    """
    from host.defaults import create_backend

    overrides = {"backend": {"database": {"connection": {"directory": str(data_dir)}}, "logger": {"level": "error"}}}
    if plugins is not None:
        overrides["backend"]["features"] = {"include": list(plugins)}
    backend = create_backend(Config.load(overrides=deep_merge(config or {}, overrides)), discover=plugins is not None)
    for feature in features:
        backend.add(feature)
    with pytest.raises(Exception) as failure:
        await backend.start()
    await backend.stop()
    texts: list[str] = []
    current: BaseException | None = failure.value
    while current is not None:
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    return " | ".join(texts)


def install_distribution(source: Path, directory: Path) -> Path:
    """``pip install --target`` the distribution at ``source`` into ``directory/site``; return that site dir.

    The source is copied first so the build leaves nothing behind in the repository.
    Put the returned directory on ``sys.path`` to "install" it, remove it to "uninstall" it.
    """
    import shutil

    copy = directory / "src" / source.name
    shutil.copytree(source, copy)
    return pip_install_target(directory / "site", copy)


def pip_install_target(site: Path, *sources: Path) -> Path:
    """``pip install --target site`` the distributions at ``sources`` (no deps, no build isolation); return ``site``."""
    import subprocess
    import sys

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            *map(str, sources),
        ],
        check=True,
    )
    return site


@contextlib.contextmanager
def on_sys_path(site: Path, *modules: str) -> Iterator[None]:
    """Make the distributions in ``site`` importable ("installed") for the block; forget ``modules`` after."""
    import importlib
    import sys

    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(str(site))
        for module in modules:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    return str(request.param)
