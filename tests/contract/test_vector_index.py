"""The vector index contract, run over every implementation: sqlite-vec (the embedded
default) and pgvector (PostgreSQL deployments)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kotae.providers.vector_index.base import IndexedChunk, VectorIndex
from kotae.providers.vector_index.sqlite_vec import SqliteVecIndex
from tests import postgres

DIM = 8
Factory = Callable[[Path], VectorIndex]


def pgvector_index(path: Path) -> VectorIndex:
    from kotae.providers.vector_index.pgvector import PgVectorIndex
    from kotae.storage.engine import make_engine

    return PgVectorIndex(make_engine(postgres.database_url(str(path))), DIM)


FACTORIES: dict[str, Factory] = {
    "sqlite_vec": lambda p: SqliteVecIndex(p / "i.db", DIM),
    **({"pgvector": pgvector_index} if postgres.available() else {}),
}


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


@pytest.fixture(params=sorted(FACTORIES))
def index(request: pytest.FixtureRequest, tmp_path: Path) -> VectorIndex:
    return FACTORIES[request.param](tmp_path)


def test_dense_is_nearest_first_and_per_store(index: VectorIndex) -> None:
    index.add("s1", "f1", [IndexedChunk(1, ["a"], unit(0)), IndexedChunk(2, ["b"], unit(1))])
    index.add("s2", "f2", [IndexedChunk(3, ["a"], unit(0))])
    hits = index.dense(["s1"], unit(0), 5)
    assert [h[0] for h in hits] == [1, 2]
    assert hits[0][1] == pytest.approx(1.0) and hits[1][1] == pytest.approx(0.0, abs=1e-6)
    assert {h[0] for h in index.dense(["s1", "s2"], unit(0), 5)} == {1, 2, 3}


def test_lexical_ranks_matching_terms(index: VectorIndex) -> None:
    index.add(
        "s1",
        "f1",
        [
            IndexedChunk(1, ["パス", "スワ", "ワー", "ード"], unit(0)),
            IndexedChunk(2, ["経費", "精算"], unit(1)),
        ],
    )
    assert [h[0] for h in index.lexical(["s1"], ["パス", "ード"], 5)] == [1]
    assert index.lexical(["s1"], ["zzz"], 5) == []
    assert index.lexical(["s2"], ["パス"], 5) == []


def test_delete_removes_from_both(index: VectorIndex) -> None:
    index.add("s1", "f1", [IndexedChunk(i, [f"t{i}"], unit(i % DIM)) for i in range(1, 20)])
    index.delete_chunks(list(range(1, 10)))
    assert {h[0] for h in index.dense(["s1"], unit(0), 50)} == set(range(10, 20))
    assert index.lexical(["s1"], ["t5"], 5) == []
    assert [h[0] for h in index.lexical(["s1"], ["t15"], 5)] == [15]


def test_similarity_scores_given_chunks_of_the_given_stores(index: VectorIndex) -> None:
    index.add("s1", "f1", [IndexedChunk(1, ["a"], unit(0)), IndexedChunk(2, ["b"], unit(1))])
    index.add("s2", "f2", [IndexedChunk(3, ["a"], unit(0))])
    got = dict(index.similarity(["s1"], unit(0), [1, 2, 3, 99]))
    assert set(got) == {1, 2}  # chunk 3 is another store's, 99 is no chunk
    assert got[1] == pytest.approx(1.0) and got[2] == pytest.approx(0.0, abs=1e-6)
    assert index.similarity(["s1"], unit(0), []) == []


def test_term_counts_and_a_rare_term_outranks_common_ones(index: VectorIndex) -> None:
    chunks = [IndexedChunk(i, ["common", "words", f"w{i}"], unit(i % DIM)) for i in range(1, 6)]
    chunks.append(IndexedChunk(6, ["common", "rare"], unit(0)))
    index.add("s1", "f1", chunks)
    counts, total = index.term_counts(["common", "rare", "absent"])
    assert counts == {"common": 6, "rare": 1} and total >= 6
    hits = index.lexical(["s1"], ["common", "words", "rare"], 10)
    assert hits[0][0] == 6 and len(hits) == 6
