"""Web search engines behind one small interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class SearchHit:
    title: str
    url: str
    snippet: str


class WebSearchProvider(Protocol):
    name: str

    async def search(self, query: str, count: int, language: str | None) -> list[SearchHit]:
        """Raises BackendError when the engine is down or refuses."""
        ...
