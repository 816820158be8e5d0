"""Page cursors: round trip to the microsecond, and refusal of anything else."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from jobqueue.api import cursor
from jobqueue.models import Cursor


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 3, 13, 4, 5, 123456, tzinfo=UTC),
        datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_cursor_round_trips_exactly(at: datetime) -> None:
    c = Cursor(created_at=at, seq=2**63 - 1)
    text = cursor.encode(c)
    assert text.isascii() and "=" not in text
    assert cursor.decode(text) == c


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "%%%",
        "A" * (cursor.MAX_LENGTH + 1),
        _b64(b"v1:1:"),
        _b64(b"v2:1:1"),
        _b64(b"v1:1:-1"),
        _b64(b"v1:1:9223372036854775808"),
        _b64(b"v1:9999999999999999999:1"),
        _b64(b"\xff\xfe"),
    ],
)
def test_anything_but_a_cursor_is_refused(text: str) -> None:
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(text)
