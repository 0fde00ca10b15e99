"""Vector stores: ingestion speed, search latency at 10k and 100k chunks, retrieval quality.

Run:  python bench/vector_stores.py [--sizes 10000 100000]

1. Ingestion through the API (SDK, real server): a generated multi-page Japanese/English PDF,
   pages/s and chunks/s from "added" to "completed".
2. Search latency of the index (sqlite-vec + FTS5) filled with synthetic chunks, p50/p95 for
   dense, lexical and hybrid (query embedding timed apart).
3. Retrieval quality on a small Japanese+English set written for this benchmark: recall@5 and
   nDCG@10 for dense-only, lexical-only and hybrid, in the same run.
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.helpers import Server, new_key

from kotae.providers.embeddings.use import UseMultilingual
from kotae.providers.vector_index.base import IndexedChunk
from kotae.providers.vector_index.sqlite_vec import SqliteVecIndex
from kotae.services.vector_stores.chunking import (
    AUTO_MAX_TOKENS,
    AUTO_OVERLAP,
    chunk_text,
    lexical_terms,
    query_terms,
)
from kotae.services.vector_stores.search import Hit, fuse, search_query

FONT = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"

# (document, query) pairs; each query's one relevant document is its pair.
PAIRS = [
    (
        "パスワードを忘れた場合は、社内ポータルの「パスワード再設定」から再発行できます。",
        "How do I reset a forgotten password?",
    ),
    (
        "経費精算は毎月25日までにワークフローシステムで申請してください。",
        "経費の申請期限はいつですか",
    ),
    (
        "有給休暇は入社6か月後に10日付与されます。",
        "How many days of paid leave do new employees get?",
    ),
    (
        "会議室の予約はカレンダーアプリから最大2週間先まで可能です。",
        "会議室は何日前から予約できますか",
    ),
    (
        "在宅勤務の日は始業時にチャットで勤務開始を報告してください。",
        "What should I do when starting remote work?",
    ),
    ("社員証を紛失した場合は、総務部に直ちに連絡してください。", "社員証をなくしたらどうする"),
    ("出張の宿泊費の上限は一泊12,000円です。", "hotel budget limit for business trips"),
    ("健康診断は毎年10月に本社ビルで実施されます。", "健康診断はいつありますか"),
    (
        "VPNに接続できない場合は、端末を再起動してから情報システム部に問い合わせてください。",
        "VPN connection problems",
    ),
    (
        "新しいノートパソコンの申請はITサービスデスクで受け付けています。",
        "Where do I request a new laptop?",
    ),
    ("The cafeteria is open from 11:30 to 14:00 on weekdays.", "社員食堂の営業時間"),
    ("Visitors must sign in at the reception desk and wear a guest badge.", "来客の受付方法"),
    (
        "Printer toner can be ordered through the office supplies portal.",
        "How to get printer toner",
    ),
    (
        "Overtime must be approved by your manager before the end of the day.",
        "残業の承認は誰がしますか",
    ),
    (
        "The parking garage closes at 22:00; cars left overnight are charged a fee.",
        "What time does the parking garage close?",
    ),
    ("Expense receipts older than 90 days cannot be reimbursed.", "古い領収書は精算できますか"),
    (
        "The fire drill takes place every April; all staff must evacuate to the east lot.",
        "避難訓練はいつですか",
    ),
    (
        "Employees can borrow books from the library on the third floor for two weeks.",
        "How long can I keep a library book?",
    ),
    (
        "Security patches are installed automatically every Tuesday night.",
        "セキュリティパッチの適用日",
    ),
    (
        "Lost and found items are kept at reception for one month.",
        "落とし物はどこで保管されていますか",
    ),
    # Identifiers: words find them, meaning does not.
    ("エラーコード E-4031 は電源ユニットの故障を示します。", "E-4031"),
    ("Model KX-200 ships with a two-year warranty.", "KX-200 保証"),
    ("申請番号 RQ-7781 の承認者は田中部長です。", "RQ-7781 approver"),
    ("Firmware 3.14.2 fixes the Bluetooth pairing bug.", "3.14.2 firmware"),
]


def ingestion_table(work: Path) -> None:
    from fpdf import FPDF
    from openai import OpenAI

    pages = 20
    pdf = FPDF()
    pdf.add_font("ipag", fname=FONT)
    pdf.set_font("ipag", size=11)
    for p in range(pages):
        pdf.add_page()
        for i, (doc, _) in enumerate(PAIRS):
            pdf.multi_cell(0, 7, f"{p}-{i}. {doc}", new_x="LMARGIN", new_y="NEXT")
    data = bytes(pdf.output())
    srv = Server(work / "ingest")
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "bench"))
        warm = c.vector_stores.create(name="warm")  # loads the embedding model first
        c.vector_stores.files.upload_and_poll(vector_store_id=warm.id, file=("w.txt", b"warm"))
        f = c.files.create(file=("manual.pdf", data), purpose="assistants")
        vs = c.vector_stores.create(name="bench")
        t = time.perf_counter()
        done = c.vector_stores.files.create_and_poll(
            vector_store_id=vs.id, file_id=f.id, poll_interval_ms=50
        )
        seconds = time.perf_counter() - t
        chunks = len(list(c.vector_stores.files.content(vector_store_id=vs.id, file_id=f.id)))
        assert done.status == "completed"
    finally:
        srv.stop()
    print(
        f"\nIngestion through the API: {pages}-page JA/EN PDF, {len(data) // 1024} KiB, "
        f"auto chunking"
    )
    print(f"{'seconds':>8} {'pages/s':>8} {'chunks':>7} {'chunks/s':>9}")
    print(f"{seconds:8.2f} {pages / seconds:8.1f} {chunks:7d} {chunks / seconds:9.1f}")


def latency_table(sizes: list[int], work: Path, embedder: UseMultilingual) -> None:
    rng = np.random.default_rng(0)
    words = [w for doc, _ in PAIRS for w in lexical_terms(doc)]
    queries = [q for _, q in PAIRS]
    qvecs = embedder.embed(queries, "query")
    t = time.perf_counter()
    for q in queries:
        embedder.embed([q], "query")
    embed_ms = (time.perf_counter() - t) / len(queries) * 1000
    print(
        f"\nSearch latency in the index (synthetic chunks, 512-d), k=50 candidates each; "
        f"query embedding alone: {embed_ms:.1f} ms"
    )
    print(
        f"{'chunks':>8} {'insert s':>9} {'dense p50':>10} {'p95':>6} {'lexical p50':>12} "
        f"{'p95':>6} {'hybrid p50':>11} {'p95':>6}  (ms)"
    )
    for size in sizes:
        index = SqliteVecIndex(work / f"lat{size}.db", 512)
        t = time.perf_counter()
        batch = 5000
        for start in range(0, size, batch):
            vecs = rng.standard_normal((min(batch, size - start), 512)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            index.add(
                "vs_bench",
                "f",
                [
                    IndexedChunk(start + i + 1, list(rng.choice(words, 40)), v)
                    for i, v in enumerate(vecs)
                ],
            )
        insert_s = time.perf_counter() - t
        dense_ms, lex_ms, hyb_ms = [], [], []
        for q, v in zip(queries * 3, np.concatenate([qvecs] * 3), strict=True):
            t = time.perf_counter()
            d = index.dense(["vs_bench"], v, 50)
            dense_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            lx = index.lexical(["vs_bench"], query_terms(q), 50)
            lex_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            search_query(index, ["vs_bench"], v, q, 50)
            hyb_ms.append((time.perf_counter() - t) * 1000)
            del d, lx
        index.close()

        def p(xs: list[float], q: float) -> float:
            return sorted(xs)[int(q * (len(xs) - 1))]

        print(
            f"{size:8d} {insert_s:9.1f} {p(dense_ms, 0.5):10.1f} {p(dense_ms, 0.95):6.1f} "
            f"{p(lex_ms, 0.5):12.1f} {p(lex_ms, 0.95):6.1f} {p(hyb_ms, 0.5):11.1f} "
            f"{p(hyb_ms, 0.95):6.1f}"
        )


def quality_table(work: Path, embedder: UseMultilingual) -> None:
    index = SqliteVecIndex(work / "quality.db", 512)
    docs = [d for d, _ in PAIRS]
    vecs = embedder.embed(docs, "passage")
    index.add(
        "vs_q",
        "f",
        [
            IndexedChunk(i + 1, lexical_terms(d), v)
            for i, (d, v) in enumerate(zip(docs, vecs, strict=True))
        ],
    )
    qvecs = embedder.embed([q for _, q in PAIRS], "query")
    modes = ("dense", "lexical", "rrf (before)", "hybrid")
    scores: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for i, (_, q) in enumerate(PAIRS):
        dense = index.dense(["vs_q"], qvecs[i], 50)
        lexical = index.lexical(["vs_q"], query_terms(q), 50)
        for mode in scores:
            fused = (
                rrf_before(dense, lexical)
                if mode == "rrf (before)"
                else kotae_fusion(index, "vs_q", qvecs[i], q, dense, lexical, mode)
            )
            ranked = [h.chunk_id for h in fused]
            rank = ranked.index(i + 1) if i + 1 in ranked else None
            recall5 = 1.0 if rank is not None and rank < 5 else 0.0
            ndcg10 = 1 / math.log2(rank + 2) if rank is not None and rank < 10 else 0.0
            scores[mode].append((recall5, ndcg10))
    index.close()
    cross = sum(1 for d, q in PAIRS if (lexical_terms(d)[0].isascii() != q.isascii()))
    print(
        f"\nRetrieval quality: {len(PAIRS)} documents and queries, {cross} of them "
        "cross-lingual (JA<->EN)"
    )
    print(f"{'mode':13} {'recall@5':>9} {'nDCG@10':>8}")
    for mode, rows in scores.items():
        print(
            f"{mode:13} {statistics.mean(r for r, _ in rows):9.2f} "
            f"{statistics.mean(n for _, n in rows):8.2f}"
        )


def docs_table(work: Path, embedder: UseMultilingual, per_language: int, cache: Path) -> None:
    """Retrieval on installed documentation (bench/doc_corpus.py): recall@5 and nDCG@10 of
    the relevant document, by query kind and language, for dense, lexical, the fusion before
    this change (weighted RRF) and kotae's hybrid, in the same run."""
    import doc_corpus

    if not doc_corpus.available():
        print(f"\nDocumentation set skipped: apt-get install {doc_corpus.PACKAGES}")
        return
    docs, queries = doc_corpus.build(per_language)
    chunk_doc: dict[int, str] = {}
    texts: list[str] = []
    for doc in docs:
        for chunk in chunk_text(doc.text, AUTO_MAX_TOKENS, AUTO_OVERLAP):
            texts.append(chunk)
            chunk_doc[len(texts)] = doc.name
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    stored = cache / f"chunks-{key}.npy"
    t = time.perf_counter()
    if stored.exists():
        vecs = np.load(stored)
    else:
        vecs = np.concatenate(
            [embedder.embed(texts[i : i + 64], "passage") for i in range(0, len(texts), 64)]
        )
        np.save(stored, vecs)
    embed_s = time.perf_counter() - t
    index = SqliteVecIndex(work / "docs.db", vecs.shape[1])
    index.add(
        "vs_docs",
        "f",
        [
            IndexedChunk(i + 1, lexical_terms(t), v)
            for i, (t, v) in enumerate(zip(texts, vecs, strict=True))
        ],
    )
    qvecs = embedder.embed([q.text for q in queries], "query")
    modes = ("dense", "lexical", "rrf (before)", "hybrid")
    rows: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for q, v in zip(queries, qvecs, strict=True):
        dense = index.dense(["vs_docs"], v, 50)
        lexical = index.lexical(["vs_docs"], query_terms(q.text), 50)
        for mode in modes:
            if mode == "rrf (before)":
                hits = [h.chunk_id for h in rrf_before(dense, lexical)]
            else:
                hits = [
                    h.chunk_id
                    for h in kotae_fusion(index, "vs_docs", v, q.text, dense, lexical, mode)
                ]
            ranked = list(dict.fromkeys(chunk_doc[c] for c in hits))
            rank = ranked.index(q.doc) if q.doc in ranked else None
            recall5 = 1.0 if rank is not None and rank < 5 else 0.0
            ndcg10 = 1 / math.log2(rank + 2) if rank is not None and rank < 10 else 0.0
            rows.setdefault((q.kind, q.language, mode), []).append((recall5, ndcg10))
    index.close()
    n_en = len({q.doc for q in queries if q.language == "en" and q.kind == "paraphrase"})
    print(
        f"\nRetrieval on installed documentation ({doc_corpus.PACKAGES}): {len(docs)} documents "
        f"({n_en} English Python library pages, {len(docs) - n_en} Japanese man pages), "
        f"{len(texts)} chunks of {AUTO_MAX_TOKENS} tokens (embedded in {embed_s:.0f} s), "
        f"{len(queries)} queries"
    )
    print(f"{'queries':24} {'n':>4}  " + "  ".join(f"{m:>22}" for m in modes))
    print(f"{'':24} {'':>4}  " + "  ".join(f"{'recall@5  nDCG@10':>22}" for _ in modes))
    for kind in ("exact", "paraphrase"):
        for language in ("en", "ja"):
            label = f"{kind} ({'English' if language == 'en' else 'Japanese'})"
            cells = []
            n = 0
            for mode in modes:
                got = rows.get((kind, language, mode), [])
                n = len(got)
                r = statistics.mean(x for x, _ in got) if got else 0.0
                g = statistics.mean(y for _, y in got) if got else 0.0
                cells.append(f"{r:>11.2f} {g:>10.2f}")
            print(f"{label:24} {n:>4}  " + "  ".join(cells))


