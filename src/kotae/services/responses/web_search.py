"""The web_search tools: search an engine, read the top pages (through the SSRF guard), and
answer from them with url_citation annotations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kotae.net.fetch import Fetcher
from kotae.providers.inference.base import ChatMessage, FunctionSpec, with_system_note
from kotae.providers.web_search.base import SearchHit, WebSearchProvider

SEARCH_WEB = FunctionSpec(
    "web_search",
    "Search the web for current information: news, prices, weather, recent events, or "
    "anything that may have changed. Write a short search query.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
PAGES = {"low": 2, "medium": 3, "high": 5}
PAGE_CHARS = {"low": 1000, "medium": 2000, "high": 4000}


@dataclass
class Source:
    title: str
    url: str
    text: str


def _domain_ok(url: str, allowed: list[str] | None) -> bool:
    if not allowed:
        return True
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in allowed)


def _extract(html: bytes) -> str:
    import trafilatura

    text = trafilatura.extract(html.decode("utf-8", errors="replace"), include_comments=False)
    return text or ""


async def run(
    provider: WebSearchProvider,
    fetcher: Fetcher,
    query: str,
    *,
    context_size: str,
    allowed_domains: list[str] | None,
    language: str | None,
) -> list[Source]:
    pages = PAGES.get(context_size, 3)
    hits: list[SearchHit] = [
        h
        for h in await provider.search(query, pages * 3, language)
        if _domain_ok(h.url, allowed_domains)
    ][:pages]

    async def read(hit: SearchHit) -> Source:
        try:
            page = await fetcher.get(hit.url)
            text = await asyncio.to_thread(_extract, page.body) if page.status == 200 else ""
        except Exception:  # a refused or broken page falls back to the engine's snippet
            text = ""
        limit = PAGE_CHARS.get(context_size, 2000)
        return Source(hit.title, hit.url, (text or hit.snippet)[:limit])

    return list(await asyncio.gather(*(read(h) for h in hits)))


def grounded(messages: list[ChatMessage], sources: list[Source]) -> list[ChatMessage]:
    if sources:
        body = "\n\n".join(
            f"[{i + 1}] {s.title} ({s.url}):\n{s.text}" for i, s in enumerate(sources)
        )
        note = f"Answer using these web search results.\n\n{body}"
    else:
        note = "A web search found nothing; say so."
    return with_system_note(messages, note)


def citations(sources: list[Source], text: str) -> list[dict[str, Any]]:
    """url_citation annotations spanning the answer, one for each source it was given."""
    if not text:
        return []
    return [
        {
            "type": "url_citation",
            "url": s.url,
            "title": s.title,
            "start_index": 0,
            "end_index": len(text),
        }
        for s in sources[:3]
    ]
