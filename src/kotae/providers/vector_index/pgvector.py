"""pgvector (dense: cosine, HNSW) and PostgreSQL full text (lexical) in the state database,
for deployments on PostgreSQL. The same contract as the SQLite index (tests/contract).

Lexical rows hold the chunk's own terms (words, joined snake_case names, Japanese character
bigrams, as the chunker made them) as a tsvector written literally, so PostgreSQL's text
parser never re-splits them. The score is BM25-like: each query term's IDF times its
ts_rank (term frequency, normalized by the chunk's length), summed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, text

from kotae.providers.vector_index.base import IndexedChunk
from kotae.storage.engine import SCHEMA_LOCK, within

MAX_TERMS = 64  # of a query
MAX_POSITIONS = 64  # kept a term a chunk (tf saturates long before)


def _vector(v: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v.astype(np.float32).tolist()) + "]"


def _lexeme(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(terms: list[str]) -> str:
    """The terms, each with its positions, as tsvector input (no parsing)."""
    positions: dict[str, list[int]] = {}
    for i, term in enumerate(terms[:16383]):
        if term:
            kept = positions.setdefault(term, [])
            if len(kept) < MAX_POSITIONS:
                kept.append(i + 1)
    return " ".join(f"{_lexeme(t)}:{','.join(map(str, p))}" for t, p in positions.items())


class PgVectorIndex:
    def __init__(self, engine: Engine, dimensions: int, ef_search: int = 200) -> None:
        self._engine = engine
        self._ef_search = ef_search
        self._vectors = f"vs_vectors_{dimensions}"
        with engine.begin() as conn:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {self._vectors} ("
                    "chunk_id bigint PRIMARY KEY, store_id text NOT NULL, "
                    f"embedding vector({dimensions}) NOT NULL)"
                )
            )
            conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {self._vectors}_hnsw ON {self._vectors} "
                    "USING hnsw (embedding vector_cosine_ops)"
                )
            )
            conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {self._vectors}_store "
                    f"ON {self._vectors} (store_id)"
                )
            )
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS vs_terms (chunk_id bigint PRIMARY KEY, "
                    "store_id text NOT NULL, terms tsvector NOT NULL)"
                )
            )
            conn.execute(
                text("CREATE INDEX IF NOT EXISTS vs_terms_gin ON vs_terms USING gin (terms)")
            )

    in_state_db = True

    def add(
        self,
        store_id: str,
        file_id: str,
        chunks: list[IndexedChunk],
        conn: Connection | None = None,
    ) -> None:
        if not chunks:
            return
        with within(self._engine, conn) as conn:
            conn.execute(
                text(
                    f"INSERT INTO {self._vectors} (chunk_id, store_id, embedding) "
                    "VALUES (:chunk_id, :store_id, CAST(:embedding AS vector))"
                ),
                [
                    {"chunk_id": c.chunk_id, "store_id": store_id, "embedding": _vector(c.vector)}
                    for c in chunks
                ],
            )
            conn.execute(
                text(
                    "INSERT INTO vs_terms (chunk_id, store_id, terms) "
                    "VALUES (:chunk_id, :store_id, CAST(:terms AS tsvector))"
                ),
                [
                    {
                        "chunk_id": c.chunk_id,
                        "store_id": store_id,
                        "terms": tsvector_literal(c.terms),
                    }
                    for c in chunks
                ],
            )

    def delete_chunks(self, chunk_ids: list[int], conn: Connection | None = None) -> None:
        if not chunk_ids:
            return
        with within(self._engine, conn) as conn:
            for table in (self._vectors, "vs_terms"):
                conn.execute(
                    text(f"DELETE FROM {table} WHERE chunk_id = ANY(:ids)"), {"ids": chunk_ids}
                )

    def has_chunk(self, chunk_id: int) -> bool:
        with self._engine.connect() as conn:
            row = conn.execute(
                text(f"SELECT 1 FROM {self._vectors} WHERE chunk_id = :c"), {"c": chunk_id}
            ).first()
        return row is not None

    def dense(
        self, store_ids: list[str], vector: npt.NDArray[np.float32], k: int
    ) -> list[tuple[int, float]]:
        with self._engine.begin() as conn:
            # The store filter applies after the HNSW walk (pgvector 0.6): a wider walk keeps
            # k results when the stores hold a small part of the index.
            ef = max(self._ef_search, 4 * k)
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {min(ef, 1000)}"))
            rows = conn.execute(
                text(
                    f"SELECT chunk_id, 1 - (embedding <=> CAST(:v AS vector)) FROM "
                    f"{self._vectors} WHERE store_id = ANY(:stores) "
                    "ORDER BY embedding <=> CAST(:v AS vector) LIMIT :k"
                ),
                {"v": _vector(vector), "stores": store_ids, "k": k},
            ).all()
        return [(int(c), float(s)) for c, s in rows]

    def similarity(
        self, store_ids: list[str], vector: npt.NDArray[np.float32], chunk_ids: list[int]
    ) -> list[tuple[int, float]]:
        if not chunk_ids:
            return []
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT chunk_id, 1 - (embedding <=> CAST(:v AS vector)) FROM "
                    f"{self._vectors} WHERE chunk_id = ANY(:ids) AND store_id = ANY(:stores)"
                ),
                {"v": _vector(vector), "ids": chunk_ids, "stores": store_ids},
            ).all()
        return [(int(c), float(s)) for c, s in rows]

    def term_counts(self, terms: list[str]) -> tuple[dict[str, int], int]:
        unique = list(dict.fromkeys(t for t in terms if t))[:MAX_TERMS]
        counts: dict[str, int] = {}
        with self._engine.connect() as conn:
            for term in unique:
                found = conn.execute(
                    text("SELECT count(*) FROM vs_terms WHERE terms @@ CAST(:q AS tsquery)"),
                    {"q": _lexeme(term)},
                ).scalar_one()
                if found:
                    counts[term] = int(found)
            # An estimate, as the SQLite index's largest rowid is: cheap on big tables.
            total = conn.execute(
                text(
                    "SELECT greatest(reltuples::bigint, 0) FROM pg_class "
                    "WHERE oid = 'vs_terms'::regclass"
                )
            ).scalar_one()
            if not total:
                total = conn.execute(text("SELECT count(*) FROM vs_terms")).scalar_one()
        return counts, int(total)

    def lexical(self, store_ids: list[str], terms: list[str], k: int) -> list[tuple[int, float]]:
        unique = list(dict.fromkeys(t for t in terms if t))[:MAX_TERMS]
        if not unique:
            return []
        counts, total = self.term_counts(unique)
        present = [t for t in unique if t in counts]
        if not present:
            return []
        params: dict[str, Any] = {"stores": store_ids, "k": k}
        parts = []
        for i, term in enumerate(present):
            n = counts[term]
            # BM25's IDF, never below a small positive weight.
            params[f"w{i}"] = max(math.log(1 + (max(total, n) - n + 0.5) / (n + 0.5)), 0.01)
            params[f"q{i}"] = _lexeme(term)
            parts.append(f":w{i} * ts_rank(terms, CAST(:q{i} AS tsquery), 1)")
        params["any"] = " | ".join(_lexeme(t) for t in present)
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT chunk_id, {' + '.join(parts)} AS score FROM vs_terms "
                    "WHERE store_id = ANY(:stores) AND terms @@ CAST(:any AS tsquery) "
                    "ORDER BY score DESC LIMIT :k"
                ),
                params,
            ).all()
        return [(int(c), float(s)) for c, s in rows]

    def close(self) -> None:
        return None
