"""The external-metrics answers, built without a server."""

from __future__ import annotations

from datetime import UTC, datetime

from jobqueue_operator import metrics_server as ms


def test_equality_selectors_parse_and_others_are_refused() -> None:
    assert ms.parse_selector("queue=emails") == {"queue": "emails"}
    assert ms.parse_selector("queue==emails, tier = gold") == {"queue": "emails", "tier": "gold"}
    assert ms.parse_selector("") == {}
    assert ms.parse_selector("queue!=emails") is None
    assert ms.parse_selector("queue in (a,b)") is None
    assert ms.parse_selector("=x") is None


def test_value_list_has_the_external_metrics_shape() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    body = ms.value_list({"queue": "q"}, [42], at)
    assert body["apiVersion"] == "external.metrics.k8s.io/v1beta1"
    assert body["items"] == [
        {
            "metricName": "jobqueue_queue_depth",
            "metricLabels": {"queue": "q"},
            "timestamp": "2030-01-01T00:00:00Z",
            "value": "42",
        }
    ]
    assert ms.value_list({"queue": "q"}, [], at)["items"] == []
    assert ms.resource_list()["resources"][0]["namespaced"] is True
