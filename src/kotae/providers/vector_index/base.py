"""The vector index: dense and lexical lookups over chunks, per vector store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection


@dataclass
class IndexedChunk:
    chunk_id: int
    terms: list[str]
    vector: npt.NDArray[np.float32]


class VectorIndex(Protocol):
    # Whether the index lives in the state database (pgvector): ingestion then writes the
    # chunks, their index rows and the file's status in one transaction, passed as `conn`.
    in_state_db: bool

    def add(
        self,
        store_id: str,
        file_id: str,
        chunks: list[IndexedChunk],
        conn: Connection | None = None,
    ) -> None: ...

    def delete_chunks(self, chunk_ids: list[int], conn: Connection | None = None) -> None: ...

    def has_chunk(self, chunk_id: int) -> bool:
        """Whether this chunk is indexed (a file's chunks are added all at once)."""
        ...

    def dense(
        self, store_ids: list[str], vector: npt.NDArray[np.float32], k: int
    ) -> list[tuple[int, float]]:
        """(chunk_id, cosine similarity), best first."""
        ...

    def lexical(self, store_ids: list[str], terms: list[str], k: int) -> list[tuple[int, float]]:
        """(chunk_id, bm25 relevance, higher is better), best first."""
        ...

    def similarity(
        self, store_ids: list[str], vector: npt.NDArray[np.float32], chunk_ids: list[int]
    ) -> list[tuple[int, float]]:
        """(chunk_id, cosine similarity) of the given chunks that are in these stores."""
        ...

    def term_counts(self, terms: list[str]) -> tuple[dict[str, int], int]:
        """(how many chunks hold each term, how many chunks there are): for IDF."""
        ...
