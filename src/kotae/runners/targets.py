"""What a runner hosts: each target loads its engine in `start` (a failure there is reported,
not fatal to the server) and names the methods the parent may call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

from kotae.providers.inference.base import (
    CancelToken,
    ChatMessage,
    ChatRequest,
    FunctionSpec,
    StreamChunk,
)

SELF_TEST_TOKENS = 4


class Target(Protocol):
    calls: frozenset[str]
    streams: frozenset[str]  # async iterators; the host adds a CancelToken as the last argument

    async def start(self) -> dict[str, Any]: ...


class LlamaCppTarget:
    """One GGUF model (optionally with a LoRA adapter) in llama.cpp."""

    calls = frozenset({"count_tokens"})
    streams = frozenset({"stream"})

    def __init__(self, config: dict[str, Any]) -> None:
        from kotae.providers.inference.llama_cpp import LlamaCppBackend

        self.backend = LlamaCppBackend(
            config["model_id"],
            config["path"],
            context_window=config["context_window"],
            n_threads=config.get("n_threads"),
            n_gpu_layers=config.get("n_gpu_layers", 0),
            max_queued=config.get("max_queued", 128),
            lora_path=config.get("lora_path"),
            chat_template=config.get("chat_template"),
        )

    async def start(self) -> dict[str, Any]:
        llama = await asyncio.to_thread(self.backend.load)
        # The self-test: a crash in the CPU kernels (e.g. AMX in a VM) shows on the first
        # decode, so decode a few tokens before saying ready.
        request = ChatRequest([ChatMessage("user", "Hi")], SELF_TEST_TOKENS, 0.0, 1.0)
        async for _ in self.backend.stream(request, CancelToken()):
            pass
        return {"n_ctx": llama.n_ctx()}

    def stream(self, request: ChatRequest, cancel: CancelToken) -> AsyncIterator[StreamChunk]:
        return self.backend.stream(request, cancel)

    async def count_tokens(
        self, messages: list[ChatMessage], tools: list[FunctionSpec] | None
    ) -> int:
        return await self.backend.count_tokens(messages, tools)


class PerceptionTarget:
    """The image classifier and OCR that describe pictures to text-only models."""

    calls = frozenset({"perceive"})
    streams: frozenset[str] = frozenset()

    def __init__(self, config: dict[str, Any]) -> None:
        from kotae.providers.vision.perception import PerceptionModels

        self.models = PerceptionModels()
        self.max_pixels = int(config.get("max_pixels", 40_000_000))

    async def start(self) -> dict[str, Any]:
        await asyncio.to_thread(self.models.load)
        return {}

    async def perceive(self, data: bytes, fmt: str) -> Any:
        from kotae.providers.vision.perception import open_image

        def run() -> Any:
            return self.models.perceive(open_image(data, self.max_pixels), fmt)

        return await asyncio.to_thread(run)


class DiffusersTarget:
    """An embedded diffusers pipeline; partial pictures are streamed as they are made."""

    calls: frozenset[str] = frozenset()
    streams = frozenset({"generate"})

    def __init__(self, config: dict[str, Any]) -> None:
        from kotae.providers.images.diffusers_pipeline import DiffusersBackend

        self.backend = DiffusersBackend(
            config["model_id"],
            Path(config["path"]),
            steps=config["steps"],
            max_queued=config.get("max_queued", 16),
        )

    async def start(self) -> dict[str, Any]:
        await asyncio.to_thread(self.backend.load)
        return {}

    async def generate(self, job: Any, cancel: CancelToken) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        partials: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

        def on_partial(index: int, picture: Any) -> None:
            loop.call_soon_threadsafe(partials.put_nowait, (index, picture))

        task = asyncio.ensure_future(
            self.backend.generate(job, on_partial if job.partial_images else None)
        )
        while not task.done() or not partials.empty():
            getter = asyncio.ensure_future(partials.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield ("partial", *getter.result())
            else:
                getter.cancel()
        yield ("images", task.result())


TARGETS: dict[str, Callable[[dict[str, Any]], Target]] = {
    "llama_cpp": LlamaCppTarget,
    "perception": PerceptionTarget,
    "diffusers": DiffusersTarget,
}
