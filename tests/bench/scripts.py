"""Running a benchmark script from the tests: the helpers of ``tests/bench``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))


def run_script(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a bench script with this Python from the repository root; it must exit 0."""
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


NUMBER = r"(-?[\d,]+(?:\.\d+)?)"


def numbers(pattern: str, text: str) -> list[float]:
    """The numbers that ``pattern``'s groups (``NUMBER``) match in ``text``, which must match it once."""
    [found] = re.findall(pattern, text, re.M)
    return [float(value.replace(",", "")) for value in (found if isinstance(found, tuple) else (found,))]
