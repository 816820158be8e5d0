"""The JSON text the db layer sends for jsonb: floats jsonb keeps as floats,
and handler output made storable by replacing NUL and lone surrogates.
(Round trips through real PostgreSQL: tests/integration/test_worker_outcomes_stored.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobqueue import errors
from jobqueue.db import jsontext

M = jsontext.MARKER


@pytest.mark.parametrize(("value", "text"), [
    (1e16, "10000000000000000.0"),
    (-1.5e-7, "-0.00000015"),
    ({"1e+16": [2.5e+20]}, '{"1e+16": [250000000000000000000.0]}'),
    ("2e-5 in a string", '"2e-5 in a string"'),
    ([1, 2.0, 1e15], "[1, 2.0, 1000000000000000.0]"),
])
def test_floats_are_written_without_exponents(value: Any, text: str) -> None:
    assert jsontext.dumps(value) == text
    assert json.loads(text) == value


@pytest.mark.parametrize(("value", "stored"), [
    ("a\x00b", f"a{M}b"),
    ({"\ud800": ["\udfff\x00"]}, {M: [M + M]}),
    # Not NUL or a surrogate: an escaped backslash and a valid pair stay.
    ("\\u0000 \\ud800", "\\u0000 \\ud800"),
    ("\\\x00", f"\\{M}"),
    ("\N{GRINNING FACE}\ud83d", f"\N{GRINNING FACE}{M}"),
    ("\udc00\N{GRINNING FACE}", f"{M}\N{GRINNING FACE}"),
])
def test_unstorable_characters_become_the_marker(value: Any, stored: Any) -> None:
    assert json.loads(jsontext.dumps_storable(value)) == stored


def test_a_deep_value_is_made_storable_without_recursion() -> None:
    value: Any = "\x00"
    for _ in range(900):
        value = [value]
    out = json.loads(jsontext.dumps_storable(value))
    for _ in range(900):
        out = out[0]
    assert out == M


def test_error_text_is_made_storable() -> None:
    assert jsontext.storable_text("x\x00\ud800\N{GRINNING FACE}") == f"x{M}{M}\N{GRINNING FACE}"


def test_a_value_too_deep_to_encode_is_invalid_input() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(errors.InvalidInput, match="too deep"):
        jsontext.dumps_storable(value)
