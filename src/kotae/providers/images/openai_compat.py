"""A remote OpenAI-compatible image API (another kotae, LocalAI, a hosted service): requests
are forwarded and the pictures come back as base64."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
from PIL import Image

from kotae.errors import BackendError, InvalidRequest
from kotae.providers.images.base import ImageJob, PartialCallback


class OpenAICompatImages:
    def __init__(
        self,
        model_id: str,
        base_url: str,
        *,
        remote_model: str | None,
        api_key: str | None,
        timeout: float = 600.0,
    ) -> None:
        self.model_id = model_id
        self._base = base_url.rstrip("/")
        self._remote_model = remote_model or model_id
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout, headers=self._headers)

    def check_capacity(self) -> None:
        return None

    async def generate(
        self, job: ImageJob, on_partial: PartialCallback | None = None
    ) -> list[Image.Image]:
        common: dict[str, Any] = {"model": self._remote_model, "n": job.n}
        if job.width and job.height:
            common["size"] = f"{job.width}x{job.height}"
        try:
            if job.image is None:
                body = {**common, "prompt": job.prompt, "response_format": "b64_json"}
                if job.quality != "auto":
                    body["quality"] = job.quality
                resp = await self._client.post(f"{self._base}/images/generations", json=body)
            else:
                files = {"image": ("image.png", _png(job.image), "image/png")}
                data = {k: str(v) for k, v in common.items()} | {"response_format": "b64_json"}
                if job.mask is not None or job.prompt:
                    path = "edits"
                    data["prompt"] = job.prompt
                    if job.mask is not None:
                        files["mask"] = ("mask.png", _png(_to_alpha_mask(job.mask)), "image/png")
                else:
                    path = "variations"
                resp = await self._client.post(
                    f"{self._base}/images/{path}", data=data, files=files
                )
        except httpx.HTTPError as exc:
            raise BackendError(f"The image server at {self._base} failed: {exc}") from exc
        if resp.status_code == 400:
            raise InvalidRequest(_message(resp))
        if resp.status_code != 200:
            raise BackendError(f"The image server answered {resp.status_code}: {_message(resp)}")
        return [
            Image.open(io.BytesIO(base64.b64decode(d["b64_json"]))) for d in resp.json()["data"]
        ]

    async def close(self) -> None:
        await self._client.aclose()


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _to_alpha_mask(mask: Image.Image) -> Image.Image:
    """Back to OpenAI's convention: transparent where the picture may change."""
    alpha = mask.convert("L").point(lambda v: 0 if v > 127 else 255)
    rgba = Image.new("RGBA", mask.size, (0, 0, 0, 255))
    rgba.putalpha(alpha)
    return rgba


def _message(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return resp.text[:300]
