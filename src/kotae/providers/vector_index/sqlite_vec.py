"""sqlite-vec (dense, cosine) and FTS5 (lexical, BM25) in one SQLite file — the database's
own file by default. Python's sqlite3 often cannot load extensions, so this uses
pysqlite3-binary's SQLite, which can."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from kotae.providers.vector_index.base import IndexedChunk


class SqliteVecIndex:
    def __init__(self, path: Path, dimensions: int) -> None:
        import pysqlite3.dbapi2 as sqlite3
        import sqlite_vec

        self._lock = threading.Lock()
        self._db: Any = sqlite3.connect(
            str(path), check_same_thread=False, timeout=30, isolation_level=None
        )
        self._db.enable_load_extension(True)
        sqlite_vec.load(self._db)
        self._db.enable_load_extension(False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._vectors = f"vs_vectors_{dimensions}"
        self._db.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {self._vectors} USING vec0("
            "chunk_id integer primary key, store_id text partition key, "
            f"embedding float[{dimensions}] distance_metric=cosine)"
        )
        self._db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS vs_terms USING fts5("
            "terms, store_id UNINDEXED, chunk_id UNINDEXED, tokenize='unicode61')"
        )
        # How many chunks hold each term: the query-aware text weight's IDF.
        self._db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS vs_terms_vocab USING fts5vocab(vs_terms, 'row')"
        )

    in_state_db = False  # its own file: `conn` (the state database's) is never given

    def add(
        self,
        store_id: str,
        file_id: str,
        chunks: list[IndexedChunk],
        conn: Connection | None = None,
    ) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    f"INSERT INTO {self._vectors}(chunk_id, store_id, embedding) VALUES (?,?,?)",
                    [(c.chunk_id, store_id, c.vector.astype(np.float32).tobytes()) for c in chunks],
                )
                self._db.executemany(
                    "INSERT INTO vs_terms(terms, store_id, chunk_id) VALUES (?,?,?)",
                    [(" ".join(c.terms), store_id, c.chunk_id) for c in chunks],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete_chunks(self, chunk_ids: list[int], conn: Connection | None = None) -> None:
        if not chunk_ids:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # vec0 deletes by primary key only, one row a statement.
                rows = [(c,) for c in chunk_ids]
                self._db.executemany(f"DELETE FROM {self._vectors} WHERE chunk_id = ?", rows)
                self._db.executemany("DELETE FROM vs_terms WHERE chunk_id = ?", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def has_chunk(self, chunk_id: int) -> bool:
        with self._lock:
            row = self._db.execute(
                f"SELECT chunk_id FROM {self._vectors} WHERE chunk_id = ?", (chunk_id,)
            ).fetchone()
        return row is not None

    def dense(
        self, store_ids: list[str], vector: npt.NDArray[np.float32], k: int
    ) -> list[tuple[int, float]]:
        blob = vector.astype(np.float32).tobytes()
        hits: list[tuple[int, float]] = []
        with self._lock:
            for store_id in store_ids:
                rows = self._db.execute(
                    f"SELECT chunk_id, distance FROM {self._vectors} "
                    "WHERE embedding MATCH ? AND k = ? AND store_id = ?",
                    (blob, k, store_id),
                ).fetchall()
                hits.extend((int(c), 1.0 - float(d)) for c, d in rows)
        return sorted(hits, key=lambda h: -h[1])[:k]

    def similarity(
        self, store_ids: list[str], vector: npt.NDArray[np.float32], chunk_ids: list[int]
    ) -> list[tuple[int, float]]:
        """The cosine similarity of these chunks (of these stores) to `vector`: the dense
        score of lexical hits the dense search did not reach, so fusion compares like with
        like."""
        if not chunk_ids:
            return []
        blob = vector.astype(np.float32).tobytes()
        marks = ",".join("?" * len(chunk_ids))
        stores = ",".join("?" * len(store_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT chunk_id, vec_distance_cosine(embedding, ?) FROM {self._vectors} "
                f"WHERE chunk_id IN ({marks}) AND store_id IN ({stores})",
                (blob, *chunk_ids, *store_ids),
            ).fetchall()
        return [(int(c), 1.0 - float(d)) for c, d in rows]

    def term_counts(self, terms: list[str]) -> tuple[dict[str, int], int]:
        """(chunks holding each term, chunks in all), over the whole index: an IDF estimate
        that costs one lookup a term."""
        unique = list(dict.fromkeys(t for t in terms if t))[:64]
        counts: dict[str, int] = {}
        with self._lock:
            for term in unique:
                row = self._db.execute(
                    "SELECT doc FROM vs_terms_vocab WHERE term = ?", (term,)
                ).fetchone()
                if row:
                    counts[term] = int(row[0])
            # Deleted rows leave gaps: the largest rowid over-counts a little, cheaply.
            total = self._db.execute("SELECT max(rowid) FROM vs_terms").fetchone()[0] or 0
        return counts, int(total)

    def lexical(self, store_ids: list[str], terms: list[str], k: int) -> list[tuple[int, float]]:
        unique = list(dict.fromkeys(t for t in terms if t))
        if not unique:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in unique[:64])
        marks = ",".join("?" * len(store_ids))
        with self._lock:
            rows = self._db.execute(
                "SELECT chunk_id, bm25(vs_terms) AS rank FROM vs_terms "
                f"WHERE vs_terms MATCH ? AND store_id IN ({marks}) ORDER BY rank LIMIT ?",
                (match, *store_ids, k),
            ).fetchall()
        return [(int(c), -float(r)) for c, r in rows]

    def close(self) -> None:
        self._db.close()
