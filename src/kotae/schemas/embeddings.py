"""Request body of /v1/embeddings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kotae.schemas.common import StrictModel


class CreateEmbedding(StrictModel):
    model: Annotated[str, Field(min_length=1)]
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: Annotated[int, Field(ge=1)] | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
