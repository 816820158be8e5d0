"""Tracebacks in logs never carry frame locals: they hold API keys, tokens
and payloads that the event-dict redaction never sees."""

from __future__ import annotations

import io

import pytest

from jobqueue.observability import logging as obslog


def _fail(api_key: str) -> None:
    token = "jq_LOCAL_" + "TOKEN_VALUE"  # joined at run time: not in the source line
    raise RuntimeError(f"boom {len(token) + len(api_key)}")


@pytest.mark.parametrize("json", [True, False])
def test_logged_exceptions_show_no_locals(json: bool) -> None:
    out = io.StringIO()
    obslog.configure(json=json, stream=out)
    try:
        _fail("jq_ARGUMENT_" + "KEY_VALUE")
    except RuntimeError:
        obslog.get_logger("test").exception("handler failed")
    text = out.getvalue()
    assert "handler failed" in text and "RuntimeError" in text
    assert "LOCAL_TOKEN_VALUE" not in text
    assert "ARGUMENT_KEY_VALUE" not in text
