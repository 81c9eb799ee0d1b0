"""Installing the package enables the Teams module; uninstalling it removes it.

See :mod:`tests.plugin_install`: "not installed" is the venv less this
distribution, "installed" adds what ``pip install --target`` built.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from tests.plugin_install import install_fixtures, probe

PACKAGE_DIR = Path(__file__).parents[1]
DIST = "greenroom_notifications_msteams"
CONFIG = {
    "notifications": {
        "processors": {
            "msteams": {"routes": [{"url": "https://example.webhook.office.com/webhookb2/x", "name": "ops"}]}
        }
    }
}


def test_installed_distribution_declares_the_module() -> None:
    [ep] = [ep for ep in entry_points(group="greenroom.backend_features") if ep.name == "notifications-msteams"]
    assert ep.value == "greenroom_notifications_msteams:msteams_module"
    assert ep.dist is not None and ep.dist.name == "greenroom-notifications-msteams"
    module = ep.load()
    assert (module.plugin_id, module.module_id) == ("notifications", "msteams")


venv_without_msteams, msteams_site = install_fixtures(DIST, PACKAGE_DIR, "msteams")


def test_uninstalled_module_is_gone(venv_without_msteams: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, CONFIG, venv_without_msteams)
    assert "notifications" in loaded["features"] and "notifications-msteams" not in loaded["features"]
    assert "MSTeams" not in loaded["channels"]


def test_installing_the_package_enables_the_module(
    venv_without_msteams: Path, msteams_site: Path, tmp_path: Path
) -> None:
    loaded = probe(tmp_path, CONFIG, venv_without_msteams, msteams_site)
    assert "notifications-msteams" in loaded["features"]
    assert "MSTeams" in loaded["channels"]
