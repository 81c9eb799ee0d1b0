"""Installing the package enables the email module; uninstalling it removes it.

See :mod:`tests.plugin_install`: "not installed" is the venv less this
distribution, "installed" adds what ``pip install --target`` built.
"""

from __future__ import annotations

from importlib.metadata import distribution, entry_points
from pathlib import Path

from tests.plugin_install import install_fixtures, probe

PACKAGE_DIR = Path(__file__).parents[1]
DIST = "greenroom_notifications_email"
CONFIG = {
    "notifications": {
        "processors": {"email": {"sender": "greenroom@example.com", "transportConfig": {"transport": "stream"}}}
    }
}


def test_installed_distribution_declares_the_module() -> None:
    [ep] = [ep for ep in entry_points(group="greenroom.backend_features") if ep.name == "notifications-email"]
    assert ep.value == "greenroom_notifications_email:email_module"
    assert ep.dist is not None and ep.dist.name == "greenroom-notifications-email"
    module = ep.load()
    assert (module.plugin_id, module.module_id) == ("notifications", "email")
    requires = " ".join(distribution("greenroom-notifications-email").requires or [])
    assert "aiosmtplib" in requires and "jinja2" in requires


venv_without_email, email_site = install_fixtures(DIST, PACKAGE_DIR, "email")


def test_uninstalled_module_is_gone(venv_without_email: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, CONFIG, venv_without_email)
    assert "notifications" in loaded["features"] and "notifications-email" not in loaded["features"]
    assert "Email" not in loaded["channels"]


def test_installing_the_package_enables_the_module(venv_without_email: Path, email_site: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, CONFIG, venv_without_email, email_site)
    assert "notifications-email" in loaded["features"]
    assert "Email" in loaded["channels"]
