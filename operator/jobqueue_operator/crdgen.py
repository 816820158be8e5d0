"""CustomResourceDefinitions from the pydantic models (pure).

pydantic emits JSON Schema 2020-12; the apiserver wants a *structural*
OpenAPI v3 schema: every node typed, no `$ref`, no `title`, no `anyOf` for
optional fields, no `additionalProperties: false` next to `properties`.
`structural()` rewrites one into the other; `crds()` wraps the spec and
status schemas into complete CRDs with CEL rules, printer columns and the
status subresource. `hack/gen_crds.py` writes the result to YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel

from jobqueue_operator import models

Schema = dict[str, Any]

_DROP = {"title", "$defs", "examples"}


def structural(model: type[BaseModel]) -> Schema:
    """The model's JSON Schema as a structural OpenAPI v3 schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: Mapping[str, Schema] = raw.get("$defs", {})
    return _convert(raw, defs)


def _convert(node: Schema, defs: Mapping[str, Schema]) -> Schema:
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is not None:
        # Siblings of a $ref (description, default) refine the referenced schema.
        node = {**defs[ref.rsplit("/", 1)[-1]], **node}
    any_of = node.get("anyOf")
    if any_of is not None and not node.get("x-kubernetes-int-or-string"):
        members = [m for m in any_of if m.get("type") != "null"]
        if len(members) != 1:
            raise ValueError(f"a CRD schema cannot express anyOf {any_of!r}")
        # An optional field: the apiserver treats absence as None already.
        del node["anyOf"]
        if node.get("default", 0) is None:
            del node["default"]
        member = dict(members[0])
        if "$ref" in member:
            member = {**defs[member.pop("$ref").rsplit("/", 1)[-1]], **member}
        node = {**member, **node}
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _convert(value, defs)
        elif key == "additionalProperties":
            continue  # `false` is implied: a structural schema prunes unknown fields
        elif key == "anyOf":
            out[key] = [_convert(m, defs) for m in value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            # JSON Schema's number form -> OpenAPI v3.0's boolean form.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if out.get("default", 0) is None:
        del out["default"]
    return out


def _ready_column() -> dict[str, str]:
    return {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    }


def _reason_column() -> dict[str, Any]:
    return {
        "name": "Reason",
        "type": "string",
        "priority": 1,
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
    }


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _crd(
    *,
    kind: str,
    plural: str,
    short_names: list[str],
    scope: str,
    spec: Schema,
    status: Schema,
    columns: list[dict[str, Any]],
    root_rules: list[dict[str, str]] | None = None,
    spec_rules: list[dict[str, str]] | None = None,
    spec_required: bool = True,
) -> Schema:
    if spec_rules:
        spec["x-kubernetes-validations"] = spec_rules
    if not spec_required:
        spec["default"] = {}
    root: Schema = {
        "type": "object",
        "description": spec.pop("description", kind),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if spec_required:
        root["required"] = ["spec"]
    if root_rules:
        root["x-kubernetes-validations"] = root_rules
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{models.GROUP}",
            "labels": {
                "app.kubernetes.io/name": "jobqueue",
                "app.kubernetes.io/part-of": "jobqueue",
            },
        },
        "spec": {
            "group": models.GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def tenant_crd() -> Schema:
    return _crd(
        kind="Tenant",
        plural="tenants",
        short_names=["jqt"],
        scope="Cluster",
        spec=structural(models.TenantSpec),
        status=structural(models.TenantStatus),
        root_rules=models.TENANT_RULES,
        spec_required=False,
        columns=[
            _ready_column(),
            {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
            {"name": "Queued", "type": "integer", "jsonPath": ".status.queuedJobs"},
            {"name": "Running", "type": "integer", "jsonPath": ".status.runningJobs"},
            {
                "name": "Concurrency",
                "type": "integer",
                "priority": 1,
                "jsonPath": ".spec.quotas.maxConcurrentJobs",
            },
            _reason_column(),
            _AGE,
        ],
    )


def jobqueue_crd() -> Schema:
    return _crd(
        kind="JobQueue",
        plural="jobqueues",
        short_names=["jq"],
        scope="Namespaced",
        spec=structural(models.JobQueueSpec),
        status=structural(models.JobQueueStatus),
        root_rules=models.JOBQUEUE_RULES,
        spec_rules=models.JOBQUEUE_SPEC_RULES,
        columns=[
            _ready_column(),
            {"name": "Queue", "type": "string", "jsonPath": ".status.queue"},
            {"name": "Depth", "type": "integer", "jsonPath": ".status.queueDepth"},
            {"name": "Running", "type": "integer", "jsonPath": ".status.runningJobs"},
            {"name": "Oldest", "type": "integer", "jsonPath": ".status.oldestJobAgeSeconds"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
            {"name": "Image", "type": "string", "priority": 1, "jsonPath": ".spec.image"},
            _reason_column(),
            _AGE,
        ],
    )


def crds() -> dict[str, Schema]:
    """File name -> CRD, in the order they are written."""
    return {
        f"{models.GROUP}_tenants.yaml": tenant_crd(),
        f"{models.GROUP}_jobqueues.yaml": jobqueue_crd(),
    }


def walk(schema: Schema) -> list[tuple[str, Schema]]:
    """Every (path, node) of a schema; tests use it to check structural rules."""
    found: list[tuple[str, Schema]] = []

    def visit(path: str, node: Schema) -> None:
        found.append((path, node))
        for name, sub in cast(dict[str, Schema], node.get("properties", {})).items():
            visit(f"{path}.{name}", sub)
        if isinstance(node.get("items"), dict):
            visit(f"{path}[]", node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            visit(f"{path}{{}}", node["additionalProperties"])

    visit("", schema)
    return found
