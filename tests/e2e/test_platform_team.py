"""A platform team's first hour, on a cluster that runs pods (see conftest).

In order, sharing one release: install the chart with its in-cluster
PostgreSQL; the README's Tenant and JobQueue; 2,000 jobs through the API's
NodePort; the real HPA scales the workers on queue depth read through the
aggregation layer and back down after the drain; a worker pod and the
leading reaper are deleted mid-drain; every job succeeds, each attempt ran
once; `helm upgrade` rolls the pods; uninstalling leaves only what the
README says is kept. `kubectl get hpa` over time and the metrics server's
log go to the artifacts folder.
"""

from __future__ import annotations

import base64
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import ROOT, E2ECluster, log

from jobqueue import Client

# The first test's setup may build the local cluster's binaries (minutes, cold).
pytestmark = pytest.mark.timeout(1800)

NS = "jobqueue"
RELEASE = "jobqueue"
CHART = ROOT / "charts" / "jobqueue"
JOBS = 2000
# The README's install, plus what the e2e reads from outside: the API's
# NodePort, and few API replicas on a two-core machine.
INSTALL_VALUES = [
    "image.repository=jobqueue",
    "image.tag=dev",
    "image.pullPolicy=Never",
    "postgresql.enabled=true",
    "postgresql.image.pullPolicy=Never",
    "api.service.type=NodePort",
    "api.replicas=1",
    "operator.statusIntervalSeconds=5",
]


def sets(values: list[str]) -> list[str]:
    return [arg for value in values for arg in ("--set", value)]


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except AssertionError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


class HpaRecorder:
    """`kubectl get hpa` (and the Deployment's replicas) every few seconds, to a file."""

    def __init__(self, cluster: E2ECluster, name: str, every: float = 3.0) -> None:
        self.cluster, self.name, self.every = cluster, name, every
        self.replicas: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        cluster.artifact("hpa.txt", f"# kubectl get hpa -n {NS} {name}, every {every:g} s\n")

    def __enter__(self) -> HpaRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            hpa = self.cluster.kubectl("get", "hpa", "-n", NS, self.name, check=False)
            deploy = self.cluster.kubectl(
                "get", "deploy", "-n", NS, self.name, "-o",
                "jsonpath={.status.replicas}/{.status.readyReplicas}", check=False,
            )  # fmt: skip
            at = time.monotonic() - started
            stamp = time.strftime("%H:%M:%S")
            self.cluster.artifact(
                "hpa.txt",
                f"--- {stamp} (+{at:.0f} s) deployment replicas/ready {deploy.stdout}\n"
                f"{hpa.stdout}",
                append=True,
            )
            current = self.current()
            if current is not None:
                self.replicas.append((at, current))
            self._stop.wait(self.every)

    def current(self) -> int | None:
        out = self.cluster.kubectl(
            "get", "hpa", "-n", NS, self.name, "-o", "jsonpath={.status.currentReplicas}",
            check=False,
        )  # fmt: skip
        return int(out.stdout) if out.stdout.strip().isdigit() else None


def _cleanup(cluster: E2ECluster) -> None:
    """What an earlier, interrupted run left: custom resources first (the operator finalizes)."""
    cluster.kubectl("delete", "jobqueues.jobqueue.dev", "--all", "-n", NS, "--wait=true",
                    "--timeout=60s", "--ignore-not-found", check=False)  # fmt: skip
    cluster.kubectl("delete", "tenants.jobqueue.dev", "--all", "--wait=true",
                    "--timeout=60s", "--ignore-not-found", check=False)  # fmt: skip
    cluster.helm("uninstall", RELEASE, "-n", NS, "--wait", "--ignore-not-found", check=False)
    cluster.kubectl("delete", "namespace", NS, "--ignore-not-found", "--timeout=120s",
                    check=False)  # fmt: skip


