"""Context fitting with truncation "auto": the newest messages that fit, found with a few
token counts however long the thread (it once re-counted the whole thread per dropped
message: 1,100 messages took 172 s)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from kotae.errors import ContextLengthExceeded
from kotae.providers.inference.base import ChatMessage, FunctionSpec
from kotae.services.responses import context
from kotae.services.responses.context import build_context, newest_within, refuse_many_messages
from kotae.services.responses.convert import (
    item_text,
    newest_items,
    normalize_input,
    to_chat_messages,
)


class CountingBackend:
    """Counts a prompt as one token a word plus 3 a message, and how often it was asked."""

    def __init__(self, window: int) -> None:
        self.context_window = window
        self.calls = 0

    async def count_tokens(
        self, messages: list[ChatMessage], tools: list[FunctionSpec] | None = None
    ) -> int:
        self.calls += 1
        return sum(len(m.content.split()) + 3 for m in messages)


def thread(n: int) -> list[dict[str, Any]]:
    return normalize_input(
        [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i} w w"} for i in range(n)]
    )


def fit(backend: CountingBackend, items: list[dict[str, Any]]) -> list[ChatMessage]:
    context = asyncio.run(
        build_context(
            backend,  # type: ignore[arg-type]
            instructions="be brief",
            history=items[:-1],
            new_items=items[-1:],
            max_output_tokens=16,
            truncation="auto",
        )
    )
    assert context.input_tokens + 16 <= backend.context_window
    return context.messages


def test_truncation_keeps_the_newest_that_fit_in_a_few_counts() -> None:
    backend = CountingBackend(window=400)
    messages = fit(backend, thread(1100))
    # 6 tokens a message, 5 for the instructions, 16 kept for the answer: 63 messages fit.
    assert messages[0].content == "be brief"
    assert [m.content for m in messages[1:]][-1] == "m1099 w w"
    assert len(messages) - 1 == (400 - 16 - 5) // 6
    assert backend.calls <= 14  # log2(1100) + 2, where it was one a dropped message


def test_the_same_messages_as_dropping_one_at_a_time() -> None:
    for n in (2, 3, 7, 64, 65, 200):
        backend = CountingBackend(window=400)
        kept = fit(backend, thread(n))[1:]
        expected = thread(n)
        while sum(len(item_text(i).split()) + 3 for i in expected) + 5 + 16 > 400:
            expected = expected[1:]
        assert [m.content for m in kept] == [item_text(i) for i in expected]


def test_newest_within_sums_once_from_the_end() -> None:
    body = [ChatMessage("user", "x" * 10) for _ in range(100_000)]
    assert len(newest_within(body, 95)) == 9
    assert len(newest_within(body, 5)) == 1  # the newest always stays
    assert len(newest_within(body[:3], 10**6)) == 3


def test_long_threads_convert_only_the_items_that_can_reach_the_model() -> None:
    """Under truncation "auto" at most the window's count of messages can fit: 100,000
    items became 100,000 engine messages (~20 MB) before all but the newest were dropped."""
    converted: list[int] = []
    real = context.to_chat_messages

    def counting(items: list[dict[str, Any]], media: Any = None) -> list[ChatMessage]:
        converted.append(len(items))
        return real(items, media)

    backend = CountingBackend(window=400)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(context, "to_chat_messages", counting)
        messages = fit(backend, thread(100_000))
    assert converted == [400]  # the 399 newest a window of 400 (less the instructions) allows
    assert messages[-1].content == "m99999 w w"


KINDS: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "u"}]},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "s"}]},
    {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "r"}]},
    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c", "output": "o"},
    {"type": "web_search_call", "action": {"query": "q"}},
    {"type": "mcp_list_tools", "server_label": "m", "tools": []},
    {"type": "shell_call", "call_id": "s", "action": {"commands": ["ls"]}},
    {"type": "shell_call_output", "call_id": "s", "output": []},
    {"type": "mcp_approval_response", "approval_request_id": "x", "approve": True},
]


def test_the_newest_items_give_the_newest_messages_exactly() -> None:
    """Whatever the kinds before the cut (tool calls joining a turn, thinking waiting for
    the next one, items giving no message), the newest messages are the same."""
    rng = random.Random(7)
    for _ in range(2000):
        items = [{**rng.choice(KINDS), "id": f"i{j}", "n": j} for j in range(rng.randint(0, 30))]
        for j, item in enumerate(items):  # distinct texts, to tell the messages apart
            if item["type"] in ("message", "reasoning"):
                part = dict(item["content"][0], text=f"t{j}")
                item["content"] = [part]
        count = rng.randint(1, 12)
        kept = newest_items(items, count)
        assert kept == items[len(items) - len(kept) :]
        whole = to_chat_messages(items)[-count:]
        assert to_chat_messages(kept)[-count:] == whole


def test_more_messages_than_the_window_are_refused_by_their_count() -> None:
    tiny = [{"role": "user", "content": "x"}] * 3000
    with pytest.raises(ContextLengthExceeded, match="3000 messages"):
        refuse_many_messages(tiny, 2048)
    refuse_many_messages(tiny[:2048], 2048)
    # A compaction stands for what is before it; items that give no message are not counted.
    refuse_many_messages([*tiny, {"type": "compaction", "encrypted_content": "e"}, *tiny[:5]], 2048)
    refuse_many_messages([{"type": "item_reference", "id": "msg_1"}] * 3000, 2048)
    refuse_many_messages("x" * 100_000, 2048)
