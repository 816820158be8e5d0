"""Reaper leader election on a coordination.k8s.io/v1 Lease, against a real
kube-apiserver: of three candidates one leads; a clean stop hands over
within one retry period, a SIGKILLed leader within the lease period, and
leaseTransitions counts each handover."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from jobqueue.observability import logging as obslog
from jobqueue.reaper import lease_api
from jobqueue.reaper.kube_lease import KubernetesElector
from jobqueue.reaper.leader import Leadership
from tests.envtest import ControlPlane
from tests.support.procs import Proc
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(120)

LEASE = 3
# Recorded in the Lease: 3 s minus two 0.3 s retry periods, in whole seconds.
DURATION = 2
SLACK = 0.4  # this test's polling and process scheduling on a busy 2-core machine
NAMESPACE = "default"


def read_lease(cp: ControlPlane, name: str) -> dict[str, Any]:
    out = cp.kubectl("get", "lease", name, "-n", NAMESPACE, "-o", "json")
    spec: dict[str, Any] = json.loads(out.stdout)["spec"]
    return spec


def restricted_kubeconfig(cp: ControlPlane, name: str, tmp_path: Path) -> Path:
    """A kubeconfig for a ServiceAccount with exactly the RBAC the operator gives
    its reaper (get/update/patch of one pre-created Lease), so the test proves
    the elector needs nothing more."""
    sa = f"{name}-sa"
    cp.kubectl("create", "serviceaccount", sa, "-n", NAMESPACE)
    cp.kubectl("create", "role", sa, "-n", NAMESPACE, "--verb=get,update,patch",
               "--resource=leases.coordination.k8s.io", f"--resource-name={name}")
    cp.kubectl("create", "rolebinding", sa, "-n", NAMESPACE, f"--role={sa}",
               f"--serviceaccount={NAMESPACE}:{sa}")
    # As the operator does: the Lease exists, without a spec, before any reaper runs.
    cp.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": NAMESPACE}}))
    token = cp.kubectl("create", "token", sa, "-n", NAMESPACE).stdout.strip()
    config = json.loads(cp.kubeconfig_path.read_text())
    config["users"][0]["user"] = {"token": token}
    path = tmp_path / "reaper-kubeconfig"
    path.write_text(json.dumps(config))
    return path


async def test_one_of_three_leads_and_a_clean_stop_hands_over(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    name = f"reaper-{uuid.uuid4().hex[:8]}"
    path = await asyncio.to_thread(restricted_kubeconfig, control_plane, name, tmp_path)
    config = lease_api.from_kubeconfig(path)
    client = lease_api.LeaseClient(config)
    # The restriction is real: this identity may not create Leases.
    with pytest.raises(lease_api.KubeRefused, match="403"):
        await client.create(NAMESPACE, {"apiVersion": "coordination.k8s.io/v1",
                                        "kind": "Lease", "metadata": {"name": "other"}})
    ships = [
        Leadership(KubernetesElector(client, namespace=NAMESPACE, name=name, identity=f"c{i}",
                                     lease_seconds=LEASE), log=obslog.get_logger("test"))
        for i in range(3)
    ]
    tasks = [asyncio.create_task(s.run()) for s in ships]
    try:
        await eventually(lambda: sum(s.is_leader for s in ships) == 1,
                         timeout=10, what="one leader")
        for _ in range(15):  # still exactly one across several renewals
            assert sum(s.is_leader for s in ships) == 1
            await asyncio.sleep(LEASE / 10)
        first = next(i for i, s in enumerate(ships) if s.is_leader)
        spec = await asyncio.to_thread(read_lease, control_plane, name)
        assert spec["holderIdentity"] == f"c{first}"
        # Taking the operator's empty Lease counts as the first transition.
        assert spec["leaseDurationSeconds"] == DURATION and spec["leaseTransitions"] == 1

        tasks[first].cancel()  # a clean stop: the lease is released at once
        await asyncio.gather(tasks[first], return_exceptions=True)
        began = time.monotonic()
        await eventually(lambda: any(s.is_leader for i, s in enumerate(ships) if i != first),
                         timeout=LEASE,
                         what="a successor")
        assert time.monotonic() - began < ships[0].retry_every + 1.0
        spec = await asyncio.to_thread(read_lease, control_plane, name)
        assert spec["holderIdentity"] != f"c{first}" and spec["leaseTransitions"] == 2
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()


async def test_sigkilled_reaper_process_hands_over_within_the_lease(
    control_plane: ControlPlane, dsn: str, tmp_path: Path
) -> None:
    name = f"reaper-{uuid.uuid4().hex[:8]}"
    args = ["reaper", "--leader-election", "kubernetes", "--kubeconfig",
            str(control_plane.kubeconfig_path), "--lease-name", name, "--lease-namespace",
            NAMESPACE, "--leader-lease-seconds", str(LEASE), "--interval-seconds", "0.2"]
    procs = [Proc(f"reaper{i}", args, dsn=dsn, logdir=tmp_path).start() for i in range(3)]

    def ids() -> dict[str, Proc]:
        out = {}
        for p in procs:
            for e in p.events():
                if e.get("event") == "reaper starting":
                    out[e["reaper_id"]] = p
        return out

    def leaders_logged() -> list[int]:
        return [sum(e.get("event") == "became leader" for e in p.events()) for p in procs]

    try:
        await eventually(lambda: len(ids()) == 3, timeout=30, what="three reapers")
        await eventually(lambda: sum(leaders_logged()) == 1, timeout=15, what="a leader")
        spec = await asyncio.to_thread(read_lease, control_plane, name)
        by_id = ids()
        leader = by_id[spec["holderIdentity"]]
        transitions = spec["leaseTransitions"]
        await asyncio.sleep(LEASE)  # over a lease period, nobody else takes it
        assert sum(leaders_logged()) == 1

        leader.kill()
        killed = time.monotonic()

        async def successor() -> str | None:
            s = await asyncio.to_thread(read_lease, control_plane, name)
            holder = s["holderIdentity"]
            return holder if holder and by_id.get(holder) is not leader else None

        new = await eventually(successor, timeout=3 * LEASE, what="a new holder", interval=0.05)
        took = time.monotonic() - killed
        # Followers time the lease from when they saw its last renewal, on
        # their own clock (client-go semantics); the recorded duration leaves
        # room for that, so the handover still fits in the lease period.
        print(f"\nLease handover after SIGKILL: {took:.2f} s (lease {LEASE} s)")
        assert took < LEASE + SLACK, took
        spec = await asyncio.to_thread(read_lease, control_plane, name)
        assert spec["leaseTransitions"] == transitions + 1
        assert by_id[new] in procs and by_id[new] is not leader
        await eventually(lambda: sum(leaders_logged()) == 2, timeout=3, what="the successor's log")
    finally:
        codes = [p.stop() for p in procs if p.alive()]
    assert codes == [0, 0]
    # The clean stops released the lease: nobody holds it now.
    assert (await asyncio.to_thread(read_lease, control_plane, name))["holderIdentity"] == ""
