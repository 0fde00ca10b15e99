"""VectorStoresService: stores, their files and batches, search, and background ingestion."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from openai.types import VectorStore
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch

from kotae import faults, ids
from kotae.errors import InvalidRequest, KotaeError, NotFound
from kotae.providers.embeddings.base import Embedder
from kotae.providers.vector_index.base import IndexedChunk, VectorIndex
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
    chunk_text,
    lexical_terms,
)
from kotae.services.vector_stores.extract import InvalidFile, UnsupportedFile, extract_text
from kotae.services.vector_stores.search import (
    Hit,
    check_filter,
    matches,
    search_query,
)
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
        self._files = files
        self._file_rows = file_rows
        self._embedder = embedder
        self._index = index
        self._queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        files.on_delete.append(self._forget_file)
        self.owner = secrets.token_hex(8)  # this process, as the ingester of what it holds
        self._lease_seconds = lease_seconds
        self._queued: set[tuple[str, str]] = set()
        self._leases: asyncio.Task[None] | None = None

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
            self._enqueue((project_id, store_id, file_id))
        return row

    def _enqueue(self, job: tuple[str, str, str]) -> None:
        # Service methods run in worker threads; the queue belongs to the event loop. Not
        # started (an API replica without a worker): the row alone is the work, and a
        # `kotae worker` takes it.
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._put, job)

    def _put(self, job: tuple[str, str, str]) -> None:
        """Queued once: a file already waiting here is not queued again."""
        if (job[1], job[2]) not in self._queued:
            self._queued.add((job[1], job[2]))
            self._queue.put_nowait(job)

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
        queries = [req.query] if isinstance(req.query, str) else list(req.query)
        for store_id, row in zip(store_ids, rows, strict=True):
            self.touch(store_id, row)
        k = req.max_num_results
        wide = max(k * 5, 50)
        vectors = self._embedder.embed(queries, "query")
        ranking = req.ranking_options
        chosen = _chosen_text_weight(ranking.hybrid_search if ranking else None)
        best: dict[int, float] = {}
        # Each query fused on its own; a chunk several queries find keeps its best score.
        for q, vector in zip(queries, vectors, strict=True):
            for hit in search_query(self._index, store_ids, vector, q, wide, chosen):
                best[hit.chunk_id] = max(hit.score, best.get(hit.chunk_id, 0.0))
        hits = sorted((Hit(c, s) for c, s in best.items()), key=lambda h: (-h.score, h.chunk_id))
        chunks = self._repo.chunks([h.chunk_id for h in hits])
        threshold = ranking.score_threshold if ranking and ranking.score_threshold else 0.0
        file_rows: dict[tuple[str, str], dict[str, Any] | None] = {}
        names = {}
        results = []
        for hit in hits:
            chunk = chunks.get(hit.chunk_id)
            if chunk is None or hit.score < threshold:
                continue
            key = (chunk["store_id"], chunk["file_id"])
            if key not in file_rows:
                file_rows[key] = self._repo.get_file(*key)
            store_file = file_rows[key]
            if store_file is None or store_file["status"] != "completed":
                continue
            attributes = store_file["attributes"] or {}
            if req.filters is not None and not matches(req.filters, attributes):
                continue
            if chunk["file_id"] not in names:
                f = self._file_rows.get(project_id, chunk["file_id"])
                names[chunk["file_id"]] = f["filename"] if f else chunk["file_id"]
            results.append(
                {
                    "file_id": chunk["file_id"],
                    "filename": names[chunk["file_id"]],
                    "score": round(min(hit.score, 1.0), 6),
                    "attributes": attributes,
                    "content": [{"type": "text", "text": chunk["text"]}],
                }
            )
            if len(results) == k:
                break
        return queries, results

    # -- ingestion ---------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the worker, and requeues what a stop left in progress, and any file marked
        completed whose chunks the index lacks (left by versions that completed it first)."""
        self._loop = asyncio.get_running_loop()
        for store_id, file_id, chunk_id in self._repo.first_chunks():
            if not self._index.has_chunk(chunk_id):
                log.warning("re-ingesting %s in %s: its chunks were not indexed", file_id, store_id)
                self._repo.update_file(
                    store_id,
                    file_id,
                    {"status": "in_progress", "owner": None, "lease_expires_at": None},
                )
        self._worker = asyncio.create_task(self._work())
        for job in self._repo.pending():
            self._put(job)
        self._leases = asyncio.create_task(self._keep_leases())

    async def _keep_leases(self) -> None:
        """Renews the leases of the files this process ingests, and takes over the ones whose
        ingester died (their lease lapsed): ingesting again replaces their chunks."""
        while True:
            await asyncio.sleep(max(0.2, self._lease_seconds / 3))
            try:
                await asyncio.to_thread(self._repo.renew, self.owner, self._lease_seconds)
                for job in await asyncio.to_thread(self._repo.pending):
                    self._put(job)
            except Exception:
                log.exception("renewing ingestion leases failed")

    async def stop(self) -> None:
        tasks = [t for t in (self._worker, self._leases) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            project_id, store_id, file_id = await self._queue.get()
            try:
                await asyncio.to_thread(self._ingest, project_id, store_id, file_id)
            except Exception:
                log.exception("ingesting %s into %s failed", file_id, store_id)
            finally:
                self._queued.discard((store_id, file_id))
                self._queue.task_done()

    def _ingest(self, project_id: str, store_id: str, file_id: str) -> None:
        row = self._repo.get_file(store_id, file_id)
        if row is None or row["status"] != "in_progress":
            return
        if not self._repo.claim_file(store_id, file_id, self.owner, self._lease_seconds):
            return  # another live process is ingesting it
        try:
            file_row = self._file_rows.get(project_id, file_id)
            if file_row is None:
                raise InvalidFile("The file was deleted before it could be read.")
            text = extract_text(file_row["filename"], self._files.read_all(file_row))
            static = row["chunking"]["static"]
            texts = chunk_text(
                text, static["max_chunk_size_tokens"], static["chunk_overlap_tokens"]
            )
            vectors = self._embedder.embed(texts, "passage")
        except KotaeError as exc:
            code = (
                "unsupported_file"
                if isinstance(exc, UnsupportedFile)
                else "invalid_file"
                if isinstance(exc, InvalidFile)
                else "server_error"
            )
            self._fail(store_id, file_id, code, exc.message)
            return
        except Exception as exc:
            self._fail(store_id, file_id, "server_error", f"Ingestion failed: {exc}")
            raise
        usage = sum(len(t.encode()) for t in texts)
        if self._index.in_state_db:
            self._commit_at_once(store_id, file_id, texts, vectors, usage)
            return
        # Two databases (SQLite + sqlite-vec's own file), so the order that survives a kill
        # anywhere: chunks (replacing an interrupted try's), then the index, then "completed"
        # last. Killed before the end, the file is still in progress and is ingested again.
        replaced = self._repo.replace_chunks(store_id, file_id, texts)
        if replaced is None:
            return  # removed or cancelled meanwhile
        chunk_ids, old_ids = replaced
        faults.point("ingest.after_chunks")
        try:
            self._index.delete_chunks(old_ids)
            self._index.add(
                store_id,
                file_id,
                [
                    IndexedChunk(cid, lexical_terms(t), v)
                    for cid, t, v in zip(chunk_ids, texts, vectors, strict=True)
                ],
            )
        except Exception as exc:
            self._index.delete_chunks(chunk_ids)
            self._repo.clear_chunks(store_id, file_id)
            self._fail(store_id, file_id, "server_error", f"Indexing failed: {exc}")
            raise
        faults.point("ingest.after_index")
        if not self._repo.complete_file(store_id, file_id, usage):
            self._index.delete_chunks(chunk_ids)  # removed or cancelled meanwhile
            self._repo.clear_chunks(store_id, file_id)

    def _commit_at_once(
        self,
        store_id: str,
        file_id: str,
        texts: list[str],
        vectors: Any,
        usage: int,
    ) -> None:
        """The index in the state database (pgvector): chunks, index rows and "completed" in
        one transaction. Killed or failing anywhere before the commit, nothing of this try
        is visible and the file is still in progress (ingested again)."""
        try:
            with self._repo.transaction() as conn:
                replaced = self._repo.replace_chunks(store_id, file_id, texts, conn)
                if replaced is None:
                    return  # removed or cancelled meanwhile
                chunk_ids, old_ids = replaced
                faults.point("ingest.after_chunks")
                self._index.delete_chunks(old_ids, conn)
                self._index.add(
                    store_id,
                    file_id,
                    [
                        IndexedChunk(cid, lexical_terms(t), v)
                        for cid, t, v in zip(chunk_ids, texts, vectors, strict=True)
                    ],
                    conn,
                )
                faults.point("ingest.after_index")
                if not self._repo.complete_file(store_id, file_id, usage, conn):
                    raise _Gone  # removed or cancelled meanwhile: roll back
        except _Gone:
            return
        except Exception as exc:
            self._fail(store_id, file_id, "server_error", f"Indexing failed: {exc}")
            raise

    def _fail(self, store_id: str, file_id: str, code: str, message: str) -> None:
        self._repo.update_file(
            store_id,
            file_id,
            {
                "status": "failed",
                "last_error": {"code": code, "message": message},
                "owner": None,
                "lease_expires_at": None,
            },
        )


class _Gone(Exception):
    """The file left the store while it was ingested: its transaction rolls back."""


def _counts(counts: dict[str, int]) -> dict[str, int]:
    keys = ("in_progress", "completed", "failed", "cancelled")
    out = {k: counts.get(k, 0) for k in keys}
    out["total"] = sum(out.values())
    return out


def _chosen_text_weight(hybrid: dict[str, Any] | None) -> float | None:
    """`ranking_options.hybrid_search` weights as the text share, or None (kotae's own,
    query-aware weight). A weight left out counts 1."""
    if not hybrid:
        return None
    try:
        dense = float(hybrid.get("embedding_weight", 1.0))
        text = float(hybrid.get("text_weight", 1.0))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(
            "hybrid_search weights must be numbers.", param="ranking_options.hybrid_search"
        ) from exc
    if dense < 0 or text < 0 or dense + text <= 0:
        raise InvalidRequest(
            "hybrid_search weights must be non-negative and not both 0.",
            param="ranking_options.hybrid_search",
        )
    return text / (dense + text)
