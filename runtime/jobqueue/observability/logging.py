"""Structured logs: structlog with contextvars, JSON lines in production.

`configure()` once at process start (`json=False` under `jobqueue dev` for
the console renderer). Standard-library loggers (uvicorn, asyncpg, kopf) go
through the same processors, so every line of a process has one format.

`bind_job(...)` at the job boundary puts job_id, tenant_id, worker_id,
attempt and the trace ids on every line logged inside it, including lines
from handler code and from tasks started within.

Two guards run on every line, whoever logs it: values under secret-looking
keys (api_key, token, authorization, password, secret, ...) and secret-looking
strings (jq_ API keys, bearer tokens, JWTs, passwords in URLs, query
parameters whose percent-decoded name is secret-looking) are redacted; and
job payloads (`data`, `payload`, `result`) are dropped above debug level.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import urllib.parse
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from typing import Any, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from jobqueue.observability import tracing

# The type every component logs through (what `get_logger` returns).
Logger = FilteringBoundLogger

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"api[-_]?key|token|authorization|passw(or)?d|secret|cookie|credential|private[-_]?key",
    re.IGNORECASE,
)
# Each pattern runs only when its cheap marker is in the text: most log
# values hold none, and a regex per value per line would dominate the cost
# of logging.
_SECRET_TEXT = [
    (("jq_",), re.compile(r"\bjq_[A-Za-z0-9_\-]{8,}"), REDACTED),  # jobqueue API keys
    (("earer", "EARER", "asic", "ASIC"),
     re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), r"\1 " + REDACTED),
    (("@",), re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@"), r"\1" + REDACTED + "@"),  # user:pw@
    # A JWT wherever it appears (header.claims.signature, base64url JSON).
    (("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"),
     REDACTED),
]
# `name=value` in a query string (or a form body). The name is judged after
# percent-decoding, as the server decodes it: `?%74oken=` is `?token=`.
_QUERY_PAIR = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&;#?\s\"']+)=(?P<value>[^&;#\s\"']*)")
# Enough for a name encoded twice over (%2574oken); a server decodes once.
_DECODE_ROUNDS = 3
_PAYLOAD_KEYS = frozenset({"data", "payload", "result"})
# Values this module and structlog put there themselves: never secrets.
_TRUSTED_KEYS = frozenset({"timestamp", "level", "logger", "job_id", "tenant_id", "worker_id",
                           "attempt", "trace_id", "span_id"})
_MAX_DEPTH = 4
_HANDLER_MARK = "_jobqueue_handler"


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def is_secret_parameter(name: str) -> bool:
    """A query parameter's (still encoded) name names a credential, decoded
    as many times as a server or proxy on the way might decode it."""
    for _ in range(_DECODE_ROUNDS):
        if is_secret_key(name):
            return True
        decoded = urllib.parse.unquote_plus(name)
        if decoded == name:
            return False
        name = decoded
    return is_secret_key(name)


def _redact_pair(m: re.Match[str]) -> str:
    if m["value"] and is_secret_parameter(m["name"]):
        return f"{m['sep']}{m['name']}={REDACTED}"
    return m[0]


def redact_query(text: str) -> str:
    """Credential-bearing `name=value` pairs of query strings in `text`, redacted."""
    if "=" not in text or not ("?" in text or "&" in text or ";" in text):
        return text
    return _QUERY_PAIR.sub(_redact_pair, text)


def redact_text(text: str) -> str:
    for markers, pattern, repl in _SECRET_TEXT:
        if any(m in text for m in markers):
            text = pattern.sub(repl, text)
    return redact_query(text)


def redact(value: object, depth: int = 0) -> object:
    """`value` with secrets replaced: by key in mappings, by pattern in text."""
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_name(k) else redact(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) == 2 and _is_secret_name(value[0]):
            # A (name, value) pair: ASGI headers, parse_qsl() output.
            return [value[0], REDACTED]
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        # Raw headers and query strings are bytes in ASGI.
        return redact_text(bytes(value).decode("latin-1"))
    return value


def _is_secret_name(name: object) -> bool:
    if isinstance(name, bytes | bytearray):
        name = bytes(name).decode("latin-1")
    return isinstance(name, str) and is_secret_parameter(name)


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: no secret reaches a log line, whatever the caller passed."""
    for key, value in event_dict.items():
        if key in _TRUSTED_KEYS or isinstance(value, int | float | bool | None):
            continue
        event_dict[key] = REDACTED if is_secret_key(key) else redact(value)
    return event_dict


def redact_exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: secret-looking text in a rendered exception (its message,
    e.g. a DSN with a password, or a key a handler put in an error)."""
    if "exception" in event_dict:
        event_dict["exception"] = redact(event_dict["exception"])
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
        merge_job,
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
            # Frame locals would carry API keys, tokens and payloads into
            # the log, past redact_secrets (which sees only the event dict).
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            # Exception messages are built after redact_secrets ran.
            redact_exception,
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
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


# One variable for the whole job context: binding and unbinding it is one
# set/reset, where structlog's per-key contextvars cost ~10x more per job.
_JOB: ContextVar[dict[str, Any] | None] = ContextVar("jobqueue_job", default=None)


def wrap_stdlib(logger: logging.Logger | logging.LoggerAdapter[Any]) -> FilteringBoundLogger:
    """A structlog logger that writes through a stdlib one, as `key=value`
    text: for code that logs as the runtime does (the process kit) inside a
    host that owns stdlib logging (kopf, whose per-object logger also posts
    warnings as Kubernetes Events)."""
    wrapped: FilteringBoundLogger = structlog.wrap_logger(
        logger,
        processors=[redact_secrets, structlog.processors.KeyValueRenderer(
            key_order=["event"], drop_missing=True)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    return wrapped


def merge_job(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: the ids `bind_job` bound; what the caller passed wins."""
    job = _JOB.get()
    if job is not None:
        for key, value in job.items():
            event_dict.setdefault(key, value)
    return event_dict


class _JobBinding:
    """What `bind_job` returns: a plain class, since a generator-based
    context manager costs twice as much and this runs for every job."""

    __slots__ = ("_token", "_values")

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values
        self._token: Token[dict[str, Any] | None] | None = None

    def __enter__(self) -> None:
        self._token = _JOB.set(self._values)

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _JOB.reset(self._token)


def bind_job(
    job_id: object,
    tenant_id: str,
    worker_id: str | None = None,
    attempt: int | None = None,
    *,
    trace_context: dict[str, str] | None = None,
) -> AbstractContextManager[None]:
    """Bind a job's ids to every log line inside the block (contextvars).

    trace_id/span_id come from the active span, else from the job's stored
    `trace_context`, so lines outside a span still name the job's trace.
    Tasks and threads started inside (with a copied context) inherit them.
    """
    values: dict[str, Any] = {"job_id": str(job_id), "tenant_id": str(tenant_id)}
    if worker_id is not None:
        values["worker_id"] = str(worker_id)
    if attempt is not None:
        values["attempt"] = attempt
    ids = tracing.current_ids() or tracing.ids_of(trace_context)
    if ids is not None:
        values["trace_id"], values["span_id"] = ids
    return _JobBinding(values)


bind = structlog.contextvars.bound_contextvars
"""Bind arbitrary context (e.g. tenant_id, request_id in the API) for a block."""
