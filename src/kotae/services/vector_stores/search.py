"""Hybrid retrieval: dense (embeddings) and lexical (BM25 over CJK bigrams and words) scores
fused per query, then attribute filters and the score threshold.

Fusion is score-aware and query-aware. Both lists are scored over the same candidates (a
lexical hit the dense search did not reach gets its cosine too), each normalised to [0, 1],
and mixed with a text weight that depends on the query: a query holding a term that few
chunks contain (a code word, an identifier, a rare name) leans on the exact match; a query
of common words leans on meaning. A fixed rank fusion let the dense list, which ranks every
chunk, swamp an exact hit (measured: 4 of 20 code words found their file first)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kotae.errors import InvalidRequest
from kotae.providers.embeddings.base import Embedder
from kotae.providers.vector_index.base import VectorIndex
from kotae.schemas.vector_stores import SearchVectorStore
from kotae.services.vector_stores.chunking import query_terms
from kotae.storage.repositories.files import FileRepository
from kotae.storage.repositories.vector_stores import VectorStoreRepository

COMPARISONS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"}
# The text weight as a logistic curve of the query's specificity (bench/vector_stores.py
# chose these on Python's library reference and Japanese man pages).
SPECIFICITY_CENTER, SPECIFICITY_SLOPE = 0.75, 12.0


@dataclass
class Hit:
    chunk_id: int
    score: float


def specificity(doc_freq: dict[str, int], total: int, terms: Iterable[str]) -> float:
    """How rare the query's rarest indexed term is, 0..1: its IDF over the largest IDF
    possible (a term in one chunk of `total`). Terms no chunk has match nothing: skipped."""
    if total <= 0:
        return 0.0
    idfs = [
        math.log((total + 1) / (doc_freq[t] + 0.5)) for t in set(terms) if doc_freq.get(t, 0) > 0
    ]
    return max(0.0, min(1.0, max(idfs) / math.log(total + 1))) if idfs else 0.0


def text_weight(query_specificity: float) -> float:
    return 1 / (1 + math.exp(-(query_specificity - SPECIFICITY_CENTER) * SPECIFICITY_SLOPE))


def _scaled(pairs: Iterable[tuple[int, float]]) -> dict[int, float]:
    """Min-max over the candidates: the best 1.0, the worst 0.0 (a lone candidate 1.0)."""
    scores = dict(pairs)
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    return {c: (v - low) / (high - low) if high > low else 1.0 for c, v in scores.items()}


def fuse(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    *,
    rescored: Iterable[tuple[int, float]] = (),
    weight: float = 0.5,
) -> list[Hit]:
    """Chunks by `(1 - weight) * dense + weight * lexical`, both min-max scaled. `rescored`
    gives the cosine of lexical hits outside `dense`; weight 0 is dense only, 1 lexical
    only (then only chunks that match a term)."""
    weight = max(0.0, min(1.0, weight))
    semantic = _scaled([*dense, *rescored])
    words = _scaled(lexical)
    candidates = set(words) if weight >= 1.0 else set(semantic) if weight <= 0.0 else set()
    candidates = candidates or set(semantic) | set(words)
    scores = {
        c: (1 - weight) * semantic.get(c, 0.0) + weight * words.get(c, 0.0) for c in candidates
    }
    return sorted((Hit(c, s) for c, s in scores.items()), key=lambda h: (-h.score, h.chunk_id))


def search_query(
    index: VectorIndex,
    store_ids: list[str],
    vector: npt.NDArray[np.float32],
    query: str,
    wide: int,
    weight: float | None = None,
) -> list[Hit]:
    """One query's fused hits: `wide` candidates from each list, lexical hits rescored
    densely, and the query-aware text weight unless `weight` fixes it."""
    terms = query_terms(query)
    dense = index.dense(store_ids, vector, wide)
    lexical = index.lexical(store_ids, terms, wide)
    seen = {c for c, _ in dense}
    rescored = index.similarity(store_ids, vector, [c for c, _ in lexical if c not in seen])
    if weight is None:
        doc_freq, total = index.term_counts(terms)
        weight = text_weight(specificity(doc_freq, total, terms))
    return fuse(dense, lexical, rescored=rescored, weight=weight)


def check_filter(f: Any, path: str = "filters") -> None:
    if not isinstance(f, dict):
        raise InvalidRequest("A filter must be an object.", param=path)
    kind = f.get("type")
    if not isinstance(kind, str):
        raise InvalidRequest("A filter's type must be a string.", param=f"{path}.type")
    if kind in ("and", "or"):
        subs = f.get("filters")
        if not isinstance(subs, list) or not subs:
            raise InvalidRequest("A compound filter needs a list of filters.", param=path)
        for i, sub in enumerate(subs):
            check_filter(sub, f"{path}.filters[{i}]")
    elif kind in COMPARISONS:
        if not isinstance(f.get("key"), str):
            raise InvalidRequest("A comparison filter needs a key.", param=f"{path}.key")
        if "value" not in f:
            raise InvalidRequest("A comparison filter needs a value.", param=f"{path}.value")
        if kind in ("in", "nin") and not isinstance(f["value"], list):
            raise InvalidRequest(f"'{kind}' takes a list.", param=f"{path}.value")
    else:
        raise InvalidRequest(f"Unknown filter type '{kind}'.", param=f"{path}.type")


def matches(f: dict[str, Any], attributes: dict[str, Any]) -> bool:
    kind = f["type"]
    if kind == "and":
        return all(matches(s, attributes) for s in f["filters"])
    if kind == "or":
        return any(matches(s, attributes) for s in f["filters"])
    if f["key"] not in attributes:
        return kind in ("ne", "nin")
    have, want = attributes[f["key"]], f["value"]
    try:
        if kind == "eq":
            return bool(have == want)
        if kind == "ne":
            return bool(have != want)
        if kind == "gt":
            return bool(have > want)
        if kind == "gte":
            return bool(have >= want)
        if kind == "lt":
            return bool(have < want)
        if kind == "lte":
            return bool(have <= want)
        if kind == "in":
            return have in want
        return have not in want
    except TypeError:  # comparing a string with a number matches nothing
        return False


def search_stores(
    stores: VectorStoreRepository,
    files: FileRepository,
    embedder: Embedder,
    index: VectorIndex,
    project_id: str,
    store_ids: list[str],
    req: SearchVectorStore,
) -> tuple[list[str], list[dict[str, Any]]]:
    """The queries and the results of a search over `store_ids` (checked by the caller)."""
    queries = [req.query] if isinstance(req.query, str) else list(req.query)
    k = req.max_num_results
    wide = max(k * 5, 50)
    vectors = embedder.embed(queries, "query")
    ranking = req.ranking_options
    chosen = chosen_text_weight(ranking.hybrid_search if ranking else None)
    best: dict[int, float] = {}
    # Each query fused on its own; a chunk several queries find keeps its best score.
    for q, vector in zip(queries, vectors, strict=True):
        for hit in search_query(index, store_ids, vector, q, wide, chosen):
            best[hit.chunk_id] = max(hit.score, best.get(hit.chunk_id, 0.0))
    hits = sorted((Hit(c, s) for c, s in best.items()), key=lambda h: (-h.score, h.chunk_id))
    chunks = stores.chunks([h.chunk_id for h in hits])
    threshold = ranking.score_threshold if ranking and ranking.score_threshold else 0.0
    file_rows: dict[tuple[str, str], dict[str, Any] | None] = {}
    names = {}
    results = []
    for hit in hits:
        chunk = chunks.get(hit.chunk_id)
        if chunk is None or hit.score < threshold:
            continue
        key = (chunk["store_id"], chunk["file_id"])
        if key not in file_rows:
            file_rows[key] = stores.get_file(*key)
        store_file = file_rows[key]
        if store_file is None or store_file["status"] != "completed":
            continue
        attributes = store_file["attributes"] or {}
        if req.filters is not None and not matches(req.filters, attributes):
            continue
        if chunk["file_id"] not in names:
            f = files.get(project_id, chunk["file_id"])
            names[chunk["file_id"]] = f["filename"] if f else chunk["file_id"]
        results.append(
            {
                "file_id": chunk["file_id"],
                "filename": names[chunk["file_id"]],
                "score": round(min(hit.score, 1.0), 6),
                "attributes": attributes,
                "content": [{"type": "text", "text": chunk["text"]}],
            }
        )
        if len(results) == k:
            break
    return queries, results


def chosen_text_weight(hybrid: dict[str, Any] | None) -> float | None:
    """`ranking_options.hybrid_search` weights as the text share, or None (kotae's own,
    query-aware weight). A weight left out counts 1."""
    if not hybrid:
        return None
    try:
        dense = float(hybrid.get("embedding_weight", 1.0))
        text = float(hybrid.get("text_weight", 1.0))
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(
            "hybrid_search weights must be numbers.", param="ranking_options.hybrid_search"
        ) from exc
    if dense < 0 or text < 0 or dense + text <= 0:
        raise InvalidRequest(
            "hybrid_search weights must be non-negative and not both 0.",
            param="ranking_options.hybrid_search",
        )
    return text / (dense + text)
