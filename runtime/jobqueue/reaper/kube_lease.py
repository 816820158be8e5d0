"""Leader election on a coordination.k8s.io/v1 Lease (the operator's reaper
Deployment uses it), with the semantics of client-go's leaderelection:

- every write is a compare-and-swap on resourceVersion, so two candidates
  can never both believe they took the lease;
- a follower judges expiry by its *own* clock: the lease is expired when
  the record has not changed for leaseDurationSeconds since this follower
  first saw it. Clocks of different nodes never get compared.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from jobqueue.reaper.leader import retry_period
from jobqueue.reaper.lease_api import KubeConflict, LeaseClient


def micro_time(at: datetime | None = None) -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubernetesElector:
    def __init__(
        self,
        client: LeaseClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: float,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        # Whole seconds (the field is an integer), short enough that a
        # follower timing it on its own clock still takes over within
        # lease_seconds (see leader.py).
        self._duration = max(1, math.floor(lease_seconds - 2 * retry_period(lease_seconds)))
        self.hold_seconds = float(self._duration)
        self._seen: tuple[str, float] | None = None  # (resourceVersion, first seen at)
        self.last: dict[str, Any] | None = None

    def _observe(self, lease: dict[str, Any]) -> None:
        self.last = lease
        rv = lease["metadata"]["resourceVersion"]
        if self._seen is None or self._seen[0] != rv:
            self._seen = (rv, time.monotonic())

    def _spec(self, transitions: int, acquired: str | None = None) -> dict[str, Any]:
        now = micro_time()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration,
            "acquireTime": acquired or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire(self) -> bool:
        current = await self.client.get(self.namespace, self.name)
        if current is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(0),
            }
            try:
                self._observe(await self.client.create(self.namespace, body))
            except KubeConflict:
                return False  # another candidate created it first
            return True
        self._observe(current)
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            new_spec = self._spec(transitions, acquired=spec.get("acquireTime"))
        else:
            duration = float(spec.get("leaseDurationSeconds") or self._duration)
            assert self._seen is not None
            unchanged_for = time.monotonic() - self._seen[1]
            if holder and unchanged_for < duration:
                return False
            new_spec = self._spec(transitions + 1)
        body = {**current, "spec": new_spec}  # metadata keeps resourceVersion: CAS
        try:
            self._observe(await self.client.replace(self.namespace, self.name, body))
        except KubeConflict:
            return False
        return True

    async def release(self) -> bool:
        """Hand over at once: empty holder, as client-go's ReleaseOnCancel does."""
        current = await self.client.get(self.namespace, self.name)
        if current is None or (current.get("spec") or {}).get("holderIdentity") != self.identity:
            return False
        spec = dict(current["spec"])
        spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time())
        try:
            await self.client.replace(self.namespace, self.name, {**current, "spec": spec})
        except KubeConflict:
            return False
        return True

    def describe(self) -> dict[str, object]:
        spec = (self.last or {}).get("spec") or {}
        return {
            "election": "kubernetes",
            "lease": f"{self.namespace}/{self.name}",
            "holder": spec.get("holderIdentity"),
            "transitions": spec.get("leaseTransitions"),
        }
