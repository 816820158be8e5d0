"""The lint the live tests apply: it passes our registry and catches bad names."""

from __future__ import annotations

from jobqueue.observability import metrics
from tests.observability.promlint import lint

BAD = """\
# HELP requestCount requests
# TYPE requestCount counter
requestCount 1
# HELP queue_size_total a gauge posing as a counter
# TYPE queue_size_total gauge
queue_size_total 3
# HELP latency_ms latency
# TYPE latency_ms histogram
latency_ms_bucket{le="+Inf"} 1
latency_ms_count 1
latency_ms_sum 2
# HELP jobs_gauge jobs
# TYPE jobs_gauge gauge
jobs_gauge{tenantId="a"} 1
"""


def test_our_registry_passes_the_lint() -> None:
    body, _ = metrics.render()
    assert lint(body.decode()) == []


def test_the_lint_catches_each_rule() -> None:
    problems = "\n".join(lint(BAD))
    assert "requestCount_total: not snake_case" in problems
    assert "queue_size_total: only counters should end in _total" in problems
    assert "latency_ms: use base units" in problems
    assert "jobs_gauge: the type does not belong in the name" in problems
    assert "label 'tenantId' is not snake_case" in problems
