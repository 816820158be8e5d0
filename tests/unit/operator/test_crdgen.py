"""The generated CRDs are structural and carry the rules the apiserver enforces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from jobqueue_operator import crdgen, models

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("crd", list(crdgen.crds().values()), ids=list(crdgen.crds()))
def test_every_schema_node_is_structural(crd: crdgen.Schema) -> None:
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in crdgen.walk(root):
        assert "$ref" not in node, path
        assert "title" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert "anyOf" not in node, path
            assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, path
        assert node.get("default", 0) is not None, path


def test_conditions_are_a_list_map_keyed_on_type() -> None:
    for crd in crdgen.crds().values():
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        conditions = status["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert "type" in conditions["items"]["required"]
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_nested_objects_default_so_the_apiserver_fills_their_fields() -> None:
    spec = crdgen.tenant_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    assert spec["default"] == {}
    assert spec["properties"]["quotas"]["default"] == {}
    assert spec["properties"]["quotas"]["properties"]["rateLimit"]["default"] == {}
    assert spec["properties"]["quotas"]["properties"]["maxConcurrentJobs"]["default"] == 100
    # Optional without a default: absent, never null.
    assert "default" not in spec["properties"]["apiKeySecretRef"]


def test_jobqueue_carries_cel_rules_and_printer_columns() -> None:
    version = crdgen.jobqueue_crd()["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert "self.minReplicas <= self.maxReplicas" in rules
    assert spec["properties"]["concurrency"]["minimum"] == 1
    assert version["schema"]["openAPIV3Schema"]["required"] == ["spec"]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names[:2] == ["Ready", "Queue"] and "Depth" in names and "Replicas" in names
    assert crdgen.jobqueue_crd()["spec"]["names"]["shortNames"] == ["jq"]
    assert crdgen.tenant_crd()["spec"]["scope"] == "Cluster"


def test_models_enforce_what_the_schema_enforces() -> None:
    with pytest.raises(ValidationError):
        models.JobQueueSpec.model_validate({"image": "x", "concurrency": -1})
    with pytest.raises(ValidationError):
        models.JobQueueSpec.model_validate({"image": "x", "surprise": 1})
    bad = models.JobQueueSpec.model_validate({"image": "x", "minReplicas": 3, "maxReplicas": 2})
    assert models.jobqueue_spec_problems(bad) == ["minReplicas must not exceed maxReplicas"]
    ok = models.JobQueueSpec.model_validate({"image": "x"})
    assert models.jobqueue_spec_problems(ok) == []
    assert ok.queue_name("emails") == "emails"
    assert models.TenantSpec.model_validate({}).quotas.rate_limit.requests_per_minute == 6000


def test_structural_rejects_a_union_it_cannot_express() -> None:
    from pydantic import BaseModel

    class Ambiguous(BaseModel):
        value: int | str

    with pytest.raises(ValueError, match="anyOf"):
        crdgen.structural(Ambiguous)


def test_committed_crds_match_the_models() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "gen_crds.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_drift_check_fails_on_an_edited_file(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "hack"))
    try:
        import gen_crds
    finally:
        sys.path.remove(str(ROOT / "hack"))
    copy = (tmp_path / "crds",)
    assert gen_crds.main(["--check"], targets=copy) == 1  # nothing written yet
    assert gen_crds.main([], targets=copy) == 0
    assert gen_crds.main(["--check"], targets=copy) == 0
    victim = next(copy[0].glob("*tenants.yaml"))
    victim.write_text(victim.read_text().replace("default: 100", "default: 101"))
    assert gen_crds.main(["--check"], targets=copy) == 1
    (copy[0] / "stale.yaml").write_text("{}")
    assert gen_crds.main([], targets=copy) == 0
    assert not (copy[0] / "stale.yaml").exists()
    assert gen_crds.main(["--check"], targets=copy) == 0
