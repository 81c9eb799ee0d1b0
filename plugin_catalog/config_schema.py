"""The catalog plugin's config section (``catalog``), for ``greenroom config check``.

Relative ``file`` targets resolve against the working directory, as at runtime
(the checker passes it as the validation context's ``base_dir``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from host.config_schema import ConfigSection, Duration


class CatalogLocation(ConfigSection):
    """One ``catalog.locations`` entry; a ``file`` target must exist."""

    type: Literal["file"] = "file"
    target: str = Field(min_length=1)

    @field_validator("target")
    @classmethod
    def _file_exists(cls, target: str, info: ValidationInfo) -> str:
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        path = base / target
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
