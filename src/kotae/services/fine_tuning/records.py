"""A fine-tuning job's body and events as OpenAI shows them, shared by the jobs API and the
trainer's supervisor."""

from __future__ import annotations

import secrets
import time
from typing import Any

ACTIVE = ("validating_files", "queued", "running")
STOPPED = "kotae stopped while this job was training; create the job again."


def job_id() -> str:
    return "ftjob-" + secrets.token_urlsafe(18).replace("-", "A").replace("_", "B")


def job_event(
    message: str, level: str = "info", data: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "ftevent-" + secrets.token_hex(12),
        "object": "fine_tuning.job.event",
        "created_at": int(time.time()),
        "level": level,
        "message": message,
        "data": data or {},
        "type": "metrics" if data and "step" in data else "message",
    }


def ended(body: dict[str, Any], status: str, **changes: Any) -> dict[str, Any]:
    """The job's body once it has finished, one way or another."""
    return {
        **body,
        "status": status,
        "finished_at": int(time.time()),
        "estimated_finish": None,
        **changes,
    }
