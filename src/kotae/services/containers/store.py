"""Containers and container files in the database, per project."""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, select, update

from kotae.storage.orm import CodeContainer, ContainerFile

CONTAINERS = cast(Table, CodeContainer.__table__)
FILES = cast(Table, ContainerFile.__table__)


class ContainerStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def insert(self, row: dict[str, Any], files: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(CONTAINERS.insert(), row)
            if files:
                conn.execute(FILES.insert(), files)

    def get(self, project_id: str, container_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(CONTAINERS).where(
                    CONTAINERS.c.id == container_id, CONTAINERS.c.project_id == project_id
                )
            ).first()
        return dict(row._mapping) if row is not None else None

    def listing(self, project_id: str, name: str | None, order: str) -> list[dict[str, Any]]:
        query = select(CONTAINERS).where(CONTAINERS.c.project_id == project_id)
        if name is not None:
            query = query.where(CONTAINERS.c.name == name)
        query = query.order_by(CONTAINERS.c.pk.desc() if order == "desc" else CONTAINERS.c.pk)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def touch(self, container_id: str) -> int:
        now = int(time.time())
        with self._engine.begin() as conn:
            conn.execute(
                update(CONTAINERS).where(CONTAINERS.c.id == container_id).values(last_active_at=now)
            )
        return now

    def expire(self, container_id: str) -> list[str]:
        """Marks the container expired and forgets its files; returns their blob keys."""
        with self._engine.begin() as conn:
            keys = list(
                conn.execute(
                    select(FILES.c.blob_key).where(FILES.c.container_id == container_id)
                ).scalars()
            )
            conn.execute(delete(FILES).where(FILES.c.container_id == container_id))
            conn.execute(
                update(CONTAINERS).where(CONTAINERS.c.id == container_id).values(status="expired")
            )
        return keys

    def delete(self, container_id: str) -> list[str]:
        keys = self.expire(container_id)
        with self._engine.begin() as conn:
            conn.execute(delete(CONTAINERS).where(CONTAINERS.c.id == container_id))
        return keys

    def idle(self, now: int) -> list[str]:
        """Running containers past their expiry."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(CONTAINERS.c.id).where(
                    CONTAINERS.c.status == "running",
                    CONTAINERS.c.last_active_at + CONTAINERS.c.expires_minutes * 60 < now,
                )
            )
            return list(rows.scalars())

    def running(self, ids: list[str]) -> set[str]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(CONTAINERS.c.id).where(
                    CONTAINERS.c.id.in_(ids), CONTAINERS.c.status == "running"
                )
            )
            return set(rows.scalars())

    # -- files ---------------------------------------------------------------------------

    def files(self, container_id: str, order: str = "asc") -> list[dict[str, Any]]:
        query = select(FILES).where(FILES.c.container_id == container_id)
        query = query.order_by(FILES.c.pk.desc() if order == "desc" else FILES.c.pk)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def file(self, container_id: str, file_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(FILES).where(FILES.c.container_id == container_id, FILES.c.id == file_id)
            ).first()
        return dict(row._mapping) if row is not None else None

    def add_file(self, row: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(FILES.insert(), row)

    def resize_file(self, file_id: str, size: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(FILES).where(FILES.c.id == file_id).values(bytes=size))

    def delete_file(self, file_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(FILES).where(FILES.c.id == file_id))
