from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobqueue.observability import logging as obslog
from jobqueue.observability import tracing
from jobqueue.settings import TracingSettings


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    obslog.configure(json=True, level="DEBUG", stream=buf)
    yield buf
    obslog.configure(json=True)


def parsed(buf: io.StringIO) -> list[dict[str, object]]:
    # asyncio logs its selector at debug when pytest-asyncio makes a loop.
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    return [line for line in lines if line.get("logger") != "asyncio"]


def test_secret_keys_are_redacted_at_any_depth(lines: io.StringIO) -> None:
    obslog.get_logger("t").info(
        "login", api_key="k1", Authorization="Bearer x", headers={"X-Access-Token": "k2"},
        nested=[{"password": "k3"}], tenant_id="acme",
    )
    (line,) = parsed(lines)
    assert line["api_key"] == line["Authorization"] == obslog.REDACTED
    assert line["headers"] == {"X-Access-Token": obslog.REDACTED}
    assert line["nested"] == [{"password": obslog.REDACTED}]
    assert line["tenant_id"] == "acme"
    assert not any(s in lines.getvalue() for s in ("k1", "k2", "k3"))


def test_secret_looking_text_is_redacted_in_messages_and_values(lines: io.StringIO) -> None:
    key = "jq_" + "A1b2C3d4E5f6G7h8"
    obslog.get_logger("t").warning(
        f"rejected key {key}", dsn="postgresql://app:hunter2@db:5432/jq", hdr="Bearer abc.def.ghi"
    )
    text = lines.getvalue()
    assert key not in text and "hunter2" not in text and "abc.def.ghi" not in text
    (line,) = parsed(lines)
    assert line["dsn"] == f"postgresql://app:{obslog.REDACTED}@db:5432/jq"


def test_payloads_only_appear_at_debug(lines: io.StringIO) -> None:
    log = obslog.get_logger("t")
    log.info("done", data={"card": "4111"}, result={"ok": 1}, queue="q")
    log.debug("done", data={"card": "4111"})
    info, debug = parsed(lines)
    assert "data" not in info and "result" not in info and info["queue"] == "q"
    assert debug["data"] == {"card": "4111"}


def test_bind_job_puts_ids_on_every_line_then_unbinds(lines: io.StringIO) -> None:
    log = obslog.get_logger("worker")
    carrier = {"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
    with obslog.bind_job("j-1", "acme", "w-1", 3, trace_context=carrier):
        log.info("started")
        logging.getLogger("handler.lib").info("from stdlib")
    log.info("idle")
    started, stdlib_line, idle = parsed(lines)
    for line in (started, stdlib_line):
        assert line["job_id"] == "j-1" and line["tenant_id"] == "acme"
        assert line["worker_id"] == "w-1" and line["attempt"] == 3
        assert line["trace_id"] == "ab" * 16 and line["span_id"] == "cd" * 8
    assert stdlib_line["logger"] == "handler.lib"
    assert "job_id" not in idle and "trace_id" not in idle


def test_active_span_ids_override_stored_ones(lines: io.StringIO) -> None:
    tracing.setup("t", TracingSettings(), exporter=InMemorySpanExporter())
    try:
        with tracing.span("execute_job") as s, obslog.bind_job("j", "acme", "w", 1):
            obslog.get_logger("w").info("running")
        ctx = s.get_span_context()
    finally:
        tracing.shutdown()
    (line,) = parsed(lines)
    assert line["trace_id"] == f"{ctx.trace_id:032x}"
    assert line["span_id"] == f"{ctx.span_id:016x}"


def test_console_mode_is_not_json_and_still_redacts() -> None:
    buf = io.StringIO()
    obslog.configure(json=False, stream=buf)
    try:
        obslog.get_logger("dev").info("hello", token="s3cr3t-value")
    finally:
        obslog.configure(json=True)
    text = buf.getvalue()
    assert "hello" in text and "s3cr3t-value" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_level_filters_and_unknown_level_is_rejected() -> None:
    buf = io.StringIO()
    obslog.configure(json=True, level="warning", stream=buf)
    try:
        obslog.get_logger("t").info("quiet")
        obslog.get_logger("t").warning("loud")
        with pytest.raises(ValueError, match="unknown log level"):
            obslog.configure(level="chatty")
    finally:
        obslog.configure(json=True)
    assert [line["event"] for line in parsed(buf)] == ["loud"]


def test_exception_messages_are_redacted_in_json(lines: io.StringIO) -> None:
    key = "jq_" + "Z9y8X7w6V5u4"
    try:
        raise ConnectionError(f"cannot reach postgresql://app:hunter2@db/jq with {key}")
    except ConnectionError:
        obslog.get_logger("t").exception("connect failed")
    text = lines.getvalue()
    assert "hunter2" not in text and key not in text
    (line,) = parsed(lines)
    assert line["exception"][0]["exc_type"] == "ConnectionError"
    assert obslog.REDACTED in line["exception"][0]["exc_value"]


def test_query_parameters_are_judged_by_their_decoded_name(lines: io.StringIO) -> None:
    secret = "hunter2hunter2"
    names = ["token", "%74oken", "tok%65n", "%2574oken", "API%5FKEY", "access_token",
             "pass%77ord", "client+secret"]
    url = "/ws/jobs?" + "&".join(f"{n}={secret}" for n in names) + "&queue=emails&page=2"
    obslog.get_logger("t").info(f'"WebSocket {url}" [accepted]', url=url)
    text = lines.getvalue()
    assert secret not in text
    (line,) = parsed(lines)
    for n in names:
        assert f"{n}={obslog.REDACTED}" in str(line["url"]), n
    assert "queue=emails&page=2" in str(line["url"])  # other parameters stay readable


def test_a_jwt_is_redacted_wherever_it_appears(lines: io.StringIO) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY21lIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    obslog.get_logger("t").info(f"path /ws/{jwt}/x", note=f"got {jwt}")
    assert "eyJzdWIiOiJhY21lIn0" not in lines.getvalue()


def test_credential_headers_as_raw_pairs_are_redacted(lines: io.StringIO) -> None:
    headers = [(b"authorization", b"Basic dXNlcjpwYXNzd29yZA"), (b"x-api-key", b"k-raw-1"),
               (b"cookie", b"session=k-raw-2"), (b"accept", b"application/json")]
    obslog.get_logger("t").info("request", scope_headers=headers,
                                query=[("%74oken", "k-raw-3"), ("queue", "q")])
    text = lines.getvalue()
    assert not any(s in text for s in ("dXNlcjpwYXNzd29yZA", "k-raw-1", "k-raw-2", "k-raw-3"))
    (line,) = parsed(lines)
    assert ["accept", "application/json"] in line["scope_headers"]
    assert ["queue", "q"] in line["query"]
