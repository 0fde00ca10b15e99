"""Image requests queued for workers by API replicas. Generating a picture is safe to
repeat, so a job whose worker died (its lease lapsed) is taken again, up to MAX_ATTEMPTS
tries; after that it ends with an error the replica returns."""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, func, select, update

from kotae.storage import leases
from kotae.storage.orm import ImageJob

JOBS = cast(Table, ImageJob.__table__)
MAX_ATTEMPTS = 3
GAVE_UP = {
    "status_code": 500,
    "type": "server_error",
    "code": "server_error",
    "param": None,
    "message": f"The image request failed: the workers that took it stopped {MAX_ATTEMPTS} "
    "times before it was done.",
}


class ImageJobRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, job_id: str, project_id: str, request: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                JOBS.insert().values(
                    id=job_id,
                    project_id=project_id,
                    created_ns=time.time_ns(),
                    status="queued",
                    request=request,
                    attempts=0,
                )
            )

    def waiting(self) -> int:
        """Jobs no worker has taken yet, from every replica."""
        with self._engine.connect() as conn:
            found = conn.execute(
                select(func.count()).select_from(JOBS).where(JOBS.c.status == "queued")
            ).scalar()
        return int(found or 0)

    def claim(self, owner: str, lease_seconds: int) -> tuple[str, dict[str, Any]] | None:
        """The oldest job waiting, or one whose worker stopped: (id, request), leased to
        `owner`. The update matches only the attempt it read, so two workers never both
        take one."""
        takeable = (JOBS.c.status == "queued") | (
            (JOBS.c.status == "running") & leases.lapsed(JOBS)
        )
        for _ in range(5):
            with self._engine.begin() as conn:
                row = conn.execute(
                    select(JOBS.c.id, JOBS.c.attempts, JOBS.c.request)
                    .where(takeable)
                    .order_by(JOBS.c.created_ns)
                    .limit(1)
                ).first()
                if row is None:
                    return None
                same = (JOBS.c.id == row.id) & (JOBS.c.attempts == row.attempts) & takeable
                if row.attempts >= MAX_ATTEMPTS:
                    conn.execute(
                        update(JOBS)
                        .where(same)
                        .values(status="done", outcome={"error": GAVE_UP}, owner=None)
                    )
                    continue
                taken = conn.execute(
                    update(JOBS)
                    .where(same)
                    .values(
                        status="running",
                        attempts=row.attempts + 1,
                        **leases.held(owner, lease_seconds),
                    )
                )
                if int(getattr(taken, "rowcount", 0) or 0) == 1:
                    return str(row.id), dict(row.request)
        return None

    def renew(self, owner: str, lease_seconds: int) -> int:
        return leases.renew(self._engine, JOBS, owner, lease_seconds, "running")

    def finish(self, job_id: str, owner: str, outcome: dict[str, Any]) -> None:
        """The answer ({"answer": ...}) or error ({"error": ...}); dropped when the job was
        cancelled or taken over meanwhile."""
        with self._engine.begin() as conn:
            conn.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.owner == owner, JOBS.c.status == "running")
                .values(status="done", outcome=outcome, owner=None, lease_expires_at=None)
            )

    def outcome(self, job_id: str) -> tuple[str, dict[str, Any] | None]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(JOBS.c.status, JOBS.c.outcome).where(JOBS.c.id == job_id)
            ).first()
        if row is None:
            return "cancelled", None
        return str(row.status), row.outcome

    def cancel(self, job_id: str) -> None:
        """Its client left: a worker skips it, or drops the answer it is making."""
        with self._engine.begin() as conn:
            conn.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.status.in_(("queued", "running")))
                .values(status="cancelled")
            )

    def purge(self, older_than_seconds: int) -> int:
        """Ended jobs, once their replica has long read them."""
        before = time.time_ns() - older_than_seconds * 10**9
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(JOBS).where(
                    JOBS.c.created_ns < before, JOBS.c.status.in_(("done", "cancelled"))
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)
