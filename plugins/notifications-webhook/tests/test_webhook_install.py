"""Installing the package enables the webhook module; uninstalling it removes it.

The development venv has every ``plugins/*`` package installed (editable), so
the "not installed" case runs in a separate interpreter whose site directory
mirrors the venv's, less this distribution; the "installed" case adds the
site directory ``pip install --target`` built (``install_distribution``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from importlib.metadata import distribution, entry_points
from pathlib import Path

import pytest

from tests.conftest import install_distribution

PACKAGE_DIR = Path(__file__).parents[1]
PROBE = Path(__file__).with_name("webhook_probe.py")
DIST = "greenroom_notifications_webhook"


def test_installed_distribution_declares_the_module() -> None:
    [ep] = [ep for ep in entry_points(group="greenroom.backend_features") if ep.name == "notifications-webhook"]
    assert ep.value == "greenroom_notifications_webhook:webhook_module"
    assert ep.dist is not None and ep.dist.name == "greenroom-notifications-webhook"
    module = ep.load()
    assert (module.plugin_id, module.module_id) == ("notifications", "webhook")
    assert "standardwebhooks" in " ".join(distribution("greenroom-notifications-webhook").requires or [])


@pytest.fixture(scope="module")
def venv_without_webhook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory with every entry of the venv's site-packages except this distribution."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    mirror = tmp_path_factory.mktemp("site-without-webhook")
    for entry in site_packages.iterdir():
        if DIST not in entry.name:  # its dist-info, the editable .pth and finder stay out
            (mirror / entry.name).symlink_to(entry)
    return mirror


@pytest.fixture(scope="module")
def webhook_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This distribution built and installed on its own (a real .dist-info with its entry point)."""
    site = install_distribution(PACKAGE_DIR, tmp_path_factory.mktemp("webhook"))
    assert list(site.glob(f"{DIST}-*.dist-info"))
    return site


def probe(tmp_path: Path, *site_dirs: Path) -> dict[str, list[str]]:
    """Start a host in a fresh interpreter that sees only ``site_dirs``; return what it loaded."""
    add_sites = "; ".join(f"site.addsitedir({str(d)!r})" for d in site_dirs)
    code = f"import runpy, site, sys; {add_sites}; sys.argv = ['probe', {str(tmp_path)!r}]; " \
           f"runpy.run_path({str(PROBE)!r}, run_name='__main__')"
    # -S: no automatic site-packages; -P: no script/cwd directory on sys.path.
    result = subprocess.run([sys.executable, "-S", "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_uninstalled_module_is_gone(venv_without_webhook: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, venv_without_webhook)
    assert "notifications" in loaded["features"] and "notifications-webhook" not in loaded["features"]
    assert "Webhook" not in loaded["channels"]


def test_installing_the_package_enables_the_module(venv_without_webhook: Path, webhook_site: Path,
                                                   tmp_path: Path) -> None:
    loaded = probe(tmp_path, venv_without_webhook, webhook_site)
    assert "notifications-webhook" in loaded["features"]
    assert "Webhook" in loaded["channels"]
