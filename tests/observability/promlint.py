"""promtool-style lint of an exposition, on prometheus-client's parser.

The rules of `promtool check metrics` that apply to our names: counters end
in _total and nothing else does; names and labels are snake_case; no
colons (reserved for recording rules); base units (seconds, bytes), no
type or unit abbreviations in names; HELP on every family.
"""

from __future__ import annotations

import re

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_NON_BASE_UNITS = re.compile(
    r"_(milli|micro|nano)?(seconds_)?(ms|us|ns|millis|milliseconds|microseconds|nanoseconds|"
    r"minutes|hours|days|kilobytes|megabytes|gigabytes|kb|mb|gb|percent)(_|$)"
)
_TYPE_IN_NAME = re.compile(r"_(counter|gauge|histogram|summary|metric)(_|$)")
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# prometheus-client's own process and platform collectors, not ours to lint.
_FOREIGN = ("process_", "python_")


def families(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


def lint(text: str) -> list[str]:
    """Problems found, one string each; [] for a clean exposition."""
    problems: list[str] = []
    for fam in families(text):
        if fam.name.startswith(_FOREIGN):
            continue
        exposed = fam.name + "_total" if fam.type == "counter" else fam.name
        if not _SNAKE.match(exposed):
            problems.append(f"{exposed}: not snake_case (or has a colon)")
        if not fam.documentation.strip():
            problems.append(f"{exposed}: no HELP text")
        if fam.type != "counter" and exposed.endswith("_total"):
            problems.append(f"{exposed}: only counters should end in _total")
        if _NON_BASE_UNITS.search(exposed):
            problems.append(f"{exposed}: use base units (seconds, bytes)")
        if _TYPE_IN_NAME.search(exposed):
            problems.append(f"{exposed}: the type does not belong in the name")
        if fam.type != "histogram" and exposed.endswith(_HISTOGRAM_SUFFIXES):
            problems.append(f"{exposed}: reserved histogram suffix")
        if fam.type == "histogram" and not exposed.endswith(("_seconds", "_bytes")):
            problems.append(f"{exposed}: a histogram's name should end in its unit")
        for sample in fam.samples:
            if fam.type == "counter" and not sample.name.endswith("_total"):
                problems.append(f"{sample.name}: counter sample without _total")
            for label in sample.labels:
                if label not in ("le", "quantile") and (
                    not _SNAKE.match(label) or label.startswith("__")
                ):
                    problems.append(f"{exposed}: label {label!r} is not snake_case")
    return problems
