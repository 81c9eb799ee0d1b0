"""The deployment recipes in docs/deployment.md, for real: Debian's nginx in front of a running host.

The nginx config is taken from the document (ports, paths and the secret
replaced), served with a self-signed certificate; through it a person signs in
with the proxy provider, calls the REST API and receives a signal over the
WebSocket. ``scripts/test-setup.sh`` installs nginx (``apt-get install nginx``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from host import signals_service_ref
from tests.conftest import HostHandle, free_port, start_host
from tests.signals.conftest import recv_signal, subscribe, wait_subscribed

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deployment.md"
NGINX = os.environ.get("GREENROOM_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
PROXY_SECRET = "nginx-test-proxy-secret-0123456789"

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists() and os.environ.get("CI") != "true",
    reason="nginx is not installed (scripts/test-setup.sh installs it)",
)


def doc_block(language: str) -> str:
    """The first fenced block of ``language`` in docs/deployment.md."""
    return doc_blocks(language)[0]


def doc_blocks(language: str) -> list[str]:
    """Every fenced block of ``language`` in docs/deployment.md, in order."""
    blocks = re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert blocks, f"no {language} block in {DOC}"
    return blocks


@dataclass
class Proxy:
    """nginx in front of a host."""

    url: str
    http_url: str
    ssl: ssl.SSLContext


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited: {log.read_text() if log.exists() else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("nginx did not listen")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
async def host() -> AsyncIterator[HostHandle]:
    config = {"auth": {"providers": {"proxy": {"secret": PROXY_SECRET, "allowUnknownUsers": True}}}}
    async with start_host(plugins=["auth", "signals"], config=config) as handle:
        yield handle


def nginx_config(tmp_path: Path, upstream: int, http_port: int, https_port: int, cert: tuple[Path, Path]) -> Path:
    site = doc_block("nginx")
    replacements = {
        "server 127.0.0.1:7007;": f"server 127.0.0.1:{upstream};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/ssl/greenroom/fullchain.pem": str(cert[0]),
        "/etc/ssl/greenroom/privkey.pem": str(cert[1]),
        "/etc/nginx/greenroom.htpasswd": str(tmp_path / "htpasswd"),
        "change-me-to-GREENROOM_PROXY_SECRET": PROXY_SECRET,
    }
    for old, new in replacements.items():
        assert old in site, f"docs/deployment.md no longer has {old!r}"
        site = site.replace(old, new)
    (tmp_path / "greenroom.conf").write_text(site)
    (tmp_path / "htpasswd").write_text("alice:{PLAIN}wonderland\n")
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for directory in temp.values():
        directory.mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.getuid() == 0 else "")
        + f"worker_processes 1;\nerror_log {tmp_path / 'error.log'} warn;\npid {tmp_path / 'nginx.pid'};\n"
        "events { worker_connections 128; }\n"
        "http {\n  access_log off;\n"
        + "".join(
            f"  {name}_temp_path {path};\n"
            for name, path in (
                ("client_body", temp["body"]),
                ("proxy", temp["proxy"]),
                ("fastcgi", temp["fastcgi"]),
                ("uwsgi", temp["uwsgi"]),
                ("scgi", temp["scgi"]),
            )
        )
        + f"  include {tmp_path / 'greenroom.conf'};\n}}\n"
    )
    return main


@pytest.fixture
def proxy(tmp_path: Path, host: HostHandle, certificate: tuple[Path, Path]) -> Iterator[Proxy]:
    http_port, https_port = free_port(), free_port()
    upstream = int(host.url.rsplit(":", 1)[1])
    conf = nginx_config(tmp_path, upstream, http_port, https_port, certificate)
    test = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(https_port, proc, tmp_path / "error.log")
        context = ssl.create_default_context(cafile=str(certificate[0]))
        yield Proxy(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", context)
    finally:
        proc.terminate()
        proc.wait(10)


async def test_sign_in_rest_and_signals_through_nginx(proxy: Proxy, host: HostHandle) -> None:
    async with httpx.AsyncClient(base_url=proxy.url, verify=proxy.ssl, timeout=10) as client:
        assert (await client.get("/.backstage/health/v1/readiness")).status_code == 200

        # sign-in: nginx asks who you are, then names you to the proxy provider
        assert (await client.post("/api/auth/proxy/refresh")).status_code == 401
        signed_in = await client.post(
            "/api/auth/proxy/refresh", auth=("alice", "wonderland"), headers={"X-Forwarded-User": "mallory"}
        )
        assert signed_in.status_code == 200, signed_in.text
        identity = signed_in.json()["backstageIdentity"]
        assert identity["identity"]["userEntityRef"] == "user:default/alice"
        token = identity["token"]

        # REST with Greenroom's own bearer token; nginx's request id reaches the host and comes back
        info = await client.get("/api/auth/v1/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 200
        assert info.json()["claims"]["sub"] == "user:default/alice"
        assert re.fullmatch(r"[0-9a-f]{32}", info.headers["x-request-id"])

        # signals: the WebSocket upgrade passes through nginx
        service = await host.backend.get_service(signals_service_ref, "test-publisher")

        async def publish(signal: dict[str, object]) -> None:
            await service.publish(**signal)

        url = proxy.url.replace("https://", "wss://") + "/api/signals"
        async with websockets.connect(url, ssl=proxy.ssl, subprotocols=[token]) as ws:  # type: ignore[list-item]
            await subscribe(ws, "deploys")
            await wait_subscribed(ws, publish)
            await publish(
                {
                    "recipients": {"type": "user", "entityRef": "user:default/alice"},
                    "channel": "deploys",
                    "message": {"via": "nginx"},
                }
            )
            assert await recv_signal(ws) == {"channel": "deploys", "message": {"via": "nginx"}}

    # plain HTTP is redirected to HTTPS
    async with httpx.AsyncClient(base_url=proxy.http_url, timeout=10) as client:
        redirect = await client.get("/notifications")
        assert redirect.status_code == 301
        assert redirect.headers["location"].startswith("https://") and redirect.headers["location"].endswith(
            "/notifications"
        )


async def test_a_client_cannot_name_itself_through_nginx(proxy: Proxy) -> None:
    """Identity headers a client sends are overwritten on every route; the secret only nginx adds."""
    spoofed = {"X-Forwarded-User": "mallory", "X-Greenroom-Proxy-Secret": "guess"}
    async with httpx.AsyncClient(base_url=proxy.url, verify=proxy.ssl, timeout=10) as client:
        for path in ("/api/auth/proxy/refresh", "/api//auth/proxy/refresh", "/api/auth/proxy/refresh/"):
            response = await client.post(path, headers=spoofed)
            assert response.status_code in (401, 404), (path, response.status_code, response.text)
            assert "mallory" not in response.text


@pytest.mark.parametrize(
    ("index", "command"), [(0, "greenroom start"), (1, "greenroom deliveries dispatch")], ids=["host", "dispatcher"]
)
def test_the_systemd_units_verify(tmp_path: Path, index: int, command: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = doc_blocks("ini")[index]
    assert f"ExecStart=/srv/greenroom/.venv/bin/{command}" in unit
    # verify with the paths of this checkout, so the executables exist
    greenroom = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "greenroom")
    local = unit.replace("/srv/greenroom/.venv/bin/greenroom", greenroom).replace("/srv/greenroom", str(tmp_path))
    local = re.sub(r"^(User|Group)=.*$", r"\1=root", local, flags=re.M)
    path = tmp_path / "greenroom.service"
    path.write_text(local)
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    problems = [line for line in result.stderr.splitlines() if "greenroom.service" in line]
    assert result.returncode == 0 and not problems, result.stderr
