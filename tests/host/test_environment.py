"""``auth.environment``: guest and proxy sign-in, published tokens and the shipped configs, over HTTP and the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.auth.published_tokens import PUBLISHED_TOKENS
from host.config import Config
from tests.conftest import start_host, startup_error

ROOT = Path(__file__).parents[2]
ORG = ROOT / "examples" / "catalog" / "org.yaml"
GREENROOM = [sys.executable, "-m", "host.cli"]
FRESH_TOKEN = {
    "backend": {
        "auth": {
            "externalAccess": [
                {
                    "type": "static",
                    "options": {"token": "fresh-token-b1946ac92492d2347c6235b4d2611184", "subject": "ci"},
                }
            ]
        }
    }
}


def production(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A production config without the harness's published test token."""
    config: dict[str, Any] = {**FRESH_TOKEN, "auth": {"environment": "production"}}
    for key, value in (extra or {}).items():
        config[key] = {**config.get(key, {}), **value}
    return config


async def test_production_disables_the_guest_whatever_greenroom_env_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENROOM_ENV", "development")
    async with start_host(plugins=["auth"], config=production()) as host:
        guest = await host.client.post("/api/auth/guest/refresh")
        assert guest.status_code == 404
        assert guest.json()["error"] == {
            "name": "NotFoundError",
            "message": "The guest provider is disabled in production",
        }
    allowed = production(
        {"auth": {"environment": "production", "providers": {"guest": {"dangerouslyAllowOutsideDevelopment": True}}}}
    )
    async with start_host(plugins=["auth"], config=allowed) as host:
        assert (await host.client.post("/api/auth/guest/refresh")).status_code == 200


async def test_greenroom_env_is_only_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENROOM_ENV", "production")
    async with start_host(plugins=["auth"], config=FRESH_TOKEN) as host:
        assert (await host.client.post("/api/auth/guest/refresh")).status_code == 404
    async with start_host(plugins=["auth"], config={"auth": {"environment": "development"}}) as host:
        assert (await host.client.post("/api/auth/guest/refresh")).status_code == 200


async def test_proxy_without_a_secret_refuses_to_start_in_production(tmp_path: Path) -> None:
    no_secret = production({"auth": {"environment": "production", "providers": {"proxy": {"allowUnknownUsers": True}}}})
    message = await startup_error(tmp_path, config=no_secret, plugins=["auth"])
    assert "auth.providers.proxy has no secret" in message
    opted_in = production(
        {
            "auth": {
                "environment": "production",
                "providers": {"proxy": {"allowUnknownUsers": True, "dangerouslyAllowWithoutSecret": True}},
            }
        }
    )
    async with start_host(plugins=["auth"], config=opted_in) as host:
        ok = await host.client.get("/api/auth/proxy/refresh", headers={"x-forwarded-user": "jane"})
        assert ok.status_code == 200


