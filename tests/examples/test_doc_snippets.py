"""docs/writing-plugins.md: snippets are the tested example's code, and every service ref and hook is documented."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from greenroom_notifications_email import hookspecs as email_hookspecs

import host
import plugin_catalog
import plugin_notifications
import plugin_signals
from host import ServiceRef, core_services
from host.auth import hookspecs as auth_hookspecs
from plugin_notifications import hookspecs

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-plugins.md"


def _sync_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("sync_doc_snippets", ROOT / "scripts" / "sync_doc_snippets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_snippets_match_the_example_code() -> None:
    """Run ``python scripts/sync_doc_snippets.py`` after changing the example."""
    guide = GUIDE.read_text()
    assert guide.count("<!-- snippet:") >= 8
    assert _sync_module().render(guide) == guide, "docs/writing-plugins.md is out of date with examples/hello-plugin"


def test_python_blocks_compile() -> None:
    for block in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S):
        compile(block, "writing-plugins.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("name", sorted(n for n in dir(core_services) if not n.startswith("_")))
def test_every_core_service_ref_is_documented(name: str) -> None:
    assert f"`core_services.{name}`" in GUIDE.read_text()


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for package in (host, plugin_catalog, plugin_notifications, plugin_signals)
        for name in package.__all__
        if isinstance(getattr(package, name), ServiceRef) and not name.endswith("_provided_ref")
    ),
)
def test_every_plugin_service_ref_is_documented(name: str) -> None:
    """Every service ref a plugin author can import (the host's contracts and the plugins' own)."""
    assert f"`{name}`" in GUIDE.read_text()


def _specs(module: Any) -> list[tuple[Any, str]]:
    return [(module, name) for name in dir(module) if hasattr(getattr(module, name), f"{module.PROJECT_NAME}_spec")]


ALL_HOOKS = [*_specs(hookspecs), *_specs(auth_hookspecs), *_specs(email_hookspecs)]


@pytest.mark.parametrize(("module", "hook"), ALL_HOOKS, ids=[hook for _, hook in ALL_HOOKS])
def test_every_hook_is_documented_with_its_arguments(module: Any, hook: str) -> None:
    documented = re.findall(rf"`{hook}\(([^)]*)\)`", GUIDE.read_text())
    assert documented, f"{hook} is not in docs/writing-plugins.md"
    spec_args = list(inspect.signature(getattr(module, hook)).parameters)
    assert all([a.strip() for a in args.split(",") if a.strip()] == spec_args for args in documented)


def test_entry_point_groups_are_documented() -> None:
    guide = GUIDE.read_text()
    assert "greenroom.backend_features" in guide and hookspecs.ENTRY_POINT_GROUP in guide
