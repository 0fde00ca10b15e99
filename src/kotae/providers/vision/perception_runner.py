"""The perception models as the API process sees them: calls to a runner process, so torch
and onnxruntime are never loaded here."""

from __future__ import annotations

from kotae.providers.vision.perception import Perception
from kotae.runners.supervisor import Runner


class PerceptionRunner:
    def __init__(self, max_pixels: int) -> None:
        self.runner = Runner("perception", "perception", {"max_pixels": max_pixels})

    async def perceive(self, data: bytes, fmt: str) -> Perception:
        seen: Perception = await self.runner.call("perceive", data, fmt)
        return seen

    async def close(self) -> None:
        await self.runner.close()
