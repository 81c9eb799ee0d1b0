"""Installing and uninstalling a ``plugins/*`` distribution, seen from a fresh interpreter.

The development venv has every ``plugins/*`` package installed (editable), so
"not installed" is an interpreter whose site directory mirrors the venv's
less one distribution (:func:`site_without`), and "installed" adds the site
directory that ``pip install --target`` built (``install_distribution``).
:func:`probe` starts a host there and reports what it loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).with_name("probe.py")


def site_without(package: str, directory: Path) -> Path:
    """A site directory in ``directory`` linking every entry of the venv's site-packages except ``package``'s.

    ``package`` is the import name (``greenroom_notifications_email``): its
    dist-info, editable ``.pth`` and finder all contain it.
    """
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if package not in entry.name:
            (directory / entry.name).symlink_to(entry)
    return directory


def probe(tmp_path: Path, config: dict[str, Any], *site_dirs: Path) -> dict[str, list[str]]:
    """Start a host with ``config`` in a fresh interpreter that sees only ``site_dirs``.

    Returns ``{"features": [...], "channels": [...]}``: the ``greenroom.backend_features``
    entry points visible there and the notification settings channels of the host.
    """
    add_sites = "; ".join(f"site.addsitedir({str(d)!r})" for d in site_dirs)
    argv = ["probe", str(tmp_path), json.dumps(config)]
    code = f"import runpy, site, sys; {add_sites}; sys.argv = {argv!r}; runpy.run_path({str(PROBE)!r}, run_name='__main__')"
    # -S: no automatic site-packages; -P: no script/cwd directory on sys.path.
    result = subprocess.run(
        [sys.executable, "-S", "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def install_fixtures(package: str, package_dir: Path, name: str) -> tuple[Any, Any]:
    """Module-scoped fixtures ``venv_without_<name>`` and ``<name>_site`` for one ``plugins/*`` distribution.

    ``venv_without_<name>``: :func:`site_without` ``package`` (the import name);
    ``<name>_site``: the distribution in ``package_dir`` built and installed on its own
    (a real ``.dist-info`` with its entry points). Assign both in the test module::

        venv_without_webhook, webhook_site = install_fixtures(DIST, PACKAGE_DIR, "webhook")
    """
    from tests.conftest import install_distribution

    @pytest.fixture(scope="module", name=f"venv_without_{name}")
    def venv_without(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return site_without(package, tmp_path_factory.mktemp(f"site-without-{name}"))

    @pytest.fixture(scope="module", name=f"{name}_site")
    def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
        site = install_distribution(package_dir, tmp_path_factory.mktemp(name))
        assert list(site.glob(f"{package}-*.dist-info"))
        return site

    return venv_without, installed
