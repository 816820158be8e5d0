"""Every documented combination of the chart's values, on the real helm and kube-apiserver.

Each combination is linted (`helm lint --strict`), rendered and sent through
`kubectl apply --dry-run=server`, which validates built-in kinds and, against
the CRDs in tests/operator/crds/monitoring (prometheus-operator's published
schema, trimmed), the ServiceMonitor, PodMonitor and PrometheusRule with
strict field validation. The rest checks what the objects mean: the
NetworkPolicies and the PodMonitor select the pods the operator really builds
(operator/jobqueue_operator/builders.py), and every metric a PrometheusRule
expression names exists in the runtime's registry.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml

from jobqueue.models import JobStatus
from jobqueue.observability import metrics
from jobqueue_operator import builders, models
from tests.envtest import ControlPlane
from tests.operator.conftest import Helm
from tests.operator.harness import ROOT, Cluster

pytestmark = pytest.mark.timeout(180)

CHART = ROOT / "charts" / "jobqueue"
EXTRA_CRDS = [Path(__file__).parent / "crds" / "monitoring"]
DB_URL = "postgresql://jobqueue:secret@postgres.db:5432/jobqueue"
APISERVER = "172.18.0.2/32"

Doc = dict[str, Any]


def own_database(**more: Any) -> dict[str, Any]:
    return {"database": {"url": DB_URL}, **more}


def network_policy(namespaces: list[str], **more: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "kubeAPIServer": {"cidrs": [APISERVER]},
        "workerNamespaces": namespaces,
        **more,
    }


def everything(workers: list[str]) -> dict[str, Any]:
    """Every optional part on at once (the chart's own PostgreSQL included)."""
    return {
        "postgresql": {"enabled": True, "persistence": {"enabled": True, "size": "2Gi"}},
        "api": {
            "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6},
            "podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                "hosts": ["jobs.example.com", "jobs.example.org"],
                "tls": {"secretName": "jobs-tls"},
            },
        },
        "networkPolicy": network_policy(
            workers,
            api={"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]},
            workers={
                "extraEgress": [
                    {
                        "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
                        "ports": [{"port": 587, "protocol": "TCP"}],
                    }
                ]
            },
            postgresql={"from": [{"ipBlock": {"cidr": "192.168.0.0/16"}}]},
        ),
        "monitoring": {
            "labels": {"release": "kube-prometheus-stack"},
            "serviceMonitor": {"enabled": True},
            "podMonitor": {"enabled": True, "namespaces": workers},
            "prometheusRule": {"enabled": True},
        },
    }


NP = "networkpolicy.networking.k8s.io"
# id -> (values given the worker namespaces, objects applied, objects absent)
COMBINATIONS: dict[str, tuple[Callable[[list[str]], dict[str, Any]], set[str], set[str]]] = {
    "defaults": (
        lambda _: own_database(),
        {
            "deployment.apps/rel-jobqueue-api",
            "deployment.apps/rel-jobqueue-operator",
            "poddisruptionbudget.policy/rel-jobqueue-api",
            "service/rel-jobqueue-api-metrics",
            "apiservice.apiregistration.k8s.io/v1beta1.external.metrics.k8s.io",
            "rolebinding.rbac.authorization.k8s.io/rel-jobqueue-operator-auth-reader",
            "job.batch/rel-jobqueue-migrate",
            "customresourcedefinition.apiextensions.k8s.io/jobqueues.jobqueue.dev",
        },
        {
            "horizontalpodautoscaler.autoscaling/rel-jobqueue-api",
            "ingress.networking.k8s.io/rel-jobqueue-api",
            f"{NP}/rel-jobqueue-api",
            "statefulset.apps/rel-jobqueue-postgresql",
            "prometheusrule.monitoring.coreos.com/rel-jobqueue",
        },
    ),
    "postgresql": (
        lambda _: {"postgresql": {"enabled": True}},
        {
            "statefulset.apps/rel-jobqueue-postgresql",
            "service/rel-jobqueue-postgresql",
            "deployment.apps/rel-jobqueue-api",
        },
        {f"{NP}/rel-jobqueue-postgresql"},
    ),
    "everything": (
        everything,
        {
            "horizontalpodautoscaler.autoscaling/rel-jobqueue-api",
            "poddisruptionbudget.policy/rel-jobqueue-api",
            "ingress.networking.k8s.io/rel-jobqueue-api",
            f"{NP}/rel-jobqueue-api",
            f"{NP}/rel-jobqueue-operator",
            f"{NP}/rel-jobqueue-postgresql",
            f"{NP}/rel-jobqueue-workers",
            "servicemonitor.monitoring.coreos.com/rel-jobqueue-api",
            "podmonitor.monitoring.coreos.com/rel-jobqueue-workers",
            "prometheusrule.monitoring.coreos.com/rel-jobqueue",
            "statefulset.apps/rel-jobqueue-postgresql",
        },
        set(),
    ),
    "metrics-server-disabled": (
        lambda _: own_database(metricsServer={"enabled": False}),
        {"deployment.apps/rel-jobqueue-operator", "deployment.apps/rel-jobqueue-api"},
        {
            "apiservice.apiregistration.k8s.io/v1beta1.external.metrics.k8s.io",
            "service/rel-jobqueue-metrics",
            "secret/rel-jobqueue-metrics-tls",
            "rolebinding.rbac.authorization.k8s.io/rel-jobqueue-operator-auth-reader",
        },
    ),
    "operator-disabled": (
        lambda _: own_database(operator={"enabled": False}),
        {"deployment.apps/rel-jobqueue-api", "job.batch/rel-jobqueue-migrate"},
        {
            "deployment.apps/rel-jobqueue-operator",
            "clusterrole.rbac.authorization.k8s.io/rel-jobqueue-operator",
            "apiservice.apiregistration.k8s.io/v1beta1.external.metrics.k8s.io",
        },
    ),
    "api-disabled": (
        lambda _: own_database(api={"enabled": False}),
        {"deployment.apps/rel-jobqueue-operator", "job.batch/rel-jobqueue-migrate"},
        {
            "deployment.apps/rel-jobqueue-api",
            "service/rel-jobqueue-api",
            "poddisruptionbudget.policy/rel-jobqueue-api",
        },
    ),
    "network-policy-with-worker-namespaces": (
        lambda workers: own_database(
            networkPolicy=network_policy(workers, database={"cidrs": ["10.9.0.0/24"]})
        ),
        {f"{NP}/rel-jobqueue-api", f"{NP}/rel-jobqueue-operator", f"{NP}/rel-jobqueue-workers"},
        {f"{NP}/rel-jobqueue-postgresql"},
    ),
}


def write_values(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def render(helm: Helm, namespace: str, values: dict[str, Any], tmp_path: Path) -> list[Doc]:
    file = write_values(tmp_path / "render-values.yaml", values)
    out = helm("template", "rel", str(CHART), "-n", namespace, "-f", str(file))
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_name(docs: list[Doc]) -> dict[tuple[str, str], Doc]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.mark.parametrize("combination", list(COMBINATIONS))
def test_every_documented_combination_lints_and_passes_server_side_dry_run(
    helm: Helm, cluster: Cluster, control_plane: ControlPlane, tmp_path: Path, combination: str
) -> None:
    make, present, absent = COMBINATIONS[combination]
    namespace = cluster.namespace("jq-combo")
    workers = [cluster.namespace("jq-workers-a"), cluster.namespace("jq-workers-b")]
    values = write_values(tmp_path / "values.yaml", make(workers))

    lint = helm("lint", str(CHART), "--strict", "-n", namespace, "-f", str(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout, lint.stdout

    out = helm("template", "rel", str(CHART), "-n", namespace, "--include-crds", "-f", str(values))
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    # Objects that name their namespace (kube-system's RoleBinding, the
    # workers' policies) go as they are; the rest into the release namespace.
    pinned = [d for d in docs if d["metadata"].get("namespace")]
    assert {d["metadata"]["namespace"] for d in pinned} <= {"kube-system", namespace, *workers}
    released = tmp_path / "chart.yaml"
    released.write_text(yaml.safe_dump_all([d for d in docs if d not in pinned]))
    applied = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(released), "-o", "name"
    ).stdout.split()
    if pinned:
        elsewhere = tmp_path / "pinned.yaml"
        elsewhere.write_text(yaml.safe_dump_all(pinned))
        applied += control_plane.kubectl(
            "apply", "--dry-run=server", "-f", str(elsewhere), "-o", "name"
        ).stdout.split()

    assert len(applied) == len(docs)  # every object accepted, none skipped
    assert present <= set(applied), present - set(applied)
    assert not absent & set(applied), absent & set(applied)
    if f"{NP}/rel-jobqueue-workers" in present:
        assert applied.count(f"{NP}/rel-jobqueue-workers") == len(workers)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--set-string", "api.autoscaling.enabled=yes"], "/api/autoscaling/enabled"),
        (["--set", "api.autoscaling.maxReplicas=0"], "/api/autoscaling/maxReplicas"),
        (["--set", "api.autoscaling.surprise=1"], "surprise"),
        (["--set", "api.podDisruptionBudget.maxUnavailable=0"], "/api/podDisruptionBudget"),
        (
            ["--set-string", "api.podDisruptionBudget.maxUnavailable=lots"],
            "/api/podDisruptionBudget",
        ),
        (["--set", "api.ingress.hosts={Jobs.Example.com}"], "/api/ingress/hosts/0"),
        (["--set", "api.ingress.path=jobs"], "/api/ingress/path"),
        (
            ["--set", "networkPolicy.kubeAPIServer.cidrs={10.0.0.1}"],
            "/networkPolicy/kubeAPIServer/cidrs/0",
        ),
        (["--set", "networkPolicy.workerNamespaces={Team_A}"], "/networkPolicy/workerNamespaces/0"),
        (["--set", "networkPolicy.api.from[0].podSelecter.x=y"], "podSelecter"),
        (["--set", "networkPolicy.surprise=1"], "surprise"),
        (
            ["--set", "monitoring.prometheusRule.queueDepth.for=10 minutes"],
            "/monitoring/prometheusRule/queueDepth/for",
        ),
        (
            ["--set-string", "monitoring.prometheusRule.queueDepth.threshold=many"],
            "/monitoring/prometheusRule/queueDepth/threshold",
        ),
        (["--set", "monitoring.serviceMonitor.surprise=1"], "surprise"),
    ],
)
def test_the_schema_refuses_wrong_types_and_unknown_keys(
    helm: Helm, bad: list[str], message: str
) -> None:
    result = helm(
        "template", "rel", str(CHART), "--set", f"database.url={DB_URL}", *bad, check=False
    )
    assert result.returncode != 0, bad
    assert message in result.stderr, result.stderr


def schema_ref_parts(ref: str) -> list[str]:
    return ref.removeprefix("#/").split("/")


def undeclared(schema: Doc, root: Doc, path: str, value: Any) -> list[str]:
    """Paths of the values tree the schema does not declare, with the keys it names."""
    while "$ref" in schema:
        target: Doc = root
        for part in schema_ref_parts(schema["$ref"]):
            target = target[part]
        schema = target
    if not isinstance(value, dict) or "properties" not in schema:
        return []  # a leaf, or a free-form map (labels, securityContext...)
    missing = []
    for key, sub in value.items():
        if key not in schema["properties"]:
            missing.append(f"{path}.{key}")
        else:
            missing += undeclared(schema["properties"][key], root, f"{path}.{key}", sub)
    return missing


def test_every_value_in_values_yaml_is_declared_in_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert undeclared(schema, schema, "", values) == []
    assert undeclared(schema, schema, "", {"api": {"ingress": {"tls": {"hosts": []}}}}) == [
        ".api.ingress.tls.hosts"
    ]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["networkPolicy.enabled=true"], "networkPolicy.kubeAPIServer.cidrs"),
        (
            [
                f"networkPolicy.enabled=true,networkPolicy.kubeAPIServer.cidrs={{{APISERVER}}}",
                "networkPolicy.workerNamespaces={team-a}",
            ],
            "networkPolicy.database.cidrs",
        ),
        (
            ["api.metrics.enabled=false", "monitoring.serviceMonitor.enabled=true"],
            "api.metrics.enabled=true",
        ),
        (
            [
                "api.autoscaling.enabled=true",
                "api.autoscaling.minReplicas=5",
                "api.autoscaling.maxReplicas=3",
            ],
            "minReplicas (5) exceeds maxReplicas (3)",
        ),
        (
            ["api.autoscaling.enabled=true", "api.resources.requests.cpu=null"],
            "api.resources.requests.cpu",
        ),
    ],
)
def test_values_that_cannot_work_together_are_refused_with_a_reason(
    helm: Helm, sets: list[str], message: str
) -> None:
    args = [arg for s in sets for arg in ("--set", s)]
    result = helm(
        "template", "rel", str(CHART), "--set", f"database.url={DB_URL}", *args, check=False
    )
    assert result.returncode != 0, sets
    assert message in result.stderr, result.stderr


