"""Where the real Backstage is (``BACKSTAGE_PEER_URL``) and what it answered before (``recorded.json``)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.compat.runner import Target

RECORDED = Path(__file__).with_name("recorded.json")
#: ``backend.cors`` of the Greenroom host and of the CORS oracle (Backstage's usual app-config values).
CORS_CONFIG: dict[str, Any] = {
    "origin": "http://127.0.0.1:3000",
    "methods": ["GET", "HEAD", "PATCH", "POST", "PUT", "DELETE"],
    "credentials": True,
}
CORS_ORACLE = Path(__file__).with_name("cors_oracle.cjs")


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


@contextlib.contextmanager
def cors_oracle() -> Iterator[Target]:
    """Backstage's CORS middleware with :data:`CORS_CONFIG` (``cors_oracle.cjs``), as a target."""
    proc = subprocess.Popen(["node", str(CORS_ORACLE), json.dumps(CORS_CONFIG)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Target("backstage-cors", f"http://127.0.0.1:{port}", "unused")
    finally:
        proc.terminate()
        proc.wait(10)


def load_recorded() -> dict[str, Any]:
    """Backstage's recorded answers by case name."""
    return json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
