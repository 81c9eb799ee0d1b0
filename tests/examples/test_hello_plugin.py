"""examples/hello-plugin: pip-installed outside the tree, its own tests run with host.testing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import install_distribution

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-plugin"


def test_hello_plugin_distribution_passes_its_own_tests(tmp_path: Path) -> None:
    """Install the example with pip (into its own site dir) and run its test suite in a fresh pytest."""
    site = install_distribution(EXAMPLE, tmp_path)
    assert list(site.glob("greenroom_hello_plugin-*.dist-info"))
    source = tmp_path / "src" / EXAMPLE.name
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=source, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
