"""Installing the package enables the webhook module; uninstalling it removes it.

See :mod:`tests.plugin_install`: "not installed" is the venv less this
distribution, "installed" adds what ``pip install --target`` built.
"""

from __future__ import annotations

from importlib.metadata import distribution, entry_points
from pathlib import Path

from tests.plugin_install import install_fixtures, probe

PACKAGE_DIR = Path(__file__).parents[1]
DIST = "greenroom_notifications_webhook"
CONFIG = {
    "notifications": {
        "processors": {"webhook": {"endpoints": [{"url": "http://127.0.0.1:9/hooks", "secret": "whsec_" + "a" * 43}]}}
    }
}


def test_installed_distribution_declares_the_module() -> None:
    [ep] = [ep for ep in entry_points(group="greenroom.backend_features") if ep.name == "notifications-webhook"]
    assert ep.value == "greenroom_notifications_webhook:webhook_module"
    assert ep.dist is not None and ep.dist.name == "greenroom-notifications-webhook"
    module = ep.load()
    assert (module.plugin_id, module.module_id) == ("notifications", "webhook")
    assert "standardwebhooks" in " ".join(distribution("greenroom-notifications-webhook").requires or [])


venv_without_webhook, webhook_site = install_fixtures(DIST, PACKAGE_DIR, "webhook")


def test_uninstalled_module_is_gone(venv_without_webhook: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, CONFIG, venv_without_webhook)
    assert "notifications" in loaded["features"] and "notifications-webhook" not in loaded["features"]
    assert "Webhook" not in loaded["channels"]


def test_installing_the_package_enables_the_module(
    venv_without_webhook: Path, webhook_site: Path, tmp_path: Path
) -> None:
    loaded = probe(tmp_path, CONFIG, venv_without_webhook, webhook_site)
    assert "notifications-webhook" in loaded["features"]
    assert "Webhook" in loaded["channels"]
