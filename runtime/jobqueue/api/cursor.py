"""Opaque page cursors for `GET /v1/jobs?after=…`.

Pure. A cursor is the last row's place in the listing order (created_at to
the microsecond, seq), base64url-encoded so clients treat it as a token and
the format can change. It carries no tenant: every read is scoped by the
caller's token, so a cursor from another tenant reveals and reaches nothing.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta

from jobqueue.models import Cursor

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_BODY = re.compile(r"^v1:(-?\d{1,19}):(\d{1,19})$")
MAX_LENGTH = 64


class InvalidCursor(ValueError):
    """Not a cursor this API made."""


def encode(cursor: Cursor) -> str:
    micros = (cursor.created_at - _EPOCH) // _MICROSECOND
    raw = f"v1:{micros}:{cursor.seq}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str) -> Cursor:
    if not text or len(text) > MAX_LENGTH:
        raise InvalidCursor("invalid cursor: use the `next` value of a previous page")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidCursor("invalid cursor: use the `next` value of a previous page") from None
    m = _BODY.match(raw)
    if m is None:
        raise InvalidCursor("invalid cursor: use the `next` value of a previous page")
    try:
        created_at = _EPOCH + int(m.group(1)) * _MICROSECOND
    except OverflowError:
        raise InvalidCursor("invalid cursor: its time is out of range") from None
    seq = int(m.group(2))
    if seq > 2**63 - 1:
        raise InvalidCursor("invalid cursor: out of range")
    return Cursor(created_at=created_at, seq=seq)
