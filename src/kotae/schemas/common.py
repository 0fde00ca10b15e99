"""Request-model pieces shared by resources."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator


class StrictModel(BaseModel):
    """Unknown fields are a 400 naming the field, as OpenAI answers them."""

    model_config = ConfigDict(extra="forbid")


Metadata = Annotated[dict[str, str], Field(max_length=16)]


def check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError("metadata keys may be at most 64 characters")
        if len(item) > 512:
            raise ValueError("metadata values may be at most 512 characters")
    return value


class WithMetadata(StrictModel):
    metadata: Metadata | None = None

    _check_metadata = field_validator("metadata")(check_metadata)
