"""Pure pieces of the ergonomic features: retry shapes, snooze and progress
checks, how Client.wait reads events, how the hub reads progress rows."""

from __future__ import annotations

import json

import pytest

from jobqueue.api.hub import Hub
from jobqueue.client import core
from jobqueue.worker import context
from jobqueue.worker.handlers import Registry, handler
from jobqueue.worker.retry import Retry


def test_retry_shapes_give_their_delays() -> None:
    top = lambda: 0.999999  # noqa: E731 - a jitter draw at the very top
    expo = Retry(base_seconds=1, cap_seconds=10)
    assert [round(expo.delay(n, base=9, cap=9, rand=top), 3) for n in (1, 2, 3, 4, 5)] == [
        1.0, 2.0, 4.0, 8.0, 10.0]
    linear = Retry(base_seconds=2, cap_seconds=7, backoff="linear", jitter=False)
    assert [linear.delay(n, base=9, cap=9) for n in (1, 2, 3, 4)] == [2, 4, 6, 7]
    const = Retry(base_seconds=3, backoff="constant", jitter=False)
    assert [const.delay(n, base=9, cap=100) for n in (1, 5, 50)] == [3, 3, 3]
    # Left None: the worker's base and cap.
    assert Retry(jitter=False).delay(3, base=0.5, cap=100) == 2.0
    assert Retry().delay(3, base=1, cap=100, rand=lambda: 0.25) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"max_attempts": 1001}, {"max_attempts": True},
     {"base_seconds": 0}, {"cap_seconds": -1}, {"backoff": "fibonacci"}],
)
def test_a_bad_retry_policy_is_refused_at_import(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Retry(**kwargs)  # type: ignore[arg-type]


def test_handler_keeps_its_retry_policy() -> None:
    reg = Registry()
    policy = Retry(max_attempts=7)

    @handler("with-policy", retry=policy, registry=reg)
    def fn(ctx: object, data: object) -> None: ...

    found = reg.get("with-policy")
    assert found is not None and found.retry is policy
    with pytest.raises(TypeError):
        reg.add("other", fn, retry={"max_attempts": 3})  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, float("inf"), float("nan"), "10", None, 400 * 86400])
def test_snooze_refuses_a_bad_delay(bad: object) -> None:
    with pytest.raises(ValueError, match="snooze"):
        context.snooze_seconds(bad)


def test_progress_notes_are_cut_to_the_column() -> None:
    assert context.progress_report(1, "x" * 500) == (1.0, "x" * 200)
    with pytest.raises(ValueError, match="note"):
        context.progress_report(0.5, 42)


def test_wait_reads_the_job_on_its_final_event_or_a_resync() -> None:
    jid = "5f0c6a53-0000-4000-8000-000000000000"
    assert core.wait_step({"type": "job", "job_id": jid, "status": "dlq"}, jid) == "read"
    assert core.wait_step({"type": "resync"}, jid) == "read"
    assert core.wait_step({"type": "job", "job_id": jid, "status": "running"}, jid) == "skip"
    assert core.wait_step({"type": "job", "job_id": "other", "status": "dlq"}, jid) == "skip"
    assert core.wait_step({"type": "progress", "job_id": jid, "status": "running"}, jid) == "skip"


def test_the_hub_turns_six_item_rows_into_progress_events() -> None:
    hub = Hub(queue_size=10)
    mine, other = hub.subscribe("acme"), hub.subscribe("other")  # type: ignore[arg-type]
    hub.publish(json.dumps([["j1", "acme", "running", "q", 0.5, "half"],
                            ["j1", "acme", "succeeded", "q"], ["bad"]]))
    got = [mine.queue.get_nowait(), mine.queue.get_nowait()]
    assert got[0] == {"type": "progress", "job_id": "j1", "tenant_id": "acme",
                      "status": "running", "queue": "q", "progress": 0.5, "note": "half"}
    assert got[1]["type"] == "job" and got[1]["status"] == "succeeded"
    assert mine.queue.empty() and other.queue.empty()
