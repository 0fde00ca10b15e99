"""The embedded llama.cpp engine as the API process sees it: a ChatBackend whose model lives
in a runner process (see kotae.runners). This module never imports llama_cpp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kotae.errors import queue_full
from kotae.providers.inference.base import (
    CancelToken,
    Capabilities,
    ChatMessage,
    ChatRequest,
    Finished,
    FunctionSpec,
    ReasoningDelta,
    StreamChunk,
    TextDelta,
)
from kotae.runners.supervisor import Runner

BUILD_FLAGS = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CRASH_HINT = (
    "If it crashes on the first decode, llama-cpp-python was probably built to use AMX, which "
    "this CPU or VM faults on (llama.cpp issue #20824). Rebuild it without AMX: "
    f"CMAKE_ARGS=\"-DCMAKE_C_FLAGS='{BUILD_FLAGS}' -DCMAKE_CXX_FLAGS='{BUILD_FLAGS}'\" "
    "pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python==0.3.36"
)


class LlamaCppRunnerBackend:
    def __init__(
        self,
        model_id: str,
        path: str,
        *,
        context_window: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        max_queued: int = 128,
        lora_path: str | None = None,
        chat_template: str | None = None,
    ) -> None:
        self.model_id = model_id
        self.context_window = context_window
        self.capabilities = Capabilities(json_schema=True, exact_token_count=True)
        self._max_queued = max_queued
        self._admitted = 0  # requests accepted and not yet ended (base.admit)
        self.generated_tokens = 0  # over the backend's life, cancelled requests' included
        config: dict[str, Any] = {
            "model_id": model_id,
            "path": path,
            "context_window": context_window,
            "n_threads": n_threads,
            "n_gpu_layers": n_gpu_layers,
            "lora_path": lora_path,
            "chat_template": chat_template,
        }
        self.runner = Runner(model_id, "llama_cpp", config, crash_hint=CRASH_HINT)

    def admit(self) -> Callable[[], None]:
        """A place in the queue for one request, from its acceptance to its end, or a 429:
        checked and taken with no await between, so a burst never admits more than the cap.
        The caller releases it once (`base.Admission`)."""
        self.check_capacity()
        self._admitted += 1
        return self._leave

    def _leave(self) -> None:
        self._admitted -= 1

    @property
    def pending(self) -> int:
        """Requests admitted and not yet ended (what batch lines wait out)."""
        return self._admitted

    def check_capacity(self) -> None:
        if self._admitted >= self._max_queued:
            raise queue_full(f"Model '{self.model_id}'", self._admitted, self._max_queued)

    async def count_tokens(
        self, messages: list[ChatMessage], tools: list[FunctionSpec] | None = None
    ) -> int:
        count: int = await self.runner.call("count_tokens", messages, tools)
        return count

    async def stream(self, request: ChatRequest, cancel: CancelToken) -> AsyncIterator[StreamChunk]:
        seen = 0  # deltas received: counted even when the consumer leaves early
        async for chunk in self.runner.stream("stream", request, cancel=cancel):
            if isinstance(chunk, Finished):
                self.generated_tokens += max(0, chunk.output_tokens - seen)
            elif isinstance(chunk, TextDelta | ReasoningDelta):
                seen += 1
                self.generated_tokens += 1
            yield chunk

    async def close(self) -> None:
        await self.runner.close()