def test_the_api_hpa_owns_the_replica_count_when_enabled(helm: Helm, tmp_path: Path) -> None:
    fixed = by_name(render(helm, "jq", own_database(), tmp_path))
    assert fixed[("Deployment", "rel-jobqueue-api")]["spec"]["replicas"] == 2
    assert ("HorizontalPodAutoscaler", "rel-jobqueue-api") not in fixed

    scaled = by_name(
        render(
            helm,
            "jq",
            own_database(
                api={
                    "autoscaling": {
                        "enabled": True,
                        "minReplicas": 3,
                        "maxReplicas": 9,
                        "targetCPUUtilizationPercentage": 60,
                    }
                }
            ),
            tmp_path,
        )
    )
    assert "replicas" not in scaled[("Deployment", "rel-jobqueue-api")]["spec"]
    hpa = scaled[("HorizontalPodAutoscaler", "rel-jobqueue-api")]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "rel-jobqueue-api",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 9)
    assert hpa["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 60},
            },
        }
    ]
    pdb = scaled[("PodDisruptionBudget", "rel-jobqueue-api")]["spec"]
    pod_labels = scaled[("Deployment", "rel-jobqueue-api")]["spec"]["template"]["metadata"]
    assert matches(pdb["selector"], pod_labels["labels"])
    assert pdb["maxUnavailable"] == 1
    # The operator and the in-cluster database get none (see values.yaml).
    with_pg = render(helm, "jq", {"postgresql": {"enabled": True}}, tmp_path)
    assert [d["metadata"]["name"] for d in with_pg if d["kind"] == "PodDisruptionBudget"] == [
        "rel-jobqueue-api"
    ]


