from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobqueue.observability import tracing
from jobqueue.settings import RuntimeSettings, TracingSettings

OTEL_VARIABLES = ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    assert tracing.setup("unit", TracingSettings(), exporter=exp)
    yield exp
    tracing.shutdown()


def test_off_by_default_costs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in OTEL_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    assert not tracing.setup("unit", RuntimeSettings().tracing)
    assert not tracing.enabled()
    with tracing.span("submit_job") as s:
        assert not s.is_recording()
        assert tracing.inject() == {}
        assert tracing.current_ids() is None
    tracing.record("ack_job", parent={}, start_time=tracing.now_ns())


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_configured_by_the_standard_variables(
    env: dict[str, str], on: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in OTEL_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert tracing.configured(RuntimeSettings().tracing) is on


def test_the_service_name_variable_names_the_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-worker")
    exp = InMemorySpanExporter()
    assert tracing.setup("unit", RuntimeSettings().tracing, exporter=exp)
    try:
        with tracing.span("execute_job"):
            pass
    finally:
        tracing.shutdown()
    (span,) = exp.get_finished_spans()
    assert span.resource.attributes["service.name"] == "billing-worker"


def test_an_unknown_exporter_is_refused_at_setup() -> None:
    with pytest.raises(ValueError, match="zipkin"):
        tracing.setup("unit", TracingSettings(traces_exporter="zipkin"))


def test_inject_is_empty_outside_a_span(exporter: InMemorySpanExporter) -> None:
    assert tracing.inject() == {}


def test_inject_extract_round_trip_joins_one_trace(exporter: InMemorySpanExporter) -> None:
    attrs = tracing.job_attributes(job_id="j1", tenant_id="acme")
    with tracing.span("submit_job", attributes=attrs):
        carrier = tracing.inject()
    assert set(carrier) == {"traceparent"}
    # The worker's side: a fresh context, only the stored carrier.
    start = tracing.now_ns()
    work = tracing.job_attributes(job_id="j1", tenant_id="acme", worker_id="w1", attempt=1)
    tracing.record("acquire_lease", parent=carrier, start_time=start, attributes=work)
    with pytest.raises(RuntimeError), tracing.span("execute_job", parent=carrier, attributes=work):
        raise RuntimeError("handler failed")
    tracing.record("ack_job", parent=carrier, start_time=tracing.now_ns(), attributes=work,
                   error="lease lost")

    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"submit_job", "acquire_lease", "execute_job", "ack_job"}
    root = spans["submit_job"]
    assert {s.context.trace_id for s in spans.values()} == {root.context.trace_id}
    for name in ("acquire_lease", "execute_job", "ack_job"):
        assert spans[name].parent is not None
        assert spans[name].parent.span_id == root.context.span_id
        assert dict(spans[name].attributes or {}) == {
            "job_id": "j1", "tenant_id": "acme", "worker_id": "w1", "attempt": 1}
    assert not spans["execute_job"].status.is_ok
    assert not spans["ack_job"].status.is_ok
    assert tracing.ids_of(carrier) == (f"{root.context.trace_id:032x}",
                                       f"{root.context.span_id:016x}")


def test_a_missing_or_garbled_carrier_starts_a_new_trace(exporter: InMemorySpanExporter) -> None:
    with tracing.span("execute_job", parent={"traceparent": "garbage"}) as s:
        assert s.is_recording()
        assert s.parent is None  # type: ignore[attr-defined]
    assert tracing.ids_of({"traceparent": "garbage"}) is None
    assert tracing.ids_of(None) is None


def test_a_sampled_out_submit_propagates_its_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK reads the standard sampler variables when the provider is built.
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exp = InMemorySpanExporter()
    tracing.setup("unit", TracingSettings(), exporter=exp)
    try:
        with tracing.span("submit_job") as s:
            assert not s.is_recording()
            carrier = tracing.inject()
        flags = int(carrier["traceparent"].rsplit("-", 1)[1], 16)
        assert flags & 1 == 0  # a valid context whose sampled bit is clear
        # The SDK's default: sample every new trace, follow a parent's decision.
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
        tracing.setup("worker", TracingSettings(), exporter=exp)
        with tracing.span("execute_job", parent=carrier) as s:
            assert not s.is_recording()
        tracing.record("ack_job", parent=carrier, start_time=tracing.now_ns())
        assert exp.get_finished_spans() == ()
    finally:
        tracing.shutdown()


TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_children_of_an_unsampled_parent_skip_the_sdk(exporter: InMemorySpanExporter) -> None:
    # The default sampler follows the parent: an unsampled job's worker spans
    # would be dropped anyway, so they are never built.
    unsampled = {"traceparent": f"00-{TRACE}-b7ad6b7169203331-00"}
    sampled = {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}
    assert not tracing.recording(unsampled)
    assert tracing.recording(sampled) and tracing.recording(None)
    with tracing.span("execute_job", parent=unsampled) as s:
        assert s is tracing.INVALID_SPAN
    tracing.record("ack_job", parent=unsampled, start_time=tracing.now_ns())
    assert exporter.get_finished_spans() == ()
    with tracing.span("execute_job", parent=sampled):
        pass
    tracing.record("ack_job", parent=sampled, start_time=tracing.now_ns())
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["execute_job", "ack_job"]
    assert all(s.context is not None and f"{s.context.trace_id:032x}" == TRACE
               for s in exporter.get_finished_spans())


def test_without_tracing_nothing_records(monkeypatch: pytest.MonkeyPatch) -> None:
    tracing.shutdown()
    assert not tracing.recording(None)
    assert not tracing.recording({"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"})
