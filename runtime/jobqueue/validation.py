"""What a job submission may hold, checked the same way at every entrance.

The HTTP schemas (`jobqueue.api.schemas`), the Python client, the CLI and
the db layer's submit functions all call these, so a job one of them
refuses is refused by all of them, with the same message. Pure: no I/O.

Nesting is limited to `MAX_JSON_DEPTH` levels of arrays and objects (a
scalar is depth 0, `[]` and `{}` depth 1, `[[1]]` depth 2). 64 is far more
than real documents use and far below every limit further down: pydantic
serializes at most about 255 levels in a whole response (a job's `data`
sits 2-4 levels inside a JobPage or BatchOut), pydantic's JSON parser takes
200, and Python's json module stops near 1,000 minus whatever stack is
already in use (less inside a handler). Payloads between about 256 and 990
levels used to be stored and then answered every read with a 500.

Payloads stored before the limit stay as they are (the worker still gets
them); readers show them through `omitted_reason`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from jobqueue import errors, unique
from jobqueue.models import JSON, NewJob, Priority, TenantQuotas

MAX_JSON_DEPTH: Final = 64

# Printable ASCII without spaces: safe in a header and in a log line.
KEY_PATTERN: Final = r"^[!-~]+$"
KEY_MAX_LENGTH: Final = 255
QUEUE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$"
TYPE_PATTERN: Final = r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,199}$"
# A DNS label: tenants name Kubernetes objects too.
TENANT_PATTERN: Final = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"

# Bounds of the jobs table's check constraints.
MIN_ATTEMPTS: Final = 1
MAX_ATTEMPTS: Final = 1000
MIN_TIMEOUT_SECONDS: Final = 1
MAX_TIMEOUT_SECONDS: Final = 86_400
# Quotas are integer columns; above this the driver refuses the number.
MAX_INT32: Final = 2**31 - 1
MAX_WEIGHT: Final = 1000

# jsonb and text refuse NUL and lone surrogates (a Python str holds a
# character past U+FFFF as one code point, so any surrogate in it is lone).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Python's int-to-text conversion stops at 4,300 digits (about 14,284 bits).
_MAX_INT_BITS = 14_000

_KEY = re.compile(KEY_PATTERN)
_QUEUE = re.compile(QUEUE_PATTERN)
_TYPE = re.compile(TYPE_PATTERN)
_TENANT = re.compile(TENANT_PATTERN)


class TooDeep(str):
    """What the db layer's JSON decoder gives for a stored value nested too
    deep for Python to decode (rows written before the limit, or by hand).

    A str, so it can still be handed to a handler, logged or serialized;
    readers recognise it and show `omitted_reason` instead."""

    __slots__ = ()


TOO_DEEP = TooDeep(f"[jobqueue: stored JSON nested too deep to decode; limit {MAX_JSON_DEPTH}]")


def _scalar_problem(value: object) -> str | None:
    if isinstance(value, str):
        if (m := _UNSTORABLE.search(value)) is not None:
            what = "NUL (\\u0000)" if m.group() == "\x00" else "a lone surrogate"
            return f"contains {what}, which PostgreSQL cannot store"
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return "an integer too large to store" if value.bit_length() > _MAX_INT_BITS else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "NaN or Infinity is not a JSON number"
    return f"a {type(value).__name__} is not a JSON value"


# Scalars that need no check beyond their type: most leaves of a payload.
_PLAIN = (bool, type(None))


def _keys_problem(obj: dict[str, JSON]) -> str | None:
    for k in obj:
        if type(k) is not str:
            return f"has an object key that is not a string: {type(k).__name__}"
        if _UNSTORABLE.search(k) is not None:
            return "has an object key with NUL or a lone surrogate"
    return None


def json_problem(value: JSON, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why `value` cannot be stored and read back as the same JSON, or None.

    Iterative, and stops at the first problem, so a hostile value costs at
    most one walk down to `max_depth`: no RecursionError, however deep. It
    runs on every submission, twice through the API (schema and db layer),
    so leaves are checked in place rather than pushed on the stack."""
    if value is None:
        return "must not be null"
    if not isinstance(value, dict | list | tuple):
        return _scalar_problem(value)
    search = _UNSTORABLE.search
    stack: list[tuple[JSON, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > max_depth:
            return f"is nested more than {max_depth} levels deep (the limit)"
        if isinstance(container, dict):
            if (problem := _keys_problem(container)) is not None:
                return problem
            items = container.values()
        else:
            items = container
        for v in items:
            t = type(v)
            if t is str:
                if search(v) is not None:
                    return _scalar_problem(v)
            elif t is dict or t is list or t is tuple:
                stack.append((v, depth + 1))
            elif t is int:
                if v.bit_length() > _MAX_INT_BITS:
                    return _scalar_problem(v)
            elif not isinstance(v, _PLAIN) and (problem := _scalar_problem(v)) is not None:
                if isinstance(v, dict | list | tuple):  # a subclass: walk it like its base
                    stack.append((v, depth + 1))
                    continue
                return problem
    return None


def deeper_than(value: JSON, limit: int = MAX_JSON_DEPTH) -> bool:
    """Is `value` nested more than `limit` levels? Walks containers only."""
    stack: list[tuple[JSON, int]] = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        children: Iterable[JSON]
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list | tuple):
            children = v
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list | tuple))
    return False


