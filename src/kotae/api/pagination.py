"""OpenAI's list envelope: data, first_id, last_id, has_more."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query

from kotae.errors import InvalidRequest


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def check_limit(limit: int, most: int = 100) -> int:
    if not 1 <= limit <= most:
        raise InvalidRequest(f"limit must be between 1 and {most}.", param="limit")
    return limit


Order = Literal["asc", "desc"]
LimitQuery = Query(default=20)
