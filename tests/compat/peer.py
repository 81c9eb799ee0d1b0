"""Where the real Backstage is (``BACKSTAGE_PEER_URL``) and what it answered before (``recorded.json``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.compat.runner import Target

RECORDED = Path(__file__).with_name("recorded.json")


def peer_target() -> Target | None:
    """The live Backstage to compare with, when ``BACKSTAGE_PEER_URL`` is set."""
    url = os.environ.get("BACKSTAGE_PEER_URL")
    if not url:
        return None
    token = os.environ.get("BACKSTAGE_PEER_TOKEN")
    if not token:
        raise RuntimeError("BACKSTAGE_PEER_URL is set but BACKSTAGE_PEER_TOKEN (its static token) is not")
    catalog = os.environ.get("BACKSTAGE_PEER_CATALOG", "/var/tmp/backstage-peer/catalog")
    return Target("backstage", url.rstrip("/"), token, catalog_dir=catalog)


def load_recorded() -> dict[str, Any]:
    """Backstage's recorded answers by case name."""
    return json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
