"""Fine-tuning jobs, events and checkpoints (Core statements)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Engine, Table, select, update

from kotae.storage import leases
from kotae.storage.orm import FineTuningCheckpoint, FineTuningEvent, FineTuningJob

JOBS = cast(Table, FineTuningJob.__table__)
EVENTS = cast(Table, FineTuningEvent.__table__)
CHECKPOINTS = cast(Table, FineTuningCheckpoint.__table__)
ENDED = ("succeeded", "failed", "cancelled")
log = logging.getLogger(__name__)


class FineTuningRepository:
    def __init__(self, engine: Engine) -> None:
        # Told (project id, event type, job id) when a job ends: the webhooks' events.
        self.on_end: Callable[[str, str, str], object] | None = None
        self._engine = engine

    def insert(self, row: dict[str, Any], first_event: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(JOBS.insert(), row)
            conn.execute(
                EVENTS.insert(), {"job_id": row["id"], "id": first_event["id"], "data": first_event}
            )

    def get(self, project_id: str | None, job_id: str) -> dict[str, Any] | None:
        query = select(JOBS).where(JOBS.c.id == job_id)
        if project_id is not None:
            query = query.where(JOBS.c.project_id == project_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def list_jobs(self, project_id: str) -> list[dict[str, Any]]:
        """Newest first, as OpenAI lists jobs."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(JOBS)
                .where(JOBS.c.project_id == project_id)
                .order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc())
            ).all()
        return [dict(r._mapping) for r in rows]

    def next_queued(self) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(JOBS).where(JOBS.c.status == "queued").order_by(JOBS.c.created_at, JOBS.c.id)
            ).first()
        return dict(row._mapping) if row else None

    def renew(self, owner: str, seconds: int) -> int:
        return leases.renew(self._engine, JOBS, owner, seconds, "running")

    def lapsed_running(self) -> list[dict[str, Any]]:
        """Jobs marked running whose trainer's process stopped renewing their lease."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(JOBS).where(JOBS.c.status == "running", leases.lapsed(JOBS))
            ).all()
        return [dict(r._mapping) for r in rows]

    def with_status(self, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(JOBS).where(JOBS.c.status.in_(statuses))).all()
        return [dict(r._mapping) for r in rows]

    def update(
        self,
        job_id: str,
        body: dict[str, Any],
        *,
        events: Sequence[dict[str, Any]] = (),
        only_if: tuple[str, ...] | None = None,
        **columns: Any,
    ) -> bool:
        """Writes the job's new body (and status) with its events in one transaction. With
        `only_if`, nothing changes unless the job is still in one of those states (a cancel
        that raced the worker wins)."""
        with self._engine.begin() as conn:
            query = update(JOBS).where(JOBS.c.id == job_id)
            if only_if is not None:
                query = query.where(JOBS.c.status.in_(only_if))
            done = conn.execute(query.values(body=body, status=body["status"], **columns)).rowcount
            if done and events:
                conn.execute(
                    EVENTS.insert(), [{"job_id": job_id, "id": e["id"], "data": e} for e in events]
                )
            project = conn.execute(select(JOBS.c.project_id).where(JOBS.c.id == job_id)).scalar()
        if done and body["status"] in ENDED and self.on_end is not None and project is not None:
            try:
                self.on_end(str(project), f"fine_tuning.job.{body['status']}", job_id)
            except Exception:
                log.exception("recording the end of %s for webhooks failed", job_id)
        return bool(done)

    def add_events(self, job_id: str, events: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                EVENTS.insert(), [{"job_id": job_id, "id": e["id"], "data": e} for e in events]
            )

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """Newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(EVENTS.c.data).where(EVENTS.c.job_id == job_id).order_by(EVENTS.c.pk.desc())
            ).all()
        return [dict(r.data) for r in rows]

    def add_checkpoint(self, job_id: str, row: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            conn.execute(CHECKPOINTS.insert(), {"job_id": job_id, **row})

    def checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        """Newest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(CHECKPOINTS)
                .where(CHECKPOINTS.c.job_id == job_id)
                .order_by(CHECKPOINTS.c.pk.desc())
            ).all()
        return [dict(r._mapping) for r in rows]

    def drop_checkpoints(self, job_id: str, keep: list[str]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                CHECKPOINTS.delete().where(
                    CHECKPOINTS.c.job_id == job_id, CHECKPOINTS.c.id.not_in(keep)
                )
            )

    def find_model(self, project_id: str, model: str) -> tuple[dict[str, Any], str] | None:
        """(job, adapter path) for a fine-tuned model or one of its checkpoints."""
        with self._engine.connect() as conn:
            job = conn.execute(_live_model(project_id, model)).first()
            if job is not None:
                return dict(job._mapping), str(job.spec.get("adapter_path") or "")
            hit = conn.execute(
                select(JOBS, CHECKPOINTS.c.path)
                .join(CHECKPOINTS, CHECKPOINTS.c.job_id == JOBS.c.id)
                .where(
                    JOBS.c.project_id == project_id,
                    CHECKPOINTS.c.model == model,
                    JOBS.c.model_deleted.is_(False),
                )
            ).first()
        if hit is None:
            return None
        row = dict(hit._mapping)
        return row, str(row.pop("path"))

    def models(self, project_id: str) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(JOBS).where(
                    JOBS.c.project_id == project_id,
                    JOBS.c.status == "succeeded",
                    JOBS.c.model_deleted.is_(False),
                )
            ).all()
        return [dict(r._mapping) for r in rows]

    def delete_model(self, project_id: str, model: str) -> dict[str, Any] | None:
        with self._engine.begin() as conn:
            row = conn.execute(_live_model(project_id, model)).first()
            if row is None:
                return None
            conn.execute(update(JOBS).where(JOBS.c.id == row.id).values(model_deleted=True))
        return dict(row._mapping)


def _live_model(project_id: str, model: str) -> Any:
    """The job whose fine-tuned model this is, in this project, not deleted."""
    return select(JOBS).where(
        JOBS.c.project_id == project_id,
        JOBS.c.fine_tuned_model == model,
        JOBS.c.model_deleted.is_(False),
    )