@pytest.fixture(scope="module")
def release(e2e_cluster: E2ECluster) -> Iterator[E2ECluster]:
    cluster = e2e_cluster
    _cleanup(cluster)
    started = time.monotonic()
    # No --wait: it would wait for the API's readiness (a migrated database)
    # before the post-install migration hook could run. Helm still waits
    # for the hook (the migration) to finish.
    cluster.helm(
        "install", RELEASE, str(CHART), "-n", NS, "--create-namespace",
        *sets(INSTALL_VALUES), "--timeout", "8m",
    )  # fmt: skip
    log(f"helm install (migrated): {time.monotonic() - started:.0f} s")
    cluster.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", NS,
                    "--timeout=300s", timeout=330)  # fmt: skip
    log(f"deployments available: {time.monotonic() - started:.0f} s")
    yield cluster
    if not _uninstalled:
        _cleanup(cluster)


_uninstalled = False


def api_url(cluster: E2ECluster) -> str:
    port = cluster.kubectl(
        "get", "svc", f"{RELEASE}-api", "-n", NS, "-o", "jsonpath={.spec.ports[0].nodePort}"
    ).stdout.strip()
    return f"http://{cluster.node_ip}:{port}"


def api_key(cluster: E2ECluster) -> str:
    raw = cluster.kubectl(
        "get", "secret", "jobqueue-tenant-acme", "-n", NS, "-o", "jsonpath={.data.api-key}"
    ).stdout
    return base64.b64decode(raw).decode()


def all_jobs(client: Client, **filters: Any) -> list[Any]:
    # Keyset pages: `total` is capped (exact only up to 1,000), `next` is not.
    found, after = [], None
    while True:
        batch = client.list(page_size=1000, after=after, **filters)
        found += batch.jobs
        if batch.next is None:
            return found
        after = batch.next


def test_install_tenant_queue_and_first_jobs(release: E2ECluster) -> None:
    cluster = release
    pods = cluster.get("pods", "-n", NS)["items"]
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert {"operator", "api", "postgresql"} <= components, components
    # The aggregator reaches the operator's metrics server once it has read the
    # cluster's front-proxy settings and started serving.
    waited = cluster.kubectl(
        "wait", "--for=condition=Available", "apiservice/v1beta1.external.metrics.k8s.io",
        "--timeout=120s", check=False, timeout=150,
    )  # fmt: skip
    if waited.returncode != 0:
        logs = cluster.kubectl("logs", "-n", NS, f"deploy/{RELEASE}-operator", "--tail=60",
                               check=False).stdout  # fmt: skip
        status = cluster.get("apiservice", "v1beta1.external.metrics.k8s.io")["status"]
        raise AssertionError(f"APIService not Available: {status}\noperator log:\n{logs}")

    # Straight to the metrics server, past the aggregator: no front-proxy
    # certificate, so no answer, whatever user headers are sent.
    (operator,) = cluster.get("pods", "-n", NS, "-l", "app.kubernetes.io/component=operator")[
        "items"
    ]
    url = (f"https://{operator['status']['podIP']}:6443/apis/external.metrics.k8s.io/v1beta1"
           "/namespaces/jobqueue/jobqueue_queue_depth?labelSelector=queue%3Demails")
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(url, headers={"X-Remote-User": "system:admin"})
    try:
        urllib.request.urlopen(request, context=insecure, timeout=10)
        code, body = 200, ""
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read().decode()
    assert code == 401, (code, body)
    cluster.artifact("direct-metrics-request.txt", f"GET {url} without a client certificate "
                     f"(X-Remote-User: system:admin) -> {code} {body}\n")  # fmt: skip

    # The README's commands.
    cluster.kubectl("apply", "-f", str(ROOT / "examples" / "tenant.yaml"),
                    "-f", str(ROOT / "examples" / "jobqueue-dev.yaml"))  # fmt: skip
    cluster.kubectl("wait", "--for=condition=Ready", "tenant/acme", "--timeout=180s")
    cluster.kubectl("wait", "--for=condition=Ready", "jobqueue/emails", "-n", NS,
                    "--timeout=240s")  # fmt: skip
    with Client(api_url(cluster), tenant_id="acme", api_key=api_key(cluster)) as client:
        job = client.submit("sleep", {"seconds": 0.1}, queue="emails", idempotency_key="first")
        again = client.submit("sleep", {"seconds": 0.1}, queue="emails", idempotency_key="first")
        assert again.id == job.id
        done = wait_for(
            "the first job to succeed",
            lambda: (j := client.get(job.id)).status == "succeeded" and j,
            timeout=120,
        )
        assert done.result == {"slept": 0.1}


