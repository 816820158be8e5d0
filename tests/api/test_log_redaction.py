"""Credentials never reach the log, however the client spells them: query
parameter names percent-encoded or in another case, values percent-encoded.
Checked on the real log of a real server after real requests."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import quote

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support import api as support
from tests.support.procs import Proc
from tests.support.wait import eventually

# Every spelling Starlette decodes to `token`, the parameter the socket reads.
SPELLINGS = ["token", "%74oken", "%74%6F%6B%65%6E", "tok%65n"]


def _every_byte_encoded(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


async def _log_settles(api: Proc, needle: str) -> str:
    def logged() -> str | None:
        log = api.text()
        return log if needle in log else None

    with contextlib.suppress(AssertionError):  # not logged at all: the caller's asserts say so
        return await eventually(logged, timeout=5, interval=0.1, what=repr(needle))
    return api.text()


@pytest.mark.parametrize("name", SPELLINGS)
async def test_a_socket_token_is_redacted_whatever_the_spelling_of_its_name(
    api: Proc, tenant_a: support.TenantKey, name: str
) -> None:
    token = support.mint(tenant_a.id)
    url = api.url.replace("http://", "ws://") + f"/ws/jobs?{name}={token}&marker={tenant_a.id}"
    async with connect(url) as ws:
        assert '"ready"' in str(await asyncio.wait_for(ws.recv(), 10))  # the token worked
    log = await _log_settles(api, f"marker={tenant_a.id}")
    assert f"marker={tenant_a.id}" in log  # the handshake was logged
    assert token not in log
    assert token.split(".")[1] not in log  # not even the claims part
    assert f"{name}=[redacted]" in log


async def test_a_percent_encoded_token_value_is_redacted(
    api: Proc, tenant_b: support.TenantKey
) -> None:
    token = support.mint(tenant_b.id)
    encoded = _every_byte_encoded(token)
    url = api.url.replace("http://", "ws://") + f"/ws/jobs?token={encoded}&marker={tenant_b.id}"
    async with connect(url) as ws:
        assert '"ready"' in str(await asyncio.wait_for(ws.recv(), 10))
    log = await _log_settles(api, f"marker={tenant_b.id}")
    assert encoded not in log and token not in log
    assert "token=[redacted]" in log


async def test_refused_credentials_in_any_query_parameter_are_redacted(
    api: Proc, anon: httpx.AsyncClient
) -> None:
    secret = "hunter2-" + "s3cr3t" * 6  # no pattern of its own: only its name gives it away
    names = ["api_key", "api%5Fkey", "%61pi-key", "password", "Access_Token", "AUTHORIZATION"]
    query = "&".join(f"{n}={quote(secret)}" for n in names) + "&marker=refused"
    url = api.url.replace("http://", "ws://") + f"/ws/jobs?{query}"
    with pytest.raises((InvalidStatus, Exception)):
        async with connect(url, open_timeout=10) as ws:
            await asyncio.wait_for(ws.recv(), 10)
    log = await _log_settles(api, "marker=refused")
    assert "marker=refused" in log
    assert "s3cr3t" not in log
    for n in names:
        assert f"{n}=[redacted]" in log, n
