"""The documentation's YAML is valid, its config examples pass ``config check``, and every config key is documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, RootModel

from host.config import Config
from host.config_schema import _flatten as flatten_annotation
from host.config_schema import check_sections
from tests.host.test_config_schema import all_schemas

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])
BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.S | re.M)
#: Values for the ``${VAR}`` references in examples.
EXAMPLE_ENV = {
    "GREENROOM_DB_PASSWORD": "example-db-password",
    "CI_NOTIFY_TOKEN": "ci-notify-token-from-a-vault-0123",
    "GREENROOM_PROXY_SECRET": "example-proxy-secret-0123456789",
    "SMTP_USERNAME": "smtp-user",
    "SMTP_PASSWORD": "smtp-password",
    "GREENROOM_SIGNING_KEY": "unused",
    "WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQy",
}


def example_env(text: str) -> dict[str, str]:
    """A value for every variable an example references (``${NAME}``, ``$env: NAME``)."""
    names = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text) + re.findall(r"\$env:\s*([A-Za-z_][A-Za-z0-9_]*)", text)
    return {**{name: f"example-value-for-{name.lower()}" for name in names}, **EXAMPLE_ENV}


def yaml_blocks() -> list[tuple[str, str]]:
    return [(f"{doc.name}#{index}", text) for doc in DOCS for index, text in enumerate(BLOCK.findall(doc.read_text()))]


def is_config(data: Any) -> bool:
    """A block is an app-config example when its top-level keys are config sections."""
    sections = {key.split(".")[0] for key in all_schemas()}
    return isinstance(data, dict) and bool(data) and set(data) <= sections


def test_there_are_yaml_blocks() -> None:
    assert len(yaml_blocks()) >= 7


@pytest.mark.parametrize(("where", "text"), yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_every_yaml_block_loads_and_config_blocks_validate(where: str, text: str, tmp_path: Path) -> None:
    data = yaml.safe_load(text)
    if not is_config(data):
        return
    path = tmp_path / "example.yaml"
    path.write_text(text)
    merged = Config.load([path], include_defaults=False, env=example_env(text)).as_dict()
    findings = check_sections(merged, all_schemas(), context={"base_dir": ROOT})
    assert [str(f) for f in findings] == []


def config_check(*configs: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``greenroom config check --config C ...`` run from the repository root."""
    args = [arg for config in configs for arg in ("--config", config)]
    return subprocess.run(
        [sys.executable, "-m", "host.cli", "config", "check", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_the_production_config_passes_config_check(tmp_path: Path) -> None:
    """docs/operations.md's production file, merged after the repository's app-config.yaml, via the CLI."""
    text = next(t for w, t in yaml_blocks() if w.startswith("operations.md") and "app-config.production" in t)
    production = tmp_path / "app-config.production.yaml"
    production.write_text(text)
    result = config_check("app-config.yaml", str(production), env={**os.environ, **EXAMPLE_ENV})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Config OK" and result.stderr == ""


def test_the_repository_configs_pass_config_check() -> None:
    result = config_check("app-config.yaml", "app-config.local.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def schema_keys() -> set[str]:
    """Every key of every schema: ``<id>`` for map keys, ``[]`` for list items."""
    keys: set[str] = set()

    def walk_annotation(annotation: Any, key: str) -> None:
        for leaf in flatten_annotation(annotation):
            inner, suffix = leaf, ""
            if typing.get_origin(leaf) in (list, tuple):
                inner, suffix = typing.get_args(leaf)[0], "[]"
            elif typing.get_origin(leaf) is dict:
                inner, suffix = typing.get_args(leaf)[-1], ".<id>"
            for candidate in flatten_annotation(inner):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    walk(candidate, key + suffix)

    def walk(model: type[BaseModel], prefix: str) -> None:
        if issubclass(model, RootModel):  # a list section (notifications.processors.slack): its items' keys
            walk_annotation(model.model_fields["root"].annotation, prefix)
            return
        for name, field in model.model_fields.items():
            key = f"{prefix}.{field.alias or name}"
            keys.add(key)
            walk_annotation(field.annotation, key)

    for path, model in all_schemas().items():
        walk(model, path)
    return keys


def documented_keys() -> set[str]:
    """Dotted keys in backticks anywhere in docs/, and the keys of every YAML example."""
    found: set[str] = set()
    for doc in DOCS:
        text = doc.read_text()
        for key in re.findall(r"`([a-z]\w*(?:\.[\w<>\[\]*]+)+)`", text):
            found.add(re.sub(r"<[^>]+>", "<id>", key))
        for block in BLOCK.findall(text):
            data = yaml.safe_load(block)
            if isinstance(data, dict):
                found.update(_flatten(data, ""))
    return found


def _flatten(node: Any, prefix: str) -> set[str]:
    keys: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            full = f"{prefix}.{key}" if prefix else str(key)
            keys.add(full)
            keys.update(_flatten(value, full))
    elif isinstance(node, list):
        for item in node:
            keys.update(_flatten(item, prefix + "[]"))
    return keys


def test_every_config_key_is_documented() -> None:
    documented = documented_keys()
    wildcard = {key[:-2] for key in documented if key.endswith(".*")}

    def covered(key: str) -> bool:
        """Documented itself, through a child (``a.b`` by ``a.b.c``) or by a ``a.*`` row."""
        return (
            key in documented
            or any(d.startswith((key + ".", key + "[]")) for d in documented)
            or any(key.startswith(w + ".") for w in wildcard)
        )

    missing = sorted(key for key in schema_keys() if not covered(key))
    assert missing == []


def test_the_config_schema_example_works() -> None:
    """The plugin in configuration.md's "Declaring a plugin's config" declares a schema config check uses."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    code = re.search(r"^```python\n(.*?)^```", text.split("## Declaring a plugin's config", 1)[1], re.S | re.M)
    assert code
    module = types.ModuleType("configuration_md_example")
    sys.modules[module.__name__] = module  # pydantic resolves the annotations through the module
    try:
        exec(compile(code.group(1), "configuration.md", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    plugin = module.hello_plugin
    schemas = {**all_schemas(), **plugin.config_schema}
    findings = [str(f) for f in check_sections({"hello": {"greting": "hi", "maxGreetings": 0}}, schemas)]
    assert "Unknown config key 'hello.greting', did you mean 'greeting'?" in findings
    assert any(f.startswith("Invalid config at 'hello.maxGreetings'") for f in findings)
    assert plugin.get_registrations()[0].plugin_id == "hello"
