"""``notifications.processors.msteams`` is validated at startup and by ``greenroom config check``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from greenroom_notifications_msteams import MSTeamsConfig, MSTeamsProcessor, read_msteams_config
from greenroom_notifications_msteams.settings import CONFIG_KEY, AnnotationSettings

from host.config import Config, ConfigError


def read(section: dict[str, Any]) -> MSTeamsConfig | None:
    return read_msteams_config(Config({"notifications": {"processors": {"msteams": section}}}))


def test_absent_is_none_and_empty_means_annotations_only() -> None:
    assert read_msteams_config(Config({})) is None
    settings = read({})
    assert settings is not None and settings.routes == () and settings.annotations.enabled
    processor = MSTeamsProcessor(settings, catalog=None, base_url="http://localhost:7007")
    assert [(c.name, c.scope) for c in processor.notifications_delivery_channels()] == [("MSTeams", "send")]


def test_routes_are_send_scope_channels_named_from_the_name_or_the_url() -> None:
    settings = read(
        {
            "annotations": {"enabled": False},
            "routes": [
                {"url": "https://a.webhook.office.com/x", "name": "ops"},
                {"url": "https://b.logic.azure.com/workflows/1?sig=secret"},
            ],
        }
    )
    assert settings is not None
    names = [c.name for c in MSTeamsProcessor(settings, catalog=None, base_url="x").notifications_delivery_channels()]
    assert names[0] == "msteams:ops" and names[1].startswith("msteams:") and "secret" not in names[1]
    assert len(names) == 2  # annotations off: no MSTeams channel


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"routes": [{"url": "ftp://x"}]}, f"Invalid config at '{CONFIG_KEY}.routes[0].url': must be an http(s) URL"),
        ({"routes": [{"url": "https://x.example", "minimumSeverity": "loud"}]}, "routes[0].minimumSeverity"),
        ({"routes": [{"url": "https://x.example", "nmae": "typo"}]}, "routes[0].nmae"),
        (
            {"routes": [{"url": "https://x.example", "name": "a"}, {"url": "https://y.example", "name": "a"}]},
            "share the channel name msteams:a",
        ),
        ({"annotations": {"allowedSchemes": ["ftp"]}}, "annotations.allowedSchemes[0]"),
        ({"maxTextLength": 10}, "maxTextLength"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_bad_values_fail_naming_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        read(section)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://contoso.webhook.office.com/webhookb2/abc", None),
        ("https://prod-12.westeurope.logic.azure.com/workflows/abc", None),
        ("https://default123.environment.api.powerplatform.com/x", None),
        ("http://contoso.webhook.office.com/webhookb2/abc", "scheme http is not in allowedSchemes"),
        ("https://webhook.office.com.evil.example/x", "host is not in allowedHosts"),
        ("https://127.0.0.1/x", "host is not in allowedHosts"),
        ("not a url", "scheme (none) is not in allowedSchemes"),
    ],
)
def test_annotation_urls_must_be_allowed(url: str, refused: str | None) -> None:
    assert AnnotationSettings().refusal(url) == refused
