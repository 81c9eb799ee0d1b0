"""Installing the package enables the email module; uninstalling it removes it.

The development venv has every ``plugins/*`` package installed (editable), so
the "not installed" case runs in a separate interpreter whose site directory
mirrors the venv's, less this distribution; the "installed" case adds a
site directory built with ``pip install --target`` from a copy of the package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import distribution, entry_points
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).parents[1]
PROBE = Path(__file__).with_name("email_probe.py")
DIST = "greenroom_notifications_email"


def test_installed_distribution_declares_the_module() -> None:
    [ep] = [ep for ep in entry_points(group="greenroom.backend_features") if ep.name == "notifications-email"]
    assert ep.value == "greenroom_notifications_email:email_module"
    assert ep.dist is not None and ep.dist.name == "greenroom-notifications-email"
    module = ep.load()
    assert (module.plugin_id, module.module_id) == ("notifications", "email")
    requires = " ".join(distribution("greenroom-notifications-email").requires or [])
    assert "aiosmtplib" in requires and "tenacity" in requires and "jinja2" in requires


@pytest.fixture(scope="module")
def venv_without_email(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory with every entry of the venv's site-packages except this distribution."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    mirror = tmp_path_factory.mktemp("site-without-email")
    for entry in site_packages.iterdir():
        if DIST in entry.name:  # its dist-info, the editable .pth and finder
            continue
        (mirror / entry.name).symlink_to(entry)
    return mirror


@pytest.fixture(scope="module")
def email_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This distribution installed on its own into a site directory (a real .dist-info with entry points)."""
    source = tmp_path_factory.mktemp("email-src") / "pkg"
    shutil.copytree(PACKAGE_DIR, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("email-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True,
    )
    assert list(target.glob(f"{DIST}-*.dist-info"))
    return target


def probe(tmp_path: Path, *site_dirs: Path) -> dict[str, list[str]]:
    """Start a host in a fresh interpreter that sees only ``site_dirs``; return what it loaded."""
    add_sites = "; ".join(f"site.addsitedir({str(d)!r})" for d in site_dirs)
    code = f"import runpy, site, sys; {add_sites}; sys.argv = ['probe', {str(tmp_path)!r}]; " \
           f"runpy.run_path({str(PROBE)!r}, run_name='__main__')"
    # -S: no automatic site-packages; -P (3.11+): no script/cwd directory on sys.path.
    result = subprocess.run([sys.executable, "-S", "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_uninstalled_module_is_gone(venv_without_email: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, venv_without_email)
    assert "notifications" in loaded["features"] and "notifications-email" not in loaded["features"]
    assert "Email" not in loaded["channels"]


def test_installing_the_package_enables_the_module(venv_without_email: Path, email_site: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, venv_without_email, email_site)
    assert "notifications-email" in loaded["features"]
    assert "Email" in loaded["channels"]
