"""Installing the package enables the Slack module; uninstalling it removes it.

See :mod:`tests.plugin_install`: "not installed" is the venv less this
distribution, "installed" adds what ``pip install --target`` built (with its
migrations: the probe's host applies them).
"""

from __future__ import annotations

from importlib.metadata import distribution, entry_points
from pathlib import Path

from tests.plugin_install import install_fixtures, probe

PACKAGE_DIR = Path(__file__).parents[1]
DIST = "greenroom_notifications_slack"
CONFIG = {
    "notifications": {"processors": {"slack": [{"token": "xoxb-probe-token", "apiUrl": "http://127.0.0.1:9/api/"}]}}
}


def test_installed_distribution_declares_the_module() -> None:
    [ep] = [ep for ep in entry_points(group="greenroom.backend_features") if ep.name == "notifications-slack"]
    assert ep.value == "greenroom_notifications_slack:slack_module"
    assert ep.dist is not None and ep.dist.name == "greenroom-notifications-slack"
    module = ep.load()
    assert (module.plugin_id, module.module_id) == ("notifications", "slack")
    assert "slack_sdk" in " ".join(distribution("greenroom-notifications-slack").requires or [])


venv_without_slack, slack_site = install_fixtures(DIST, PACKAGE_DIR, "slack")


def test_the_alembic_history_is_packaged(slack_site: Path) -> None:
    assert list(slack_site.glob(f"{DIST}/migrations/versions/*.py"))


def test_uninstalled_module_is_gone(venv_without_slack: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, CONFIG, venv_without_slack)
    assert "notifications" in loaded["features"] and "notifications-slack" not in loaded["features"]
    assert "SlackNotificationProcessor" not in loaded["channels"]


def test_installing_the_package_enables_the_module(venv_without_slack: Path, slack_site: Path, tmp_path: Path) -> None:
    loaded = probe(tmp_path, CONFIG, venv_without_slack, slack_site)
    assert "notifications-slack" in loaded["features"]
    assert "SlackNotificationProcessor" in loaded["channels"]
