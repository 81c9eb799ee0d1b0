"""One host per SQLite data directory: an exclusive lock held for the host's lifetime.

Two hosts on one SQLite directory would both serve, but neither would see the
other's signals or settings changes (their buses do not meet). So the first
host takes an ``flock`` on ``<directory>/greenroom.lock`` (holding its pid) and
keeps it until it exits; a second one is refused with the directory and the
first one's pid.

``greenroom start`` takes the lock in the gunicorn master and marks its
workers (``GREENROOM_INSTANCE_PID``), so the workers of that one instance
share it. Any other process that builds a SQLite engine (an in-process host,
``greenroom migrate``, a bare ``gunicorn host.asgi:app`` worker) takes it too.
The kernel drops an ``flock`` when its holder dies, so a crashed host never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

LOCK_FILE = "greenroom.lock"
#: Set by ``greenroom start`` in the master: the pid whose lock the workers share.
INSTANCE_ENV = "GREENROOM_INSTANCE_PID"


class DataDirectoryInUse(RuntimeError):
    """Another running host holds the lock of a SQLite data directory."""

    def __init__(self, directory: Path, pid: int | None) -> None:
        self.directory = directory
        self.pid = pid
        owner = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"The SQLite data directory {directory} is in use by another Greenroom host ({owner}). "
            "Two hosts on one SQLite directory would not see each other's signals or settings; "
            "stop the other host, give this one its own backend.database.connection.directory, "
            "or use PostgreSQL to run several instances."
        )


_held: dict[Path, tuple[int, int]] = {}  # directory -> (fd, users in this process)
_guard = threading.Lock()


def acquire(directory: str | os.PathLike[str], *, share_with_instance: bool = True) -> Path:
    """Take (or share) the lock of ``directory``; return its resolved path for :func:`release`.

    Raises :class:`DataDirectoryInUse` when another host holds it. Callers in
    one process share one lock (counted). With ``share_with_instance`` a
    gunicorn worker accepts the lock its own master holds.
    """
    path = Path(directory).resolve()
    with _guard:
        if path in _held:
            fd, users = _held[path]
            _held[path] = (fd, users + 1)
            return path
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # not world-readable: it holds the databases
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(fd)
            os.close(fd)
            if share_with_instance and owner is not None and owner == _instance_pid() == os.getppid():
                return path  # a worker of the instance whose master holds the lock
            raise DataDirectoryInUse(path, owner) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[path] = (fd, 1)
        return path


def release(path: Path) -> None:
    """Drop one use of the lock taken by :func:`acquire`; the last one unlocks."""
    with _guard:
        if path not in _held:
            return
        fd, users = _held[path]
        if users > 1:
            _held[path] = (fd, users - 1)
            return
        del _held[path]
        os.close(fd)  # closing the only descriptor releases the flock


def _instance_pid() -> int | None:
    raw = os.environ.get(INSTANCE_ENV, "")
    return int(raw) if raw.isdigit() else None


def _read_pid(fd: int) -> int | None:
    raw = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(raw) if raw.isdigit() else None
