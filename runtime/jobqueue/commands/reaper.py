"""`jobqueue reaper`: re-queue expired leases, move finished jobs to history
and drop its days past retention (docs/design.md, "History"), fire
schedules (invariant 13).

Run any number of replicas: one is elected (a row in Postgres by default,
or a coordination.k8s.io/v1 Lease with --leader-election=kubernetes) and
the others wait. `--once` does a single pass of each (leases and history,
then the schedules due), prints what it did as JSON and exits (no
election: every reaper update and every fire is compare-and-set anyway,
so a pass beside a running leader does nothing twice).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from jobqueue import db
from jobqueue.commands.common import add_logging_flags, configure_logging, flags, log_flags
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics
from jobqueue.process.connect import until_connected
from jobqueue.process.supervise import on_signals, supervise
from jobqueue.reaper import leader, lease_api
from jobqueue.reaper.kube_lease import KubernetesElector
from jobqueue.reaper.reaper import Reaper, once, services
from jobqueue.settings import DatabaseSettings, ReaperSettings, RuntimeSettings


class _DeprecatedAlias(argparse.Action):
    """A flag kept working under its old name, with a line on stderr saying so."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
        values: str | Sequence[Any] | None, option_string: str | None = None,
    ) -> None:
        print(f"jobqueue reaper: {option_string} is deprecated (it names the leader's "
              "lease, not a job's): use --leader-lease-seconds", file=sys.stderr)
        setattr(namespace, self.dest, values)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "reaper", help="re-queue expired leases, keep history, fire schedules")
    p.add_argument("--leader-election", choices=["postgres", "kubernetes", "none"])
    p.add_argument("--leader-lease-seconds", type=float,
                   help="how long an elected reaper leads without renewing (default 15)")
    p.add_argument("--lease-seconds", type=float, dest="leader_lease_seconds",
                   action=_DeprecatedAlias, help=argparse.SUPPRESS)
    p.add_argument("--interval-seconds", type=float, help="pause between passes (default 1)")
    p.add_argument("--retention-seconds", type=float, help="keep finished jobs this long")
    p.add_argument("--archive-after-seconds", type=float,
                   help="move finished jobs to history this long after they finish")
    p.add_argument("--once", action="store_true", help="one pass, print it as JSON, exit")
    p.add_argument("--metrics-port", type=int)
    p.add_argument("--lease-name", help="name of the leader row or Lease object "
                   "(default: jobqueue-reaper)")
    p.add_argument("--lease-namespace",
                   help="Lease namespace (default: the pod's, else the kubeconfig's)")
    p.add_argument("--kubeconfig",
                   help="use this kubeconfig instead of the in-cluster service account")
    add_logging_flags(p)
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> RuntimeSettings:
    reaper = flags(args, "leader_election", "leader_lease_seconds", "interval_seconds",
                   "retention_seconds", "archive_after_seconds", "metrics_port", "lease_name",
                   "lease_namespace", "kubeconfig")
    return RuntimeSettings(reaper=reaper, log=log_flags(args))


async def connect(database: DatabaseSettings, log: Any, stop: asyncio.Event) -> Any:
    return await until_connected(
        lambda: db.open_pool(
            database, min_size=1, max_size=3, application_name="jobqueue-reaper"
        ),
        stop=stop, component="reaper", log=log,
    )


def elector_for(
    settings: ReaperSettings, pool: db.Pool, identity: str
) -> tuple[leader.Elector, lease_api.LeaseClient | None]:
    lease = settings.leader_lease_seconds
    if settings.leader_election == "none":
        return leader.NoElection(identity), None
    if settings.leader_election == "postgres":
        return leader.PostgresElector(
            pool, name=settings.lease_name, identity=identity, lease_seconds=lease
        ), None
    config = (lease_api.from_kubeconfig(settings.kubeconfig) if settings.kubeconfig
              else lease_api.in_cluster(settings.kubernetes_service_host,
                                         settings.kubernetes_service_port))
    client = lease_api.LeaseClient(config)
    namespace = settings.lease_namespace or config.namespace
    return KubernetesElector(
        client, namespace=namespace, name=settings.lease_name, identity=identity,
        lease_seconds=lease,
    ), client


async def main(
    args: argparse.Namespace, settings: ReaperSettings, database: DatabaseSettings
) -> int:
    log = obslog.get_logger("jobqueue.reaper")
    stop = asyncio.Event()
    on_signals(stop.set)
    pool = await connect(database, log, stop)
    if pool is None:
        return 0
    identity = leader.candidate_id()
    log = log.bind(reaper_id=identity)
    reaper = Reaper(pool, settings, log=log)
    client: lease_api.LeaseClient | None = None
    try:
        if args.once:
            print(json.dumps(await once(reaper, log=log)))
            return 0
        elector, client = elector_for(settings, pool, identity)
        leadership = leader.Leadership(elector, log=log)
        log.info("reaper starting", **elector.describe(), interval=settings.interval_seconds,
                 retention_seconds=settings.retention_seconds)
        code = await supervise(services(reaper, leadership, log=log), stop=stop, log=log)
        log.info("reaper stopped", **reaper.totals, exit_code=code)
        return code
    finally:
        if client is not None:
            await client.close()
        await pool.close()


def run(args: argparse.Namespace) -> int:
    root = settings_from(args)
    settings = root.reaper
    configure_logging(root)
    if settings.metrics_port is not None and not args.once:
        metrics.serve(settings.metrics_port)
    root.database.dsn()  # no database configured: one line and exit 2, before anything starts
    return asyncio.run(main(args, settings, root.database))
