"""/v1/batches: create, retrieve, list, cancel."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import check_limit, page
from kotae.api.params import Limit, OpenAIBatchId
from kotae.schemas.batches import CreateBatch
from kotae.storage.repositories.paging import cursor_page

router = APIRouter(route_class=BoundedRoute, prefix="/v1/batches", tags=["batches"])


@router.post("")
async def create_batch(req: CreateBatch, c: ContainerDep, p: ProjectDep) -> Any:
    expiry = req.output_expires_after
    return await to_thread.run_sync(
        lambda: c.batches.create(
            p,
            input_file_id=req.input_file_id,
            endpoint=req.endpoint,
            completion_window=req.completion_window,
            metadata=req.metadata,
            output_expires_seconds=expiry.seconds if expiry else None,
        )
    )


@router.get("")
async def list_batches(
    c: ContainerDep, p: ProjectDep, after: str | None = None, limit: Limit = 20
) -> Any:
    rows = await to_thread.run_sync(c.batches.listing, p)
    return page(*cursor_page(rows, "id", check_limit(limit), after, None))


@router.get("/{batch_id}")
async def retrieve_batch(batch_id: OpenAIBatchId, c: ContainerDep, p: ProjectDep) -> Any:
    return await to_thread.run_sync(c.batches.retrieve, p, batch_id)


@router.post("/{batch_id}/cancel")
async def cancel_batch(batch_id: OpenAIBatchId, c: ContainerDep, p: ProjectDep) -> Any:
    return await to_thread.run_sync(c.batches.cancel, p, batch_id)