def test_the_ingress_routes_every_host_to_the_public_service_with_tls(
    helm: Helm, tmp_path: Path
) -> None:
    ingress = {
        "enabled": True,
        "className": "nginx",
        "hosts": ["a.example.com", "b.example.com"],
        "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "16m"},
        "tls": {"secretName": "jobs-tls"},
    }
    docs = by_name(render(helm, "jq", own_database(api={"ingress": ingress}), tmp_path))
    ing = docs[("Ingress", "rel-jobqueue-api")]
    assert ing["metadata"]["annotations"] == ingress["annotations"]
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"secretName": "jobs-tls", "hosts": ingress["hosts"]}]
    assert [r["host"] for r in ing["spec"]["rules"]] == ingress["hosts"]
    for rule in ing["spec"]["rules"]:
        (path,) = rule["http"]["paths"]
        assert path["backend"] == {
            "service": {"name": "rel-jobqueue-api", "port": {"name": "http"}}
        }
        assert (path["path"], path["pathType"]) == ("/", "Prefix")
    public = docs[("Service", "rel-jobqueue-api")]
    assert "http" in [p["name"] for p in public["spec"]["ports"]]

    anyhost = by_name(
        render(helm, "jq", own_database(api={"ingress": {"enabled": True}}), tmp_path)
    )
    spec = anyhost[("Ingress", "rel-jobqueue-api")]["spec"]
    assert "tls" not in spec and "ingressClassName" not in spec
    assert len(spec["rules"]) == 1 and "host" not in spec["rules"][0]


