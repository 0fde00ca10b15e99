"""Request body of POST /v1/fine_tuning/jobs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kotae.ids import FileIdField
from kotae.schemas.common import StrictModel, WithMetadata


class Method(StrictModel):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: dict[str, Any] | None = None
    dpo: dict[str, Any] | None = None
    reinforcement: dict[str, Any] | None = None


class CreateFineTuningJob(WithMetadata):
    model: str
    training_file: FileIdField
    validation_file: FileIdField | None = None
    suffix: str | None = Field(default=None, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2_147_483_647)
    method: Method | None = None
    hyperparameters: dict[str, Any] | None = None  # legacy: the supervised method's
    integrations: list[dict[str, Any]] | None = None
