"""File rows. Expired files answer as missing."""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, delete, or_, select, update

from kotae.storage.orm import StoredFile

FILES = cast(Table, StoredFile.__table__)


class FileRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def insert(self, row: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(FILES.insert(), row)

    def _live(self) -> Any:
        now = int(time.time())
        return or_(FILES.c.expires_at.is_(None), FILES.c.expires_at > now)

    def get(self, project_id: str, file_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(FILES).where(
                    FILES.c.id == file_id, FILES.c.project_id == project_id, self._live()
                )
            ).first()
        return dict(row._mapping) if row else None

    def get_many(self, project_id: str, file_ids: list[str]) -> dict[str, dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(FILES).where(
                    FILES.c.id.in_(file_ids), FILES.c.project_id == project_id, self._live()
                )
            ).all()
        return {r.id: dict(r._mapping) for r in rows}

    def page(
        self, project_id: str, *, purpose: str | None, limit: int, order: str, after: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        query = select(FILES).where(FILES.c.project_id == project_id, self._live())
        if purpose:
            query = query.where(FILES.c.purpose == purpose)
        desc = order == "desc"
        with self._engine.connect() as conn:
            if after:
                cursor = conn.execute(
                    select(FILES.c.created_at, FILES.c.id).where(
                        FILES.c.id == after, FILES.c.project_id == project_id
                    )
                ).first()
                if cursor is not None:
                    if desc:
                        query = query.where(
                            or_(
                                FILES.c.created_at < cursor.created_at,
                                and_(
                                    FILES.c.created_at == cursor.created_at, FILES.c.id < cursor.id
                                ),
                            )
                        )
                    else:
                        query = query.where(
                            or_(
                                FILES.c.created_at > cursor.created_at,
                                and_(
                                    FILES.c.created_at == cursor.created_at, FILES.c.id > cursor.id
                                ),
                            )
                        )
            keys = (
                (FILES.c.created_at.desc(), FILES.c.id.desc())
                if desc
                else (FILES.c.created_at, FILES.c.id)
            )
            rows = conn.execute(query.order_by(*keys).limit(limit + 1)).all()
        return [dict(r._mapping) for r in rows[:limit]], len(rows) > limit

    def delete(self, project_id: str, file_id: str) -> dict[str, Any] | None:
        with self._engine.begin() as conn:
            row = conn.execute(
                select(FILES).where(FILES.c.id == file_id, FILES.c.project_id == project_id)
            ).first()
            if row is None:
                return None
            conn.execute(delete(FILES).where(FILES.c.id == file_id))
        return dict(row._mapping)

    def blob_rows(self) -> list[tuple[str, str, str | None]]:
        """(file id, blob key, status) of every file, for the reconciliation sweep."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(FILES.c.id, FILES.c.blob_key, FILES.c.status)).all()
        return [(r.id, r.blob_key, r.status) for r in rows]

    def mark_missing(self, file_id: str, details: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(FILES)
                .where(FILES.c.id == file_id)
                .values(status="error", status_details=details)
            )

    def expired(self) -> list[dict[str, Any]]:
        now = int(time.time())
        with self._engine.connect() as conn:
            rows = conn.execute(select(FILES).where(FILES.c.expires_at <= now)).all()
        return [dict(r._mapping) for r in rows]
