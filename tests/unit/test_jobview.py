"""The one projection of a stored job that the API and the CLI show."""

from __future__ import annotations

import dataclasses

from jobqueue import jobview
from jobqueue.api.schemas import JobOut
from jobqueue.validation import MAX_JSON_DEPTH
from tests import factories


def deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_secrets_of_the_lease_are_never_shown_and_its_owner_only_to_operators() -> None:
    job = factories.lease().job
    public, internal = jobview.shown(job), jobview.shown(job, internal=True)
    for view in (public, internal):
        assert not {"lease_token", "trace_context", "seq"} & view.keys()
    assert "lease_owner" not in public and internal["lease_owner"] == "w"
    assert public["priority"] == "normal" and public["omitted"] is None


def test_a_field_stored_too_deep_is_null_and_says_why() -> None:
    job = dataclasses.replace(factories.lease().job, result=deep(MAX_JSON_DEPTH + 5))
    view = jobview.shown(job)
    assert view["result"] is None and view["data"] == {}
    assert set(view["omitted"]) == {"result"}


def test_the_api_and_the_summary_are_made_from_the_same_view() -> None:
    job = factories.lease(data={"x": 1}).job
    out = JobOut.of(job)
    view = jobview.shown(job)
    assert {name: getattr(out, name) for name in jobview.SUMMARY} == {
        name: view[name] for name in jobview.SUMMARY
    } == jobview.summary(job)
    assert out.data == {"x": 1}
