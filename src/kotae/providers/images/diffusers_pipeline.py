"""An embedded diffusers pipeline (a Hugging Face repo pulled into the data dir, or any local
diffusers directory), CPU or CUDA. One worker thread owns it; requests wait in a bounded FIFO
queue, and each step is logged."""

from __future__ import annotations

import asyncio
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from kotae.errors import BackendError, InvalidRequest, queue_full
from kotae.providers.images.base import ImageJob, PartialCallback

log = logging.getLogger("kotae.images")

QUALITY_STEPS = {"low": 0.25, "medium": 0.5, "standard": 0.5, "auto": 0.5, "high": 1.0, "hd": 1.0}
VARIATION_STRENGTH = 0.7


class DiffusersBackend:
    def __init__(self, model_id: str, path: Path, *, steps: int, max_queued: int) -> None:
        self.model_id = model_id
        self.path = path
        self._steps = steps
        self._pipe: Any = None
        self._device = "cpu"
        # One thread owns the pipeline; requests wait their turn in its FIFO queue.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="images")
        self._max_queued = max_queued
        self._pending = 0

    def load(self) -> Any:
        if self._pipe is None:
            import torch
            from diffusers import DiffusionPipeline

            if not (self.path / "model_index.json").is_file():
                raise BackendError(
                    f"The image model '{self.model_id}' is missing: no diffusers pipeline at "
                    f"{self.path}."
                )
            self._device = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = torch.float16 if self._device == "cuda" else torch.float32
            pipe = DiffusionPipeline.from_pretrained(  # type: ignore[no-untyped-call]
                str(self.path), torch_dtype=dtype
            )
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe.to(self._device)
            log.info("image model %s loaded on %s", self.model_id, self._device)
        return self._pipe

    def check_capacity(self) -> None:
        if self._pending >= self._max_queued:
            raise queue_full("The image model", self._pending, self._max_queued)

    async def generate(
        self, job: ImageJob, on_partial: PartialCallback | None = None
    ) -> list[Image.Image]:
        self.check_capacity()
        self._pending += 1
        try:
            return await asyncio.wrap_future(self._worker.submit(self._run, job, on_partial))
        finally:
            self._pending -= 1

    def _run(self, job: ImageJob, on_partial: PartialCallback | None) -> list[Image.Image]:
        import torch

        pipe = self.load()
        steps = max(1, round(self._steps * QUALITY_STEPS.get(job.quality, 0.5)))
        seed = random.randrange(2**31)
        kwargs: dict[str, Any] = {
            "prompt": job.prompt,
            "num_images_per_prompt": job.n,
            "num_inference_steps": steps,
            "generator": torch.Generator(device=self._device).manual_seed(seed),
        }
        if job.width and job.height:
            kwargs.update(width=job.width, height=job.height)
        target = pipe
        if job.image is not None:
            from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

            try:
                if job.mask is not None:
                    target = AutoPipelineForInpainting.from_pipe(pipe)
                    kwargs.update(image=job.image, mask_image=job.mask)
                else:
                    target = AutoPipelineForImage2Image.from_pipe(pipe)
                    kwargs.update(image=job.image, strength=VARIATION_STRENGTH)
                    # img2img runs strength x steps; keep the number of steps asked for.
                    kwargs["num_inference_steps"] = max(1, round(steps / VARIATION_STRENGTH))
                    kwargs.pop("width", None)
                    kwargs.pop("height", None)
            except ValueError as exc:
                raise InvalidRequest(
                    f"The image model '{self.model_id}' cannot edit images: {exc}"
                ) from exc
        total = kwargs["num_inference_steps"]
        marks = _partial_steps(total, job.partial_images) if on_partial else set()
        sent = [0]

        def on_step(p: Any, step: int, _t: Any, values: dict[str, Any]) -> dict[str, Any]:
            log.info("image %s: step %d/%d", self.model_id, step + 1, total)
            if on_partial is not None and step + 1 in marks:
                preview = _decode(p, values["latents"][:1])
                if preview is not None:
                    on_partial(sent[0], preview)
                    sent[0] += 1
            return values

        kwargs["callback_on_step_end"] = on_step
        log.info("image %s: %d image(s), %d steps, seed %d", self.model_id, job.n, total, seed)
        images: list[Image.Image] = target(**kwargs).images
        return images

    async def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._pipe = None


def _partial_steps(total: int, count: int) -> set[int]:
    """Evenly spaced steps before the last at which to send a preview."""
    if count <= 0 or total < 2:
        return set()
    count = min(count, total - 1)
    return {max(1, round(total * (i + 1) / (count + 1))) for i in range(count)}


def _decode(pipe: Any, latents: Any) -> Image.Image | None:
    """The picture the latents hold so far (pipelines with a VAE and an image processor)."""
    vae = getattr(pipe, "vae", None)
    processor = getattr(pipe, "image_processor", None)
    if vae is None or processor is None:
        return None
    import torch

    with torch.no_grad():
        decoded = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    images: list[Image.Image] = processor.postprocess(decoded, output_type="pil")
    return images[0]
