"""Retention: the ``notification-cleaner`` scheduled task (spec section 10)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from host import Config, ConfigError
from plugin_notifications.config_schema import RetentionRuleConfig
from plugin_notifications.idempotency import IdempotencyKeys
from plugin_notifications.outbox_store import OutboxStore
from plugin_notifications.store import NotificationsStore, RetentionRule

TASK_ID = "notification-cleaner"
#: With retention off, only the idempotency keys are swept, by this task.
KEYS_TASK_ID = "notification-idempotency-cleaner"
DEFAULT_RETENTION = timedelta(days=365)
DISABLED_MESSAGE = "Notification retention is disabled, skipping notification cleaner task"


def retention_of(config: Config) -> timedelta | None:
    """``notifications.retention`` as a duration; ``None`` when set to ``false``. Default one year."""
    if config.get_optional("notifications.retention") is False:
        return None
    return config.get_optional_duration("notifications.retention") or DEFAULT_RETENTION


_RULES = TypeAdapter(list[RetentionRuleConfig])


def retention_rules_of(config: Config) -> list[RetentionRule]:
    """``notifications.retentionRules``, in order; a bad entry is a :class:`ConfigError` naming it."""
    raw = config.get_optional("notifications.retentionRules")
    if raw is None:
        return []
    try:
        rules = _RULES.validate_python(raw)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"] if not str(part).startswith("function-"))
        raise ConfigError(f"Invalid notifications.retentionRules[{where}]: {problem['msg']}") from None
    return [
        RetentionRule(rule.origin, rule.topic, None if rule.retention is False else rule.retention) for rule in rules
    ]


async def schedule_cleaner(
    config: Config,
    scheduler: Any,
    store: NotificationsStore,
    logger: Any,
    keys: IdempotencyKeys | None = None,
    outbox: OutboxStore | None = None,
) -> None:
    """Schedule the daily cleanup (one process cluster-wide); with retention off, only of the idempotency keys.

    ``notifications.retentionRules`` apply before ``notifications.retention`` (also when it is ``false``).
    With retention on, finished outbox rows and sends (delivery logs) older than the retention go too.
    """
    retention = retention_of(config)
    rules = retention_rules_of(config)
    cleans = retention is not None or any(rule.max_age is not None for rule in rules)

    async def sweep_keys() -> None:
        if keys is None:
            return
        try:
            swept = await keys.sweep()
        except Exception as error:
            raise RuntimeError(f"Idempotency key cleanup failed: {error}") from error
        logger.info("Deleted %s expired idempotency keys", swept)

    async def clean() -> None:
        if cleans:
            logger.info("Starting notification cleaner task")
            try:
                deleted = await store.clear_notifications(retention, rules)
            except Exception as error:
                raise RuntimeError(f"Notification cleaner task failed: {error}") from error
            logger.info("Notification cleaner task finished, deleted %s notifications", deleted)
        if retention is not None and outbox is not None:
            try:
                purged = await outbox.purge(retention)
            except Exception as error:
                raise RuntimeError(f"Outbox cleanup failed: {error}") from error
            logger.info("Deleted %s finished outbox rows", purged)
        await sweep_keys()

    if not cleans:
        logger.info(DISABLED_MESSAGE)
        if keys is None:
            return
    await scheduler.schedule_task(
        id=TASK_ID if cleans else KEYS_TASK_ID,
        frequency={"cron": "0 0 * * *"},
        timeout=timedelta(hours=1),
        initial_delay=timedelta(hours=1),
        scope="global",
        fn=clean,
    )
