"""Greenroom answers the compatibility cases as Backstage does.

Every case runs against a real Greenroom host (SQLite and PostgreSQL) and its
answers are compared with Backstage's recorded ones (``recorded.json``). With
``BACKSTAGE_PEER_URL`` set, the same cases also run against the live Backstage,
which must still answer as recorded, so the recordings cannot go stale
unnoticed and Greenroom is compared with the live answers through them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.cases import CASES
from tests.compat.peer import load_recorded
from tests.compat.runner import Answer, Case, Target, run_case

RECORDED = load_recorded()


def contains(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` has everything ``expected`` states (dicts by their keys, lists item by item)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(map(contains, expected, actual))
    return bool(expected == actual)


def assert_answers(
    case: Case, actual: list[Answer | None], expected: list[Answer | None], overrides: dict[int, Answer]
) -> None:
    """Compare step by step; an override need only be contained in the answer."""
    assert len(actual) == len(expected)
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        step = case.steps[index]
        if index in overrides:
            assert contains(overrides[index], got), (
                f"{case.name} step {index} ({step}): {got} lacks {overrides[index]} ({case.why})"
            )
        else:
            assert got == want, f"{case.name} step {index}: {step}"


def case_id(case: Case) -> str:
    return case.name


def test_every_case_has_a_recorded_answer() -> None:
    """The recordings cover the cases exactly (re-record with ``python -m tests.compat.record``)."""
    assert sorted(RECORDED) == sorted(case.name for case in CASES)
    for case in CASES:
        assert len(RECORDED[case.name]) == len(case.steps), case.name
        assert set(case.greenroom) <= set(range(len(case.steps))), case.name
        assert bool(case.greenroom) == bool(case.why), f"{case.name}: an override needs its reason"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_greenroom_answers_as_backstage(case: Case, greenroom: Target) -> None:
    assert_answers(case, run_case(case, greenroom), RECORDED[case.name], dict(case.greenroom))


@pytest.mark.parametrize("case", [case for case in CASES if case.recorded_from == "peer"], ids=case_id)
def test_backstage_answers_as_recorded(case: Case, backstage: Target) -> None:
    assert_answers(case, run_case(case, backstage), RECORDED[case.name], {})
