"""Execution limits of a queue (admin only): create or replace, read, list,
delete (docs/design.md, invariant 14).

Limits a JobQueue declares are read-only here (409): the operator owns them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from jobqueue import limits as limit_rules
from jobqueue.api import http_errors
from jobqueue.api.deps import Access, AccessDep, RuntimeDep
from jobqueue.api.limit_schemas import LimitIn, LimitList, LimitOut
from jobqueue.api.routes import docs
from jobqueue.api.schemas import QUEUE_PATTERN
from jobqueue.db import limits

router = APIRouter(tags=["limits"])

Queue = Annotated[str, Path(pattern=QUEUE_PATTERN, max_length=63)]
Name = Annotated[str, Path(pattern=limit_rules.NAME_PATTERN, max_length=63,
                           description="a DNS label, unique per queue")]
BASE = "/v1/admin/queues/{queue}/limits"


def _admin(access: Access) -> None:
    if not access.principal.admin:
        raise http_errors.forbidden("limits need the admin credential")


@router.put(
    BASE + "/{name}",
    status_code=201,
    response_model=LimitOut,
    summary="Create a limit of a queue, or replace it (admin only)",
    description="Leases that begin after it is written obey it, on every worker.",
    responses={200: {"model": LimitOut, "description": "replaced"},
               **docs.errors(*docs.COMMON, 409)},
)
async def put_limit(
    queue: Queue, name: Name, body: LimitIn, access: AccessDep, rt: RuntimeDep,
    response: Response,
) -> LimitOut:
    _admin(access)
    async with rt.deadline():
        made, created = await limits.put(rt.pool, queue=queue, spec=body.to_spec(name))
    if not created:
        response.status_code = 200
    return LimitOut.of(made)


@router.get(BASE, response_model=LimitList, summary="List a queue's limits (admin only)",
            responses=docs.errors(*docs.COMMON))
async def list_limits(queue: Queue, access: AccessDep, rt: RuntimeDep) -> LimitList:
    _admin(access)
    async with rt.deadline():
        found = await limits.list_limits(rt.pool, queue=queue)
    return LimitList(limits=[LimitOut.of(x) for x in found])


@router.get(BASE + "/{name}", response_model=LimitOut, summary="Read a limit (admin only)",
            responses=docs.errors(*docs.COMMON, 404))
async def get_limit(queue: Queue, name: Name, access: AccessDep, rt: RuntimeDep) -> LimitOut:
    _admin(access)
    async with rt.deadline():
        return LimitOut.of(await limits.get(rt.pool, queue=queue, name=name))


@router.delete(BASE + "/{name}", status_code=204, summary="Delete a limit (admin only)",
               responses=docs.errors(*docs.COMMON, 404, 409))
async def delete_limit(queue: Queue, name: Name, access: AccessDep, rt: RuntimeDep) -> Response:
    _admin(access)
    async with rt.deadline():
        await limits.delete(rt.pool, queue=queue, name=name)
    return Response(status_code=204)
