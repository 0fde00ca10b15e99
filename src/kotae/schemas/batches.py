"""Request bodies of /v1/batches and /v1/webhook_endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kotae.schemas.common import StrictModel, WithMetadata


class OutputExpiry(StrictModel):
    anchor: Literal["created_at"]
    seconds: Annotated[int, Field(ge=3600, le=2592000)]


class CreateBatch(WithMetadata):
    input_file_id: Annotated[str, Field(min_length=1)]
    endpoint: str
    completion_window: str
    output_expires_after: OutputExpiry | None = None


class CreateWebhookEndpoint(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=256)]
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    event_types: Annotated[list[str], Field(min_length=1, max_length=32)]


class UpdateWebhookEndpoint(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    event_types: Annotated[list[str], Field(min_length=1, max_length=32)] | None = None


class RotateSecret(StrictModel):
    keep_old_secret_active_for_24_hours: bool = False


class TestWebhookEndpoint(StrictModel):
    event_type: str
