"""The Argo CD health script in docs/argocd/ run by a real Lua 5.1 (Argo CD's
gopher-lua speaks 5.1) against sample Tenant and JobQueue objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lupa import lua51

SCRIPT = Path(__file__).parents[3] / "docs" / "argocd" / "health.lua"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT.read_text())
    return str(result["status"]), str(result["message"])


def ready(status: str, observed: int, reason: str = "Reconciled") -> dict[str, Any]:
    return {
        "type": "Ready", "status": status, "observedGeneration": observed,
        "reason": reason, "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def degraded(status: str) -> dict[str, Any]:
    return {
        "type": "Degraded", "status": status, "observedGeneration": 3,
        "reason": "AsExpected", "message": "nothing to report",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


@pytest.mark.parametrize("kind", ["Tenant", "JobQueue"])
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"conditions": [degraded("False"), ready("True", 3)]}, "Healthy"),
        ({"conditions": [ready("False", 3, "DatabaseUnavailable"), degraded("True")]},
         "Degraded"),
        ({"conditions": [ready("True", 2)]}, "Progressing"),  # an older generation's verdict
        ({"conditions": []}, "Progressing"),
        (None, "Progressing"),
    ],
)
def test_health_follows_ready_for_the_current_generation(
    kind: str, status: dict[str, Any] | None, expected: str
) -> None:
    obj: dict[str, Any] = {
        "apiVersion": "jobqueue.dev/v1alpha1", "kind": kind,
        "metadata": {"name": "x", "generation": 3},
    }
    if status is not None:
        obj["status"] = status
    assert health(obj)[0] == expected


def test_degraded_message_names_the_reason() -> None:
    obj = {"metadata": {"generation": 1},
           "status": {"conditions": [ready("False", 1, "DatabaseSecretMissing")]}}
    assert health(obj) == ("Degraded", "DatabaseSecretMissing: m")


def test_docs_register_the_shipped_script() -> None:
    doc = (SCRIPT.parents[1] / "kubernetes.md").read_text()
    assert "jobqueue.dev_Tenant" in doc and "jobqueue.dev_JobQueue" in doc
    assert "docs/argocd/health.lua" in doc
