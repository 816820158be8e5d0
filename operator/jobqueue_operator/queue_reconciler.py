"""JobQueue: apply its workers, reaper and RBAC, write the queue's defaults,
and report the queue's state.

Every reconcile applies the whole desired state with server-side apply, so
it both creates children and undoes drift (an edited or deleted child comes
back as built). The queue's defaults (spec.maxAttempts) go into its row in
the queue's database, which submission reads; the row is written only when
it differs. The worker Deployment's replicas, ready replicas and the
autoscaler's maximum go to queue_replicas on every reconcile (the status
timer's too), for the dashboard. Its schedules (spec.schedules) are synced there too
(schedule_sync), and status shows each one's next and last fire time;
`finalize` removes them when the JobQueue is deleted (queue_rows).
Ready means the children were accepted by the apiserver and the queue's
database took the defaults and schedules; pods may still be starting.
Its execution limits (spec.limits) are synced the same way (limit_sync).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from jobqueue import errors
from jobqueue.db import Pool, dashboard, queues, stats
from jobqueue.models import DepthRow
from jobqueue_operator import (
    autoscaler_builders,
    builders,
    limit_sync,
    models,
    queue_rows,
    schedule_sync,
)
from jobqueue_operator import status as st
from jobqueue_operator.context import Context, database_problem
from jobqueue_operator.kube import KubeError, Manifest
from jobqueue_operator.settings import FIELD_MANAGER
from jobqueue_operator.tenant_reconciler import Outcome, validation_message

KIND = "JobQueue"
HPA_API = "autoscaling/v2"


@dataclass(frozen=True, slots=True)
class Applied:
    worker: Manifest
    reaper: Manifest
    autoscaled: bool
    max_replicas: int  # the most workers the autoscaler may run (the fixed count without one)

    def replicas(self) -> tuple[int, int, int]:
        """(replicas, ready, max) for the dashboard's queue_replicas."""
        return (st.count(self.worker, "replicas") or 0,
                st.count(self.worker, "readyReplicas") or 0, self.max_replicas)


def max_replicas(spec: models.JobQueueSpec, foreign: list[Manifest]) -> int:
    """Somebody else's HPA on the workers decides; else ours (or KEDA's)
    scales to maxReplicas; without an autoscaler the count is minReplicas."""
    if foreign:
        return max(int(h.get("spec", {}).get("maxReplicas") or 0) for h in foreign)
    return spec.max_replicas if spec.autoscaled else spec.min_replicas


def parse(spec: dict[str, Any]) -> models.JobQueueSpec | st.Problem:
    try:
        parsed = models.JobQueueSpec.model_validate(spec)
    except ValidationError as exc:
        return st.Problem(st.INVALID_SPEC, validation_message(exc))
    problems = models.jobqueue_spec_problems(parsed)
    if problems:
        return st.Problem(st.INVALID_SPEC, "; ".join(problems))
    return parsed


def _ours(obj: Manifest, owner: builders.Owner) -> bool:
    meta = obj.get("metadata", {})
    return (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") == FIELD_MANAGER and any(
        ref.get("uid") == owner.uid for ref in meta.get("ownerReferences") or []
    )


