"""Hybrid retrieval: dense (embeddings) and lexical (BM25 over CJK bigrams and words) results
fused by reciprocal rank, then attribute filters and the score threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kotae.errors import InvalidRequest

RRF_K = 60
COMPARISONS = {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"}


@dataclass
class Hit:
    chunk_id: int
    score: float


DENSE_WEIGHT, LEXICAL_WEIGHT = 1.0, 0.5


def fuse(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    mode: str = "hybrid",
    weights: tuple[float, float] = (DENSE_WEIGHT, LEXICAL_WEIGHT),
) -> list[Hit]:
    """Weighted reciprocal-rank fusion, scaled so a chunk first in both lists scores 1.0.
    Dense counts more by default: it alone matches across languages (a Japanese question,
    an English document), where words cannot."""
    w_dense, w_lexical = {"dense": (1.0, 0.0), "lexical": (0.0, 1.0)}.get(mode, weights)
    scores: dict[int, float] = {}
    for weight, ranked in ((w_dense, dense), (w_lexical, lexical)):
        if weight <= 0:
            continue
        for rank, (chunk_id, _) in enumerate(ranked):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank + 1)
    best = (w_dense + w_lexical) / (RRF_K + 1) or 1.0
    return sorted((Hit(c, s / best) for c, s in scores.items()), key=lambda h: -h.score)


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
