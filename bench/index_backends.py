"""Dense search in the two index backends, side by side: sqlite-vec (brute force, the embedded
default) and pgvector's HNSW (PostgreSQL deployments), on the same vectors in the same run.

Run:  python bench/index_backends.py [--sizes 100000] [--queries 200] [--bulk]

The vectors are 512-d like the embedder's, drawn around 2,000 cluster centres (real
embeddings cluster; uniform random vectors in 512-d are a worst case no index meets). Each
query is a fresh point near a centre. Prints insert time, p50/p95 latency for k=10 and
recall@10 against exact search (numpy over the same vectors). PostgreSQL 16 + pgvector comes
from the pgserver wheel (the `dev` extra). Asserts nothing.

--bulk: the HNSW index is dropped before loading and built once after (CREATE INDEX), as
pgvector advises for an initial corpus; the insert column is then load + build. Without it,
each batch goes into the live index, as kotae's ingestion does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kotae.providers.vector_index.base import IndexedChunk, VectorIndex
from kotae.providers.vector_index.pgvector import PgVectorIndex
from kotae.providers.vector_index.sqlite_vec import SqliteVecIndex
from kotae.storage.engine import make_engine

DIM = 512
CENTRES = 2000


def unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)
    return out


def fill(index: VectorIndex, vectors: np.ndarray) -> float:
    t = time.perf_counter()
    batch = 2000
    for start in range(0, len(vectors), batch):
        index.add(
            "vs_bench",
            "f",
            [
                IndexedChunk(start + i + 1, ["w"], v)
                for i, v in enumerate(vectors[start : start + batch])
            ],
        )
    return time.perf_counter() - t


def measure(
    index: VectorIndex, queries: np.ndarray, truth: list[set[int]]
) -> tuple[float, float, float]:
    ms, recalls = [], []
    for q, want in zip(queries, truth, strict=True):
        t = time.perf_counter()
        hits = index.dense(["vs_bench"], q, 10)
        ms.append((time.perf_counter() - t) * 1000)
        recalls.append(len({h[0] for h in hits} & want) / 10)
    ms.sort()
    return ms[len(ms) // 2], ms[int(0.95 * (len(ms) - 1))], float(np.mean(recalls))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--bulk", action="store_true")
    args = parser.parse_args()
    import pgserver

    rng = np.random.default_rng(0)
    centres = unit(rng.standard_normal((CENTRES, DIM)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pg = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        socket_dir = str(pg.get_uri()).split("host=")[-1]
        for size in args.sizes:
            picks = rng.integers(0, CENTRES, size)
            vectors = unit(centres[picks] + 0.35 * unit(rng.standard_normal((size, DIM))))
            queries = unit(
                centres[rng.integers(0, CENTRES, args.queries)]
                + 0.35 * unit(rng.standard_normal((args.queries, DIM)))
            )
            scores = queries @ vectors.T
            truth = [set((np.argsort(-s)[:10] + 1).tolist()) for s in scores]
            del scores
            lite = SqliteVecIndex(Path(tmp) / f"v{size}.db", DIM)
            lite_s = fill(lite, vectors)
            lite_row = measure(lite, queries, truth)
            lite.close()
            pg.psql(f"CREATE DATABASE b{size};")
            engine = make_engine(f"postgresql+psycopg://postgres@/b{size}?host={socket_dir}")
            hnsw = PgVectorIndex(engine, DIM)
            table = f"vs_vectors_{DIM}"
            if args.bulk:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"DROP INDEX {table}_hnsw")
            pg_s = fill(hnsw, vectors)
            if args.bulk:
                started = time.perf_counter()
                with engine.begin() as conn:
                    conn.exec_driver_sql("SET maintenance_work_mem = '8GB'")
                    conn.exec_driver_sql("SET max_parallel_maintenance_workers = 1")
                    conn.exec_driver_sql(
                        f"CREATE INDEX {table}_hnsw ON {table} "
                        "USING hnsw (embedding vector_cosine_ops)"
                    )
                pg_s += time.perf_counter() - started
            with engine.begin() as conn:  # the planner's statistics, as autovacuum would
                conn.exec_driver_sql("ANALYZE")
            pg_row = measure(hnsw, queries, truth)
            engine.dispose()
            rows.append((size, "sqlite-vec (exact)", lite_s, *lite_row))
            rows.append((size, "pgvector HNSW" + (" (bulk)" if args.bulk else ""), pg_s, *pg_row))
    print(f"\nDense search, k=10, {args.queries} queries, 512-d clustered vectors\n")
    print(
        f"{'chunks':>8} {'index':<20} {'insert s':>9} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10}"
    )
    for size, name, insert_s, p50, p95, recall in rows:
        print(f"{size:8d} {name:<20} {insert_s:9.1f} {p50:8.1f} {p95:8.1f} {recall:10.3f}")


if __name__ == "__main__":
    main()
