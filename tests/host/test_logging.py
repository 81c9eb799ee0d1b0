"""Secrets never reach the logs."""

from __future__ import annotations

import io
import logging

from host import core_services
from host.logging import _JsonFormatter, _TextFormatter, create_root_logger
from tests.conftest import SERVICE_TOKEN, start_host


async def test_config_secrets_and_bearer_tokens_are_redacted() -> None:
    config = {"auth": {"providers": {"proxy": {"secret": "proxy-secret-value-42", "allowUnknownUsers": True}}}}
    async with start_host(plugins=["auth"], config=config) as host:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(_TextFormatter())
        base = logging.getLogger("greenroom")
        base.addHandler(handler)
        previous = base.level
        base.setLevel(logging.INFO)
        try:
            logger = await host.backend.get_service(core_services.logger, "auth")
            user_token = await host.user_token("user:default/jane")
            logger.info("calling with %s", SERVICE_TOKEN, header=f"Bearer {user_token}")
            logger.error("proxy secret is proxy-secret-value-42", exc_info=ValueError(SERVICE_TOKEN))
            handler.setFormatter(_JsonFormatter())
            logger.warning("json line", token=SERVICE_TOKEN)
        finally:
            base.removeHandler(handler)
            base.setLevel(previous)
        output = stream.getvalue()
        assert SERVICE_TOKEN not in output
        assert user_token not in output
        assert "proxy-secret-value-42" not in output
        assert output.count("***") >= 4
        assert " auth info calling with ***" in output
        assert '"plugin":"auth"' in output


def test_passwords_inside_urls_are_redacted_in_log_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    base = logging.getLogger("greenroom")
    base.addHandler(handler)
    previous = base.level
    base.setLevel(logging.INFO)
    try:
        logger = create_root_logger("info", "text")
        for formatter in (_TextFormatter(), _JsonFormatter()):
            handler.setFormatter(formatter)
            logger.error(
                "cannot connect to postgresql+asyncpg://greenroom:pg-Pass.word9@db.internal:5432/x",
                bus="redis://:redis-pass-7@cache:6379/0",
                plain="https://example.com:8443/a@b",
            )
    finally:
        base.removeHandler(handler)
        base.setLevel(previous)
    output = stream.getvalue()
    assert "pg-Pass.word9" not in output and "redis-pass-7" not in output
    assert output.count("postgresql+asyncpg://greenroom:***@db.internal:5432/x") == 2
    assert output.count("redis://:***@cache:6379/0") == 2
    assert output.count("https://example.com:8443/a@b") == 2  # a port is not a password


def test_each_root_logger_owns_its_redactor() -> None:
    """No process-wide redactor: a second host's logger neither drops nor learns the first one's secrets."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    base = logging.getLogger("greenroom")
    base.addHandler(handler)
    previous = base.level
    try:
        first = create_root_logger("info", "text", secrets=["first-host-secret"])
        second = create_root_logger("info", "text", secrets=["second-host-secret"])
        handler.setFormatter(_TextFormatter())
        first.child(plugin="a").info("one %s", "first-host-secret")
        second.info("two second-host-secret first-host-secret")
    finally:
        base.removeHandler(handler)
        base.setLevel(previous)
    one, two = stream.getvalue().splitlines()
    assert one.endswith("one ***")
    assert two.endswith("two *** first-host-secret")
