"""``greenroom start`` logs: one JSON format for every line (gunicorn and uvicorn too), request ids, access log."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import free_port

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TOKEN = "log-format-test-token-0123456789"


def test_json_lines_with_request_ids_and_access_log(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "app-config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backend": {
                    "database": {"connection": {"directory": str(tmp_path / "data")}},
                    "features": {"include": ["auth"]},
                    "logger": {"format": "json", "accessLog": True},
                    "auth": {"externalAccess": [{"type": "static", "options": {"token": TOKEN, "subject": "logs"}}]},
                },
            }
        )
    )
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host.cli", "start", "--config", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/.backstage/health/v1/readiness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        sent = httpx.get(f"{url}/api/auth/v1/userinfo", headers={"x-request-id": "ops-req-1"})
        assert sent.status_code == 401
        assert sent.headers["x-request-id"] == "ops-req-1"
        made = httpx.get(f"{url}/api/auth/.well-known/jwks.json")
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
        service = httpx.get(
            f"{url}/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {TOKEN}", "x-request-id": "ops-req-2"}
        )
        assert service.status_code == 403
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON, gunicorn's too
    for entry in entries:
        assert TIMESTAMP.match(entry["timestamp"]), entry
        assert entry["level"] in ("debug", "info", "warning", "error")
        assert isinstance(entry["pid"], int)
    services = {entry.get("service") for entry in entries}
    assert {"greenroom", "gunicorn", "uvicorn"} <= services, services
    assert any(e.get("service") == "gunicorn" and "Booting worker" in e["message"] for e in entries)
    assert any(e.get("plugin") == "auth" for e in entries) or any(
        "Plugin initialization" in e["message"] for e in entries
    )

    access = {e.get("requestId"): e for e in entries if e.get("type") == "access"}
    assert access["ops-req-1"] | {"durationMs": 0} == {
        **access["ops-req-1"],
        "method": "GET",
        "path": "/api/auth/v1/userinfo",
        "status": 401,
        "principal": "none",
        "durationMs": 0,
    }
    assert access["ops-req-2"]["principal"] == "service" and access["ops-req-2"]["status"] == 403
    assert access[made.headers["x-request-id"]]["path"] == "/api/auth/.well-known/jwks.json"
    assert TOKEN not in log.read_text()


async def test_access_log_is_off_by_default_and_request_ids_reach_plugin_lines() -> None:
    import logging

    from host import core_services
    from tests.conftest import start_host

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    async with start_host(plugins=["auth"], config={"backend": {"logger": {"level": "info"}}}) as host:
        handler = Keep()
        logging.getLogger("greenroom").addHandler(handler)
        try:
            response = await host.client.get("/api/auth/v1/userinfo", headers={"x-request-id": "ops-req-3"})
            assert response.headers["x-request-id"] == "ops-req-3"
        finally:
            logging.getLogger("greenroom").removeHandler(handler)
        assert not [r for r in records if getattr(r, "fields", {}).get("type") == "access"]
        # a line a plugin logs while serving carries the request id
        from host.logging import REQUEST_ID, _JsonFormatter

        logger = await host.backend.get_service(core_services.logger, "auth")
        token = REQUEST_ID.set("ops-req-4")
        try:
            records.clear()
            logging.getLogger("greenroom").addHandler(handler)
            logger.warning("inside a request")
        finally:
            REQUEST_ID.reset(token)
            logging.getLogger("greenroom").removeHandler(handler)
        line = json.loads(_JsonFormatter().format(records[-1]))
        assert line["requestId"] == "ops-req-4" and line["plugin"] == "auth"
