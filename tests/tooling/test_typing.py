"""``mypy --strict`` passes on host/, the plugins and the example (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout


TYPED_DI = """
from host import core_services, create_service_factory
from host.backend import Backend

wrong = create_service_factory(core_services.logger, lambda: 42)


async def use(backend: Backend) -> None:
    reveal_type(await backend.get_service(core_services.logger))
    reveal_type(core_services.http_router)
"""


def test_service_refs_carry_their_type(tmp_path: Path) -> None:
    """``ServiceRef[T]``: a factory must build a T, and ``get_service`` returns a T (checked by mypy)."""
    source = tmp_path / "typed_di.py"
    source.write_text(TYPED_DI)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(source)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    out = result.stdout
    assert (
        'typed_di.py:5: error: Incompatible return value type (got "int", expected '
        '"LoggerService | Awaitable[LoggerService]")'
    ) in out, out
    assert 'Revealed type is "host.services.LoggerService"' in out, out
    assert 'Revealed type is "host.features.ServiceRef[host.services.HttpRouterService]"' in out, out
