"""Code runs an API replica (`serve --no-worker`) queues for workers. A container's live
process sits on one worker (the container's `host`, leased): its runs go there while the lease
holds, and any worker takes the container once it lapses (its files come back from the blob
store; its variables do not). Code is not safe to repeat: a run whose worker died is failed,
never run again."""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, or_, select, update

from kotae.storage import leases
from kotae.storage.orm import CodeContainer, ContainerRun

RUNS = cast(Table, ContainerRun.__table__)
CONTAINERS = cast(Table, CodeContainer.__table__)
WORKER_DIED = {
    "logs": "The call stopped: the worker running it stopped. Its files up to then are kept.",
    "error": "WorkerStopped",
    "images": [],
    "ended": True,
}


class RunQueue:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, run_id: str, container_id: str, project_id: str, code: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                RUNS.insert().values(
                    id=run_id,
                    container_id=container_id,
                    project_id=project_id,
                    created_ns=time.time_ns(),
                    status="queued",
                    code=code,
                )
            )

    def claim(self, owner: str, lease_seconds: int) -> tuple[str, str, str, str] | None:
        """The oldest queued run whose container this worker hosts, or hosts nobody (then
        it becomes this worker's): (run id, container id, project id, code). Runs whose
        worker died are failed on the way."""
        now = int(time.time())
        with self._engine.begin() as conn:
            conn.execute(
                update(RUNS)
                .where(RUNS.c.status == "running", leases.lapsed(RUNS))
                .values(status="done", outcome={"execution": WORKER_DIED, "files": []})
            )
        hostable = or_(
            CONTAINERS.c.host == owner,
            CONTAINERS.c.host.is_(None),
            CONTAINERS.c.host_until < now,
        )
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(RUNS.c.id, RUNS.c.container_id, RUNS.c.project_id, RUNS.c.code)
                .join(CONTAINERS, CONTAINERS.c.id == RUNS.c.container_id)
                .where(RUNS.c.status == "queued", hostable)
                .order_by(RUNS.c.created_ns)
                .limit(8)
            ).all()
        for row in rows:
            with self._engine.begin() as conn:
                hosted = conn.execute(
                    update(CONTAINERS)
                    .where(CONTAINERS.c.id == row.container_id, hostable)
                    .values(host=owner, host_until=now + lease_seconds)
                )
                if int(getattr(hosted, "rowcount", 0) or 0) != 1:
                    continue
                taken = conn.execute(
                    update(RUNS)
                    .where(RUNS.c.id == row.id, RUNS.c.status == "queued")
                    .values(status="running", **leases.held(owner, lease_seconds))
                )
                if int(getattr(taken, "rowcount", 0) or 0) == 1:
                    return str(row.id), str(row.container_id), str(row.project_id), str(row.code)
        return None

    def renew(self, owner: str, hosted: list[str], lease_seconds: int) -> None:
        """This worker's running runs, and its hold on the containers it keeps live."""
        leases.renew(self._engine, RUNS, owner, lease_seconds, "running")
        if hosted:
            with self._engine.begin() as conn:
                conn.execute(
                    update(CONTAINERS)
                    .where(CONTAINERS.c.id.in_(hosted), CONTAINERS.c.host == owner)
                    .values(host_until=int(time.time()) + lease_seconds)
                )

    def release(self, container_id: str, owner: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(CONTAINERS)
                .where(CONTAINERS.c.id == container_id, CONTAINERS.c.host == owner)
                .values(host=None, host_until=None)
            )

    def finish(self, run_id: str, owner: str, outcome: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id, RUNS.c.owner == owner, RUNS.c.status == "running")
                .values(status="done", outcome=outcome, owner=None, lease_expires_at=None)
            )

    def outcome(self, run_id: str) -> tuple[str, dict[str, Any] | None]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(RUNS.c.status, RUNS.c.outcome).where(RUNS.c.id == run_id)
            ).first()
        if row is None:
            return "cancelled", None
        return str(row.status), row.outcome

    def cancel(self, run_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id, RUNS.c.status == "queued")
                .values(status="cancelled")
            )

    def purge(self, older_than_seconds: int) -> int:
        before = time.time_ns() - older_than_seconds * 10**9
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(RUNS).where(
                    RUNS.c.created_ns < before, RUNS.c.status.in_(("done", "cancelled"))
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)