def test_hpa_scales_on_queue_depth_and_nothing_is_lost(release: E2ECluster) -> None:
    cluster = release
    # The e2e variant: the receipt-writing handler and a short scale-down window.
    cluster.kubectl("apply", "-f", str(Path(__file__).parent / "jobqueue.yaml"))
    cluster.kubectl("rollout", "status", "deploy/emails-worker", "-n", NS, "--timeout=180s")
    cluster.kubectl("rollout", "status", "deploy/emails-reaper", "-n", NS, "--timeout=180s")
    hpa = cluster.get("hpa", "emails-worker", "-n", NS)
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 15

    with (
        Client(api_url(cluster), tenant_id="acme", api_key=api_key(cluster)) as client,
        HpaRecorder(cluster, "emails-worker") as recorder,
    ):
        started = time.monotonic()
        for start in range(0, JOBS, 500):
            batch = [
                {"type": "e2e-record", "data": {"ms": 400, "n": n}, "queue": "emails",
                 "idempotency_key": f"e2e-{n}"}
                for n in range(start, start + 500)
            ]  # fmt: skip
            assert client.submit_many(batch).created == 500
        log(f"submitted {JOBS} jobs in {time.monotonic() - started:.1f} s")

        scaled = wait_for(
            "the HPA to scale the workers above minReplicas",
            lambda: (n := recorder.current()) is not None and n > 1 and n,
            timeout=180,
        )
        log(f"HPA scaled to {scaled} after {time.monotonic() - started:.0f} s")

        # Mid-drain: a worker pod and the leading reaper go.
        workers = cluster.get("pods", "-n", NS, "-l", "app.kubernetes.io/instance=emails,"
                              "app.kubernetes.io/component=worker")["items"]  # fmt: skip
        victim = workers[0]["metadata"]["name"]
        cluster.kubectl("delete", "pod", victim, "-n", NS, "--wait=false")
        lease = cluster.get("lease", "emails-reaper", "-n", NS)
        leader = lease["spec"]["holderIdentity"]
        period = lease["spec"]["leaseDurationSeconds"]
        # The holder identity is "<pod name>-<pid>-<random>": find the pod.
        reapers = cluster.get("pods", "-n", NS, "-l", "app.kubernetes.io/instance=emails,"
                              "app.kubernetes.io/component=reaper")["items"]  # fmt: skip
        (leader_pod,) = [
            p["metadata"]["name"] for p in reapers
            if leader.startswith(p["metadata"]["name"] + "-")
        ]
        deleted = time.monotonic()
        cluster.kubectl("delete", "pod", leader_pod, "-n", NS, "--wait=false")
        successor = wait_for(
            "another reaper to lead",
            lambda: (h := cluster.get("lease", "emails-reaper", "-n", NS)["spec"].get(
                "holderIdentity")) not in (None, "", leader) and h,
            timeout=period * 3,
            every=0.5,
        )
        took = time.monotonic() - deleted
        log(f"reaper {successor} leads {took:.1f} s after {leader} was deleted (lease {period} s)")
        assert took <= period, (took, period)
        cluster.artifact(
            "failover.txt",
            f"worker pod deleted mid-drain: {victim}\n"
            f"reaper leader {leader} deleted; {successor} led after {took:.1f} s "
            f"(leaseDurationSeconds {period})\n",
        )

        def drained() -> bool:
            # Nothing queued, leased, running or dead in the queue (the depth
            # counts are exact; a listing's total is capped at 1,000).
            return not any(d.queue == "emails" for d in client.stats().depth)

        wait_for("every job to succeed", drained, timeout=420, every=3)
        drained_after = time.monotonic() - started
        log(f"{JOBS} jobs succeeded {drained_after:.0f} s after submission")
        peak = max(n for _, n in recorder.replicas)

        wait_for("the HPA to scale back to minReplicas", lambda: recorder.current() == 1,
                 timeout=240, every=3)  # fmt: skip
        log(f"back to 1 replica {time.monotonic() - started:.0f} s after submission")

        jobs = all_jobs(client, queue="emails", type="e2e-record")
        receipts = all_jobs(client, queue="e2e-receipts")

    assert len(jobs) == JOBS and all(j.status == "succeeded" for j in jobs)
    runs = Counter((r.data["job"], r.data["attempt"]) for r in receipts)
    twice = [key for key, count in runs.items() if count > 1]
    assert not twice, f"attempts that ran twice: {twice[:10]}"
    for j in jobs:
        # The attempt that succeeded ran (its receipt is there), and no more
        # attempts ran than the job counts.
        assert (str(j.id), j.attempt) in runs, j
        assert sum(1 for a in range(1, j.attempt + 1) if (str(j.id), a) in runs) <= j.attempt
    assert peak > 1
    cluster.artifact(
        "summary.txt",
        f"{JOBS} jobs, {len(receipts)} executions, {len(runs)} distinct (job, attempt), "
        f"peak worker replicas {peak}, drained in {drained_after:.0f} s\n",
    )

    logs = cluster.kubectl("logs", "deploy/jobqueue-operator", "-n", NS, "--tail=-1").stdout
    lines = [line for line in logs.splitlines() if "via front proxy" in line]
    assert lines, "the metrics server logged no request from the aggregator"
    cluster.artifact("metrics-server.log", "\n".join(lines[-20:]) + "\n")


