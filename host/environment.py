"""The deployment environment: ``auth.environment`` (``development`` or ``production``).

One setting, read from config, decides everything that differs between a
developer's machine and a production start: the guest provider, the proxy
provider's safety checks, published tokens, the log format and the web
inbox's default sign-in. As in Backstage it defaults to ``development``. The
older ``GREENROOM_ENV`` variable is only a fallback for a config that does not
set ``auth.environment``; when config sets it, config wins.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from host.config import Config, ConfigError

Environment = Literal["development", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("development", "production")
ENVIRONMENT_KEY = "auth.environment"


def environment(config: Any) -> Environment:
    """The environment named by ``auth.environment`` (else ``GREENROOM_ENV``, else ``development``)."""
    value = config.get_optional_string(ENVIRONMENT_KEY) if config is not None else None
    source = ENVIRONMENT_KEY
    if value is None:
        value, source = os.environ.get("GREENROOM_ENV") or "development", "GREENROOM_ENV"
    if value not in ENVIRONMENTS:
        raise ConfigError(f"Invalid {source} '{value}', must be one of {', '.join(ENVIRONMENTS)}")
    return value


def is_production(config: Any) -> bool:
    """Whether the host runs with ``auth.environment: production``."""
    return environment(config) == "production"


def log_format(config: Config) -> str:
    """``backend.logger.format``, else ``json`` in production and ``text`` elsewhere.

    Here rather than in :mod:`host.defaults`, so the gunicorn master can read it without
    importing the whole service stack (about 65 MiB it would keep for its whole life).
    """
    configured = config.get_optional_string("backend.logger.format")
    return configured or ("json" if is_production(config) else "text")
