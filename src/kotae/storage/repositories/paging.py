"""Cursor pages over rows already in order: `after` / `before` name an id, as OpenAI's do."""

from __future__ import annotations

from typing import Any


def cursor_page(
    rows: list[dict[str, Any]], key: str, limit: int, after: str | None, before: str | None
) -> tuple[list[dict[str, Any]], bool]:
    """(the page, has_more). An unknown `after` gives an empty page; an unknown `before`
    cuts nothing."""
    ids = [r[key] for r in rows]
    if after is not None:
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    if before is not None:
        keys = [r[key] for r in rows]
        rows = rows[: keys.index(before)] if before in keys else rows
    return rows[:limit], len(rows) > limit
