"""The plugin-author import surface: ``from host import ...``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

import host
from host import core_services
from host.features import ServiceRef

ROOT = Path(__file__).resolve().parents[2]


def test_every_public_name_resolves_and_is_documented() -> None:
    """Each name in ``__all__`` imports, and each class or function has a docstring."""
    assert len(set(host.__all__)) == len(host.__all__)
    for name in host.__all__:
        value = getattr(host, name)
        if callable(value) and name != "Principal":
            assert (value.__doc__ or "").strip(), f"host.{name} has no docstring"


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        host.nope  # noqa: B018


def test_importing_host_stays_light() -> None:
    """``import host`` (done by the gunicorn master) loads neither Falcon, SQLAlchemy nor pydantic."""
    code = "import sys, host; print(sorted(m for m in ('falcon', 'sqlalchemy', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_core_services_is_one_typed_read_only_namespace() -> None:
    refs = {name: getattr(core_services, name) for name in dir(core_services) if not name.startswith("_")}
    assert refs and all(isinstance(ref, ServiceRef) for ref in refs.values())
    assert core_services.logger.id == "core.logger" and core_services.config.scope == "root"
    with pytest.raises(AttributeError, match="read-only"):
        core_services.logger = core_services.database  # type: ignore[misc]
    # The old module-level spellings (``host.services.logger``) are gone: one spelling only.
    import host.services as services_module

    assert not hasattr(services_module, "logger")


def test_py_typed_ships_with_the_package() -> None:
    assert resources.files("host").joinpath("py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["*"]
