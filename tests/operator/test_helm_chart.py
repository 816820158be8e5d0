"""The Helm chart, checked with the real `helm` and against the real kube-apiserver.

The strongest check runs the operator with nothing but the chart's RBAC (a
ServiceAccount token from the TokenRequest API), so a missing permission
fails here instead of in someone's cluster.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from jobqueue import db
from jobqueue.db import tenants as tenant_rows
from jobqueue.embedded import free_port
from jobqueue.models import TenantId
from jobqueue.settings import DatabaseSettings
from jobqueue_operator.context import Context
from jobqueue_operator.databases import Databases
from jobqueue_operator.kube import Kube
from jobqueue_operator.metrics_server import MetricsServer
from jobqueue_operator.settings import OperatorSettings
from tests.conftest import PgServer, create_database, drop_database
from tests.envtest import ControlPlane
from tests.operator.harness import (
    ROOT,
    Cluster,
    eventually,
    operator_running,
    service_account_kubeconfig,
)

pytestmark = pytest.mark.timeout(120)

CHART = ROOT / "charts" / "jobqueue"
DB_URL = "postgresql://jobqueue:secret@postgres.db:5432/jobqueue"


def render(helm: Any, namespace: str, *sets: str) -> list[dict[str, Any]]:
    out = helm(
        "template", "rel", str(CHART), "-n", namespace, "--set", f"database.url={DB_URL}", *sets
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_chart_lints_and_its_schema_refuses_bad_values(helm: Any) -> None:
    helm("lint", str(CHART), "--strict", "--set", f"database.url={DB_URL}")
    for bad, message in (
        (["--set", "api.replicas=-1"], "/api/replicas"),
        (["--set", "database.url=mysql://x"], "/database/url"),
        (["--set", "operator.surprise=1"], "surprise"),
    ):
        result = helm("template", "rel", str(CHART), *bad, check=False)
        assert result.returncode != 0
        assert message in result.stderr, result.stderr
    missing = helm("template", "rel", str(CHART), check=False)
    assert missing.returncode != 0 and "database.url" in missing.stderr


def test_template_renders_operator_api_and_a_migration_hook(helm: Any) -> None:
    docs = render(helm, "jobqueue-system")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "rel-jobqueue-operator") in kinds
    assert ("Deployment", "rel-jobqueue-api") in kinds
    assert ("Service", "rel-jobqueue-api") in kinds
    assert ("ClusterRole", "rel-jobqueue-operator") in kinds
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    job = by_name[("Job", "rel-jobqueue-migrate")]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["jobqueue", "migrate"]
    secret = by_name[("Secret", "rel-jobqueue-database")]
    # The URL Secret is a hook too, and weighs less: it exists before the Job reads it.
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    operator = by_name[("Deployment", "rel-jobqueue-operator")]
    command = operator["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["kopf", "run"] and command[-2:] == ["-m", "jobqueue_operator"]
    assert operator["spec"]["strategy"]["type"] == "Recreate"
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"


@pytest.mark.parametrize(
    "values",
    [
        [f"database.url={DB_URL}"],
        ["postgresql.enabled=true", "postgresql.persistence.enabled=true"],
    ],
    ids=["own-database", "in-cluster-postgresql"],
)
def test_rendered_chart_passes_server_side_dry_run(
    helm: Any, cluster: Cluster, control_plane: ControlPlane, tmp_path: Path, values: list[str]
) -> None:
    namespace = cluster.namespace("jq-chart")
    sets = [arg for value in values for arg in ("--set", value)]
    out = helm(
        "template", "rel", str(CHART), "-n", namespace, "--include-crds", *sets,
    )  # fmt: skip
    # Objects that name their namespace (the kube-system RoleBinding) go as they
    # are; the rest into the release namespace, as `helm install -n` would.
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    pinned = [d for d in docs if d["metadata"].get("namespace")]
    assert {d["metadata"]["namespace"] for d in pinned} <= {"kube-system", namespace}
    manifest, elsewhere = tmp_path / "chart.yaml", tmp_path / "pinned.yaml"
    manifest.write_text(yaml.safe_dump_all([d for d in docs if d not in pinned]))
    elsewhere.write_text(yaml.safe_dump_all(pinned))
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(manifest), "-o", "name"
    )
    applied = result.stdout.split()
    if pinned:
        result = control_plane.kubectl(
            "apply", "--dry-run=server", "-f", str(elsewhere), "-o", "name"
        )
        applied += result.stdout.split()
    assert "rolebinding.rbac.authorization.k8s.io/rel-jobqueue-operator-auth-reader" in applied
    assert "deployment.apps/rel-jobqueue-operator" in applied
    assert "job.batch/rel-jobqueue-migrate" in applied
    assert "customresourcedefinition.apiextensions.k8s.io/jobqueues.jobqueue.dev" in applied
    if "postgresql.enabled=true" in values:
        assert "statefulset.apps/rel-jobqueue-postgresql" in applied
        assert "service/rel-jobqueue-postgresql" in applied


@pytest.fixture
async def chart_db(pg_server: PgServer, template_db: str) -> AsyncIterator[str]:
    name = await create_database(pg_server, template_db)
    yield pg_server.dsn_for(name)
    await drop_database(pg_server, name)


async def test_the_operator_works_with_only_the_charts_rbac(
    helm: Any,
    cluster: Cluster,
    control_plane: ControlPlane,
    chart_db: str,
    tmp_path: Path,
) -> None:
    namespace = cluster.namespace("jq-rbac")
    rbac = [
        d
        for d in render(helm, namespace)
        if d["kind"]
        in {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    ]
    pinned = [d for d in rbac if d["metadata"].get("namespace")]  # kube-system's reader binding
    (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all([d for d in rbac if d not in pinned]))
    (tmp_path / "pinned.yaml").write_text(yaml.safe_dump_all(pinned))
    control_plane.kubectl("apply", "-n", namespace, "-f", str(tmp_path / "rbac.yaml"))
    control_plane.kubectl("apply", "-f", str(tmp_path / "pinned.yaml"))
    kubeconfig = service_account_kubeconfig(
        control_plane, namespace, "rel-jobqueue-operator", tmp_path / "kubeconfig"
    )
    # What the authenticating external-metrics server asks of the apiserver.
    for can in (
        ("create", "subjectaccessreviews.authorization.k8s.io"),
        ("get", "configmap/extension-apiserver-authentication", "-n", "kube-system"),
    ):
        answer = control_plane.kubectl(
            "--kubeconfig", str(kubeconfig), "auth", "can-i", *can, check=False
        )
        assert answer.stdout.strip() == "yes", (can, answer.stdout, answer.stderr)
    who = control_plane.kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json")
    assert json.loads(who.stdout)["status"]["userInfo"]["username"].endswith(
        ":rel-jobqueue-operator"
    )
    queues = cluster.namespace("jq-rbac-queues")
    cluster.secret(queues, "jobqueue-database", {"url": chart_db})

    with operator_running(
        control_plane, cluster, chart_db, namespace=namespace, kubeconfig=kubeconfig
    ):
        tenant = {
            "apiVersion": "jobqueue.dev/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": "rbac-tenant"},
            "spec": {"weight": 2},
        }
        cluster.create(tenant)
        queue = {
            "apiVersion": "jobqueue.dev/v1alpha1",
            "kind": "JobQueue",
            "metadata": {"name": "rbac-queue", "namespace": queues},
            "spec": {"image": "img:1", "minReplicas": 1, "maxReplicas": 3},
        }
        cluster.create(queue)

        def ready(kind: str, name: str, ns: str | None = None) -> bool:
            cond = cluster.condition(kind, name, namespace=ns)
            return bool(cond and cond["status"] == "True")

        await eventually(lambda: ready("Tenant", "rbac-tenant"), what="Tenant Ready")
        await eventually(lambda: ready("JobQueue", "rbac-queue", queues), what="JobQueue Ready")
        assert cluster.core.read_namespaced_secret("jobqueue-tenant-rbac-tenant", namespace)
        assert cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler(
            "rbac-queue-worker", queues
        )
        pool = await db.create_pool(chart_db, min_size=1, max_size=2)
        try:
            assert (await tenant_rows.get(pool, tenant_id=TenantId("rbac-tenant"))).weight == 2
        finally:
            await pool.close()


async def test_the_metrics_api_certificate_from_the_chart_is_served_and_verifies(
    helm: Any, tmp_path: Path
) -> None:
    """What the aggregator does: TLS to <svc>.<ns>.svc, trusting the APIService's caBundle."""
    docs = render(helm, "jq-system")
    secret = next(d for d in docs if d["metadata"]["name"] == "rel-jobqueue-metrics-tls")
    apiservice = next(d for d in docs if d["kind"] == "APIService")
    assert apiservice["spec"]["caBundle"] == secret["data"]["ca.crt"]
    assert apiservice["spec"]["service"] == {
        "name": "rel-jobqueue-metrics",
        "namespace": "jq-system",
        "port": 443,
    }
    for key in ("ca.crt", "tls.crt", "tls.key"):
        (tmp_path / key).write_bytes(base64.b64decode(secret["data"][key]))
    ctx = Context(
        settings=OperatorSettings(),
        kube=Kube(client.ApiClient()),
        databases=Databases(DatabaseSettings(), timeout=1, pool_max=1),
        dsn=None,
    )
    port = free_port()
    server = MetricsServer(
        ctx,
        port=port,
        certfile=str(tmp_path / "tls.crt"),
        keyfile=str(tmp_path / "tls.key"),
        authenticate=False,  # this test is about the serving certificate
    )
    await server.start()
    try:

        def get(hostname: str) -> str:
            tls = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                tls.wrap_socket(raw, server_hostname=hostname) as conn,
            ):
                conn.sendall(
                    b"GET /apis/external.metrics.k8s.io/v1beta1 HTTP/1.1\r\n"
                    b"Host: x\r\nConnection: close\r\n\r\n"
                )
                return b"".join(iter(lambda: conn.recv(65536), b"")).decode()

        answer = await asyncio.to_thread(get, "rel-jobqueue-metrics.jq-system.svc")
        assert answer.startswith("HTTP/1.1 200")
        assert "jobqueue_queue_depth" in answer
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.to_thread(get, "someone-else.jq-system.svc")
    finally:
        await server.stop()
        ctx.kube.close()


