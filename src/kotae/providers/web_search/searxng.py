"""SearXNG's JSON API (`/search?format=json`): the self-hosted default for teams."""

from __future__ import annotations

import aiohttp

from kotae.errors import BackendError
from kotae.providers.web_search.base import SearchHit


class SearxngProvider:
    name = "searxng"

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._url = base_url.rstrip("/") + "/search"
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def search(self, query: str, count: int, language: str | None) -> list[SearchHit]:
        params = {"q": query, "format": "json"}
        if language:
            params["language"] = language
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.get(self._url, params=params) as resp,
            ):
                if resp.status != 200:
                    raise BackendError(f"SearXNG answered {resp.status}.")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise BackendError(f"SearXNG at {self._url} failed: {exc}") from exc
        hits = [
            SearchHit(
                str(r.get("title") or r.get("url")), str(r["url"]), str(r.get("content") or "")
            )
            for r in body.get("results") or []
            if r.get("url")
        ]
        return hits[:count]
