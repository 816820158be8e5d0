"""The shared submission checks (pure): nesting, storable strings, names."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import pytest

from jobqueue import validation
from jobqueue.models import NewJob
from jobqueue.validation import MAX_JSON_DEPTH


def arrays(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def objects(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("make", [arrays, objects])
def test_depth_is_counted_in_containers_and_the_limit_is_inclusive(make: Any) -> None:
    assert validation.data_problem(make(MAX_JSON_DEPTH)) is None
    problem = validation.data_problem(make(MAX_JSON_DEPTH + 1))
    assert problem is not None and f"{MAX_JSON_DEPTH} levels" in problem
    assert not validation.deeper_than(make(MAX_JSON_DEPTH))
    assert validation.deeper_than(make(MAX_JSON_DEPTH + 1))


def test_scalars_and_empty_containers() -> None:
    for value in (0, -1.5, True, "", "text", [], {}, [None], {"a": None}):
        assert validation.data_problem(value) is None, value
    assert validation.data_problem(None) == "must not be null"


def test_values_far_deeper_than_the_recursion_limit_are_checked_without_recursion() -> None:
    deep = arrays(sys.getrecursionlimit() * 20)
    assert validation.data_problem(deep) is not None
    assert validation.deeper_than(deep)
    assert validation.omitted_reason(deep) is not None


def test_the_marker_for_undecodable_rows_is_omitted() -> None:
    assert validation.omitted_reason(validation.TOO_DEEP) is not None
    assert validation.omitted_reason("an ordinary string") is None


@pytest.mark.parametrize(
    "value",
    ["a\x00b", {"k\x00": 1}, ["\udc80"], float("inf"), float("nan"), {1: 2}, {"x": b"raw"},
     {"s": {1, 2}}, 10**5000],
    ids=lambda v: type(v).__name__,
)
def test_unstorable_values_are_named(value: Any) -> None:
    assert validation.data_problem(value) is not None


def test_strict_names_follow_the_wire_patterns_and_loose_names_the_table() -> None:
    job = NewJob(type="echo")
    assert validation.new_job_problem(job) is None
    spaced = replace(job, queue="has space")
    assert validation.new_job_problem(spaced) is not None
    assert validation.new_job_problem(spaced, strict_names=False) is None
    assert validation.new_job_problem(replace(job, idempotency_key="k" * 256)) is not None
    assert validation.new_job_problem(replace(job, idempotency_key="k" * 255)) is None


def test_numbers_are_integers_in_the_table_bounds() -> None:
    job = NewJob(type="echo")
    for bad in ({"max_attempts": 0}, {"max_attempts": 1001}, {"max_attempts": True},
                {"timeout_seconds": 0}, {"timeout_seconds": 86_401},
                {"timeout_seconds": 3.0}):
        assert validation.new_job_problem(replace(job, **bad)) is not None, bad


def test_quotas_and_tenant_ids() -> None:
    assert validation.tenant_id_problem("acme-1") is None
    for bad in ("", "Acme", "a_b", "-a", "a" * 64):
        assert validation.tenant_id_problem(bad) is not None, bad
    assert validation.quota_problem("weight", 1000) is None
    assert validation.quota_problem("weight", 1001) is not None
    assert validation.quota_problem("max_queued", 2**31) is not None
    assert validation.quota_problem("max_concurrent", 0) is not None
