"""The embedded diffusers pipeline as the API process sees it: a runner process generates,
streaming partial pictures back; torch and diffusers are never loaded here."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from kotae.errors import queue_full
from kotae.providers.images.base import ImageJob, PartialCallback
from kotae.runners.supervisor import Runner


class DiffusersRunnerBackend:
    def __init__(self, model_id: str, path: Path, *, steps: int, max_queued: int) -> None:
        self.model_id = model_id
        self._max_queued = max_queued
        self._pending = 0
        config = {"model_id": model_id, "path": str(path), "steps": steps, "max_queued": max_queued}
        self.runner = Runner(f"image:{model_id}", "diffusers", config)

    def check_capacity(self) -> None:
        if self._pending >= self._max_queued:
            raise queue_full("The image model", self._pending, self._max_queued)

    async def generate(
        self, job: ImageJob, on_partial: PartialCallback | None = None
    ) -> list[Image.Image]:
        self.check_capacity()
        self._pending += 1
        images: list[Image.Image] = []
        try:
            async for kind, *rest in self.runner.stream("generate", job):
                if kind == "partial" and on_partial is not None:
                    on_partial(rest[0], rest[1])
                elif kind == "images":
                    images = rest[0]
        finally:
            self._pending -= 1
        return images

    async def close(self) -> None:
        await self.runner.close()
