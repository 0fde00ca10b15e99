"""VectorStoresService: stores, their files and batches, and search. Files are ingested in the
background by `ingestion.py`; retrieval is `search.py`."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from openai.types import VectorStore
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch

from kotae import ids
from kotae.errors import InvalidRequest, NotFound
from kotae.providers.embeddings.base import Embedder
from kotae.providers.vector_index.base import VectorIndex
from kotae.schemas.vector_stores import (
    ChunkingStrategy,
    CreateFileBatch,
    CreateVectorStore,
    SearchVectorStore,
    UpdateVectorStore,
)
from kotae.services.files import FilesService
from kotae.services.vector_stores.chunking import (
    AUTO_MAX_TOKENS,
    AUTO_OVERLAP,
)
from kotae.services.vector_stores.ingestion import Ingestion
from kotae.services.vector_stores.search import check_filter, search_stores
from kotae.storage.repositories.files import FileRepository
from kotae.storage.repositories.paging import cursor_page
from kotae.storage.repositories.vector_stores import VectorStoreRepository

log = logging.getLogger("kotae.ingestion")
DAY = 86400


def chunking_dict(strategy: ChunkingStrategy | None) -> dict[str, Any]:
    if strategy is None or strategy.type == "auto":
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": AUTO_MAX_TOKENS,
                "chunk_overlap_tokens": AUTO_OVERLAP,
            },
        }
    if strategy.static is None:
        raise InvalidRequest(
            "A static chunking strategy needs its sizes.", param="chunking_strategy.static"
        )
    size, overlap = strategy.static.max_chunk_size_tokens, strategy.static.chunk_overlap_tokens
    if overlap > size // 2:
        raise InvalidRequest(
            "chunk_overlap_tokens may be at most half of max_chunk_size_tokens.",
            param="chunking_strategy.static.chunk_overlap_tokens",
        )
    return {
        "type": "static",
        "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap},
    }


class VectorStoresService:
    def __init__(
        self,
        repo: VectorStoreRepository,
        files: FilesService,
        file_rows: FileRepository,
        embedder: Embedder,
        index: VectorIndex,
        lease_seconds: int = 30,
    ) -> None:
        self._repo = repo
        self._file_rows = file_rows
        self._embedder = embedder
        self._index = index
        files.on_delete.append(self._forget_file)
        self._ingestion = Ingestion(repo, files, file_rows, embedder, index, lease_seconds)

    # -- objects -----------------------------------------------------------------------------

    def _store_object(self, row: dict[str, Any]) -> VectorStore:
        counts, usage = self._repo.stats(row["id"])
        expired = row["expires_at"] is not None and row["expires_at"] <= time.time()
        status = (
            "expired" if expired else ("in_progress" if counts.get("in_progress") else "completed")
        )
        return VectorStore.model_validate(
            {
                "id": row["id"],
                "object": "vector_store",
                "name": row["name"],
                "created_at": row["created_at"],
                "last_active_at": row["last_active_at"],
                "metadata": row["metadata"],
                "status": status,
                "usage_bytes": usage,
                "expires_at": row["expires_at"],
                "file_counts": _counts(counts),
                # Optional, never null in OpenAI's schema.
                **({"expires_after": row["expires_after"]} if row["expires_after"] else {}),
            }
        )

    @staticmethod
    def _file_object(row: dict[str, Any]) -> VectorStoreFile:
        return VectorStoreFile.model_validate(
            {
                "id": row["file_id"],
                "object": "vector_store.file",
                "created_at": row["created_at"],
                "vector_store_id": row["store_id"],
                "status": row["status"],
                "usage_bytes": row["usage_bytes"],
                "last_error": row["last_error"],
                "attributes": row["attributes"],
                "chunking_strategy": row["chunking"],
            }
        )

    def _batch_object(self, row: dict[str, Any]) -> VectorStoreFileBatch:
        counts = self._repo.batch_counts(row["id"])
        if row["cancelled"]:
            status = "cancelled"
        elif counts.get("in_progress"):
            status = "in_progress"
        elif counts and counts.get("failed") == sum(counts.values()):
            status = "failed"
        else:
            status = "completed"
        return VectorStoreFileBatch.model_validate(
            {
                "id": row["id"],
                "object": "vector_store.files_batch",
                "created_at": row["created_at"],
                "vector_store_id": row["store_id"],
                "status": status,
                "file_counts": _counts(counts),
            }
        )

    # -- stores ------------------------------------------------------------------------------

    def _store_row(self, project_id: str, store_id: str) -> dict[str, Any]:
        row = self._repo.get_store(project_id, store_id)
        if row is None:
            raise NotFound(f"No vector store found with id '{store_id}'.", param="vector_store_id")
        return row

    def create(self, project_id: str, req: CreateVectorStore) -> VectorStore:
        chunking = chunking_dict(req.chunking_strategy)
        file_ids = list(dict.fromkeys(req.file_ids or []))
        self._check_files(project_id, file_ids)
        now = int(time.time())
        row = {
            "id": ids.new_id("vs")[:27],
            "project_id": project_id,
            "name": req.name or "",
            "created_at": now,
            "last_active_at": now,
            "metadata": req.metadata or {},
            "expires_after": req.expires_after.model_dump() if req.expires_after else None,
            "expires_at": now + req.expires_after.days * DAY if req.expires_after else None,
        }
        self._repo.create_store(row)
        for file_id in file_ids:
            self._add_file(project_id, str(row["id"]), file_id, {}, chunking, None)
        return self._store_object(row)

    async def wait_ingested(self, store_ids: list[str], timeout: float) -> None:
        """Waits (up to `timeout`) for files still being ingested, so a question asked right
        after adding a file, as tutorials do, sees it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = [(await asyncio.to_thread(self._repo.stats, s))[0] for s in store_ids]
            if not any(c.get("in_progress") for c in counts):
                return
            await asyncio.sleep(0.1)

    def check_store(self, project_id: str, store_id: str, param: str) -> None:
        if self._repo.get_store(project_id, store_id) is None:
            raise NotFound(f"Vector store with id '{store_id}' not found.", param=param)

    def retrieve(self, project_id: str, store_id: str) -> VectorStore:
        return self._store_object(self._store_row(project_id, store_id))

    def list_stores(
        self, project_id: str, limit: int, order: str, after: str | None, before: str | None
    ) -> tuple[list[VectorStore], bool]:
        rows, more = cursor_page(
            self._repo.list_stores(project_id, order), "id", limit, after, before
        )
        return [self._store_object(r) for r in rows], more

    def update(self, project_id: str, store_id: str, req: UpdateVectorStore) -> VectorStore:
        row = self._store_row(project_id, store_id)
        values: dict[str, Any] = {}
        fields = req.model_fields_set
        if "name" in fields:
            values["name"] = req.name or ""
        if "metadata" in fields:
            values["metadata"] = req.metadata or {}
        if "expires_after" in fields:
            exp = req.expires_after
            values["expires_after"] = exp.model_dump() if exp else None
            values["expires_at"] = row["last_active_at"] + exp.days * DAY if exp else None
        if values:
            self._repo.update_store(store_id, values)
        return self.retrieve(project_id, store_id)

    def delete(self, project_id: str, store_id: str) -> None:
        self._store_row(project_id, store_id)
        self._index.delete_chunks(self._repo.delete_store(store_id))

    def touch(self, store_id: str, row: dict[str, Any]) -> None:
        now = int(time.time())
        values: dict[str, Any] = {"last_active_at": now}
        if row["expires_after"]:
            values["expires_at"] = now + int(row["expires_after"]["days"]) * DAY
        self._repo.update_store(store_id, values)

    # -- files -------------------------------------------------------------------------------

    def _check_files(self, project_id: str, file_ids: list[str]) -> None:
        found = self._file_rows.get_many(project_id, file_ids)
        for i, file_id in enumerate(file_ids):
            if file_id not in found:
                raise NotFound(f"No file found with id '{file_id}'.", param=f"file_ids[{i}]")

    def _add_file(
        self,
        project_id: str,
        store_id: str,
        file_id: str,
        attributes: dict[str, Any],
        chunking: dict[str, Any],
        batch_id: str | None,
    ) -> dict[str, Any]:
        row = self._repo.add_file(
            {
                "store_id": store_id,
                "file_id": file_id,
                "project_id": project_id,
                "batch_id": batch_id,
                "status": "in_progress",
                "created_at": int(time.time()),
                "attributes": attributes,
                "chunking": chunking,
                "last_error": None,
                "usage_bytes": 0,
            }
        )
        if row["status"] == "in_progress" and row.get("batch_id") == batch_id:
            self._ingestion.enqueue((project_id, store_id, file_id))
        return row

    def add_file(
        self,
        project_id: str,
        store_id: str,
        file_id: str,
        attributes: dict[str, Any] | None,
        strategy: ChunkingStrategy | None,
    ) -> VectorStoreFile:
        self._store_row(project_id, store_id)
        if self._file_rows.get(project_id, file_id) is None:
            raise NotFound(f"No file found with id '{file_id}'.", param="file_id")
        row = self._add_file(
            project_id, store_id, file_id, attributes or {}, chunking_dict(strategy), None
        )
        return self._file_object(row)

    def _file_row(self, project_id: str, store_id: str, file_id: str) -> dict[str, Any]:
        self._store_row(project_id, store_id)
        row = self._repo.get_file(store_id, file_id)
        if row is None:
            raise NotFound(
                f"No file found with id '{file_id}' in vector store '{store_id}'.", param="file_id"
            )
        return row

    def retrieve_file(self, project_id: str, store_id: str, file_id: str) -> VectorStoreFile:
        return self._file_object(self._file_row(project_id, store_id, file_id))

    def list_files(
        self,
        project_id: str,
        store_id: str,
        *,
        limit: int,
        order: str,
        after: str | None,
        before: str | None,
        status: str | None,
        batch_id: str | None = None,
    ) -> tuple[list[VectorStoreFile], bool]:
        self._store_row(project_id, store_id)
        rows, more = cursor_page(
            self._repo.list_files(store_id, order, status, batch_id),
            "file_id",
            limit,
            after,
            before,
        )
        return [self._file_object(r) for r in rows], more

    def update_file(
        self, project_id: str, store_id: str, file_id: str, attributes: dict[str, Any] | None
    ) -> VectorStoreFile:
        self._file_row(project_id, store_id, file_id)
        self._repo.update_file(store_id, file_id, {"attributes": attributes or {}})
        return self.retrieve_file(project_id, store_id, file_id)

    def delete_file(self, project_id: str, store_id: str, file_id: str) -> None:
        self._file_row(project_id, store_id, file_id)
        self._index.delete_chunks(self._repo.delete_file(store_id, file_id))

    def file_content(self, project_id: str, store_id: str, file_id: str) -> list[str]:
        self._file_row(project_id, store_id, file_id)
        return self._repo.file_chunks(store_id, file_id)

    def _forget_file(self, project_id: str, file_id: str) -> None:
        """A deleted file leaves every store of its project."""
        for store_id in self._repo.stores_with_file(project_id, file_id):
            self._index.delete_chunks(self._repo.delete_file(store_id, file_id))

    # -- batches -----------------------------------------------------------------------------

    def create_batch(
        self, project_id: str, store_id: str, req: CreateFileBatch
    ) -> VectorStoreFileBatch:
        self._store_row(project_id, store_id)
        if bool(req.file_ids) == bool(req.files):
            raise InvalidRequest("Give either file_ids or files.", param="file_ids")
        entries = [(f, req.attributes or {}, req.chunking_strategy) for f in (req.file_ids or [])]
        entries += [
            (f.file_id, f.attributes or {}, f.chunking_strategy or req.chunking_strategy)
            for f in (req.files or [])
        ]
        self._check_files(project_id, [e[0] for e in entries])
        batch_id = ids.new_id("vsfb")[:29]
        batch: dict[str, Any] = {
            "id": batch_id,
            "store_id": store_id,
            "project_id": project_id,
            "created_at": int(time.time()),
            "cancelled": False,
        }
        self._repo.create_batch(batch)
        for file_id, attributes, strategy in entries:
            self._add_file(
                project_id, store_id, file_id, attributes, chunking_dict(strategy), batch_id
            )
        return self._batch_object(batch)

    def _batch_row(self, project_id: str, store_id: str, batch_id: str) -> dict[str, Any]:
        self._store_row(project_id, store_id)
        row = self._repo.get_batch(store_id, batch_id)
        if row is None:
            raise NotFound(f"No file batch found with id '{batch_id}'.", param="batch_id")
        return row

    def retrieve_batch(self, project_id: str, store_id: str, batch_id: str) -> VectorStoreFileBatch:
        return self._batch_object(self._batch_row(project_id, store_id, batch_id))

    def cancel_batch(self, project_id: str, store_id: str, batch_id: str) -> VectorStoreFileBatch:
        self._batch_row(project_id, store_id, batch_id)
        self._repo.cancel_batch(batch_id)
        return self.retrieve_batch(project_id, store_id, batch_id)

    # -- search ------------------------------------------------------------------------------

    def search(
        self, project_id: str, store_ids: list[str], req: SearchVectorStore
    ) -> tuple[list[str], list[dict[str, Any]]]:
        rows = [self._store_row(project_id, s) for s in store_ids]
        if req.filters is not None:
            check_filter(req.filters)
        for store_id, row in zip(store_ids, rows, strict=True):
            self.touch(store_id, row)
        return search_stores(
            self._repo, self._file_rows, self._embedder, self._index, project_id, store_ids, req
        )

    # -- ingestion (ingestion.py) ----------------------------------------------------------

    @property
    def owner(self) -> str:
        return self._ingestion.owner

    def start(self) -> None:
        self._ingestion.start()

    async def stop(self) -> None:
        await self._ingestion.stop()

    async def idle(self) -> None:
        await self._ingestion.idle()


def _counts(counts: dict[str, int]) -> dict[str, int]:
    keys = ("in_progress", "completed", "failed", "cancelled")
    out = {k: counts.get(k, 0) for k in keys}
    out["total"] = sum(out.values())
    return out