# -- what the policies and monitors select ---------------------------------------------------


def matches(selector: Doc, labels: dict[str, str]) -> bool:
    """A LabelSelector against a label set, as the apiserver evaluates it."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for req in selector.get("matchExpressions") or []:
        value, op = labels.get(req["key"]), req["operator"]
        if op == "In" and value not in req["values"]:
            return False
        if op == "NotIn" and value in req["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def operator_pods(namespace: str) -> dict[str, Doc]:
    """The worker and reaper Deployments the operator builds for a JobQueue."""
    owner = builders.Owner(kind="JobQueue", name="emails", uid="u-1", namespace=namespace)
    spec = models.JobQueueSpec.model_validate({"image": "img:1"})
    return {
        "worker": builders.worker_deployment(owner, spec, replicas=1),
        "reaper": builders.reaper_deployment(owner, spec),
    }


def pod_labels(deployment: Doc) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def test_network_policies_select_the_pods_they_are_about(helm: Helm, tmp_path: Path) -> None:
    values = everything(["team-a"])
    docs = render(helm, "jq", values, tmp_path)
    objs = by_name(docs)
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {
        "rel-jobqueue-api",
        "rel-jobqueue-operator",
        "rel-jobqueue-postgresql",
        "rel-jobqueue-workers",
    }
    pods = {
        "api": pod_labels(objs[("Deployment", "rel-jobqueue-api")]),
        "operator": pod_labels(objs[("Deployment", "rel-jobqueue-operator")]),
        "postgresql": pod_labels(objs[("StatefulSet", "rel-jobqueue-postgresql")]),
        "migrate": dict(
            objs[("Job", "rel-jobqueue-migrate")]["spec"]["template"]["metadata"]["labels"]
        ),
        **{k: pod_labels(v) for k, v in operator_pods("team-a").items()},
    }
    selected = {
        name: {pod for pod, labels in pods.items() if matches(spec["podSelector"], labels)}
        for name, spec in policies.items()
    }
    assert selected == {
        "rel-jobqueue-api": {"api"},
        "rel-jobqueue-operator": {"operator"},
        "rel-jobqueue-postgresql": {"postgresql"},
        "rel-jobqueue-workers": {"worker", "reaper"},
    }

    # The API: HTTP from the configured peers, metrics only from Prometheus.
    http, scrape = policies["rel-jobqueue-api"]["ingress"]
    assert http == {
        "ports": [{"port": "http", "protocol": "TCP"}],
        "from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
    }
    assert scrape["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert scrape["from"] == [
        {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    api_ports = objs[("Deployment", "rel-jobqueue-api")]["spec"]["template"]["spec"]
    assert {"http", "metrics"} <= {p["name"] for p in api_ports["containers"][0]["ports"]}

    # The operator: only the external-metrics port, only from the apiserver's CIDRs.
    assert policies["rel-jobqueue-operator"]["ingress"] == [
        {
            "ports": [{"port": "metrics-api", "protocol": "TCP"}],
            "from": [{"ipBlock": {"cidr": APISERVER}}],
        }
    ]
    op_ports = objs[("Deployment", "rel-jobqueue-operator")]["spec"]["template"]["spec"]
    assert "metrics-api" in {p["name"] for p in op_ports["containers"][0]["ports"]}

    # PostgreSQL: the release's own pods and the listed namespaces' workers, nothing else.
    (pg_rule,) = policies["rel-jobqueue-postgresql"]["ingress"]
    peers = pg_rule["from"]
    in_release = [p for p in peers if set(p) == {"podSelector"}]
    assert len(in_release) == 1
    # (Workers there carry their JobQueue's name as instance, not the release's.)
    assert {
        pod for pod, labels in pods.items() if matches(in_release[0]["podSelector"], labels)
    } == {"api", "operator", "migrate"}
    (workers_peer,) = [p for p in peers if "namespaceSelector" in p]
    assert workers_peer["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "team-a"}
    }
    assert {
        pod for pod, labels in pods.items() if matches(workers_peer["podSelector"], labels)
    } == {"worker", "reaper"}
    assert {"ipBlock": {"cidr": "192.168.0.0/16"}} in peers

    # Workers: egress only to DNS, the chart's PostgreSQL, the apiserver, and extraEgress.
    workers = policies["rel-jobqueue-workers"]
    assert workers["policyTypes"] == ["Egress"]
    dns, database, apiserver, extra = workers["egress"]
    assert "to" not in dns and {p["port"] for p in dns["ports"]} == {53}
    assert database["ports"] == [{"port": 5432, "protocol": "TCP"}]
    (db_peer,) = database["to"]
    assert db_peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "jq"}
    assert matches(db_peer["podSelector"], pods["postgresql"])
    assert apiserver == {
        "ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": APISERVER}}],
    }
    assert extra == values["networkPolicy"]["workers"]["extraEgress"][0]

    own = render(
        helm,
        "jq",
        own_database(
            networkPolicy=network_policy(
                ["team-a"], database={"cidrs": ["10.9.0.0/24"], "port": 6432}
            )
        ),
        tmp_path,
    )
    (policy,) = [d for d in own if d["metadata"]["name"] == "rel-jobqueue-workers"]
    assert policy["metadata"]["namespace"] == "team-a"
    assert policy["spec"]["egress"][1] == {
        "ports": [{"port": 6432, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.9.0.0/24"}}],
    }


def test_the_monitors_scrape_the_named_metrics_ports(helm: Helm, tmp_path: Path) -> None:
    docs = by_name(render(helm, "jq", everything(["team-a", "team-b"]), tmp_path))
    service_monitor = docs[("ServiceMonitor", "rel-jobqueue-api")]
    assert service_monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = service_monitor["spec"]["endpoints"]
    # Its selector matches both API Services; only the metrics one has the port.
    services = [
        d
        for (kind, _), d in docs.items()
        if kind == "Service"
        and matches(service_monitor["spec"]["selector"], d["metadata"]["labels"])
    ]
    with_port = [
        s["metadata"]["name"]
        for s in services
        if endpoint["port"] in {p["name"] for p in s["spec"]["ports"]}
    ]
    assert with_port == ["rel-jobqueue-api-metrics"]

    pod_monitor = docs[("PodMonitor", "rel-jobqueue-workers")]["spec"]
    assert pod_monitor["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    (endpoint,) = pod_monitor["podMetricsEndpoints"]
    for component, deployment in operator_pods("team-a").items():
        assert matches(pod_monitor["selector"], pod_labels(deployment)), component
        ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
        assert {
            "name": endpoint["port"],
            "containerPort": builders.METRICS_PORT,
            "protocol": "TCP",
        } in ports
    anywhere = by_name(
        render(helm, "jq", own_database(monitoring={"podMonitor": {"enabled": True}}), tmp_path)
    )
    assert anywhere[("PodMonitor", "rel-jobqueue-workers")]["spec"]["namespaceSelector"] == {
        "any": True
    }


# -- the alerts name only metrics that exist ---------------------------------------------------

_FUNCTION_OR_AGGREGATION = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*(?=\s*\()")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_IDENTIFIER = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
TARGET_LABELS = {"namespace", "pod", "container", "service", "endpoint", "job", "instance"}


def exposed_metrics() -> dict[str, set[str]]:
    """Every series name the runtime's registry exposes, with its label names."""
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, prometheus_client.metrics.MetricWrapperBase):
            continue
        labels = set(value._labelnames)
        for family in value.describe():
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(
                family.type, [""]
            )
            for suffix in suffixes:
                names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def promql_names(expr: str) -> tuple[set[str], set[str], dict[str, dict[str, str]]]:
    """(metric names, grouping label names, {metric: {label: value}}) of a PromQL expression.

    Enough PromQL for our rules: strings and ranges are removed, selectors and
    grouping clauses read, and what is left that is not a function, an
    aggregation or a keyword is a metric name.
    """
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    grouping = {
        label.strip() for _, labels in _GROUPING.findall(expr) for label in labels.split(",")
    } - {""}
    expr = _GROUPING.sub(" ", expr)
    matchers: dict[str, dict[str, str]] = {}
    for name, body in _SELECTOR.findall(expr):
        matchers[name] = dict(re.findall(r'(\w+)\s*=~?\s*"([^"]*)"', body))
    expr = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", expr)
    expr = _FUNCTION_OR_AGGREGATION.sub(" ", expr)
    names = {n for n in _IDENTIFIER.findall(expr) if n.lower() not in _KEYWORDS}
    return names, grouping, matchers


