"""The small interface every chat engine implements."""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

Role = Literal["system", "user", "assistant", "tool"]
ToolMode = Literal["auto", "none", "required"]


@dataclass
class ToolCall:
    call_id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(slots=True)
class ChatMessage:
    role: Role
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)  # assistant turns
    tool_call_id: str | None = None  # tool turns: the call this answers
    images: list[str] = field(default_factory=list)  # data URLs, for vision models
    # An assistant turn's thinking, passed back where the model's template takes it.
    reasoning: str = ""


def with_system_note(messages: list[ChatMessage], note: str) -> list[ChatMessage]:
    """The messages with `note` added to the system turn (made first if there is none)."""
    if messages and messages[0].role == "system":
        return [ChatMessage("system", f"{messages[0].content}\n\n{note}"), *messages[1:]]
    return [ChatMessage("system", note), *messages]


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    description: str | None
    parameters: dict[str, Any]
    strict: bool = True


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
    tools: list[FunctionSpec] = field(default_factory=list)
    tool_mode: ToolMode = "auto"
    # The names the model may call (`allowed_tools`, or one forced function); None = all.
    allowed_tools: list[str] | None = None
    parallel_tool_calls: bool = True
    # False when the caller wants the whole answer at once: a remote engine then answers in
    # one body instead of a token stream (less work on both sides).
    stream: bool = True
    logprobs: bool = False
    top_logprobs: int = 0  # alternatives per token (0-20) when logprobs is set
    # Guards for small models' free text (embedded engines; a grammar's output is exempt):
    # a penalty on recently used tokens, and a stop when the output loops.
    repeat_penalty: float = 1.0
    loop_guard: bool = False
    # Legacy completions: this text is the whole prompt, continued as it is (no chat
    # template, no tools); `messages` is then unused.
    prompt: str | None = None
    # What `reasoning.effort` sets for this model (its config): chat-template variables
    # (e.g. enable_thinking), fields of a remote engine's request body, and a cap on the
    # thinking's tokens (the embedded engine closes the block there).
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    thinking_budget: int | None = None
    # The model's chat template opens the <think> block itself: what it writes first is
    # thinking up to </think> (DeepSeek-R1's, newer Qwen3's). Detected by the embedded engine.
    opens_thinking: bool = False


@dataclass
class TokenLogprob:
    """One generated token's log probability, and the likeliest tokens at its place."""

    token: str
    bytes: list[int]
    logprob: float
    top: list[tuple[str, list[int], float]] = field(default_factory=list)


@dataclass
class TextDelta:
    text: str
    # The tokens this text came from, when the request asked for logprobs.
    logprobs: list[TokenLogprob] | None = None


@dataclass
class ReasoningDelta:
    """Text of the model's thinking: a remote engine's reasoning field, or the inside of a
    <think> block. Never part of the answer's text."""

    text: str


@dataclass
class ToolCallDelta:
    """A whole function call the model made (arguments complete)."""

    call: ToolCall


@dataclass
class Finished:
    reason: Literal["stop", "length", "cancelled", "tool_calls"]
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0  # of output_tokens, those spent thinking

    def after(self, earlier: Finished) -> Finished:
        """This generation's end, counting the tokens of an earlier one it follows (a
        retry, a second pass) too."""
        return dataclasses.replace(
            self,
            input_tokens=self.input_tokens + earlier.input_tokens,
            output_tokens=self.output_tokens + earlier.output_tokens,
            cached_tokens=self.cached_tokens + earlier.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + earlier.reasoning_tokens,
        )


StreamChunk = TextDelta | ReasoningDelta | ToolCallDelta | Finished


class CancelToken:
    """Set when the client goes away or cancels; engines stop at the next token."""

    def __init__(self, parent: CancelToken | None = None) -> None:
        self._event = threading.Event()
        self._parent = parent
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        self._event.set()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` once when this token (or a parent) is cancelled; at once if it
        already is. Engines in another process need the push: they cannot poll the flag."""
        if self.cancelled:
            callback()
            return
        fired = threading.Event()

        def once() -> None:
            if not fired.is_set():
                fired.set()
                callback()

        token: CancelToken | None = self
        while token is not None:
            token._callbacks.append(once)
            token = token._parent
        if self.cancelled:  # cancelled while the callback was being added
            once()

    def child(self) -> CancelToken:
        """A token for one engine call: cancelled with this one, but ending that call (which
        cancels its token) leaves this one untouched."""
        return CancelToken(self)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self._parent is not None and self._parent.cancelled)


@dataclass(frozen=True)
class Capabilities:
    json_schema: bool
    exact_token_count: bool
    tools: bool = True


class ChatBackend(Protocol):
    model_id: str
    context_window: int
    capabilities: Capabilities

    async def count_tokens(
        self, messages: list[ChatMessage], tools: list[FunctionSpec] | None = None
    ) -> int:
        """Prompt tokens of these messages (and tool definitions) once templated."""
        ...

    def check_capacity(self) -> None:
        """Raises RateLimited when the engine's queue is full (before any event is sent)."""
        ...

    def stream(self, request: ChatRequest, cancel: CancelToken) -> AsyncIterator[StreamChunk]:
        """Text deltas, then exactly one Finished."""
        ...

    async def close(self) -> None: ...


T = TypeVar("T")


class Admission:
    """A place in an engine's queue, held from a request's acceptance to its end: counted
    before the first await, so what is admitted never exceeds the queue's cap in a burst."""

    def __init__(self, release: Callable[[], None] | None = None) -> None:
        self._release = release

    def release(self) -> None:
        """Idempotent: the run's end, its failure and its garbage collection may all call it."""
        release, self._release = self._release, None
        if release is not None:
            release()

    async def hold(self, preparing: Awaitable[T]) -> T:
        """The request's preparation, awaited: if it fails the place is given back; what it
        makes holds the place until released, or at the latest until it is collected (a
        request prepared, never run)."""
        try:
            made = await preparing
        except BaseException:
            self.release()
            raise
        weakref.finalize(made, self.release)
        return made


def admit(backend: ChatBackend) -> Admission:
    """A place in `backend`'s queue, or RateLimited (429) when it is full. Engines that queue
    for themselves (remote servers) admit everything."""
    take = getattr(backend, "admit", None)
    if take is None:
        backend.check_capacity()
        return Admission()
    release: Callable[[], None] = take()
    return Admission(release)
