"""Installing a package is how an operator enables a feature: entry-point discovery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import install_distribution, on_sys_path, start_host

FIXTURE = Path(__file__).parent / "fixtures" / "hello_dist"


@pytest.fixture(scope="module")
def hello_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the hello distribution into its own site directory (a real .dist-info with entry points)."""
    target = install_distribution(FIXTURE, tmp_path_factory.mktemp("hello"))
    assert list(target.glob("greenroom_hello-*.dist-info"))
    return target


@pytest.fixture
def installed(hello_site: Path) -> Iterator[Path]:
    with on_sys_path(hello_site, "greenroom_hello"):
        yield hello_site


async def test_installed_distribution_is_discovered_and_served(installed: Path) -> None:
    async with start_host(plugins=["auth", "hello"]) as host:
        response = await host.client.get("/api/hello/greeting")
        assert response.status_code == 200
        assert response.json() == {"greeting": "hello from an installed package"}


async def test_uninstalled_distribution_is_gone(hello_site: Path) -> None:
    async with start_host(plugins=["auth", "hello"]) as host:
        assert (await host.client.get("/api/hello/greeting")).status_code == 404


async def test_discovery_can_be_turned_off_or_filtered(installed: Path) -> None:
    async with start_host(config={"backend": {"features": {"discovery": False}}}, discover=True) as host:
        assert (await host.client.get("/api/hello/greeting")).status_code == 404
        assert (await host.client.get("/api/auth/guest/refresh")).status_code == 404
    async with start_host(config={"backend": {"features": {"exclude": ["hel*"]}}}, plugins=["auth", "hello"]) as host:
        assert (await host.client.get("/api/hello/greeting")).status_code == 404
        assert (await host.client.get("/api/auth/guest/refresh")).status_code == 200
