"""The model's view of a request: instructions, the thread so far, the new input — cut to fit
the context window when truncation allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kotae.errors import ContextLengthExceeded
from kotae.providers.inference.base import ChatBackend, ChatMessage, FunctionSpec
from kotae.services.responses.convert import to_chat_messages
from kotae.services.responses.media import Media

# More characters a token than any real tokenizer averages over a prompt.
MAX_CHARS_PER_TOKEN = 32


def _chars(messages: list[ChatMessage]) -> int:
    return sum(len(m.content) for m in messages)


def refuse_oversized(messages: list[ChatMessage], window: int, param: str) -> None:
    """A 400 for text too long for the window, told without tokenizing it."""
    chars = _chars(messages)
    if chars > window * MAX_CHARS_PER_TOKEN:
        raise ContextLengthExceeded(
            f"Your input is {chars} characters; this model's context window of {window} tokens "
            "never holds that much text. Shorten the input.",
            param=param,
        )


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
    # One list: a compaction among the new items stands for the history before it.
    body = to_chat_messages([*history, *new_items], media)
    window = backend.context_window
    # Room for the answer: what was asked for, but never more than a quarter of the window
    # when that would force dropping the conversation.
    reserve = min(max_output_tokens, max(window // 4, 16))
    # The cheap check first: text far longer than the window can hold is dropped (auto) or
    # refused without being tokenized.
    limit = window * MAX_CHARS_PER_TOKEN
    if truncation == "auto":
        while _chars(head + body) > limit and len(body) > 1:
            body = body[1:]
    refuse_oversized(head + body, window, "input")
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