def test_postgresql_enabled_renders_one_database_the_url_and_the_hook_point_at(
    helm: Any,
) -> None:
    out = helm("template", "rel", str(CHART), "-n", "jq", "--set", "postgresql.enabled=true")
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    sts = by_name[("StatefulSet", "rel-jobqueue-postgresql")]
    assert sts["spec"]["replicas"] == 1
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["containers"][0]["image"] == "jobqueue-postgres:dev"
    # No storage provisioner needed by default: the data is an emptyDir.
    assert {"name": "data", "emptyDir": {}} in pod["volumes"]
    assert "volumeClaimTemplates" not in sts["spec"]
    assert by_name[("Service", "rel-jobqueue-postgresql")]["spec"]["ports"][0]["port"] == 5432
    secret = by_name[("Secret", "rel-jobqueue-database")]["stringData"]
    password = secret["postgresql-password"]
    assert len(password) == 32
    assert secret["url"] == (
        f"postgresql://jobqueue:{password}@rel-jobqueue-postgresql.jq.svc:5432/jobqueue"
    )
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "rel-jobqueue-database",
        "key": "postgresql-password",
    }
    # A pre-install hook would run before the StatefulSet exists.
    job = by_name[("Job", "rel-jobqueue-migrate")]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert "jobqueue migrate" in job["spec"]["template"]["spec"]["containers"][0]["command"][-1]

    persistent = helm(
        "template", "rel", str(CHART), "--set", "postgresql.enabled=true",
        "--set", "postgresql.persistence.enabled=true", "--set", "postgresql.persistence.size=5Gi",
    )  # fmt: skip
    sts = next(d for d in yaml.safe_load_all(persistent.stdout) if d and d["kind"] == "StatefulSet")
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert all(v["name"] != "data" for v in sts["spec"]["template"]["spec"]["volumes"])

    without = render(helm, "jq")
    assert not [d for d in without if d["kind"] == "StatefulSet"]


