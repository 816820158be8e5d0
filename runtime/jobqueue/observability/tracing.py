"""OpenTelemetry tracing: one trace per job, across processes.

The API opens `submit_job` and stores `inject()` in the job row
(`NewJob.trace_context`, a W3C `traceparent` carrier). The worker names that
carrier as `parent` of `acquire_lease`, `execute_job` and `ack_job`, so all
four spans share one trace id although they run in different processes.
Spans carry `job_attributes(...)`: job_id, tenant_id, worker_id, attempt.
A batch request has a `submit_batch` span and each of its jobs a
`submit_job` span of its own (`job_spans`); a job stored without a carrier
(CLI, db layer) gets its worker's `acquire_lease` as root (`record_root`).

Off costs nothing: unless OTEL_* (read into `TracingSettings`) configures
an exporter (or a test passes one to `setup`), the SDK is never imported,
`span()` returns one shared null context, `inject()` returns {} and
`record()` returns at once.

Process-wide state on purpose: a process has one tracer provider, exactly as
OpenTelemetry's own global does.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link, Span, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from jobqueue.settings import TracingSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

Attributes = Mapping[str, AttributeValue]

# W3C trace context only, whatever OTEL_PROPAGATORS says: the carrier is
# stored in the database and read by another process, so its format must not
# depend on either process's environment.
_PROPAGATOR = TraceContextTextMapPropagator()
_NOOP: AbstractContextManager[Span] = contextlib.nullcontext(INVALID_SPAN)


@dataclass
class _State:
    tracer: Tracer | None = None
    provider: TracerProvider | None = None
    # The sampler follows a parent's decision (OpenTelemetry's default): a
    # child of an unsampled parent can then be skipped without the SDK.
    parent_decides: bool = False


_state = _State()


def configured(settings: TracingSettings) -> bool:
    """Whether the standard OTEL_* variables ask for trace export."""
    if settings.sdk_disabled.strip().lower() == "true":
        return False
    exporter = settings.traces_exporter.strip().lower()
    if exporter == "none":
        return False
    return bool(exporter or settings.otlp_endpoint or settings.otlp_traces_endpoint)


def setup(
    service_name: str, settings: TracingSettings, *, exporter: SpanExporter | None = None
) -> bool:
    """Install tracing for this process; returns whether spans are recorded.

    With `exporter` (tests: an InMemorySpanExporter), spans go to it
    synchronously, so tests may call this repeatedly. Without it, `settings`
    (the OTEL_* variables) decide: nothing set means off; otherwise an OTLP/HTTP (or `console`)
    exporter behind a batching processor.

    The provider is deliberately not installed as OpenTelemetry's global
    one: libraries that trace through the global provider would then start
    exporting too. FastAPI's built-in telemetry alone adds four spans to
    every request (server, dependencies, endpoint, serialization), which
    doubled the API's CPU per submitted job. Our spans are the ones the
    design names; anyone wanting more can install a global provider.
    """
    shutdown()
    if exporter is None and not configured(settings):
        return False

    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    name = settings.service_name or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    _state.provider = provider
    _state.tracer = provider.get_tracer("jobqueue")
    _state.parent_decides = isinstance(provider.sampler, ParentBased)
    return True


def _exporter(settings: TracingSettings) -> SpanExporter:
    kind = settings.traces_exporter.strip().lower() or "otlp"
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # One span per line, so a log collector (or a test) can split them.
        return ConsoleSpanExporter(formatter=lambda s: s.to_json(indent=None) + "\n")
    if kind != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r} is not supported; use otlp or console")
    # Reads OTEL_EXPORTER_OTLP_{,TRACES_}ENDPOINT, _HEADERS, _TIMEOUT itself.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def shutdown() -> None:
    """Flush and stop span export (call on process exit); tracing is off after."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _state.tracer is not None


def recording(parent: Mapping[str, str] | None) -> bool:
    """Whether a span under `parent` (a stored carrier, or None for a new
    root) may be recorded. False when tracing is off, or when the parent was
    not sampled and the sampler follows parents: then `span()` and
    `record()` skip the SDK altogether, so a 10% sample costs about 10%.
    """
    if _state.tracer is None:
        return False
    if parent and _state.parent_decides:
        flags = parent.get("traceparent", "")[-2:]
        try:
            return bool(int(flags, 16) & 1)  # W3C trace-flags: bit 0 is "sampled"
        except ValueError:
            return True  # unreadable: let the SDK decide
    return True


def job_attributes(
    *, job_id: object, tenant_id: str, worker_id: str | None = None, attempt: int | None = None
) -> dict[str, AttributeValue]:
    """The tags every job span carries, under the names dashboards query."""
    attrs: dict[str, AttributeValue] = {"job_id": str(job_id), "tenant_id": str(tenant_id)}
    if worker_id is not None:
        attrs["worker_id"] = str(worker_id)
    if attempt is not None:
        attrs["attempt"] = attempt
    return attrs


