"""The model's view of a request: instructions, the thread so far, the new input — cut to fit
the context window when truncation allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kotae.errors import ContextLengthExceeded
from kotae.providers.inference.base import ChatBackend, ChatMessage, FunctionSpec
from kotae.services.responses.convert import to_chat_messages
from kotae.services.responses.media import Media


@dataclass
class PromptContext:
    messages: list[ChatMessage]
    input_tokens: int
    max_output_tokens: int


async def build_context(
    backend: ChatBackend,
    *,
    instructions: str | None,
    history: list[dict[str, Any]],
    new_items: list[dict[str, Any]],
    max_output_tokens: int,
    truncation: str,
    tools: list[FunctionSpec] | None = None,
    media: dict[tuple[str, int], Media] | None = None,
) -> PromptContext:
    head = [ChatMessage("system", instructions)] if instructions else []
    body = to_chat_messages(history, media) + to_chat_messages(new_items, media)
    window = backend.context_window
    # Room for the answer: what was asked for, but never more than a quarter of the window
    # when that would force dropping the conversation.
    reserve = min(max_output_tokens, max(window // 4, 16))
    tokens = await backend.count_tokens(head + body, tools)
    if truncation == "auto":
        # Drop the oldest items first; the newest message always stays.
        while tokens + reserve > window and len(body) > 1:
            body = body[1:]
            tokens = await backend.count_tokens(head + body, tools)
    if tokens + 16 > window or (truncation == "auto" and tokens + reserve > window):
        raise ContextLengthExceeded(
            f"Your input is {tokens} tokens; this model's context window is {window} tokens. "
            "Shorten the input or set truncation='auto'.",
            param="input",
        )
    return PromptContext(head + body, tokens, min(max_output_tokens, window - tokens))
