"""Every config key the code reads is declared in a schema, so ``config check`` never calls it unknown."""

from __future__ import annotations

import re
from pathlib import Path

from host.config import Config
from host.config_check import installed_features
from host.config_schema import HOST_CONFIG_SCHEMA, check_sections

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "host", *ROOT.glob("plugin_*"), *ROOT.glob("plugins/*/greenroom_*")]
READ = re.compile(r"get_\w*\(\s*f?\"([a-z]\w*(?:\.[\w{}]+)+)\"")


def all_schemas() -> dict[str, type]:
    schemas: dict[str, type] = dict(HOST_CONFIG_SCHEMA)
    for item in installed_features(Config({})):
        schemas.update(getattr(item.feature, "config_schema", None) or {})
    return schemas


def literal_keys() -> set[str]:
    keys: set[str] = set()
    for source in SOURCES:
        for path in source.rglob("*.py"):
            for key in READ.findall(path.read_text()):
                keys.add(re.sub(r"\{provider\}", "proxy", re.sub(r"\{(?!provider)[^}]+\}", "x", key)))
    return keys


def nested(key: str) -> dict[str, object]:
    node: dict[str, object] = {}
    for part in reversed(key.split(".")):
        node = {part: node or None}
    return node


def test_every_key_read_in_the_code_is_in_a_schema() -> None:
    schemas = all_schemas()
    top_level = {key.split(".")[0] for key in schemas}
    keys = {key for key in literal_keys() if key.split(".")[0] in top_level}
    assert len(keys) > 40  # the scan found the reads
    unknown = {
        key: [str(f) for f in check_sections(nested(key), schemas) if "Unknown config key" in str(f)]
        for key in sorted(keys)
    }
    assert {key: found for key, found in unknown.items() if found} == {}


def test_a_key_missing_from_the_schemas_is_caught() -> None:
    """The check above can fail: a key no schema declares is reported."""
    findings = check_sections(nested("backend.database.notAKey"), all_schemas())
    assert [str(f) for f in findings] == ["Unknown config key 'backend.database.notAKey'"]


def test_config_check_never_shows_a_rejected_secret() -> None:
    """Values under secret-looking keys (password, secret, token, key) stay out of the findings."""
    from pydantic import Field

    from host.config_schema import ConfigSection

    class Section(ConfigSection):
        api_token: int
        client_secret: str = Field(pattern="^whsec_")
        label: int

    findings = [
        str(f)
        for f in check_sections(
            {"s": {"apiToken": "tok-9f8e7d", "clientSecret": "hunter2-hunter2", "label": "shown"}}, {"s": Section}
        )
    ]
    assert len(findings) == 3 and "(got 'shown')" in " ".join(findings)
    assert "tok-9f8e7d" not in " ".join(findings) and "hunter2" not in " ".join(findings)


def test_the_code_reads_sections_through_the_models_config_check_uses() -> None:
    """A bad limit fails startup with config check's message; the check reports the same key."""
    import pytest

    from host.config import ConfigError
    from plugin_notifications.outbox import DeliveryConfig
    from plugin_signals.connections import SignalLimits

    bad = {"signals": {"limits": {"maxSocketsPerUser": 0, "notAKey": 1}}}
    with pytest.raises(ConfigError, match=r"^Invalid config at 'signals.limits.maxSocketsPerUser': Input should be"):
        SignalLimits.from_config(Config(bad))
    findings = [str(f) for f in check_sections(bad, all_schemas())]
    assert any(f.startswith("Invalid config at 'signals.limits.maxSocketsPerUser'") for f in findings), findings
    assert any("Unknown config key 'signals.limits.notAKey'" in f for f in findings), findings
    # unknown keys are config check's warnings, not startup errors; absent keys keep their defaults
    assert SignalLimits.from_config(Config({"signals": {"limits": {"notAKey": 1}}})).max_sockets_per_user == 50
    with pytest.raises(ConfigError, match="'notifications.delivery.pollInterval': must be a positive duration"):
        DeliveryConfig.from_config(Config({"notifications": {"delivery": {"pollInterval": {"seconds": 0}}}}))
