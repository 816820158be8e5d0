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
  the worker's to store, so `dumps_storable` and `storable_text` replace each
  such character with U+FFFD, the Unicode replacement character, which
  says "a character was here that could not be kept" and is itself
  storable anywhere.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from jobqueue import errors
from jobqueue.models import JSON

MARKER = "\N{REPLACEMENT CHARACTER}"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A float Python wrote with an exponent ("1e+16", "-1.5e-07"), found outside
# strings by matching whole string tokens first.
_EXPONENT = re.compile(r"\d[eE][-+]\d")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?[eE][-+]?\d+')
# In JSON text: an escaped backslash, a surrogate pair, NUL, a lone surrogate.
_ESCAPE = re.compile(
    r"\\\\|\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}|\\u0000|\\ud[89a-f][0-9a-f]{2}"
)


def _positional(m: re.Match[str]) -> str:
    token = m.group()
    if token.startswith('"'):
        return token
    text = format(Decimal(token), "f")
    return text if "." in text else text + ".0"


def dumps(value: JSON) -> str:
    """JSON text that jsonb stores as `value` (see the module docstring).

    NaN and Infinity are written as Python writes them, and jsonb refuses
    them: the caller learns it from the statement's ConstraintViolation. A value
    nested past what json can encode is InvalidJob.
    """
    try:
        text = json.dumps(value)
    except RecursionError:
        raise errors.InvalidJob("JSON nested too deep to encode") from None
    # Almost every text has no exponent: one search, no rewrite.
    if _EXPONENT.search(text) is None:
        return text
    return _TOKEN.sub(_positional, text)


def storable_text(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub(MARKER, text)


def dumps_storable(value: JSON) -> str:
    """`dumps(value)` with every NUL and lone surrogate in its strings, keys
    included, replaced by U+FFFD.

    Done on the JSON text, not by walking `value`: a walk would recurse as
    deep as the value nests. json.dumps writes every NUL as \\u0000 and every
    surrogate as \\udXXX (characters past U+FFFF as a high-low pair), and a
    backslash appears in JSON text only inside strings, so the escapes are
    found by one scan that consumes escaped backslashes and pairs whole.
    """
    text = dumps(value)
    if "\\u0000" not in text and "\\ud" not in text:
        return text
    return _ESCAPE.sub(_mark, text)


def _mark(m: re.Match[str]) -> str:
    token = m.group()
    return token if token == "\\\\" or len(token) == 12 else "\\ufffd"
