"""/v1/vector_stores, its files, file batches and search."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import Order, check_limit, page
from kotae.api.params import BatchId, FileId, Limit, VectorStoreId
from kotae.api.wire import wire
from kotae.schemas.vector_stores import (
    CreateFileBatch,
    CreateVectorStore,
    CreateVectorStoreFile,
    SearchVectorStore,
    UpdateVectorStore,
    UpdateVectorStoreFile,
)

router = APIRouter(route_class=BoundedRoute, prefix="/v1/vector_stores", tags=["vector_stores"])


def _page(items: list[Any], more: bool) -> dict[str, Any]:
    return page([wire(i) for i in items], more)


@router.post("")
async def create_vector_store(req: CreateVectorStore, c: ContainerDep, p: ProjectDep) -> Any:
    return wire(await to_thread.run_sync(c.vector_stores.create, p, req))


@router.get("")
async def list_vector_stores(
    c: ContainerDep,
    p: ProjectDep,
    limit: Limit = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
) -> Any:
    items, more = await to_thread.run_sync(
        c.vector_stores.list_stores, p, check_limit(limit), order, after, before
    )
    return _page(items, more)


@router.get("/{vector_store_id}")
async def retrieve_vector_store(
    vector_store_id: VectorStoreId, c: ContainerDep, p: ProjectDep
) -> Any:
    return wire(await to_thread.run_sync(c.vector_stores.retrieve, p, vector_store_id))


@router.post("/{vector_store_id}")
async def update_vector_store(
    vector_store_id: VectorStoreId, req: UpdateVectorStore, c: ContainerDep, p: ProjectDep
) -> Any:
    return wire(await to_thread.run_sync(c.vector_stores.update, p, vector_store_id, req))


@router.delete("/{vector_store_id}")
async def delete_vector_store(
    vector_store_id: VectorStoreId, c: ContainerDep, p: ProjectDep
) -> Any:
    await to_thread.run_sync(c.vector_stores.delete, p, vector_store_id)
    return {"id": vector_store_id, "object": "vector_store.deleted", "deleted": True}


@router.post("/{vector_store_id}/search")
async def search_vector_store(
    vector_store_id: VectorStoreId, req: SearchVectorStore, c: ContainerDep, p: ProjectDep
) -> Any:
    queries, results = await to_thread.run_sync(c.vector_stores.search, p, [vector_store_id], req)
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": results,
        "has_more": False,
        "next_page": None,
    }


@router.post("/{vector_store_id}/files")
async def create_vector_store_file(
    vector_store_id: VectorStoreId, req: CreateVectorStoreFile, c: ContainerDep, p: ProjectDep
) -> Any:
    f = await to_thread.run_sync(
        c.vector_stores.add_file,
        p,
        vector_store_id,
        req.file_id,
        req.attributes,
        req.chunking_strategy,
    )
    return wire(f)


@router.get("/{vector_store_id}/files")
async def list_vector_store_files(
    vector_store_id: VectorStoreId,
    c: ContainerDep,
    p: ProjectDep,
    limit: Limit = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
    filter: str | None = None,
) -> Any:
    items, more = await to_thread.run_sync(
        lambda: c.vector_stores.list_files(
            p,
            vector_store_id,
            limit=check_limit(limit),
            order=order,
            after=after,
            before=before,
            status=filter,
        )
    )
    return _page(items, more)


@router.get("/{vector_store_id}/files/{file_id}")
async def retrieve_vector_store_file(
    vector_store_id: VectorStoreId, file_id: FileId, c: ContainerDep, p: ProjectDep
) -> Any:
    f = await to_thread.run_sync(c.vector_stores.retrieve_file, p, vector_store_id, file_id)
    return wire(f)


@router.post("/{vector_store_id}/files/{file_id}")
async def update_vector_store_file(
    vector_store_id: VectorStoreId,
    file_id: FileId,
    req: UpdateVectorStoreFile,
    c: ContainerDep,
    p: ProjectDep,
) -> Any:
    f = await to_thread.run_sync(
        c.vector_stores.update_file, p, vector_store_id, file_id, req.attributes
    )
    return wire(f)


@router.delete("/{vector_store_id}/files/{file_id}")
async def delete_vector_store_file(
    vector_store_id: VectorStoreId, file_id: FileId, c: ContainerDep, p: ProjectDep
) -> Any:
    await to_thread.run_sync(c.vector_stores.delete_file, p, vector_store_id, file_id)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@router.get("/{vector_store_id}/files/{file_id}/content")
async def vector_store_file_content(
    vector_store_id: VectorStoreId, file_id: FileId, c: ContainerDep, p: ProjectDep
) -> Any:
    texts = await to_thread.run_sync(c.vector_stores.file_content, p, vector_store_id, file_id)
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": t} for t in texts],
        "has_more": False,
        "next_page": None,
    }


@router.post("/{vector_store_id}/file_batches")
async def create_file_batch(
    vector_store_id: VectorStoreId, req: CreateFileBatch, c: ContainerDep, p: ProjectDep
) -> Any:
    b = await to_thread.run_sync(c.vector_stores.create_batch, p, vector_store_id, req)
    return wire(b)


@router.get("/{vector_store_id}/file_batches/{batch_id}")
async def retrieve_file_batch(
    vector_store_id: VectorStoreId, batch_id: BatchId, c: ContainerDep, p: ProjectDep
) -> Any:
    b = await to_thread.run_sync(c.vector_stores.retrieve_batch, p, vector_store_id, batch_id)
    return wire(b)


@router.post("/{vector_store_id}/file_batches/{batch_id}/cancel")
async def cancel_file_batch(
    vector_store_id: VectorStoreId, batch_id: BatchId, c: ContainerDep, p: ProjectDep
) -> Any:
    b = await to_thread.run_sync(c.vector_stores.cancel_batch, p, vector_store_id, batch_id)
    return wire(b)


@router.get("/{vector_store_id}/file_batches/{batch_id}/files")
async def list_file_batch_files(
    vector_store_id: VectorStoreId,
    batch_id: BatchId,
    c: ContainerDep,
    p: ProjectDep,
    limit: Limit = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
    filter: str | None = None,
) -> Any:
    await to_thread.run_sync(c.vector_stores.retrieve_batch, p, vector_store_id, batch_id)
    items, more = await to_thread.run_sync(
        lambda: c.vector_stores.list_files(
            p,
            vector_store_id,
            limit=check_limit(limit),
            order=order,
            after=after,
            before=before,
            status=filter,
            batch_id=batch_id,
        )
    )
    return _page(items, more)
