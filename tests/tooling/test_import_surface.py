"""Plugins import the host only through ``host`` itself: its submodules are the implementation."""

from __future__ import annotations

import ast
from pathlib import Path

import host

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SOURCES = [
    *(ROOT / name for name in ("plugin_catalog", "plugin_mcp_actions", "plugin_notifications", "plugin_signals")),
    *sorted(ROOT.glob("plugins/*/greenroom_*")),
    *sorted(ROOT.glob("examples/*/greenroom_*")),
]


def _plugin_files() -> list[Path]:
    files = []
    for source in PLUGIN_SOURCES:
        for path in source.rglob("*.py"):
            parts = path.relative_to(source).parts
            if "tests" in parts or "migrations" in parts:
                continue  # tests may reach into internals; migrations are frozen
            files.append(path)
    return files


def test_plugin_code_imports_only_the_host_package() -> None:
    offenders = []
    for path in _plugin_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {module}" for module in modules if module.startswith("host.")
            ]
    assert len(PLUGIN_SOURCES) >= 8 and _plugin_files(), "no plugin sources found"
    assert not offenders, "import these names from `host` (add them to host.__all__ if missing):\n" + "\n".join(
        offenders
    )


def test_every_public_name_resolves() -> None:
    assert len(host.__all__) == len(set(host.__all__))
    missing = [name for name in host.__all__ if getattr(host, name, None) is None]
    assert not missing
    assert set(dir(host)) >= set(host.__all__)