def span(
    name: str,
    *,
    parent: Mapping[str, str] | None = None,
    attributes: Attributes | None = None,
    start_time: int | None = None,
) -> AbstractContextManager[Span]:
    """A context manager running a current span named `name`.

    `parent` is a carrier from `inject()` (e.g. a job's trace_context): the
    span joins that trace. Without it, the span is a child of the current
    span, or a new root. Exceptions are recorded and mark the span as error.
    """
    tracer = _state.tracer
    if tracer is None or (parent and not recording(parent)):
        return _NOOP
    ctx = extract(parent) if parent is not None else None
    return tracer.start_as_current_span(
        name, context=ctx, attributes=attributes, start_time=start_time
    )


def record(
    name: str,
    *,
    parent: Mapping[str, str] | None,
    start_time: int,
    end_time: int | None = None,
    attributes: Attributes | None = None,
    error: str | None = None,
) -> None:
    """Record a finished span after the fact (times from `now_ns()`).

    For steps done in batches, such as one lease or ack statement for many
    jobs: each job's trace gets its own span covering the shared call.
    """
    tracer = _state.tracer
    if tracer is None or (parent and not recording(parent)):
        return
    s = tracer.start_span(name, context=extract(parent), attributes=attributes,
                          start_time=start_time)
    if error is not None:
        s.set_status(Status(StatusCode.ERROR, error))
    s.end(end_time=end_time if end_time is not None else now_ns())


def record_root(
    name: str, *, start_time: int, end_time: int, attributes: Attributes | None = None
) -> dict[str, str]:
    """Record a finished span that starts a trace of its own; returns its
    carrier, so the job's later spans join it ({} when tracing is off).

    For a job that arrived without a trace context (submitted through the
    CLI or the db layer): its first worker span becomes the root, instead of
    each of its spans starting a trace alone.
    """
    tracer = _state.tracer
    if tracer is None:
        return {}
    s = tracer.start_span(name, context=_EMPTY, attributes=attributes, start_time=start_time)
    s.end(end_time=end_time)
    return _carrier_of(s)


class JobSpans:
    """The open `submit_job` spans of one batch's jobs; see `job_spans`."""

    def __init__(self, spans: list[Span], count: int) -> None:
        self._spans = spans
        self.carriers = [_carrier_of(s) for s in spans] if spans else [{}] * count

    def name(self, job_ids: Sequence[object | None]) -> None:
        """Tag each span with its job's id, once the batch is stored."""
        for s, job_id in zip(self._spans, job_ids, strict=False):
            if job_id is not None:
                s.set_attribute("job_id", str(job_id))


@contextlib.contextmanager
def job_spans(
    count: int, *, parent: Mapping[str, str] | None, attributes: Attributes | None = None
) -> Iterator[JobSpans]:
    """One `submit_job` span per job of a batch request, open while inside;
    `carriers` are what each job stores. Nothing at all when tracing is off.

    Enter inside the batch's own span. One trace per job, as for single
    submits: without a caller's `parent` each job's span is the root of a
    trace of its own, linked to the batch span; with one, the jobs join the
    caller's trace as children of the batch span, as a single submit would.
    """
    tracer = _state.tracer
    if tracer is None:
        yield JobSpans([], count)
        return
    batch = trace.get_current_span().get_span_context()
    if parent:
        ctx, links = None, None
    else:
        ctx, links = _EMPTY, [Link(batch)] if batch.is_valid else None
    spans = [
        tracer.start_span("submit_job", context=ctx, attributes=attributes, links=links)
        for _ in range(count)
    ]
    try:
        yield JobSpans(spans, count)
    except BaseException as exc:
        for s in spans:
            s.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        for s in spans:
            s.end()


def _carrier_of(s: Span) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(s))
    return carrier


def now_ns() -> int:
    """Wall-clock nanoseconds, the unit span timestamps use."""
    return time.time_ns()


def inject() -> dict[str, str]:
    """The current span's context as a W3C carrier; {} when tracing is off or
    no span is active.

    A span that the sampler dropped still has a valid context: it is
    injected too (flags 00), so the worker honours the API's sampling
    decision instead of sampling the job's other spans on its own.
    """
    if _state.tracer is None:
        return {}
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str] | None) -> Context:
    """A context whose parent is the carrier's span (empty: a new root)."""
    if not carrier:
        return _EMPTY
    return _extract(carrier.get("traceparent", ""), carrier.get("tracestate", ""))


_EMPTY = Context()


@functools.lru_cache(maxsize=4096)
def _extract(traceparent: str, tracestate: str) -> Context:
    # Cached: a worker extracts each job's carrier three times (lease,
    # execute, ack), and parsing was a sixth of a span's cost. Contexts are
    # immutable, so sharing one is safe.
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the active span, for log lines."""
    if _state.tracer is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)


def ids_of(carrier: Mapping[str, str] | None) -> tuple[str, str] | None:
    """(trace_id, parent span_id) named by a stored carrier, without the SDK."""
    if not carrier:
        return None
    parts = carrier.get("traceparent", "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    return parts[1], parts[2]
