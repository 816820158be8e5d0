"""The rows a JobQueue owns in its queue's database, removed when it is deleted.

Kubernetes garbage-collects a JobQueue's children (owner references); what
it declares into the database is the operator's to remove: every row whose
`owner` is "namespace/name" (schedule_sync.owner_of). Each kind is one
step in `STEPS` (spec.schedules, spec.limits); a kind synced from the spec
later adds its own step here and the finalizer removes it too. A step deletes
only that owner's rows, and deleting none is fine, so the finalizer may run
the steps again after a failure. The queue's row (its defaults, its
virtual clock) and its jobs stay: jobs keep their history, and the API or
another JobQueue may go on using the queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from jobqueue.db import Pool
from jobqueue_operator import limit_sync, schedule_sync

# kind -> remove that kind of row of `owner`, returning how many went.
Step = Callable[[Pool, str], Awaitable[int]]

STEPS: dict[str, Step] = {
    "schedules": schedule_sync.forget,
    "limits": limit_sync.forget,
}


async def forget(pool: Pool, *, owner: str) -> dict[str, int]:
    """Remove every row `owner` declared; how many of each kind went."""
    return {kind: await step(pool, owner) for kind, step in STEPS.items()}
