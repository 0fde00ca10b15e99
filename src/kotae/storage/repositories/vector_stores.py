"""Vector stores, their files, batches and chunk texts (Core statements)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, delete, func, select, update

from kotae.storage import leases
from kotae.storage.engine import within
from kotae.storage.orm import (
    VectorStore,
    VectorStoreChunk,
    VectorStoreFile,
    VectorStoreFileBatch,
)

STORES = cast(Table, VectorStore.__table__)
FILES = cast(Table, VectorStoreFile.__table__)
BATCHES = cast(Table, VectorStoreFileBatch.__table__)
CHUNKS = cast(Table, VectorStoreChunk.__table__)


class VectorStoreRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def transaction(self) -> AbstractContextManager[Connection]:
        """One transaction for several writes (ingestion on PostgreSQL + pgvector)."""
        return self._engine.begin()

    # -- stores ------------------------------------------------------------------------------

    def create_store(self, row: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(STORES.insert(), row)

    def get_store(self, project_id: str, store_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(STORES).where(STORES.c.id == store_id, STORES.c.project_id == project_id)
            ).first()
        return dict(row._mapping) if row else None

    def list_stores(self, project_id: str, order: str) -> list[dict[str, Any]]:
        keys = (STORES.c.created_at, STORES.c.id)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(STORES)
                .where(STORES.c.project_id == project_id)
                .order_by(*(k.desc() for k in keys) if order == "desc" else keys)
            ).all()
        return [dict(r._mapping) for r in rows]

    def update_store(self, store_id: str, values: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(STORES).where(STORES.c.id == store_id).values(**values))

    def delete_store(self, store_id: str) -> list[int]:
        """Removes the store and its rows; returns the chunk ids to drop from the index."""
        with self._engine.begin() as conn:
            chunk_ids = [
                r.id for r in conn.execute(select(CHUNKS.c.id).where(CHUNKS.c.store_id == store_id))
            ]
            conn.execute(delete(CHUNKS).where(CHUNKS.c.store_id == store_id))
            conn.execute(delete(FILES).where(FILES.c.store_id == store_id))
            conn.execute(delete(BATCHES).where(BATCHES.c.store_id == store_id))
            conn.execute(delete(STORES).where(STORES.c.id == store_id))
        return chunk_ids

    def stats(self, store_id: str) -> tuple[dict[str, int], int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    FILES.c.status, func.count(), func.coalesce(func.sum(FILES.c.usage_bytes), 0)
                )
                .where(FILES.c.store_id == store_id)
                .group_by(FILES.c.status)
            ).all()
        counts = {r[0]: int(r[1]) for r in rows}
        return counts, sum(int(r[2]) for r in rows)

    # -- files -------------------------------------------------------------------------------

    def get_file(self, store_id: str, file_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(FILES).where(FILES.c.store_id == store_id, FILES.c.file_id == file_id)
            ).first()
        return dict(row._mapping) if row else None

    def add_file(self, row: dict[str, Any]) -> dict[str, Any]:
        """Adds the file; a file already in the store is left as it is and returned."""
        with self._engine.begin() as conn:
            existing = conn.execute(
                select(FILES).where(
                    FILES.c.store_id == row["store_id"], FILES.c.file_id == row["file_id"]
                )
            ).first()
            if existing is not None:
                return dict(existing._mapping)
            conn.execute(FILES.insert(), row)
        return row

    def list_files(
        self, store_id: str, order: str, status: str | None, batch_id: str | None
    ) -> list[dict[str, Any]]:
        keys = (FILES.c.created_at, FILES.c.file_id)
        query = select(FILES).where(FILES.c.store_id == store_id)
        if status:
            query = query.where(FILES.c.status == status)
        if batch_id:
            query = query.where(FILES.c.batch_id == batch_id)
        with self._engine.connect() as conn:
            rows = conn.execute(
                query.order_by(*(k.desc() for k in keys) if order == "desc" else keys)
            ).all()
        return [dict(r._mapping) for r in rows]

    def update_file(self, store_id: str, file_id: str, values: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(FILES)
                .where(FILES.c.store_id == store_id, FILES.c.file_id == file_id)
                .values(**values)
            )

    def replace_chunks(
        self, store_id: str, file_id: str, texts: list[str], conn: Connection | None = None
    ) -> tuple[list[int], list[int]] | None:
        """A file's chunks, replacing any an interrupted ingestion left (so ingesting again
        is safe). The file stays in progress: it is completed only once the index has the
        chunks. None when it was removed or cancelled meanwhile; else (new ids, old ids)."""
        with within(self._engine, conn) as conn:
            status = conn.execute(
                select(FILES.c.status).where(
                    FILES.c.store_id == store_id, FILES.c.file_id == file_id
                )
            ).scalar()
            if status != "in_progress":
                return None
            where = (CHUNKS.c.store_id == store_id, CHUNKS.c.file_id == file_id)
            old = [r.id for r in conn.execute(select(CHUNKS.c.id).where(*where))]
            conn.execute(delete(CHUNKS).where(*where))
            ids = []
            for position, text in enumerate(texts):
                result = conn.execute(
                    CHUNKS.insert().values(
                        store_id=store_id, file_id=file_id, position=position, text=text
                    )
                )
                ids.append(int(result.inserted_primary_key[0]))  # type: ignore[index]
        return ids, old

    def complete_file(
        self, store_id: str, file_id: str, usage_bytes: int, conn: Connection | None = None
    ) -> bool:
        """Marks an ingested file completed (the last write: search finds it from now on);
        False when it was removed or cancelled meanwhile."""
        with within(self._engine, conn) as conn:
            result = conn.execute(
                update(FILES)
                .where(
                    FILES.c.store_id == store_id,
                    FILES.c.file_id == file_id,
                    FILES.c.status == "in_progress",
                )
                .values(
                    status="completed", usage_bytes=usage_bytes, owner=None, lease_expires_at=None
                )
            )
        return bool(getattr(result, "rowcount", 0))

    def first_chunks(self) -> list[tuple[str, str, int]]:
        """(store, file, its first chunk id) for each completed file that has chunks."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(CHUNKS.c.store_id, CHUNKS.c.file_id, func.min(CHUNKS.c.id))
                .join(
                    FILES,
                    (FILES.c.store_id == CHUNKS.c.store_id) & (FILES.c.file_id == CHUNKS.c.file_id),
                )
                .where(FILES.c.status == "completed")
                .group_by(CHUNKS.c.store_id, CHUNKS.c.file_id)
            ).all()
        return [(r[0], r[1], int(r[2])) for r in rows]

    def delete_file(self, store_id: str, file_id: str) -> list[int]:
        with self._engine.begin() as conn:
            chunk_ids = [
                r.id
                for r in conn.execute(
                    select(CHUNKS.c.id).where(
                        CHUNKS.c.store_id == store_id, CHUNKS.c.file_id == file_id
                    )
                )
            ]
            conn.execute(
                delete(CHUNKS).where(CHUNKS.c.store_id == store_id, CHUNKS.c.file_id == file_id)
            )
            conn.execute(
                delete(FILES).where(FILES.c.store_id == store_id, FILES.c.file_id == file_id)
            )
        return chunk_ids

    def clear_chunks(self, store_id: str, file_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(CHUNKS).where(CHUNKS.c.store_id == store_id, CHUNKS.c.file_id == file_id)
            )

    def stores_with_file(self, project_id: str, file_id: str) -> list[str]:
        with self._engine.connect() as conn:
            return [
                r.store_id
                for r in conn.execute(
                    select(FILES.c.store_id).where(
                        FILES.c.project_id == project_id, FILES.c.file_id == file_id
                    )
                )
            ]

    def pending(self) -> list[tuple[str, str, str]]:
        """(project, store, file) of files waiting for ingestion that no live process holds
        (new, or their ingester died: ingesting again is safe)."""
        with self._engine.connect() as conn:
            return [
                (r.project_id, r.store_id, r.file_id)
                for r in conn.execute(
                    select(FILES.c.project_id, FILES.c.store_id, FILES.c.file_id)
                    .where(FILES.c.status == "in_progress", leases.lapsed(FILES))
                    .order_by(FILES.c.created_at)
                )
            ]

    def claim_file(self, store_id: str, file_id: str, owner: str, seconds: int) -> bool:
        """Takes a file to ingest, unless another live process holds it."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(FILES)
                .where(
                    FILES.c.store_id == store_id,
                    FILES.c.file_id == file_id,
                    FILES.c.status == "in_progress",
                    leases.takeable(FILES, owner),
                )
                .values(**leases.held(owner, seconds))
            )
        return bool(getattr(result, "rowcount", 0))

    def renew(self, owner: str, seconds: int) -> int:
        return leases.renew(self._engine, FILES, owner, seconds, "in_progress")

    # -- chunks ------------------------------------------------------------------------------

    def chunks(self, chunk_ids: list[int]) -> dict[int, dict[str, Any]]:
        if not chunk_ids:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(select(CHUNKS).where(CHUNKS.c.id.in_(chunk_ids))).all()
        return {r.id: dict(r._mapping) for r in rows}

    def file_chunks(self, store_id: str, file_id: str) -> list[str]:
        with self._engine.connect() as conn:
            return [
                r.text
                for r in conn.execute(
                    select(CHUNKS.c.text)
                    .where(CHUNKS.c.store_id == store_id, CHUNKS.c.file_id == file_id)
                    .order_by(CHUNKS.c.position)
                )
            ]

    # -- batches -----------------------------------------------------------------------------

    def create_batch(self, row: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(BATCHES.insert(), row)

    def get_batch(self, store_id: str, batch_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(BATCHES).where(BATCHES.c.id == batch_id, BATCHES.c.store_id == store_id)
            ).first()
        return dict(row._mapping) if row else None

    def cancel_batch(self, batch_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(BATCHES).where(BATCHES.c.id == batch_id).values(cancelled=True))
            conn.execute(
                update(FILES)
                .where(FILES.c.batch_id == batch_id, FILES.c.status == "in_progress")
                .values(status="cancelled")
            )

    def batch_counts(self, batch_id: str) -> dict[str, int]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(FILES.c.status, func.count())
                .where(FILES.c.batch_id == batch_id)
                .group_by(FILES.c.status)
            ).all()
        return {r[0]: int(r[1]) for r in rows}