def test_promql_names_reads_what_our_rules_use() -> None:
    """The checker itself: a misspelt metric or a wrong label must come out of it."""
    names, grouping, matchers = promql_names(
        '(max by (queue) (rate(lease_expird_total{tenant_id="a"}[5m])) > 0) '
        "unless on (queue) (sum without (pod) (worker_slots) > 1e3)"
    )
    assert names == {"lease_expird_total", "worker_slots"}
    assert grouping == {"queue", "pod"}
    assert matchers == {"lease_expird_total": {"tenant_id": "a"}}


def test_every_alert_names_metrics_and_labels_the_runtime_exposes(
    helm: Helm, tmp_path: Path
) -> None:
    docs = render(
        helm, "jq", own_database(monitoring={"prometheusRule": {"enabled": True}}), tmp_path
    )
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    exposed = exposed_metrics()
    assert {"lease_expired_total", "job_queue_depth", "worker_slots"} <= set(exposed)
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert {a["alert"] for a in alerts} == {
        "JobQueueDepthHigh",
        "JobQueueOldestReadyJobWaiting",
        "JobQueueDeadLettersGrowing",
        "JobQueueLeasesExpiring",
        "JobQueueNoWorkers",
        "JobQueueDepthStale",
    }
    for alert in alerts:
        names, grouping, matchers = promql_names(alert["expr"])
        assert names, alert["expr"]
        unknown = names - set(exposed)
        assert not unknown, (alert["alert"], unknown)
        # Plus what prometheus-operator puts on every target's series.
        labels = set().union(*(exposed[n] for n in names), TARGET_LABELS)
        assert grouping <= labels, (alert["alert"], grouping - labels)
        for name, wanted in matchers.items():
            assert set(wanted) <= exposed[name], (alert["alert"], name, wanted)
            if "status" in wanted:
                assert wanted["status"] in {s.value for s in JobStatus}
        assert alert["labels"] == {"severity": "warning"}
        assert alert["annotations"]["summary"] and alert["for"]

    depth = next(a for a in alerts if a["alert"] == "JobQueueDepthHigh")
    assert depth["expr"].endswith("> 1000") and depth["for"] == "10m"
    tuned = render(
        helm,
        "jq",
        own_database(
            monitoring={
                "prometheusRule": {"enabled": True, "queueDepth": {"threshold": 50, "for": "2m"}}
            }
        ),
        tmp_path,
    )
    (rule,) = [d for d in tuned if d["kind"] == "PrometheusRule"]
    depth = next(r for r in rule["spec"]["groups"][0]["rules"] if r["alert"] == "JobQueueDepthHigh")
    assert depth["expr"].endswith("> 50") and depth["for"] == "2m"


