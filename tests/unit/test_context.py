"""Context fitting with truncation "auto": the newest messages that fit, found with a few
token counts however long the thread (it once re-counted the whole thread per dropped
message: 1,100 messages took 172 s)."""

from __future__ import annotations

import asyncio
from typing import Any

from kotae.providers.inference.base import ChatMessage, FunctionSpec
from kotae.services.responses.context import build_context, newest_within
from kotae.services.responses.convert import item_text, normalize_input


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