def omitted_reason(value: JSON) -> str | None:
    """Why a stored value is not shown by readers (None: show it).

    Readers (the API's job bodies, `jobqueue jobs show`) answer a job whose
    stored data or result is nested past the limit with that field null and
    this reason beside it, instead of failing the whole read."""
    if isinstance(value, TooDeep) or deeper_than(value):
        return (
            f"nested more than {MAX_JSON_DEPTH} levels deep (stored before that limit); "
            "not shown, the stored value is unchanged"
        )
    return None


def data_problem(value: JSON) -> str | None:
    """Why `value` cannot be a job's data, or None (any JSON value but null)."""
    return json_problem(value)


def _name_problem(what: str, value: object, pattern: re.Pattern[str], longest: int,
                  strict: bool) -> str | None:
    if strict:
        if isinstance(value, str) and len(value) <= longest and pattern.match(value):
            return None
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return f"{what} {shown} must be at most {longest} characters matching {pattern.pattern}"
    if isinstance(value, str) and 1 <= len(value) <= longest and not _UNSTORABLE.search(value):
        return None
    return f"{what} must be 1 to {longest} characters without NUL or lone surrogates"


def new_job_problem(job: NewJob, *, strict_names: bool = True) -> str | None:
    """The first reason `job` would be refused, or None.

    With `strict_names` (the API, the client, the CLI) type, queue and key
    must match the wire patterns. The db layer checks only what the table
    can store (lengths, no NUL): names are a contract of the entrances, and
    rows with other names may already exist and be served."""
    problem = (
        _name_problem("type", job.type, _TYPE, 200, strict_names)
        or _name_problem("queue", job.queue, _QUEUE, 63, strict_names)
    )
    if problem is not None:
        return problem
    key = job.idempotency_key
    if key is not None and (
        problem := _name_problem("idempotency key", key, _KEY, KEY_MAX_LENGTH, strict_names)
    ):
        return problem
    if not isinstance(job.priority, Priority):
        return "priority must be low, normal, high or critical (0 to 3)"
    if job.max_attempts is not None and not _int_between(
        job.max_attempts, MIN_ATTEMPTS, MAX_ATTEMPTS
    ):
        return f"max_attempts must be an integer from {MIN_ATTEMPTS} to {MAX_ATTEMPTS}"
    if not _int_between(job.timeout_seconds, MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS):
        return (f"timeout_seconds must be an integer from {MIN_TIMEOUT_SECONDS} "
                f"to {MAX_TIMEOUT_SECONDS}")
    if job.run_at is not None and (
        not isinstance(job.run_at, datetime) or job.run_at.utcoffset() is None
    ):
        return "run_at must be a datetime with a UTC offset"
    if (problem := data_problem(job.data)) is not None:
        return f"data {problem}"
    return unique.problem(job)


def check_new_job(job: NewJob, where: str = "", *, strict_names: bool = True) -> None:
    """Raise InvalidJob if `job` would be refused; `where` prefixes the message."""
    if (problem := new_job_problem(job, strict_names=strict_names)) is not None:
        raise errors.InvalidJob(f"{where}{problem}")


def check_new_jobs(jobs: Iterable[NewJob], *, strict_names: bool = True) -> None:
    """`check_new_job` for each of a batch, naming the first bad one by index."""
    for i, job in enumerate(jobs):
        check_new_job(job, f"jobs[{i}]: ", strict_names=strict_names)


def tenant_id_problem(tenant_id: object) -> str | None:
    if not isinstance(tenant_id, str) or _TENANT.match(tenant_id) is None:
        return (f"tenant id {tenant_id!r} must be 1 to 63 lowercase letters, digits "
                "or '-', starting and ending with a letter or digit")
    return None


def quota_problem(name: str, value: object) -> str | None:
    """Why `value` cannot be the quota `name` (a TenantQuotas field), or None."""
    if name == "enabled":
        return None if isinstance(value, bool) else "enabled must be true or false"
    if name not in TenantQuotas.__dataclass_fields__:
        return f"unknown quota {name!r}"
    high = MAX_WEIGHT if name == "weight" else MAX_INT32
    if not _int_between(value, 1, high):
        return f"{name} must be an integer from 1 to {high}"
    return None


def _int_between(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
