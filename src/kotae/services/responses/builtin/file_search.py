"""The file_search tool: search the request's vector stores; the excerpts ground the next
turn, and the answer cites the files they came from."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from kotae import ids
from kotae.errors import InvalidRequest, refuse_unknown
from kotae.providers.inference.base import FunctionSpec, ToolCall
from kotae.schemas.vector_stores import SearchVectorStore
from kotae.services.responses.builtin.base import BuiltinTool, Outcome, ToolDeps, ToolRun
from kotae.services.responses.events import StreamEvent

SEARCH = FunctionSpec(
    "file_search",
    "Search the user's uploaded files (manuals, FAQs, policies, reports). Use it for any "
    "question about their content, their company, products or procedures.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
EXCERPT_CHARS = 1500
OPTIONS = {"type", "vector_store_ids", "max_num_results", "filters", "ranking_options"}


def argument(call: ToolCall, key: str) -> str:
    """One string argument of a call, "" when the model wrote something else."""
    try:
        return str(json.loads(call.arguments).get(key) or "").strip()
    except (ValueError, AttributeError):
        return ""


class FileSearch(BuiltinTool):
    kind = "file_search"

    def __init__(self, raw: dict[str, Any], index: int) -> None:
        super().__init__(raw, index)
        store_ids = raw.get("vector_store_ids")
        if (
            not isinstance(store_ids, list)
            or not store_ids
            or not all(isinstance(i, str) for i in store_ids)
        ):
            raise InvalidRequest(
                "file_search needs vector_store_ids.", param=f"tools[{index}].vector_store_ids"
            )
        refuse_unknown(raw, OPTIONS, f"tools[{index}]")
        k = raw.get("max_num_results", 10)
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise InvalidRequest(
                "max_num_results must be between 1 and 50.",
                param=f"tools[{index}].max_num_results",
            )
        self.vector_store_ids: list[str] = store_ids
        self.max_num_results = k

    def functions(self) -> list[FunctionSpec]:
        return [SEARCH]

    async def check(
        self, project_id: str, param: str, deps: ToolDeps, history: list[dict[str, Any]]
    ) -> None:
        assert deps.vector_stores is not None
        for store_id in self.vector_store_ids:
            ids.expect_prefix(store_id, "vs_", f"{param}.vector_store_ids")
            # Another project's store is missing here, exactly like an unknown one.
            await asyncio.to_thread(
                deps.vector_stores.check_store, project_id, store_id, f"{param}.vector_store_ids"
            )

    async def run(self, call: ToolCall, run: ToolRun) -> AsyncIterator[StreamEvent | Outcome]:
        stores = run.deps.vector_stores
        assert stores is not None
        query = argument(call, "query")
        # A small model's query can miss the point: the user's own words are searched too.
        wanted = [query, run.question] if run.constrained else [query or run.question]
        queries = [q for q in dict.fromkeys(wanted) if q]
        for event in run.emitter.start_file_search(queries):
            yield event
        await stores.wait_ingested(
            self.vector_store_ids, run.deps.settings.file_search_wait_seconds
        )
        _, found = await asyncio.to_thread(
            stores.search,
            run.project_id,
            self.vector_store_ids,
            SearchVectorStore.model_validate(
                {
                    "query": queries,
                    "max_num_results": self.max_num_results,
                    "filters": self.raw.get("filters"),
                    "ranking_options": self.raw.get("ranking_options"),
                }
            ),
        )
        shown = "file_search_call.results" in run.include
        for event in run.emitter.finish_file_search(item_results(found) if shown else None):
            yield event
        yield Outcome(grounding(found), cite=lambda text: citations(found, text))


def grounding(results: list[dict[str, Any]]) -> str:
    """The excerpts as the model reads them."""
    if not results:
        return "A search of the user's files found nothing relevant; say so if it matters."
    excerpts = "\n\n".join(
        f"[{i + 1}] {r['filename']}:\n{r['content'][0]['text'][:EXCERPT_CHARS]}"
        for i, r in enumerate(results)
    )
    return (
        "Answer the question using these excerpts from the user's files. If they do "
        f"not contain the answer, say so.\n\n{excerpts}"
    )


def citations(results: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """file_citation annotations at the end of the answer: the best file, and any other file
    scoring close to it."""
    if not results or not text:
        return []
    top = results[0]["score"]
    seen: list[str] = []
    out = []
    for r in results:
        if r["file_id"] in seen or r["score"] < 0.8 * top or len(seen) == 3:
            continue
        seen.append(r["file_id"])
        out.append(
            {
                "type": "file_citation",
                "file_id": r["file_id"],
                "filename": r["filename"],
                "index": len(text),
            }
        )
    return out


def item_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "file_id": r["file_id"],
            "filename": r["filename"],
            "score": r["score"],
            "text": r["content"][0]["text"],
            "attributes": r["attributes"],
        }
        for r in results
    ]
