"""Every processor hook is documented and exercised by a test (a Datasette-style meta-test)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from plugin_notifications import hookspecs

REPO = Path(__file__).resolve().parents[2]
HOOKS = sorted(
    name
    for name, value in vars(hookspecs).items()
    if inspect.isfunction(value) and hasattr(value, f"{hookspecs.PROJECT_NAME}_spec")
)


def test_there_are_hooks() -> None:
    assert "notifications_post_process" in HOOKS and len(HOOKS) >= 5


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    assert spec.__doc__ and "Use in processors" in spec.__doc__, f"{hook} needs a docstring with a usage note"
    assert hook in (REPO / "docs" / "notifications.md").read_text(), f"docs/notifications.md does not mention {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_documented_arguments_match_the_spec(hook: str) -> None:
    """docs/notifications.md shows each hook as ``name(arg, ...)`` with exactly the spec's arguments."""
    docs = (REPO / "docs" / "notifications.md").read_text()
    documented = re.findall(rf"`{hook}\(([^)]*)\)`", docs)
    assert documented, f"docs/notifications.md has no `{hook}(...)` signature"
    spec_args = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    for args in documented:
        assert [a.strip() for a in args.split(",") if a.strip()] == spec_args, (hook, args, spec_args)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_by_a_test_processor(hook: str) -> None:
    sources = [*REPO.joinpath("tests").rglob("*.py"), *REPO.joinpath("plugins").rglob("*.py")]
    implemented = [p for p in sources if f"def {hook}(" in p.read_text(errors="replace") and p != Path(__file__)]
    assert implemented, f"no test processor implements {hook}"
