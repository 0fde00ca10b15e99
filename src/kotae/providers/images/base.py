"""Image generation engines behind one interface: text to image, edit (inpaint), variation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

# Called with (index, picture) as a partial image becomes available.
PartialCallback = Callable[[int, Image.Image], None]


@dataclass
class ImageJob:
    prompt: str
    n: int
    width: int | None  # None: the model's own size
    height: int | None
    quality: str = "auto"  # low / medium / high / auto (also standard / hd)
    image: Image.Image | None = None  # edits and variations
    mask: Image.Image | None = None  # white = paint here
    partial_images: int = 0


class ImageBackend(Protocol):
    model_id: str

    def check_capacity(self) -> None:
        """Raises RateLimited when the queue is full."""
        ...

    async def generate(
        self, job: ImageJob, on_partial: PartialCallback | None = None
    ) -> list[Image.Image]: ...

    async def close(self) -> None: ...
