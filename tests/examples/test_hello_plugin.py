"""examples/hello-plugin: pip-installed outside the tree, its own tests run with host.testing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import install_distribution

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """pip-install the example into a site dir of its own; return (site, copied source)."""
    directory = tmp_path_factory.mktemp("hello")
    site = install_distribution(EXAMPLE, directory)
    assert list(site.glob("greenroom_hello_plugin-*.dist-info"))
    return site, directory / "src" / EXAMPLE.name


def test_hello_plugin_distribution_passes_its_own_tests(installed: tuple[Path, Path]) -> None:
    """Run the example's test suite (host.testing) in a fresh pytest, with the distribution installed."""
    site, source = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_greenroom_plugins_lists_features_processors_and_hooks(installed: tuple[Path, Path]) -> None:
    """``greenroom plugins`` names each entry point's kind, ids, hooks, distribution and version."""
    site, _ = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    text = subprocess.run(
        [sys.executable, "-m", "host.cli", "plugins"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert re.search(r"hello +plugin 'hello' +\[greenroom-hello-plugin 0\.1\.0\]", text), text
    assert re.search(r"hello-french +module 'french' for plugin 'hello' +\[greenroom-hello-plugin 0\.1\.0\]", text)
    assert re.search(r"notifications +plugin 'notifications' +\[greenroom 0\.1\.0\]", text)
    assert "greenroom.notifications.processors:" in text
    assert re.search(
        r"hello-stamp +hooks: notifications_post_process, notifications_pre_process, notifications_processor_filters, "
        r"notifications_processor_name +\[greenroom-hello-plugin 0\.1\.0\]",
        text,
    ), text

    listed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "host.cli", "plugins", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )
    [stamp] = [entry for entry in listed if entry["name"] == "hello-stamp"]
    assert stamp["distribution"] == "greenroom-hello-plugin" and stamp["version"] == "0.1.0"
