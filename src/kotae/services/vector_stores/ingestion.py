"""Ingestion: files added to a vector store read, chunked, embedded and indexed in the
background, one at a time per process, each under a lease so that another process takes over
a file whose ingester died."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from kotae import faults
from kotae.errors import KotaeError
from kotae.providers.embeddings.base import Embedder
from kotae.providers.vector_index.base import IndexedChunk, VectorIndex
from kotae.services.files import FilesService
from kotae.services.vector_stores.chunking import chunk_text, lexical_terms
from kotae.services.vector_stores.extract import InvalidFile, UnsupportedFile, extract_text
from kotae.storage.repositories.files import FileRepository
from kotae.storage.repositories.vector_stores import VectorStoreRepository

log = logging.getLogger("kotae.ingestion")


class Ingestion:
    def __init__(
        self,
        repo: VectorStoreRepository,
        files: FilesService,
        file_rows: FileRepository,
        embedder: Embedder,
        index: VectorIndex,
        lease_seconds: int,
    ) -> None:
        self._repo = repo
        self._files = files
        self._file_rows = file_rows
        self._embedder = embedder
        self._index = index
        self._lease_seconds = lease_seconds
        self._queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.owner = secrets.token_hex(8)  # this process, as the ingester of what it holds
        self._queued: set[tuple[str, str]] = set()
        self._leases: asyncio.Task[None] | None = None

    def enqueue(self, job: tuple[str, str, str]) -> None:
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
