"""The image_generation tool: draw (or edit the thread's latest picture) with the image model;
partial pictures stream as they come."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

from PIL import Image

from kotae.errors import InvalidRequest, KotaeError
from kotae.providers.inference.base import FunctionSpec, ToolCall
from kotae.services.images import NO_MODEL
from kotae.services.images import encode as encode_image
from kotae.services.responses.builtin.base import BuiltinTool, Outcome, ToolDeps, ToolRun
from kotae.services.responses.builtin.file_search import argument
from kotae.services.responses.events import StreamEvent

GENERATE_IMAGE = FunctionSpec(
    "generate_image",
    "Draw a new picture (illustration, photo, drawing, logo) when the user asks for an image.",
    {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]},
)
OPTIONS = {
    "type",
    "model",
    "size",
    "quality",
    "output_format",
    "output_compression",
    "background",
    "partial_images",
    "moderation",
    "input_fidelity",
    "action",
}


class ImageGeneration(BuiltinTool):
    kind = "image_generation"

    def __init__(self, raw: dict[str, Any], index: int) -> None:
        super().__init__(raw, index)
        for key in raw:
            if key not in OPTIONS:
                raise InvalidRequest(
                    f"image_generation option '{key}' is not supported by this server.",
                    param=f"tools[{index}].{key}",
                )
        # The thread's latest picture, for edits; set by the service once it knows the thread.
        self.picture: Callable[[], bytes | None] = lambda: None

    @property
    def edits(self) -> bool:
        return self.raw.get("action") == "edit"

    def functions(self) -> list[FunctionSpec]:
        return [GENERATE_IMAGE]

    def unavailable(self, deps: ToolDeps) -> tuple[str, str | None] | None:
        if deps.images is None or deps.images.model_id() is None:
            return NO_MODEL, "image_model_not_configured"
        return None

    async def check(
        self, project_id: str, param: str, deps: ToolDeps, history: list[dict[str, Any]]
    ) -> None:
        assert deps.images is not None
        deps.images.backend(self.raw.get("model"), f"{param}.model")

    async def run(self, call: ToolCall, run: ToolRun) -> AsyncIterator[StreamEvent | Outcome]:
        # Under the constrained strategy the user's own words: a small model's rewrite can
        # lose what was asked.
        prompt = (run.question if run.constrained else "") or argument(call, "prompt")
        prompt = prompt or run.question
        source = None if self.raw.get("action") == "generate" else self.picture()
        try:
            async for event in self._draw(run, prompt, source):
                yield event
        except KotaeError as exc:
            for event in run.emitter.finish_image_generation(None, prompt, {}):
                yield event
            yield Outcome(f"Generating the image failed: {exc.message}. Tell the user.")
            return
        yield Outcome(
            f"An image was generated for the user from this description: {prompt}. It is "
            "attached to your reply. Say in one short sentence that here it is; do not "
            "describe details you cannot see."
        )

    async def _draw(
        self, run: ToolRun, prompt: str, source: bytes | None
    ) -> AsyncIterator[StreamEvent]:
        """The image_generation_call item: partial pictures as they come, then the result.
        With a `source` picture (the thread's latest image), the prompt edits it."""
        images = run.deps.images
        assert images is not None
        emitter, tool = run.emitter, self.raw
        fmt = tool.get("output_format") or "png"
        options = {
            "size": tool.get("size") or "auto",
            "quality": tool.get("quality") or "auto",
            "output_format": fmt,
            "background": "opaque",
            "action": "edit" if source is not None else "generate",
        }
        for event in emitter.start_image_generation():
            yield event
        partials: asyncio.Queue[tuple[int, Image.Image]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_partial(index: int, picture: Image.Image) -> None:
            loop.call_soon_threadsafe(partials.put_nowait, (index, picture))

        params = {
            "model": tool.get("model"),
            "prompt": prompt,
            "n": 1,
            "size": options["size"],
            "quality": options["quality"],
            "output_format": fmt,
            "output_compression": tool.get("output_compression"),
            "background": tool.get("background"),
            "response_format": "b64_json",
            "partial_images": tool.get("partial_images") or 0,
        }
        wanted = on_partial if params["partial_images"] else None
        picture = Image.open(io.BytesIO(source)).convert("RGB") if source is not None else None
        task = asyncio.ensure_future(images.create(params, "", image=picture, on_partial=wanted))
        try:
            while not task.done() or not partials.empty():
                waiter = asyncio.ensure_future(partials.get())
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    index, drawn = waiter.result()
                    b64 = base64.b64encode(encode_image(drawn, fmt)).decode()
                    shown = {k: v for k, v in options.items() if k != "action"}
                    yield emitter.partial_image(index, b64, shown)
                else:
                    waiter.cancel()
            result = task.result()
        finally:
            task.cancel()
        options["size"] = result["size"]
        options["quality"] = result["quality"]
        for event in emitter.finish_image_generation(
            result["data"][0]["b64_json"], prompt, options
        ):
            yield event
