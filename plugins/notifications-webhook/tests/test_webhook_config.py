"""``notifications.processors.webhook`` is validated at startup: each problem names its key, never a secret."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from greenroom_notifications_webhook import webhook_module
from greenroom_notifications_webhook.settings import CONFIG_KEY, WebhookConfig, read_webhook_config

from host.config import Config, ConfigError
from tests.conftest import startup_error

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def read(endpoints: Any, **extra: Any) -> Any:
    return read_webhook_config(
        Config({"notifications": {"processors": {"webhook": {"endpoints": endpoints, **extra}}}})
    )


def test_defaults() -> None:
    config = read([{"url": "https://hooks.example.com/", "secret": SECRET}])
    [endpoint] = config.endpoints
    assert (endpoint.origins, endpoint.topics, endpoint.minimum_severity, endpoint.entity_refs) == (None,) * 4
    assert config.timeout_for(endpoint) == 10.0 and config.concurrency == 8 and config.batch_size == 20
    assert config.max_retry_after.total_seconds() == 3600
    assert read_webhook_config(Config({})) is None


def test_durations_and_overrides() -> None:
    config = read(
        [
            {"url": "http://127.0.0.1:9/", "secret": SECRET, "timeout": "PT2S"},
            {"url": "http://127.0.0.1:9/b", "secret": SECRET},
        ],
        timeout={"milliseconds": 1500},
        maxRetryAfter="5 minutes",
    )
    first, second = config.endpoints
    assert config.timeout_for(first) == 2.0 and config.timeout_for(second) == 1.5
    assert config.max_retry_after.total_seconds() == 300


@pytest.mark.parametrize(
    ("endpoint", "key", "message"),
    [
        ({"secret": SECRET}, "endpoints[0].url", "Field required"),
        ({"url": "https://x.example.com/"}, "endpoints[0].secret", "Field required"),
        ({"url": "ftp://x.example.com/", "secret": SECRET}, "endpoints[0].url", "must be an http(s) URL"),
        ({"url": "not a url", "secret": SECRET}, "endpoints[0].url", "must be an http(s) URL"),
        (
            {"url": "https://x.example.com/", "secret": "hunter2-hunter2-hunter2-hunter2"},
            "endpoints[0].secret",
            "must start with whsec_",
        ),
        (
            {"url": "https://x.example.com/", "secret": "whsec_!!not-base64!!"},
            "endpoints[0].secret",
            "must be whsec_ followed by base64",
        ),
        ({"url": "https://x.example.com/", "secret": "whsec_c2hvcnQ="}, "endpoints[0].secret", "at least 24"),
        (
            {"url": "https://x.example.com/", "secret": SECRET, "minimumSeverity": "urgent"},
            "endpoints[0].minimumSeverity",
            "Input should be",
        ),
        (
            {"url": "https://x.example.com/", "secret": SECRET, "topics": "deploys"},
            "endpoints[0].topics",
            "valid tuple",
        ),
        (
            {"url": "https://x.example.com/", "secret": SECRET, "timeout": "soon"},
            "endpoints[0].timeout",
            "invalid duration",
        ),
        (
            {"url": "https://x.example.com/", "secret": SECRET, "timeout": {"seconds": 0}},
            "endpoints[0].timeout",
            "must be a positive duration",
        ),
        (
            {"url": "https://x.example.com/", "secret": SECRET, "name": "has space"},
            "endpoints[0].name",
            "letters, digits",
        ),
        (
            {"url": "https://x.example.com/", "secret": SECRET, "urls": []},
            "endpoints[0].urls",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_endpoints_name_the_key(endpoint: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        read([endpoint])
    assert f"'{CONFIG_KEY}.{key}'" in str(error.value) and message in str(error.value)
    secret = endpoint.get("secret", "")
    assert not secret or secret not in str(error.value)


def test_endpoint_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="share the channel name webhook:ops"):
        read(
            [
                {"url": "https://a.example.com/", "secret": SECRET, "name": "ops"},
                {"url": "https://b.example.com/", "secret": SECRET, "name": "ops"},
            ]
        )
    with pytest.raises(ConfigError, match="share the channel name"):  # the same URL twice
        read([{"url": "https://a.example.com/", "secret": SECRET}, {"url": "https://a.example.com/", "secret": SECRET}])


def test_the_secret_is_never_shown() -> None:
    config = read([{"url": "https://a.example.com/", "secret": SECRET}])
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())


def test_the_module_declares_its_config_schema() -> None:
    assert webhook_module.config_schema == {CONFIG_KEY: WebhookConfig}


async def test_an_invalid_config_fails_startup(tmp_path: Path) -> None:
    error = await startup_error(
        tmp_path,
        plugins=["catalog", "notifications", "notifications-webhook"],
        config={"notifications": {"processors": {"webhook": {"endpoints": [{"url": "https://a.example.com/"}]}}}},
    )
    assert f"'{CONFIG_KEY}.endpoints[0].secret': Field required" in error


def test_config_check_reports_a_bad_secret_without_showing_it() -> None:
    from host.config_schema import check_sections

    data = {
        "notifications": {
            "processors": {
                "webhook": {"endpoints": [{"url": "https://a.example.com/", "secret": "hunter2-hunter2-hunter2"}]}
            }
        }
    }
    [finding] = [str(f) for f in check_sections(data, webhook_module.config_schema)]
    assert finding == f"Invalid config at '{CONFIG_KEY}.endpoints[0].secret': must start with whsec_"


def test_the_longest_batch_is_the_timeouts_of_its_rounds() -> None:
    config = read(
        [
            {"url": "https://a.example.com/", "secret": SECRET},
            {"url": "https://b.example.com/", "secret": SECRET, "timeout": {"seconds": 30}},
        ],
        batchSize=20,
        concurrency=8,
    )
    assert config.longest_batch_seconds() == 3 * 30.0  # 20 deliveries, 8 at a time: 3 rounds of the slowest timeout


async def test_a_batch_that_can_outlast_the_lease_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    from tests.conftest import start_host

    slow = {
        "endpoints": [{"url": "http://127.0.0.1:9/", "secret": SECRET}],
        "timeout": {"seconds": 30},
        "batchSize": 10,
        "concurrency": 1,
    }
    config = {
        "backend": {"logger": {"level": "warn"}},
        "notifications": {"delivery": {"leaseSeconds": 60}, "processors": {"webhook": slow}},
    }
    async with start_host(config=config, plugins=["catalog", "notifications", "notifications-webhook"]):
        pass
    assert [r for r in caplog.records if "can outlast the outbox lease" in r.getMessage()]
