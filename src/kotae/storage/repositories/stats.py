"""Counts of background work by status, for /metrics."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from kotae.storage.orm import FineTuningJob, ImageJob, StoredResponse, VectorStoreFile

RUNNING_RESPONSES = ("queued", "in_progress")


def job_counts(engine: Engine) -> dict[str, dict[str, int]]:
    """Fine-tuning jobs and vector store files by status, responses still running (and how
    many of them wait for a worker: what to scale workers on), image requests for workers."""
    with engine.connect() as conn:
        jobs = conn.execute(
            select(FineTuningJob.status, func.count()).group_by(FineTuningJob.status)
        ).all()
        files = conn.execute(
            select(VectorStoreFile.status, func.count()).group_by(VectorStoreFile.status)
        ).all()
        running = conn.execute(
            select(StoredResponse.status, func.count())
            .where(StoredResponse.status.in_(RUNNING_RESPONSES))
            .group_by(StoredResponse.status)
        ).all()
        waiting = conn.execute(
            select(func.count()).where(
                StoredResponse.status == "queued", StoredResponse.request.is_not(None)
            )
        ).scalar()
        images = conn.execute(
            select(ImageJob.status, func.count())
            .where(ImageJob.status.in_(("queued", "running")))
            .group_by(ImageJob.status)
        ).all()
    return {
        "fine_tuning_job": {str(s): int(n) for s, n in jobs},
        "vector_store_file": {str(s): int(n) for s, n in files},
        "response": {
            **{str(s): int(n) for s, n in running},
            "waiting_for_worker": int(waiting or 0),
        },
        "image_request": {str(s): int(n) for s, n in images},
    }
