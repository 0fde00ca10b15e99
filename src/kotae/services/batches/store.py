"""Batches and their lines in the database. A line is done once: a worker takes it under a
lease, and only the worker holding that lease may write its result; a line whose worker died
(lease lapsed, no result) is taken again."""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Engine, Table, func, insert, select, update

from kotae.storage import leases
from kotae.storage.orm import BatchLine, BatchRow

BATCHES = cast(Table, BatchRow.__table__)
LINES = cast(Table, BatchLine.__table__)
# Batch statuses in which a worker still has something to do.
ACTIVE = ("validating", "in_progress", "cancelling")
INSERT_CHUNK = 1000


class BatchStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def insert(self, project_id: str, body: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                BATCHES.insert().values(
                    id=body["id"], project_id=project_id, status=body["status"], body=body
                )
            )

    def get(self, project_id: str | None, batch_id: str) -> dict[str, Any] | None:
        query = select(BATCHES).where(BATCHES.c.id == batch_id)
        if project_id is not None:
            query = query.where(BATCHES.c.project_id == project_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row is not None else None

    def listing(self, project_id: str) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(BATCHES.c.body)
                .where(BATCHES.c.project_id == project_id)
                .order_by(BATCHES.c.pk.desc())
            )
            return [dict(r.body) for r in rows]

    def change(
        self, batch_id: str, fields: dict[str, Any], *, only_from: tuple[str, ...] = ()
    ) -> dict[str, Any] | None:
        """Sets fields of the batch's body (and its status, when one is among them); with
        `only_from`, only while its status is one of those. The new body, or None."""
        with self._engine.begin() as conn:
            row = conn.execute(
                select(BATCHES.c.body, BATCHES.c.status).where(BATCHES.c.id == batch_id)
            ).first()
            if row is None or (only_from and row.status not in only_from):
                return None
            body = {**row.body, **fields}
            changed = conn.execute(
                update(BATCHES)
                .where(BATCHES.c.id == batch_id, BATCHES.c.status == row.status)
                .values(body=body, status=body["status"])
            )
            return body if int(getattr(changed, "rowcount", 0) or 0) == 1 else None

    # -- stages a worker takes under a lease: validating, finalizing ---------------------------

    def claim(self, owner: str, lease_seconds: int, status: str) -> dict[str, Any] | None:
        """A batch in `status` nobody holds (or whose holder died), leased to `owner`."""
        with self._engine.begin() as conn:
            row = conn.execute(
                select(BATCHES.c.id, BATCHES.c.project_id, BATCHES.c.body)
                .where(BATCHES.c.status == status, leases.takeable(BATCHES, owner))
                .order_by(BATCHES.c.pk)
                .limit(1)
            ).first()
            if row is None:
                return None
            taken = conn.execute(
                update(BATCHES)
                .where(
                    BATCHES.c.id == row.id,
                    BATCHES.c.status == status,
                    leases.takeable(BATCHES, owner),
                )
                .values(**leases.held(owner, lease_seconds))
            )
            if int(getattr(taken, "rowcount", 0) or 0) != 1:
                return None
        return {"id": row.id, "project_id": row.project_id, "body": dict(row.body)}

    def release(self, batch_id: str, owner: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(BATCHES)
                .where(BATCHES.c.id == batch_id, BATCHES.c.owner == owner)
                .values(owner=None, lease_expires_at=None)
            )

    def renew(self, owner: str, lease_seconds: int) -> None:
        until = int(time.time()) + lease_seconds
        with self._engine.begin() as conn:
            conn.execute(
                update(BATCHES).where(BATCHES.c.owner == owner).values(lease_expires_at=until)
            )
            conn.execute(
                update(LINES)
                .where(LINES.c.owner == owner, LINES.c.status == "running")
                .values(lease_expires_at=until)
            )

    def add_lines(self, batch_id: str, lines: list[dict[str, Any]], body: dict[str, Any]) -> bool:
        """The batch's lines, and the batch in progress, in one transaction (a worker that
        dies midway leaves no line behind: the next one validates again)."""
        with self._engine.begin() as conn:
            for start in range(0, len(lines), INSERT_CHUNK):
                conn.execute(
                    insert(LINES),
                    [
                        {"batch_id": batch_id, "status": "queued", **line}
                        for line in lines[start : start + INSERT_CHUNK]
                    ],
                )
            changed = conn.execute(
                update(BATCHES)
                .where(BATCHES.c.id == batch_id, BATCHES.c.status == "validating")
                .values(status=body["status"], body=body, owner=None, lease_expires_at=None)
            )
            if int(getattr(changed, "rowcount", 0) or 0) != 1:
                conn.rollback()
                return False
        return True

    # -- lines ------------------------------------------------------------------------------

    def claim_line(self, owner: str, lease_seconds: int) -> dict[str, Any] | None:
        """The next line to run, of the oldest batch in progress: queued, or running under a
        lapsed lease (its worker died before writing a result)."""
        runnable = (LINES.c.status == "queued") | (
            (LINES.c.status == "running") & leases.lapsed(LINES)
        )
        for _ in range(5):
            with self._engine.begin() as conn:
                row = conn.execute(
                    select(LINES.c.pk, LINES.c.batch_id, LINES.c.request, BATCHES.c.project_id)
                    .join(BATCHES, BATCHES.c.id == LINES.c.batch_id)
                    .where(BATCHES.c.status == "in_progress", runnable)
                    .order_by(BATCHES.c.pk, LINES.c.line)
                    .limit(1)
                ).first()
                if row is None:
                    return None
                taken = conn.execute(
                    update(LINES)
                    .where(LINES.c.pk == row.pk, runnable)
                    .values(status="running", **leases.held(owner, lease_seconds))
                )
                if int(getattr(taken, "rowcount", 0) or 0) == 1:
                    return {
                        "pk": row.pk,
                        "batch_id": row.batch_id,
                        "project_id": row.project_id,
                        "request": dict(row.request),
                    }
        return None

    def finish_line(self, pk: int, owner: str, result: dict[str, Any]) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(LINES)
                .where(LINES.c.pk == pk, LINES.c.owner == owner, LINES.c.status == "running")
                .values(status="done", result=result, owner=None, lease_expires_at=None)
            )
        return int(getattr(done, "rowcount", 0) or 0) == 1

    def stop_queued(self, batch_id: str, status: str) -> int:
        """Lines not started yet end `status` (cancelled, expired); how many did."""
        with self._engine.begin() as conn:
            stopped = conn.execute(
                update(LINES)
                .where(LINES.c.batch_id == batch_id, LINES.c.status == "queued")
                .values(status=status)
            )
        return int(getattr(stopped, "rowcount", 0) or 0)

    def counts(self, batch_id: str) -> dict[str, int]:
        """Lines by status, done ones split into ok (2xx) and failed."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(LINES.c.status, func.count())
                .where(LINES.c.batch_id == batch_id)
                .group_by(LINES.c.status)
            ).all()
            failed = conn.execute(
                select(func.count()).where(
                    LINES.c.batch_id == batch_id,
                    LINES.c.status == "done",
                    LINES.c.result["failed"].as_boolean(),
                )
            ).scalar()
        out = {str(status): int(n) for status, n in rows}
        out["failed"] = int(failed or 0)
        return out

    def lines(self, batch_id: str) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(LINES.c.line, LINES.c.custom_id, LINES.c.status, LINES.c.result)
                .where(LINES.c.batch_id == batch_id)
                .order_by(LINES.c.line)
            )
            return [dict(r._mapping) for r in rows]

    def ready_to_finish(self, owner: str, lease_seconds: int) -> dict[str, Any] | None:
        """A batch in progress or cancelling whose lines have all ended (or one a worker died
        finalizing), leased to `owner`."""
        open_lines = (
            select(LINES.c.pk)
            .where(LINES.c.batch_id == BATCHES.c.id, LINES.c.status.in_(("queued", "running")))
            .exists()
        )
        with self._engine.begin() as conn:
            row = conn.execute(
                select(BATCHES.c.id, BATCHES.c.project_id, BATCHES.c.body)
                .where(
                    BATCHES.c.status.in_(("in_progress", "cancelling", "finalizing")),
                    leases.takeable(BATCHES, owner),
                    ~open_lines,
                )
                .order_by(BATCHES.c.pk)
                .limit(1)
            ).first()
            if row is None:
                return None
            taken = conn.execute(
                update(BATCHES)
                .where(BATCHES.c.id == row.id, leases.takeable(BATCHES, owner))
                .values(**leases.held(owner, lease_seconds))
            )
            if int(getattr(taken, "rowcount", 0) or 0) != 1:
                return None
        return {"id": row.id, "project_id": row.project_id, "body": dict(row.body)}

    def overdue(self, now: int) -> list[str]:
        """Batches still running past their completion window."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(BATCHES.c.id, BATCHES.c.body).where(BATCHES.c.status.in_(ACTIVE))
            ).all()
        return [str(r.id) for r in rows if int(r.body.get("expires_at") or now + 1) < now]
