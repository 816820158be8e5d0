"""API keys: generated once, shown once, stored only as a digest (pure).

A key is `jq_` + 43 url-safe characters (256 random bits). Such a key cannot
be guessed, so a fast digest (SHA-256) protects it as well as a slow one;
verification compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "jq_"


def generate() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(key: str, digests: Iterable[str]) -> bool:
    """True if `key` hashes to one of `digests`; every digest is compared."""
    d = digest(key)
    found = False
    for candidate in digests:
        found |= hmac.compare_digest(d, candidate)
    return found