# -- the alerts fire when they should, by Prometheus's own rule engine ------------------------

PROMTOOL_TESTS: list[Doc] = [
    {
        "interval": "1m",
        "input_series": [
            # Two API pods export the same numbers: one alert, not two.
            {
                "series": 'job_queue_depth{tenant_id="acme",queue="emails",pod="api-1"}',
                "values": "1500x20",
            },
            {
                "series": 'job_queue_depth{tenant_id="acme",queue="emails",pod="api-2"}',
                "values": "1500x20",
            },
            {
                "series": 'job_queue_depth{tenant_id="acme",queue="sms",pod="api-1"}',
                "values": "10x20",
            },
            {
                "series": 'job_queue_oldest_ready_age_seconds{tenant_id="acme",queue="emails"}',
                "values": "700x20",
            },
            {
                "series": 'job_queue_oldest_ready_age_seconds{tenant_id="acme",queue="sms"}',
                "values": "30x20",
            },
            {"series": 'worker_slots{queue="sms",pod="w-1"}', "values": "4x20"},
            {
                "series": 'job_queue_jobs{tenant_id="acme",queue="emails",status="dlq"}',
                "values": "0+1x20",
            },
            {
                "series": 'job_queue_jobs{tenant_id="acme",queue="sms",status="dlq"}',
                "values": "3x20",
            },
            {"series": 'lease_expired_total{tenant_id="acme",pod="r-1"}', "values": "0+2x20"},
            {"series": 'lease_expired_total{tenant_id="globex",pod="r-1"}', "values": "0+0x20"},
            # time() in a promtool test starts at 0: one refresher keeps up, one stopped.
            {
                "series": 'job_queue_depth_refreshed_timestamp_seconds{namespace="fresh",pod="a"}',
                "values": "0+60x20",
            },
            {
                "series": 'job_queue_depth_refreshed_timestamp_seconds{namespace="stale",pod="r"}',
                "values": "0x20",
            },
            {
                "series": 'job_queue_depth_refreshed_timestamp_seconds{namespace="fresh",pod="w"}',
                "values": "0x20",
            },
        ],
        "alert_rule_test": [
            {
                "eval_time": "12m",
                "alertname": "JobQueueDepthHigh",
                "exp_alerts": [{"exp_labels": {"tenant_id": "acme", "queue": "emails"}}],
            },
            {"eval_time": "8m", "alertname": "JobQueueDepthHigh", "exp_alerts": []},
            {
                "eval_time": "6m",
                "alertname": "JobQueueOldestReadyJobWaiting",
                "exp_alerts": [{"exp_labels": {"tenant_id": "acme", "queue": "emails"}}],
            },
            {
                "eval_time": "12m",
                "alertname": "JobQueueNoWorkers",
                "exp_alerts": [{"exp_labels": {"queue": "emails"}}],
            },
            {
                "eval_time": "16m",
                "alertname": "JobQueueDeadLettersGrowing",
                "exp_alerts": [{"exp_labels": {"tenant_id": "acme", "queue": "emails"}}],
            },
            {
                "eval_time": "16m",
                "alertname": "JobQueueLeasesExpiring",
                "exp_alerts": [{"exp_labels": {"tenant_id": "acme"}}],
            },
            {
                "eval_time": "12m",
                "alertname": "JobQueueDepthStale",
                "exp_alerts": [{"exp_labels": {"namespace": "stale"}}],
            },
        ],
    }
]