async def test_proxy_signs_in_only_catalog_users_unless_configured(tmp_path: Path) -> None:
    catalog = {
        "catalog": {"locations": [{"type": "file", "target": str(ORG)}]},
        "auth": {"providers": {"proxy": {"secret": "proxy-secret-0123"}}},
    }
    secret = {"x-greenroom-proxy-secret": "proxy-secret-0123"}
    async with start_host(plugins=["auth", "catalog", "catalog-auth-resolver"], config=catalog) as host:
        known = await host.client.get("/api/auth/proxy/refresh", headers={**secret, "x-forwarded-user": "Alice"})
        assert known.status_code == 200, known.text
        assert known.json()["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/alice"
        unknown = await host.client.get("/api/auth/proxy/refresh", headers={**secret, "x-forwarded-user": "mallory"})
        assert unknown.status_code == 401
        assert unknown.json()["error"]["message"].startswith("Failed to sign-in, unable to resolve user identity")
    catalog["auth"]["providers"]["proxy"]["allowUnknownUsers"] = True
    async with start_host(plugins=["auth", "catalog", "catalog-auth-resolver"], config=catalog) as host:
        anyone = await host.client.get("/api/auth/proxy/refresh", headers={**secret, "x-forwarded-user": "mallory"})
        assert anyone.status_code == 200
    # without a catalog nobody can be checked: refuse to start rather than sign in anyone
    message = await startup_error(
        tmp_path, config={"auth": {"providers": {"proxy": {"secret": "proxy-secret-0123"}}}}, plugins=["auth"]
    )
    assert "auth.providers.proxy signs in only users found in the catalog" in message


def config_check(*configs: Path) -> subprocess.CompletedProcess[str]:
    args = [arg for path in configs for arg in ("--config", str(path))]
    return subprocess.run([*GREENROOM, "config", "check", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_shipped_configs_split_production_from_development(tmp_path: Path) -> None:
    base = Config.load([ROOT / "app-config.yaml"])
    assert base.get("auth.environment") == "production"
    assert base.get("backend.auth.externalAccess") == [] and base.get("auth.providers.guest") is False
    local = Config.load([ROOT / "app-config.yaml", ROOT / "app-config.local.yaml"])
    assert local.get("auth.environment") == "development"
    assert "app-config.local.yaml" in (ROOT / "Makefile").read_text()
    assert config_check(ROOT / "app-config.yaml").returncode == 0
    assert config_check(ROOT / "app-config.yaml", ROOT / "app-config.local.yaml").returncode == 0


def test_production_refuses_published_tokens(tmp_path: Path) -> None:
    """Merging the development file into a production start fails on its published token, in check and start."""
    prod = tmp_path / "app-config.production.yaml"
    prod.write_text(
        yaml.safe_dump(
            {
                "auth": {"environment": "production"},
                "backend": {"database": {"connection": {"directory": str(tmp_path / "d")}}},
            }
        )
    )
    configs = (ROOT / "app-config.yaml", ROOT / "app-config.local.yaml", prod)
    checked = config_check(*configs)
    assert checked.returncode == 1
    assert "The static token of subject 'curl' in backend.auth.externalAccess is published" in checked.stderr
    assert "dev-service-token-change-me" not in checked.stderr + checked.stdout
    args = [arg for path in configs for arg in ("--config", str(path))]
    started = subprocess.run(
        [*GREENROOM, "start", *args, "--port", "0"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert started.returncode == 1 and "is published in Greenroom's repository" in started.stderr


def test_config_check_refuses_a_proxy_without_a_secret_in_production(tmp_path: Path) -> None:
    prod = tmp_path / "proxy.yaml"
    prod.write_text(yaml.safe_dump({"auth": {"providers": {"proxy": {"userHeader": "x-user"}}}}))
    checked = config_check(ROOT / "app-config.yaml", prod)
    assert checked.returncode == 1 and "auth.providers.proxy has no secret" in checked.stderr


def test_an_unknown_environment_is_a_config_error(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"auth": {"environment": "prod"}}))
    checked = config_check(typo)
    assert checked.returncode == 1
    assert "Invalid auth.environment 'prod', must be one of development, production" in checked.stderr


async def test_the_host_itself_refuses_published_tokens(tmp_path: Path) -> None:
    config = {
        "auth": {"environment": "production"},
        "backend": {
            "auth": {
                "externalAccess": [
                    {"type": "static", "options": {"token": "test-service-token-0123456789", "subject": "t"}}
                ]
            }
        },
    }
    assert "is published in Greenroom's repository" in await startup_error(tmp_path, config=config, plugins=["auth"])


def test_every_token_in_the_repository_is_known_as_published() -> None:
    """A static token added to a config, doc, test or bench must join ``PUBLISHED_TOKENS``."""
    files = [
        *ROOT.glob("*.yaml"),
        *ROOT.glob("*.md"),
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("examples/**/*.yaml"),
        *ROOT.glob("plugins/*/examples/*.yaml"),
        ROOT / "tests" / "conftest.py",
        *ROOT.glob("bench/*.py"),
    ]
    pattern = re.compile(r"""(?:\btoken:\s*|TOKEN\s*=\s*"?)([A-Za-z0-9][A-Za-z0-9_.~+/-]{7,})""")
    found = {match for path in files for match in pattern.findall(path.read_text())}
    assert found and found <= PUBLISHED_TOKENS, found - PUBLISHED_TOKENS
