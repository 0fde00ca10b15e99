"""Request bodies of /v1/vector_stores."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from kotae.ids import FileIdField
from kotae.schemas.common import StrictModel, WithMetadata

# OpenAI's limits: 16 keys of up to 64 characters, string values of up to 512.
Attributes = Annotated[
    dict[
        Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)] | float | bool
    ],
    Field(max_length=16),
]


class StaticChunking(StrictModel):
    max_chunk_size_tokens: Annotated[int, Field(ge=100, le=4096)]
    chunk_overlap_tokens: Annotated[int, Field(ge=0)]


class ChunkingStrategy(StrictModel):
    type: Literal["auto", "static"]
    static: StaticChunking | None = None


class ExpiresAfter(StrictModel):
    anchor: Literal["last_active_at"]
    days: Annotated[int, Field(ge=1, le=365)]


class CreateVectorStore(WithMetadata):
    name: str | None = None
    file_ids: Annotated[list[FileIdField], Field(max_length=500)] | None = None
    chunking_strategy: ChunkingStrategy | None = None
    expires_after: ExpiresAfter | None = None
    description: str | None = None


class UpdateVectorStore(WithMetadata):
    name: str | None = None
    expires_after: ExpiresAfter | None = None


class CreateVectorStoreFile(StrictModel):
    file_id: FileIdField
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class UpdateVectorStoreFile(StrictModel):
    attributes: Attributes | None


class BatchFile(StrictModel):
    file_id: FileIdField
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class CreateFileBatch(StrictModel):
    file_ids: Annotated[list[FileIdField], Field(max_length=2000)] | None = None
    files: Annotated[list[BatchFile], Field(max_length=2000)] | None = None
    attributes: Attributes | None = None
    chunking_strategy: ChunkingStrategy | None = None


class RankingOptions(StrictModel):
    ranker: Literal["auto", "default-2024-11-15", "none"] | None = None
    score_threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    hybrid_search: dict[str, Any] | None = None


class SearchVectorStore(StrictModel):
    query: str | Annotated[list[str], Field(min_length=1)]
    max_num_results: Annotated[int, Field(ge=1, le=50)] = 10
    filters: dict[str, Any] | None = None
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False
