"""Structured logs: structlog with contextvars, JSON lines in production.

`configure()` once at process start (`json=False` under `jobqueue dev` for
the console renderer). Standard-library loggers (uvicorn, asyncpg, kopf) go
through the same processors, so every line of a process has one format.

`bind_job(...)` at the job boundary puts job_id, tenant_id, worker_id,
attempt and the trace ids on every line logged inside it, including lines
from handler code and from tasks started within.

Two guards run on every line, whoever logs it: values under secret-looking
keys (api_key, token, authorization, password, secret, ...) and secret-looking
strings (jq_ API keys, bearer tokens, passwords in URLs) are redacted; and
job payloads (`data`, `payload`, `result`) are dropped above debug level.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from jobqueue.observability import tracing

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"api[-_]?key|token|authorization|passw(or)?d|secret|cookie|credential|private[-_]?key",
    re.IGNORECASE,
)
_SECRET_TEXT = [
    (re.compile(r"\bjq_[A-Za-z0-9_\-]{8,}"), REDACTED),  # jobqueue API keys
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
    (re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@"), r"\1" + REDACTED + "@"),  # user:pass@host
]
_PAYLOAD_KEYS = frozenset({"data", "payload", "result"})
_MAX_DEPTH = 4
_HANDLER_MARK = "_jobqueue_handler"


def redact(value: object, depth: int = 0) -> object:
    """`value` with secrets replaced: by key in mappings, by pattern in text."""
    if isinstance(value, str):
        for pattern, repl in _SECRET_TEXT:
            value = pattern.sub(repl, value)
        return value
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: no secret reaches a log line, whatever the caller passed."""
    for key in list(event_dict):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact(event_dict[key])
    return event_dict


def drop_payloads(_: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Processor: job data and results are user data; only debug lines carry them."""
    if method != "debug":
        for key in _PAYLOAD_KEYS.intersection(event_dict):
            del event_dict[key]
    return event_dict


def add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: the active span's ids override the ones bound at the job boundary."""
    ids = tracing.current_ids()
    if ids is not None:
        event_dict["trace_id"], event_dict["span_id"] = ids
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        drop_payloads,
        redact_secrets,
    ]


def configure(json: bool = True, level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Set up structlog and the standard-library root logger for this process.

    `stream` defaults to stderr; tests pass a StringIO. Safe to call again.
    """
    out = stream if stream is not None else sys.stderr
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
        tail: list[Processor] = [
            structlog.processors.StackInfoRenderer(),
            structlog.processors.dict_tracebacks,
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
        tail = [structlog.processors.StackInfoRenderer()]

    structlog.configure(
        processors=[*_shared_processors(), *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        # Not cached, so a later configure() (tests, `jobqueue dev`) applies
        # to loggers already created at import time.
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors(), *tail],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)


def get_logger(name: str) -> FilteringBoundLogger:
    """A structlog logger whose lines carry `logger=name`."""
    # `logger` is a parameter of structlog.get_logger itself, so bind it after.
    return cast(FilteringBoundLogger, structlog.get_logger().bind(logger=name))


@contextmanager
def bind_job(
    job_id: object,
    tenant_id: str,
    worker_id: str | None = None,
    attempt: int | None = None,
    *,
    trace_context: dict[str, str] | None = None,
) -> Iterator[None]:
    """Bind a job's ids to every log line inside the block (contextvars).

    trace_id/span_id come from the active span, else from the job's stored
    `trace_context`, so lines outside a span still name the job's trace.
    """
    values: MutableMapping[str, Any] = {"job_id": str(job_id), "tenant_id": str(tenant_id)}
    if worker_id is not None:
        values["worker_id"] = str(worker_id)
    if attempt is not None:
        values["attempt"] = attempt
    ids = tracing.current_ids() or tracing.ids_of(trace_context)
    if ids is not None:
        values["trace_id"], values["span_id"] = ids
    with structlog.contextvars.bound_contextvars(**values):
        yield


bind = structlog.contextvars.bound_contextvars
"""Bind arbitrary context (e.g. tenant_id, request_id in the API) for a block."""
