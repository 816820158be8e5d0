"""Schedule routes: create or replace, read, list, delete (invariant 13).

Scoped to the caller's tenant like the job routes: another tenant's
schedule is a 404. Schedules a JobQueue declares are read-only here (409):
the operator owns them. The admin credential lists every tenant's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from jobqueue.api import http_errors
from jobqueue.api.deps import Access, AccessDep, RuntimeDep
from jobqueue.api.routes import docs
from jobqueue.api.schedule_schemas import NAME_PATTERN, ScheduleIn, ScheduleList, ScheduleOut
from jobqueue.db import schedules
from jobqueue.models import TenantId

router = APIRouter(tags=["schedules"])

Name = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63,
                           description="a DNS label, unique per tenant")]


def _tenant(access: Access) -> TenantId:
    if access.tenant is None:
        raise http_errors.forbidden("schedules belong to a tenant; use a tenant token")
    return access.tenant.id


@router.put(
    "/v1/schedules/{name}",
    status_code=201,
    response_model=ScheduleOut,
    summary="Create a schedule, or replace its template",
    description="The next fire time is kept unless `cron` or `timezone` changed.",
    responses={200: {"model": ScheduleOut, "description": "replaced"},
               **docs.errors(*docs.COMMON, 409)},
)
async def put_schedule(
    name: Name, body: ScheduleIn, access: AccessDep, rt: RuntimeDep, response: Response
) -> ScheduleOut:
    tenant = _tenant(access)
    async with rt.deadline():
        made, created = await schedules.upsert(rt.pool, tenant_id=tenant,
                                               spec=body.to_spec(name))
    if not created:
        response.status_code = 200
    return ScheduleOut.of(made)


@router.get("/v1/schedules", response_model=ScheduleList, summary="List schedules by name",
            responses=docs.errors(*docs.COMMON))
async def list_schedules(access: AccessDep, rt: RuntimeDep) -> ScheduleList:
    async with rt.deadline():
        found = await schedules.list_schedules(rt.pool, tenant_id=access.scope)
    return ScheduleList(schedules=[ScheduleOut.of(s) for s in found])


@router.get("/v1/schedules/{name}", response_model=ScheduleOut, summary="Read a schedule",
            responses=docs.errors(*docs.COMMON, 404))
async def get_schedule(name: Name, access: AccessDep, rt: RuntimeDep) -> ScheduleOut:
    tenant = _tenant(access)
    async with rt.deadline():
        return ScheduleOut.of(await schedules.get(rt.pool, tenant_id=tenant, name=name))


@router.delete("/v1/schedules/{name}", status_code=204, summary="Delete a schedule",
               description="Jobs it already fired stay.",
               responses=docs.errors(*docs.COMMON, 404, 409))
async def delete_schedule(name: Name, access: AccessDep, rt: RuntimeDep) -> Response:
    tenant = _tenant(access)
    async with rt.deadline():
        await schedules.delete(rt.pool, tenant_id=tenant, name=name)
    return Response(status_code=204)
