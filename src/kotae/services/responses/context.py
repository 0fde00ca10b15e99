"""The model's view of a request: instructions, the thread so far, the new input — cut to fit
the context window when truncation allows."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from kotae.errors import ContextLengthExceeded
from kotae.providers.inference.base import ChatBackend, ChatMessage, FunctionSpec
from kotae.services.responses import compaction
from kotae.services.responses.convert import newest_items, to_chat_messages
from kotae.services.responses.media import Media

# Threads longer than this are converted in a thread of the process: their Python loops
# would hold the event loop (and every other request) for their whole run.
BIG_THREAD = 500
# More characters a token than any real tokenizer averages over a prompt.
MAX_CHARS_PER_TOKEN = 32


def _chars(messages: list[ChatMessage]) -> int:
    return sum(len(m.content) for m in messages)


def refuse_oversized(
    messages: list[ChatMessage], window: int, param: str, tool_chars: int = 0
) -> None:
    """A 400 for input too long for the window, told without tokenizing it: more messages
    than it holds tokens, or more text (with the tools' text, `tool_chars`)."""
    refuse_message_count(len(messages), window, param)
    chars = _chars(messages) + tool_chars
    if chars > window * MAX_CHARS_PER_TOKEN:
        with_tools = " with its tools" if tool_chars else ""
        raise ContextLengthExceeded(
            f"Your input{with_tools} is {chars} characters; this model's context window of "
            f"{window} tokens never holds that much text. Shorten the input.",
            param=param,
        )


async def tools_text(tools: list[FunctionSpec] | None, window: int) -> int:
    """The characters the tools add to the prompt (measured off the event loop), after a 400
    for more tools than the window holds tokens: 100,000 tools held the engine 10 s only to
    be counted."""
    if not tools:
        return 0
    if len(tools) > window:
        raise ContextLengthExceeded(
            f"Your request offers {len(tools)} tools; this model's context window of {window} "
            "tokens never holds that many.",
            param="tools",
        )
    return await asyncio.to_thread(_tool_chars, tools)


def _tool_chars(tools: list[FunctionSpec]) -> int:
    return sum(
        len(t.name) + len(t.description or "") + len(json.dumps(t.parameters)) for t in tools
    )


def refuse_many_messages(raw: object, window: int, param: str = "input") -> None:
    """The same 400 for more messages than the window holds, counted in the request's own
    `input` before any item is built from it: 100,000 stored items and engine messages cost
    ~25 times the body's size, only to be refused. Each message item after the last
    compaction becomes one engine message (a lower bound of what the model would see)."""
    if not isinstance(raw, list) or len(raw) <= window:
        return
    count = 0
    for item in reversed(raw):
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "compaction":
            break
        count += kind == "message"
    refuse_message_count(count, window, param)


def refuse_message_count(count: int, window: int, param: str) -> None:
    if count > window:
        raise ContextLengthExceeded(
            f"Your input is {count} messages; this model's context window of {window} "
            "tokens never holds that many. Shorten the input or set truncation='auto'.",
            param=param,
        )


def newest_within(body: list[ChatMessage], chars: int) -> list[ChatMessage]:
    """The newest messages whose text fits in `chars` (at least the newest one), summed once
    from the end."""
    total = 0
    for i in range(len(body) - 1, -1, -1):
        total += len(body[i].content)
        if total > chars:
            return body[i + 1 :] if i + 1 < len(body) else body[-1:]
    return body


async def _longest_fitting(
    backend: ChatBackend,
    head: list[ChatMessage],
    body: list[ChatMessage],
    tools: list[FunctionSpec] | None,
    budget: int,
) -> tuple[list[ChatMessage], int]:
    """The most newest messages of `body` whose prompt is at most `budget` tokens (the whole
    body is known not to fit), with that prompt's count; the newest message alone if none."""
    lo, hi = 1, len(body) - 1
    best: tuple[int, int] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        count = await backend.count_tokens(head + body[-mid:], tools)
        if count <= budget:
            best, lo = (mid, count), mid + 1
        else:
            hi = mid - 1
    if best is None:
        return body[-1:], await backend.count_tokens(head + body[-1:], tools)
    return body[-best[0] :], best[1]


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
    window = backend.context_window
    # One list: a compaction among the new items stands for the history before it.
    items = [*history, *new_items]
    if truncation == "auto":
        # Each message costs at least a token: no more than the window's count can fit, and
        # older items need not become messages at all.
        items = newest_items(compaction.apply(items), max(1, window - len(head)))
    if len(items) > BIG_THREAD:  # its Python loops in a thread, not on the event loop
        body = await asyncio.to_thread(to_chat_messages, items, media)
    else:
        body = to_chat_messages(items, media)
    # Room for the answer: what was asked for, but never more than a quarter of the window
    # when that would force dropping the conversation.
    reserve = min(max_output_tokens, max(window // 4, 16))
    # The cheap check first: text far longer than the window can hold is dropped (auto) or
    # refused without being tokenized.
    limit = window * MAX_CHARS_PER_TOKEN
    tool_chars = await tools_text(tools, window)
    if truncation == "auto":
        budget = limit - _chars(head) - tool_chars
        body = newest_within(body[-max(1, window - len(head)) :], budget)
    refuse_oversized(head + body, window, "input", tool_chars)
    tokens = await backend.count_tokens(head + body, tools)
    if truncation == "auto" and tokens + reserve > window and len(body) > 1:
        # Drop the oldest items first; the newest message always stays. Kept messages only
        # add tokens, so the longest newest run that fits is found by halving: a few counts
        # however long the thread (one count a dropped message was quadratic).
        body, tokens = await _longest_fitting(backend, head, body, tools, window - reserve)
    if tokens + 16 > window or (truncation == "auto" and tokens + reserve > window):
        raise ContextLengthExceeded(
            f"Your input is {tokens} tokens; this model's context window is {window} tokens. "
            "Shorten the input or set truncation='auto'.",
            param="input",
        )
    return PromptContext(head + body, tokens, min(max_output_tokens, window - tokens))
