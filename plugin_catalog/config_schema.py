"""The catalog plugin's config section (``catalog``), for ``greenroom config check``.

Relative ``file`` targets resolve against the directory of the config file
that set them, as at runtime (the checker passes the loaded
:class:`host.config.Config` as the validation context's ``config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from host import Config, ConfigSection, Duration

LOCATIONS_KEY = "catalog.locations"


class CatalogLocation(ConfigSection):
    """One ``catalog.locations`` entry; a ``file`` target must exist."""

    type: Literal["file"] = "file"
    target: str = Field(min_length=1)

    @field_validator("target")
    @classmethod
    def _file_exists(cls, target: str, info: ValidationInfo) -> str:
        context = info.context or {}
        config: Config | None = context.get("config")
        if config is not None:  # every location with this target, each relative to its own config file
            paths = [
                entry.get_optional_path("target") or Path(target)
                for entry in config.get_config_list(LOCATIONS_KEY)
                if entry.get_optional("target") == target
            ]
        else:
            paths = []
        for path in paths or [Path(context.get("base_dir") or Path.cwd()) / target]:
            if not path.is_file():
                raise ValueError(f"catalog file not found: {path.resolve()}")
        return target


class CatalogRefresh(ConfigSection):
    """``catalog.refresh``."""

    frequency: Duration | None = None


class CatalogQuery(ConfigSection):
    """``catalog.query``: bounds on one entities query."""

    max_filter_conditions: int | None = Field(default=None, ge=1)
    statement_timeout: Duration | None = None


class CatalogConfig(ConfigSection):
    """``catalog``."""

    locations: list[CatalogLocation] | None = None
    refresh: CatalogRefresh | None = None
    query: CatalogQuery | None = None