def kotae_fusion(
    index: SqliteVecIndex,
    store: str,
    vector: np.ndarray,
    query: str,
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    mode: str,
) -> list[Hit]:
    """Dense or lexical alone (weight 0 or 1), or the service's own hybrid search."""
    if mode == "dense":
        return fuse(dense, lexical, weight=0.0)
    if mode == "lexical":
        return fuse(dense, lexical, weight=1.0)
    return search_query(index, [store], vector, query, 50)


def rrf_before(dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> list[Hit]:
    """The fusion kotae used before: weighted reciprocal rank (dense 1.0, lexical 0.5)."""
    scores: dict[int, float] = {}
    for weight, ranked in ((1.0, dense), (0.5, lexical)):
        for rank, (chunk_id, _) in enumerate(ranked):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (60 + rank + 1)
    return sorted((Hit(c, s) for c, s in scores.items()), key=lambda h: -h.score)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--docs", type=int, default=150, help="documents per language")
    parser.add_argument("--only", choices=["ingestion", "quality", "docs", "latency"])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "kotae-bench")
    args = parser.parse_args()
    embedder = UseMultilingual()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "ingestion"):
            ingestion_table(work)
        if args.only in (None, "quality"):
            quality_table(work, embedder)
        if args.only in (None, "docs"):
            docs_table(work, embedder, args.docs, args.cache)
        if args.only in (None, "latency"):
            latency_table(args.sizes, work, embedder)


if __name__ == "__main__":
    main()
