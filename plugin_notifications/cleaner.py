"""Retention: the ``notification-cleaner`` scheduled task (spec section 10)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from host.config import Config
from plugin_notifications.store import NotificationsStore

TASK_ID = "notification-cleaner"
DEFAULT_RETENTION = timedelta(days=365)
DISABLED_MESSAGE = "Notification retention is disabled, skipping notification cleaner task"


def retention_of(config: Config) -> timedelta | None:
    """``notifications.retention`` as a duration; ``None`` when set to ``false``. Default one year."""
    if config.get_optional("notifications.retention") is False:
        return None
    return config.get_optional_duration("notifications.retention") or DEFAULT_RETENTION


async def schedule_cleaner(config: Config, scheduler: Any, store: NotificationsStore, logger: Any) -> None:
    """Schedule the daily cleanup (one process cluster-wide), unless retention is off."""
    retention = retention_of(config)
    if retention is None:
        logger.info(DISABLED_MESSAGE)
        return

    async def clean() -> None:
        logger.info("Starting notification cleaner task")
        try:
            deleted = await store.clear_notifications(retention)
        except Exception as error:
            raise RuntimeError(f"Notification cleaner task failed: {error}") from error
        logger.info(f"Notification cleaner task finished, deleted {deleted} notifications")

    await scheduler.schedule_task(
        id=TASK_ID,
        frequency={"cron": "0 0 * * *"},
        timeout=timedelta(hours=1),
        initial_delay=timedelta(hours=1),
        scope="global",
        fn=clean,
    )
