"""JSON text for jsonb columns: the value that comes back is the value sent.

Two things jsonb does not keep as Python writes them:

- Numbers are stored as `numeric`, which has no exponent: `1e+16` is read
  back as `10000000000000000`, an int. `dumps` therefore writes every float
  that Python would write with an exponent in positional notation with a
  decimal point (`10000000000000000.0`, `0.00000015`): numeric keeps those
  digits exactly and json.loads reads back the same float. (Negative zero
  is the one float numeric cannot keep: -0.0 comes back as 0.0.)
- Strings may not hold NUL (`\\u0000`) or a lone surrogate: jsonb and text
  refuse them and the statement fails. Client input with them is refused
  (that is the caller's error to see); what a handler returns or raises is
  the worker's to store, so `storable` and `storable_text` replace each
  such character with U+FFFD, the Unicode replacement character, which
  says "a character was here that could not be kept" and is itself
  storable anywhere.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from jobqueue.models import JSON

MARKER = "\N{REPLACEMENT CHARACTER}"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A float Python wrote with an exponent ("1e+16", "-1.5e-07"), found outside
# strings by matching whole string tokens first.
_EXPONENT = re.compile(r"\d[eE][-+]\d")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?[eE][-+]?\d+')


def _positional(m: re.Match[str]) -> str:
    token = m.group()
    if token.startswith('"'):
        return token
    text = format(Decimal(token), "f")
    return text if "." in text else text + ".0"


def dumps(value: JSON) -> str:
    """JSON text that jsonb stores as `value` (see the module docstring).

    NaN and Infinity are written as Python writes them, and jsonb refuses
    them: the caller learns it from the statement's InvalidInput.
    """
    text = json.dumps(value)
    # Almost every text has no exponent: one search, no rewrite.
    if _EXPONENT.search(text) is None:
        return text
    return _TOKEN.sub(_positional, text)


def storable_text(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub(MARKER, text)


def storable(value: JSON) -> JSON:
    """`value` with NUL and lone surrogates replaced by U+FFFD in every
    string, keys included; the same object when there is nothing to replace."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(k) if isinstance(k, str) else k: storable(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def dumps_storable(value: JSON) -> str:
    """`dumps` of `storable(value)`, without walking `value` unless needed."""
    text = dumps(value)
    # ensure_ascii leaves every NUL as \u0000 and every surrogate as \udXXX
    # (characters past U+FFFF too, as pairs; the walk leaves those alone).
    if "\\u0000" not in text and "\\ud" not in text:
        return text
    return dumps(storable(value))