async def apply_children(ctx: Context, owner: builders.Owner, spec: models.JobQueueSpec) -> Applied:
    """Apply every child; raise KubeError if the apiserver refuses one."""
    kube = ctx.kube
    worker_name = builders.worker_name(owner)
    live = await kube.get("apps/v1", "Deployment", worker_name, owner.namespace)
    hpas = await kube.list_all(HPA_API, "HorizontalPodAutoscaler", owner.namespace)
    aimed = [h for h in hpas if builders.targets(h, worker_name)]
    foreign = [h for h in aimed if not _ours(h, owner)]
    autoscaled = spec.autoscaled or bool(foreign)
    replicas = builders.worker_replicas(spec, autoscaled=autoscaled, live=live)
    applied: dict[tuple[str, str], Manifest] = {}
    keda_query = stats.autoscaler_query(spec.queue_name(owner.name)) if spec.uses_keda else None
    children = builders.jobqueue_children(
        owner, spec, worker_replicas=replicas, keda_query=keda_query
    )
    for child in children:
        result = await kube.apply(child)
        meta = result.get("metadata", {})
        if child["kind"] == "Deployment" and meta.get("uid"):
            ctx.applied_generations[meta["uid"]] = int(meta.get("generation") or 0)
        applied[(child["kind"], child["metadata"]["name"])] = result
    if not spec.uses_hpa:
        for hpa in aimed:
            if _ours(hpa, owner):
                await kube.delete(
                    HPA_API, "HorizontalPodAutoscaler", hpa["metadata"]["name"], owner.namespace
                )
    if not spec.uses_keda:
        keda_kinds = ("ScaledObject", "TriggerAuthentication")
        await _delete_ours(ctx, owner, autoscaler_builders.KEDA_API, keda_kinds)
    return Applied(
        worker=applied[("Deployment", worker_name)],
        reaper=applied[("Deployment", builders.reaper_name(owner))],
        autoscaled=autoscaled,
        max_replicas=max_replicas(spec, foreign),
    )


async def _delete_ours(
    ctx: Context, owner: builders.Owner, api_version: str, kinds: tuple[str, ...]
) -> None:
    """Children of a mode no longer used (the mode changed); absent kinds are fine."""
    name = builders.worker_name(owner)
    for kind in kinds:
        live = await ctx.kube.get(api_version, kind, name, owner.namespace)
        if live is not None and _ours(live, owner):
            await ctx.kube.delete(api_version, kind, name, owner.namespace)


async def database_url(
    ctx: Context, namespace: str | None, spec: models.JobQueueSpec
) -> str | st.Problem:
    ref = spec.database_secret_ref
    try:
        secret = await ctx.kube.get("v1", "Secret", ref.name, namespace)
    except KubeError as exc:
        return st.Problem(st.DATABASE_SECRET_MISSING, str(exc))
    if secret is None:
        return st.Problem(st.DATABASE_SECRET_MISSING, f"Secret {namespace}/{ref.name} not found")
    url = builders.secret_value(secret, ref.key)
    if not url:
        return st.Problem(
            st.DATABASE_SECRET_MISSING, f"Secret {namespace}/{ref.name} has no key {ref.key!r}"
        )
    return url


async def sync_database(
    pool: Pool, queue: str, spec: models.JobQueueSpec, owner: str,
    replicas: tuple[int, int, int] | None = None,
) -> tuple[list[DepthRow], schedule_sync.Synced, limit_sync.Synced]:
    """Write the queue's defaults, schedules, limits and worker replicas (for
    the dashboard), then read its depth for status."""
    await queues.configure(pool, queue=queue, default_max_attempts=spec.max_attempts)
    if replicas is not None:
        count, ready, most = replicas
        await dashboard.report_replicas(pool, queue=queue, replicas=count,
                                        ready_replicas=ready, max_replicas=most)
    synced = await schedule_sync.sync(
        pool, owner=owner, wanted=schedule_sync.declared(spec, queue)
    )
    limited = await limit_sync.sync(
        pool, owner=owner, queue=queue, wanted=limit_sync.declared(spec)
    )
    return await stats.depth(pool, queue=queue), synced, limited


@dataclass(frozen=True, slots=True)
class DatabaseState:
    depth: st.Depth | None = None
    schedules: list[dict[str, Any]] | None = None
    problem: st.Problem | None = None


async def _database(
    ctx: Context, url: str, spec: models.JobQueueSpec, *, name: str, namespace: str | None,
    applied: Applied | None,
) -> DatabaseState:
    queue, owner = spec.queue_name(name), schedule_sync.owner_of(namespace, name)
    replicas = applied.replicas() if applied else None
    try:
        rows, synced, limited = await ctx.databases.run(
            url, lambda pool: sync_database(pool, queue, spec, owner, replicas)
        )
    except errors.JobQueueError as exc:
        return DatabaseState(problem=database_problem(exc, url))
    problem = None
    if synced.problems:
        problem = st.Problem(st.SCHEDULES_NOT_SYNCED, "; ".join(synced.problems))
    elif limited.problems:
        problem = st.Problem(st.LIMITS_NOT_SYNCED, "; ".join(limited.problems))
    return DatabaseState(st.Depth.of(rows), schedule_sync.status_of(synced.schedules), problem)