def test_the_alerts_fire_on_sample_series_under_promtool(
    helm: Helm, control_plane: ControlPlane, tmp_path: Path
) -> None:
    """`promtool check rules`, then `promtool test rules` on sample series.

    promtool is a Go build that hack/promtool.sh caches next to the envtest
    binaries (hack/test.sh runs it, like hack/testbin.sh).
    """
    promtool = control_plane.bin_dir / "promtool"
    if not promtool.exists():
        pytest.fail(f"{promtool} missing: run hack/promtool.sh", pytrace=False)
    docs = render(
        helm, "jq", own_database(monitoring={"prometheusRule": {"enabled": True}}), tmp_path
    )
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    groups = rule["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    check = subprocess.run(
        [str(promtool), "check", "rules", str(tmp_path / "rules.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout

    # Annotations are text for people; promtool would compare them verbatim.
    bare = [
        {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
        for g in groups
    ]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump({"groups": bare}))
    tests = {"rule_files": ["bare.yaml"], "evaluation_interval": "1m", "tests": PROMTOOL_TESTS}
    for case in tests["tests"]:
        for expectation in case["alert_rule_test"]:
            for alert in expectation["exp_alerts"]:
                alert["exp_labels"] = {"severity": "warning", **alert["exp_labels"]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [str(promtool), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
