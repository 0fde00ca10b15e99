"""/v1/vector_stores, its files, file batches and search."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import Order, check_limit, page
from kotae.schemas.vector_stores import (
    CreateFileBatch,
    CreateVectorStore,
    CreateVectorStoreFile,
    SearchVectorStore,
    UpdateVectorStore,
    UpdateVectorStoreFile,
)

router = APIRouter(prefix="/v1/vector_stores", tags=["vector_stores"])


def _page(items: list[Any], more: bool) -> dict[str, Any]:
    return page([i.model_dump(mode="json") for i in items], more)


@router.post("")
async def create_vector_store(req: CreateVectorStore, c: ContainerDep, p: ProjectDep) -> Any:
    return (await to_thread.run_sync(c.vector_stores.create, p, req)).model_dump(mode="json")


@router.get("")
async def list_vector_stores(
    c: ContainerDep,
    p: ProjectDep,
    limit: int = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
) -> Any:
    items, more = await to_thread.run_sync(
        c.vector_stores.list_stores, p, check_limit(limit), order, after, before
    )
    return _page(items, more)


@router.get("/{store_id}")
async def retrieve_vector_store(store_id: str, c: ContainerDep, p: ProjectDep) -> Any:
    return (await to_thread.run_sync(c.vector_stores.retrieve, p, store_id)).model_dump(mode="json")


@router.post("/{store_id}")
async def update_vector_store(
    store_id: str, req: UpdateVectorStore, c: ContainerDep, p: ProjectDep
) -> Any:
    return (await to_thread.run_sync(c.vector_stores.update, p, store_id, req)).model_dump(
        mode="json"
    )


@router.delete("/{store_id}")
async def delete_vector_store(store_id: str, c: ContainerDep, p: ProjectDep) -> Any:
    await to_thread.run_sync(c.vector_stores.delete, p, store_id)
    return {"id": store_id, "object": "vector_store.deleted", "deleted": True}


@router.post("/{store_id}/search")
async def search_vector_store(
    store_id: str, req: SearchVectorStore, c: ContainerDep, p: ProjectDep
) -> Any:
    queries, results = await to_thread.run_sync(c.vector_stores.search, p, [store_id], req)
    return {
        "object": "vector_store.search_results.page",
        "search_query": queries,
        "data": results,
        "has_more": False,
        "next_page": None,
    }


@router.post("/{store_id}/files")
async def create_vector_store_file(
    store_id: str, req: CreateVectorStoreFile, c: ContainerDep, p: ProjectDep
) -> Any:
    f = await to_thread.run_sync(
        c.vector_stores.add_file, p, store_id, req.file_id, req.attributes, req.chunking_strategy
    )
    return f.model_dump(mode="json")


@router.get("/{store_id}/files")
async def list_vector_store_files(
    store_id: str,
    c: ContainerDep,
    p: ProjectDep,
    limit: int = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
    filter: str | None = None,
) -> Any:
    items, more = await to_thread.run_sync(
        lambda: c.vector_stores.list_files(
            p,
            store_id,
            limit=check_limit(limit),
            order=order,
            after=after,
            before=before,
            status=filter,
        )
    )
    return _page(items, more)


@router.get("/{store_id}/files/{file_id}")
async def retrieve_vector_store_file(
    store_id: str, file_id: str, c: ContainerDep, p: ProjectDep
) -> Any:
    f = await to_thread.run_sync(c.vector_stores.retrieve_file, p, store_id, file_id)
    return f.model_dump(mode="json")


@router.post("/{store_id}/files/{file_id}")
async def update_vector_store_file(
    store_id: str, file_id: str, req: UpdateVectorStoreFile, c: ContainerDep, p: ProjectDep
) -> Any:
    f = await to_thread.run_sync(c.vector_stores.update_file, p, store_id, file_id, req.attributes)
    return f.model_dump(mode="json")


@router.delete("/{store_id}/files/{file_id}")
async def delete_vector_store_file(
    store_id: str, file_id: str, c: ContainerDep, p: ProjectDep
) -> Any:
    await to_thread.run_sync(c.vector_stores.delete_file, p, store_id, file_id)
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@router.get("/{store_id}/files/{file_id}/content")
async def vector_store_file_content(
    store_id: str, file_id: str, c: ContainerDep, p: ProjectDep
) -> Any:
    texts = await to_thread.run_sync(c.vector_stores.file_content, p, store_id, file_id)
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": t} for t in texts],
        "has_more": False,
        "next_page": None,
    }


@router.post("/{store_id}/file_batches")
async def create_file_batch(
    store_id: str, req: CreateFileBatch, c: ContainerDep, p: ProjectDep
) -> Any:
    b = await to_thread.run_sync(c.vector_stores.create_batch, p, store_id, req)
    return b.model_dump(mode="json")


@router.get("/{store_id}/file_batches/{batch_id}")
async def retrieve_file_batch(store_id: str, batch_id: str, c: ContainerDep, p: ProjectDep) -> Any:
    b = await to_thread.run_sync(c.vector_stores.retrieve_batch, p, store_id, batch_id)
    return b.model_dump(mode="json")


@router.post("/{store_id}/file_batches/{batch_id}/cancel")
async def cancel_file_batch(store_id: str, batch_id: str, c: ContainerDep, p: ProjectDep) -> Any:
    b = await to_thread.run_sync(c.vector_stores.cancel_batch, p, store_id, batch_id)
    return b.model_dump(mode="json")


@router.get("/{store_id}/file_batches/{batch_id}/files")
async def list_file_batch_files(
    store_id: str,
    batch_id: str,
    c: ContainerDep,
    p: ProjectDep,
    limit: int = 20,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
    filter: str | None = None,
) -> Any:
    await to_thread.run_sync(c.vector_stores.retrieve_batch, p, store_id, batch_id)
    items, more = await to_thread.run_sync(
        lambda: c.vector_stores.list_files(
            p,
            store_id,
            limit=check_limit(limit),
            order=order,
            after=after,
            before=before,
            status=filter,
            batch_id=batch_id,
        )
    )
    return _page(items, more)
