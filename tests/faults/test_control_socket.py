"""gunicorn's control socket: off by default, and each instance that enables it has its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.faults.conftest import host_config, serve

pytestmark = pytest.mark.faults


def _env(tmp_path: Path) -> dict[str, str]:
    """gunicorn's default socket lives under $XDG_RUNTIME_DIR or $HOME: point both into the test."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(exist_ok=True)
    return {"HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(runtime)}


def _workers(socket_path: Path) -> set[int]:
    from gunicorn.ctl.client import ControlClient

    with ControlClient(str(socket_path), timeout=10) as client:
        return {worker["pid"] for worker in client.send_command("show workers")["workers"]}


def _children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return {int(child) for child in found}


def test_no_control_socket_by_default(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with (
        serve(host_config(tmp_path / "a"), tmp_path, env=env, name="a"),
        serve(host_config(tmp_path / "b"), tmp_path, env=env, name="b"),
    ):
        shared = [Path(env["XDG_RUNTIME_DIR"]) / "gunicorn.ctl", Path(env["HOME"]) / ".gunicorn" / "gunicorn.ctl"]
        assert not any(path.exists() for path in shared), "an instance opened gunicorn's per-user control socket"


def test_each_instance_has_its_own_control_socket(tmp_path: Path) -> None:
    env = _env(tmp_path)
    sockets = {name: tmp_path / f"{name}.ctl" for name in ("a", "b")}
    config_a = host_config(tmp_path / "a", backend={"controlSocket": str(sockets["a"])})
    config_b = host_config(tmp_path / "b", backend={"controlSocket": str(sockets["b"])})
    with serve(config_a, tmp_path, env=env, name="a") as a:
        with serve(config_b, tmp_path, env=env, name="b") as b:
            assert _workers(sockets["a"]) == _children(a.proc.pid)
            assert _workers(sockets["b"]) == _children(b.proc.pid)
            assert oct(os.stat(sockets["a"]).st_mode & 0o777) == oct(0o600)
        # b stopped: it removed its own socket and left a's alone
        assert not sockets["b"].exists()
        assert _workers(sockets["a"]) == _children(a.proc.pid)