def test_helm_upgrade_with_a_changed_value_rolls_the_pods(release: E2ECluster) -> None:
    cluster = release

    def pod_uids(component: str) -> set[str]:
        pods = cluster.get("pods", "-n", NS, "-l", f"app.kubernetes.io/instance={RELEASE},"
                           f"app.kubernetes.io/component={component}")["items"]  # fmt: skip
        return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}

    before = {c: pod_uids(c) for c in ("operator", "api")}
    started = time.monotonic()
    cluster.helm(
        "upgrade", RELEASE, str(CHART), "-n", NS, *sets(INSTALL_VALUES),
        "--set", "operator.statusIntervalSeconds=6", "--set", "api.resources.requests.cpu=120m",
        "--wait", "--timeout", "5m",
    )  # fmt: skip
    log(f"helm upgrade --wait: {time.monotonic() - started:.0f} s")
    for component, uids in before.items():
        now = wait_for(f"{component} pods to roll", lambda c=component: pod_uids(c), timeout=120)
        assert uids and now and not (uids & now), (component, uids, now)
    api = cluster.get("deploy", f"{RELEASE}-api", "-n", NS)
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "120m"
    # The password lives on: the pre-upgrade migration and the new pods reach the database.
    cluster.kubectl("wait", "--for=condition=Ready", "jobqueue/emails", "-n", NS,
                    "--timeout=120s")  # fmt: skip


def test_uninstall_leaves_only_what_the_readme_says_is_kept(release: E2ECluster) -> None:
    global _uninstalled
    cluster = release
    cluster.kubectl("delete", "jobqueue/emails", "-n", NS, "--timeout=120s")
    cluster.kubectl("delete", "tenant/acme", "--timeout=120s")
    cluster.helm("uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "3m")
    _uninstalled = True

    def leftovers() -> list[str]:
        out = cluster.kubectl(
            "get", "all,secrets,configmaps,serviceaccounts,roles,rolebindings,leases,"
            "pvc,hpa,jobs", "-n", NS, "-o", "name",
        ).stdout.split()  # fmt: skip
        return [
            name for name in out
            if name not in {"serviceaccount/default", "configmap/kube-root-ca.crt"}
        ]  # fmt: skip

    # Pods terminate and the garbage collector removes the JobQueue's children.
    wait_for("the namespace to empty", lambda: leftovers() == [f"secret/{RELEASE}-database"],
             timeout=180, every=3)  # fmt: skip
    cluster_wide = cluster.kubectl(
        "get", "clusterroles,clusterrolebindings,apiservices", "-o", "name",
        "-l", f"app.kubernetes.io/instance={RELEASE}",
    ).stdout.split()  # fmt: skip
    assert cluster_wide == []
    kept = cluster.kubectl("get", "crd", "-o", "name").stdout.split()
    assert "customresourcedefinition.apiextensions.k8s.io/jobqueues.jobqueue.dev" in kept
    assert "customresourcedefinition.apiextensions.k8s.io/tenants.jobqueue.dev" in kept
    cluster.kubectl("delete", "namespace", NS, "--timeout=120s")
