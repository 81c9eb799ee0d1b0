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