def test_postgresql_values_the_schema_and_the_chart_refuse(helm: Any) -> None:
    on = ("--set", "postgresql.enabled=true")
    for bad, message in (
        ([*on, "--set", "postgresql.persistence.size=lots"], "/postgresql/persistence/size"),
        ([*on, "--set", "postgresql.service.type=LoadBalancer"], "/postgresql/service/type"),
        ([*on, "--set", "postgresql.username=Robert'); DROP"], "/postgresql/username"),
        ([*on, "--set", f"database.url={DB_URL}"], "leave database.url"),
        (["--set", "postgresql.surprise=1"], "surprise"),
    ):
        result = helm("template", "rel", str(CHART), *bad, check=False)
        assert result.returncode != 0, bad
        assert message in result.stderr, result.stderr


def test_postgresql_password_is_kept_across_upgrades(
    helm: Any, cluster: Cluster, control_plane: ControlPlane
) -> None:
    """What an upgrade renders: the lookup finds the Secret the install made."""
    namespace = cluster.namespace("jq-pg-upgrade")
    kubeconfig = str(control_plane.kubeconfig_path)

    def rendered() -> dict[str, str]:
        out = helm(
            "template", "pgup", str(CHART), "-n", namespace, "--dry-run=server", "--skip-crds",
            "--kubeconfig", kubeconfig, "--set", "postgresql.enabled=true",
            # Namespaced objects only: other tests' releases own the cluster-wide ones.
            "--set", "operator.enabled=false",
        )  # fmt: skip
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
        secret = next(d for d in docs if d["metadata"]["name"] == "pgup-jobqueue-database")
        return dict(secret["stringData"])

    first, second = rendered(), rendered()
    # Nothing installed yet: a fresh password every time.
    assert first["postgresql-password"] != second["postgresql-password"]
    cluster.secret(
        namespace,
        "pgup-jobqueue-database",
        {"url": first["url"], "postgresql-password": first["postgresql-password"]},
    )
    upgrade = rendered()
    assert upgrade == first


def test_api_metrics_get_a_port_and_a_cluster_only_service_of_their_own(helm: Any) -> None:
    docs = render(helm, "jobqueue-system", "--set", "api.service.type=LoadBalancer")
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    api = by_name[("Deployment", "rel-jobqueue-api")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in api["env"]}
    assert env["JOBQUEUE_API_METRICS_PORT"] == "9102"
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in api["ports"]
    public = by_name[("Service", "rel-jobqueue-api")]
    assert [p["name"] for p in public["spec"]["ports"]] == ["http"]  # never the metrics
    scrape = by_name[("Service", "rel-jobqueue-api-metrics")]
    assert scrape["spec"]["type"] == "ClusterIP"
    assert scrape["spec"]["ports"][0]["targetPort"] == "metrics"
    assert scrape["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9102",
        "prometheus.io/path": "/metrics",
    }
    off = render(helm, "jobqueue-system", "--set", "api.metrics.enabled=false")
    assert "rel-jobqueue-api-metrics" not in {d["metadata"]["name"] for d in off}
    bad = helm("template", "rel", str(CHART), "--set", f"database.url={DB_URL}",
               "--set", "api.metrics.port=0", check=False)
    assert bad.returncode != 0 and "/api/metrics/port" in bad.stderr
