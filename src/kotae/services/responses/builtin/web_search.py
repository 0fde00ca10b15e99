"""The web_search tools: search an engine, read the top pages (through the SSRF guard); the
pages ground the next turn and the answer cites them with url_citation annotations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kotae.errors import InvalidRequest, KotaeError, refuse_unknown
from kotae.net.fetch import Fetcher
from kotae.providers.inference.base import FunctionSpec, ToolCall
from kotae.providers.web_search.base import SearchHit, WebSearchProvider
from kotae.services.responses.builtin.base import BuiltinTool, Outcome, ToolDeps, ToolRun
from kotae.services.responses.builtin.file_search import argument
from kotae.services.responses.events import StreamEvent

SEARCH_WEB = FunctionSpec(
    "web_search",
    "Search the web for current information: news, prices, weather, recent events, or "
    "anything that may have changed. Write a short search query.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
WEB_TYPES = {
    "web_search",
    "web_search_2025_08_26",
    "web_search_preview",
    "web_search_preview_2025_03_11",
}
OPTIONS = {
    "type",
    "search_context_size",
    "user_location",
    "filters",
    "search_content_types",
    "external_web_access",
}
NO_ENGINE = (
    "Web search needs a search engine: set KOTAE_WEB_SEARCH_PROVIDER=searxng with "
    "KOTAE_SEARXNG_URL=http://your-searxng:8080, or =brave with KOTAE_BRAVE_API_KEY."
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


class WebSearch(BuiltinTool):
    kind = "web_search"

    def __init__(self, raw: dict[str, Any], index: int) -> None:
        super().__init__(raw, index)
        refuse_unknown(raw, OPTIONS, f"tools[{index}]")
        size = raw.get("search_context_size") or "medium"
        if size not in ("low", "medium", "high"):
            raise InvalidRequest(
                "search_context_size must be low, medium or high.",
                param=f"tools[{index}].search_context_size",
            )
        domains = (raw.get("filters") or {}).get("allowed_domains")
        self.context_size: str = size
        self.allowed_domains: list[str] | None = list(domains) if domains else None

    def functions(self) -> list[FunctionSpec]:
        return [SEARCH_WEB]

    def named_by(self, choice: dict[str, Any]) -> bool:
        return choice.get("type") in WEB_TYPES

    def unavailable(self, deps: ToolDeps) -> tuple[str, str | None] | None:
        if deps.web is None or deps.fetcher is None:
            return NO_ENGINE, "web_search_not_configured"
        return None

    async def run(self, call: ToolCall, run: ToolRun) -> AsyncIterator[StreamEvent | Outcome]:
        assert run.deps.web is not None and run.deps.fetcher is not None
        # Under the constrained strategy the user's own words: a small model's query is
        # often beside the point.
        query = (run.question if run.constrained else "") or argument(call, "query")
        query = query or run.question
        for event in run.emitter.start_web_search(query):
            yield event
        try:
            sources = await search(
                run.deps.web,
                run.deps.fetcher,
                query,
                context_size=self.context_size,
                allowed_domains=self.allowed_domains,
                language=None,
            )
        except KotaeError as exc:
            for event in run.emitter.finish_web_search(None, status="failed"):
                yield event
            yield Outcome(f"The web search failed: {exc.message}. Tell the user.")
            return
        shown = "web_search_call.action.sources" in run.include
        for event in run.emitter.finish_web_search([s.url for s in sources] if shown else None):
            yield event
        yield Outcome(grounding(sources), cite=lambda text: citations(sources, text))


async def search(
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


def grounding(sources: list[Source]) -> str:
    """The pages as the model reads them."""
    if not sources:
        return "A web search found nothing; say so."
    body = "\n\n".join(f"[{i + 1}] {s.title} ({s.url}):\n{s.text}" for i, s in enumerate(sources))
    return f"Answer using these web search results.\n\n{body}"


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