@dataclass(frozen=True, slots=True)
class Forgotten:
    removed: dict[str, int] | None  # rows removed by kind; None: no database known
    reason: str = ""  # why none could be removed


async def finalize(
    ctx: Context, *, name: str, namespace: str | None, uid: str, spec: dict[str, Any]
) -> Forgotten:
    """The JobQueue is being deleted: remove the rows it declared (queue_rows).

    From the database its Secret names or, when that Secret is gone already
    (deleting a namespace deletes its Secrets too) or the spec no longer
    parses, the one this operator last reconciled it against, else the
    operator's own (after a restart, with the Secret gone: often the same
    database, and only this owner's rows go). Raises what the database call
    raises (DatabaseUnavailable: kopf retries)."""
    owner = schedule_sync.owner_of(namespace, name)
    parsed = parse(spec)
    url = (await database_url(ctx, namespace, parsed)
           if isinstance(parsed, models.JobQueueSpec) else parsed)
    memo = ctx.queue(uid)
    if isinstance(url, st.Problem):
        fallback = memo.url or ctx.dsn
        if fallback is None:
            return Forgotten(None, url.message)
        url = fallback
    async with memo.lock:
        memo.deleting = True
        removed = await ctx.databases.run(url, lambda pool: queue_rows.forget(pool, owner=owner))
    return Forgotten(removed)


def forget_memo(ctx: Context, uid: str) -> None:
    """The JobQueue is gone from the apiserver: nothing will reconcile it."""
    ctx.queues.pop(uid, None)


async def _synced(
    ctx: Context, uid: str, url: str, spec: models.JobQueueSpec, *, name: str,
    namespace: str | None, applied: Applied | None,
) -> DatabaseState:
    memo = ctx.queue(uid)
    async with memo.lock:
        if memo.deleting:
            return DatabaseState()  # the finalizer removed its rows: write none back
        memo.url = url
        return await _database(ctx, url, spec, name=name, namespace=namespace,
                               applied=applied)


async def reconcile(
    ctx: Context,
    *,
    name: str,
    namespace: str | None,
    uid: str,
    generation: int | None,
    spec: dict[str, Any],
    previous: dict[str, Any] | None,
) -> Outcome:
    parsed = parse(spec)
    queue = parsed.queue_name(name) if isinstance(parsed, models.JobQueueSpec) else None
    if queue is not None and isinstance(parsed, models.JobQueueSpec):
        bad = schedule_sync.problems(parsed, queue) + limit_sync.problems(parsed, queue)
        parsed = st.Problem(st.INVALID_SPEC, "; ".join(bad)) if bad else parsed
    problem: st.Problem | None = None
    applied: Applied | None = None
    state = DatabaseState()
    if isinstance(parsed, st.Problem):
        # Leave the children as they are: the last good spec keeps running.
        problem = parsed
    else:
        owner = builders.Owner(kind=KIND, name=name, uid=uid, namespace=namespace)
        try:
            applied = await apply_children(ctx, owner, parsed)
        except KubeError as exc:
            problem = st.Problem(st.APPLY_FAILED, str(exc))
        url = await database_url(ctx, namespace, parsed)
        if isinstance(url, st.Problem):
            problem = problem or url
        else:
            state = await _synced(ctx, uid, url, parsed, name=name, namespace=namespace,
                                  applied=applied)
            problem = problem or state.problem
    status = st.jobqueue_status(
        generation=generation,
        queue=queue,
        problem=problem,
        depth=state.depth,
        schedules=state.schedules,
        worker=applied.worker if applied else None,
        reaper=applied.reaper if applied else None,
        autoscaled=applied.autoscaled if applied else None,
        previous=previous,
        now=datetime.now(UTC),
    )
    retry = problem is not None and problem.reason != st.INVALID_SPEC
    return Outcome(status, problem, retry)
