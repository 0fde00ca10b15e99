"""The model's own summary of a thread: the content of a compaction."""

from __future__ import annotations

from typing import Any

from kotae.providers.inference.base import (
    CancelToken,
    ChatBackend,
    ChatRequest,
    Finished,
    TextDelta,
)
from kotae.services.responses import compaction
from kotae.services.responses.context import build_context

SUMMARY_TOKENS = 512
ASK = (
    "Summarize the conversation so far for your own later use: the user's goals, the facts "
    "and decisions established, what was answered and what is still open. Be concise; write "
    "only the summary."
)


async def summarize(
    backend: ChatBackend,
    items: list[dict[str, Any]],
    instructions: str | None,
    cancel: CancelToken,
) -> tuple[str, Finished]:
    """The model's summary of `items` (the oldest dropped first if they do not fit)."""
    ask = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": ASK}]}
    context = await build_context(
        backend,
        instructions=instructions,
        history=compaction.apply(items),
        new_items=[ask],
        max_output_tokens=SUMMARY_TOKENS,
        truncation="auto",
    )
    # A summary stands for what it replaces: at most a third of it.
    budget = min(context.max_output_tokens, max(64, context.input_tokens // 3))
    request = ChatRequest(
        messages=context.messages,
        max_tokens=budget,
        temperature=0.2,
        top_p=0.95,
        stream=False,
    )
    text: list[str] = []
    finished: Finished | None = None
    async for chunk in backend.stream(request, cancel):
        if isinstance(chunk, TextDelta):
            text.append(chunk.text)
        elif isinstance(chunk, Finished):
            finished = chunk
    assert finished is not None
    return "".join(text).strip(), finished
