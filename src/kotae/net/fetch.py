"""Fetching pages for the server: through the guard, redirects followed by hand and each hop
checked again, time and size capped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from kotae.errors import BackendError
from kotae.net.guard import FetchGuard

MAX_REDIRECTS = 5


@dataclass
class Fetched:
    url: str  # after redirects
    status: int
    content_type: str
    body: bytes


class Fetcher:
    def __init__(
        self, guard: FetchGuard, *, timeout: float = 10.0, max_bytes: int = 5 * 1024 * 1024
    ) -> None:
        self.guard = guard
        self._timeout = timeout
        self._max = max_bytes

    async def get(self, url: str, max_bytes: int | None = None) -> Fetched:
        """The body is cut at `max_bytes` (default: the fetcher's limit)."""
        limit = max_bytes or self._max
        async with httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, headers={"User-Agent": "kotae/0.1"}
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                await asyncio.to_thread(self.guard.check, url)
                try:
                    async with client.stream("GET", url) as resp:
                        if resp.is_redirect and "location" in resp.headers:
                            url = urljoin(url, resp.headers["location"])
                            continue
                        body = b""
                        async for chunk in resp.aiter_bytes():
                            body += chunk
                            if len(body) > limit:
                                body = body[:limit]
                                break
                        return Fetched(
                            str(resp.url),
                            resp.status_code,
                            resp.headers.get("content-type", ""),
                            body,
                        )
                except httpx.HTTPError as exc:
                    raise BackendError(f"Fetching {url} failed: {exc}") from exc
        raise BackendError(f"Too many redirects from {url}.")
