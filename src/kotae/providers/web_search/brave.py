"""Brave Search's web API (hosted; an API key from brave.com/search/api)."""

from __future__ import annotations

import aiohttp

from kotae.errors import BackendError
from kotae.providers.web_search.base import SearchHit

BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"


class BraveProvider:
    name = "brave"

    def __init__(self, api_key: str, url: str = BRAVE_URL, timeout: float = 10.0) -> None:
        self._key = api_key
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def search(self, query: str, count: int, language: str | None) -> list[SearchHit]:
        params = {"q": query, "count": str(min(count, 20))}
        if language:
            params["search_lang"] = language
        headers = {"X-Subscription-Token": self._key, "Accept": "application/json"}
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.get(self._url, params=params, headers=headers) as resp,
            ):
                if resp.status != 200:
                    raise BackendError(f"Brave Search answered {resp.status}.")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise BackendError(f"Brave Search failed: {exc}") from exc
        results = (body.get("web") or {}).get("results") or []
        return [
            SearchHit(
                str(r.get("title") or r.get("url")), str(r["url"]), str(r.get("description") or "")
            )
            for r in results
            if r.get("url")
        ][:count]
