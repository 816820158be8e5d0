"""Pure parts of the runtime core: query files, fingerprints, priorities, keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobqueue import apikeys, idempotency
from jobqueue.db import queries
from jobqueue.idempotency import fingerprint
from jobqueue.models import NewJob, Priority


def test_query_files_split_on_name_lines() -> None:
    parsed = queries.parse("-- preamble\n-- name: a\nSELECT 1;\n\n-- name: b\nSELECT 2\n")
    assert parsed == {"a": "SELECT 1", "b": "SELECT 2"}


def test_a_query_name_defined_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        queries.parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def test_a_variant_is_its_base_with_each_text_replaced_once() -> None:
    parsed = queries.parse(
        "-- name: all\nSELECT * FROM t WHERE ($1 IS NULL OR a = $1) AND ($2 IS NULL OR b = $2);\n"
        "-- name: by_a\n-- driven by a\n-- variant of all: ($1 IS NULL OR a = $1) -> a = $1\n"
    )
    assert parsed["by_a"] == "SELECT * FROM t WHERE a = $1 AND ($2 IS NULL OR b = $2)"


@pytest.mark.parametrize(("variant", "problem"), [
    ("-- variant of all: (x) -> y", "exactly once"),  # not in the base
    ("-- variant of all: = -> ==", "exactly once"),  # twice in the base
    ("-- variant of none: a -> b", "one plain query"),
    ("-- variant of all: a = 1 -> a = 2\nSELECT 3", "no SQL of its own"),
])
def test_a_variant_that_cannot_be_made_is_an_error(variant: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        queries.parse(f"-- name: all\nSELECT 1 WHERE a = 1 AND b = 2;\n-- name: v\n{variant}\n")


def test_every_aggregate_file_loads() -> None:
    names = set(queries.all_queries())
    assert {"jobs.submit", "leases.ack", "tenants.upsert", "stats.depth"} <= names


def test_fingerprint_ignores_key_order_and_trace_but_not_content() -> None:
    a = NewJob(type="t", data={"x": 1, "y": [1, 2]}, idempotency_key="k")
    b = NewJob(type="t", data={"y": [1, 2], "x": 1}, idempotency_key="other",
               trace_context={"traceparent": "00-abc"})
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(NewJob(type="t", data={"x": 2, "y": [1, 2]}))
    assert fingerprint(a) != fingerprint(NewJob(type="t", data=a.data, priority=Priority.HIGH))
    later = NewJob(type="t", data=a.data, run_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert fingerprint(a) != fingerprint(later)


def test_fingerprints_are_the_ones_stored_by_earlier_versions() -> None:
    # A replay compares with a fingerprint written by whichever version
    # accepted the first request: the text that is hashed never changes.
    job = NewJob(type="t", data={"b": [1, 2.5, None], "a": "\u00e9\u2028"}, queue="q",
                 priority=Priority.HIGH, max_attempts=3, timeout_seconds=60,
                 run_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert fingerprint(job) == "8beed51117b89413a00c7f3017c53a0e2731125bcfd8b76cb1ff3e3b7ff4e56e"
    assert fingerprint(NewJob(type="t")) == (
        "f3afa46dbab1c53bb4bb206484801c2564f8ed1684ba40e9888bc702e9def1ab")


def test_an_omitted_max_attempts_is_fingerprinted_as_omitted() -> None:
    omitted = NewJob(type="t", data={"x": 1})
    assert omitted.max_attempts is None
    explicit = {fingerprint(NewJob(type="t", data={"x": 1}, max_attempts=n)) for n in range(1, 11)}
    assert fingerprint(omitted) not in explicit


def test_explicit_requests_keep_the_fingerprint_version_1_stored() -> None:
    # Pinned: keys already in the jobs table must keep matching their requests.
    job = NewJob(type="send_email", data={"to": "a"}, max_attempts=5)
    assert fingerprint(job) == "7bedcff2924a6a2bacfa192620dc61261efc95b6090bc893e0e0ef673be0dda9"


def test_replays_match_the_request_as_sent_or_a_version_1_omission() -> None:
    omitted = NewJob(type="t", data={"x": 1})
    as_five = NewJob(type="t", data={"x": 1}, max_attempts=5)
    as_seven = NewJob(type="t", data={"x": 1}, max_attempts=7)
    fp = fingerprint
    assert idempotency.matches(fp(omitted), omitted, fp(omitted))
    # Version 1 stored an omitted max_attempts as 5.
    assert idempotency.matches(fp(as_five), omitted, fp(omitted))
    assert not idempotency.matches(fp(as_seven), omitted, fp(omitted))
    assert not idempotency.matches(fp(omitted), as_five, fp(as_five))
    assert not idempotency.matches(fp(omitted), as_seven, fp(as_seven))
    assert not idempotency.matches(None, omitted, fp(omitted))


def test_priority_parses_names_and_numbers() -> None:
    assert Priority.parse("critical") is Priority.CRITICAL
    assert Priority.parse("HIGH") is Priority.HIGH
    assert Priority.parse(0) is Priority.LOW
    with pytest.raises(ValueError, match="unknown priority"):
        Priority.parse("urgent")


def test_api_keys_match_only_their_digest() -> None:
    key = apikeys.generate()
    assert key.startswith("jq_") and len(key) > 40
    assert apikeys.matches(key, ["0" * 64, apikeys.digest(key)])
    assert not apikeys.matches(key + "x", [apikeys.digest(key)])
    assert not apikeys.matches(key, [])
