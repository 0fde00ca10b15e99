"""Request counts per project and minute: one upsert per request, atomic on SQLite and
PostgreSQL alike, so every replica sees the same count."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Engine, Table, delete
from sqlalchemy.dialects import postgresql, sqlite

from kotae.storage.orm import RateWindow

WINDOWS = cast(Table, RateWindow.__table__)


class RateLimitRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def hit(self, project_id: str, minute: int) -> int:
        """Counts one request in the project's minute; the count with it."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(WINDOWS).values(project_id=project_id, minute=minute, requests=1)
        upsert = insert.on_conflict_do_update(
            index_elements=[WINDOWS.c.project_id, WINDOWS.c.minute],
            set_={"requests": WINDOWS.c.requests + 1},
        ).returning(WINDOWS.c.requests)
        with self._engine.begin() as conn:
            return int(conn.execute(upsert).scalar_one())

    def purge(self, before_minute: int) -> int:
        with self._engine.begin() as conn:
            result = conn.execute(delete(WINDOWS).where(WINDOWS.c.minute < before_minute))
        return int(getattr(result, "rowcount", 0) or 0)
