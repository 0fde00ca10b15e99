"""/v1/fine_tuning/jobs: create, list, retrieve, cancel, events and checkpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import check_limit, page
from kotae.api.params import JobId, Limit
from kotae.errors import InvalidRequest
from kotae.schemas.fine_tuning import CreateFineTuningJob
from kotae.storage.repositories.paging import cursor_page

router = APIRouter(route_class=BoundedRoute, prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])


@router.post("")
async def create_job(req: CreateFineTuningJob, c: ContainerDep, p: ProjectDep) -> Any:
    return await c.fine_tuning.create(p, req)


@router.get("")
async def list_jobs(
    request: Request, c: ContainerDep, p: ProjectDep, limit: Limit = 20, after: str | None = None
) -> Any:
    # The SDK sends metadata filters as metadata[key]=value.
    metadata = {
        k[len("metadata[") : -1]: v
        for k, v in request.query_params.items()
        if k.startswith("metadata[") and k.endswith("]")
    }
    jobs = await c.fine_tuning.list_jobs(p, metadata or None)
    data, more = cursor_page(jobs, "id", check_limit(limit), after, None)
    return page(data, more)


@router.get("/{fine_tuning_job_id}")
async def retrieve_job(fine_tuning_job_id: JobId, c: ContainerDep, p: ProjectDep) -> Any:
    return await c.fine_tuning.retrieve(p, fine_tuning_job_id)


@router.post("/{fine_tuning_job_id}/cancel")
async def cancel_job(fine_tuning_job_id: JobId, c: ContainerDep, p: ProjectDep) -> Any:
    return await c.fine_tuning.cancel(p, fine_tuning_job_id)


@router.post("/{fine_tuning_job_id}/pause")
@router.post("/{fine_tuning_job_id}/resume")
async def pause_or_resume(fine_tuning_job_id: JobId, c: ContainerDep, p: ProjectDep) -> Any:
    await c.fine_tuning.retrieve(p, fine_tuning_job_id)  # 404 first for an unknown job
    raise InvalidRequest(
        "Pausing and resuming jobs is not supported by this server; cancel the job and "
        "create it again.",
        param="fine_tuning_job_id",
    )


@router.get("/{fine_tuning_job_id}/events")
async def list_events(
    fine_tuning_job_id: JobId,
    c: ContainerDep,
    p: ProjectDep,
    limit: Limit = 20,
    after: str | None = None,
) -> Any:
    events = await c.fine_tuning.events(p, fine_tuning_job_id)
    data, more = cursor_page(events, "id", check_limit(limit), after, None)
    return page(data, more)


@router.get("/{fine_tuning_job_id}/checkpoints")
async def list_checkpoints(
    fine_tuning_job_id: JobId,
    c: ContainerDep,
    p: ProjectDep,
    limit: Limit = 10,
    after: str | None = None,
) -> Any:
    checkpoints = await c.fine_tuning.checkpoints(p, fine_tuning_job_id)
    data, more = cursor_page(checkpoints, "id", check_limit(limit), after, None)
    return page(data, more)
