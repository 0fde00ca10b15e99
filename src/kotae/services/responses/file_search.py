"""The file_search tool: the model decides whether (and what) to search under a grammar, the
results ground the answer, and the answer cites the files it was given."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from kotae.providers.inference.base import (
    CancelToken,
    ChatBackend,
    ChatMessage,
    ChatRequest,
    Finished,
    FunctionSpec,
    TextDelta,
    ToolCallDelta,
    with_system_note,
)

SEARCH = FunctionSpec(
    "file_search",
    "Search the user's uploaded files (manuals, FAQs, policies, reports). Use it for any "
    "question about their content, their company, products or procedures.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
NO_SEARCH = FunctionSpec(
    "answer_directly",
    "Answer without the files: only for greetings, small talk or general knowledge.",
    {"type": "object", "properties": {}},
)
DECISION_TOKENS = 96
EXCERPT_CHARS = 1500


def last_user_text(messages: list[ChatMessage]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


async def decide_queries(
    backend: ChatBackend,
    base: ChatRequest,
    forced: bool,
    cancel: CancelToken,
    search: FunctionSpec = SEARCH,
    question: str = "",
) -> tuple[list[str], Finished | None]:
    """The queries to search, or none. The choice is a required call of one of two
    functions, so a small model's answer is always one of them and well-formed. `question`:
    the user's own words (default: the last user message as the model sees it)."""
    request = dataclasses.replace(
        base,
        tools=[search] if forced else [search, NO_SEARCH],
        tool_mode="required",
        allowed_tools=None,
        parallel_tool_calls=False,
        response_format=None,
        max_tokens=DECISION_TOKENS,
        temperature=0.0,
        stream=False,
    )
    call = None
    finished = None
    text = ""
    async for chunk in backend.stream(request, cancel.child()):
        if isinstance(chunk, ToolCallDelta) and call is None:
            call = chunk.call
        elif isinstance(chunk, TextDelta):
            text += chunk.text
        elif isinstance(chunk, Finished):
            finished = chunk
    question = (question or last_user_text(base.messages)).strip()
    if call is None:
        # An engine that cannot call tools: search with the question itself.
        return ([question] if question else []), finished
    if call.name != search.name:
        return [], finished
    key = next(iter(search.parameters["properties"]))  # query, or prompt
    try:
        query = str(json.loads(call.arguments).get(key) or "").strip()
    except (ValueError, AttributeError):
        query = ""
    # The user's own words are searched too: a small model's query can miss the point.
    queries = [q for q in dict.fromkeys([query, question]) if q]
    return queries, finished


def grounded(messages: list[ChatMessage], results: list[dict[str, Any]]) -> list[ChatMessage]:
    """The messages with the excerpts placed in the system turn, the question still last."""
    if results:
        excerpts = "\n\n".join(
            f"[{i + 1}] {r['filename']}:\n{r['content'][0]['text'][:EXCERPT_CHARS]}"
            for i, r in enumerate(results)
        )
        note = (
            "Answer the question using these excerpts from the user's files. If they do "
            f"not contain the answer, say so.\n\n{excerpts}"
        )
    else:
        note = "A search of the user's files found nothing relevant; say so if it matters."
    return with_system_note(messages, note)


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
