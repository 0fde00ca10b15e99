"""The small interface every chat engine implements."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass
class ChatMessage:
    role: Role
    content: str


@dataclass
class ChatRequest:
    messages: list[ChatMessage]
    max_tokens: int
    temperature: float
    top_p: float
    # {"type": "json_object"} or {"type": "json_schema", "schema": {...}}; None = free text.
    response_format: dict[str, Any] | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # False when the caller wants the whole answer at once: a remote engine then answers in
    # one body instead of a token stream (less work on both sides).
    stream: bool = True


@dataclass
class TextDelta:
    text: str


@dataclass
class Finished:
    reason: Literal["stop", "length", "cancelled"]
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0


StreamChunk = TextDelta | Finished


class CancelToken:
    """Set when the client goes away or cancels; engines stop at the next token."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass(frozen=True)
class Capabilities:
    json_schema: bool
    exact_token_count: bool


class ChatBackend(Protocol):
    model_id: str
    context_window: int
    capabilities: Capabilities

    async def count_tokens(self, messages: list[ChatMessage]) -> int:
        """Prompt tokens of these messages once the chat template is applied."""
        ...

    def check_capacity(self) -> None:
        """Raises RateLimited when the engine's queue is full (before any event is sent)."""
        ...

    def stream(self, request: ChatRequest, cancel: CancelToken) -> AsyncIterator[StreamChunk]:
        """Text deltas, then exactly one Finished."""
        ...

    async def close(self) -> None: ...
