"""/v1/images: generations, edits and variations on the configured image model, and the
signed, expiring URLs that `response_format="url"` answers with."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from PIL import Image

from kotae import faults
from kotae.config import Settings
from kotae.errors import InvalidRequest, KotaeError, NotFound, queue_full
from kotae.providers.blobs.base import BlobStore
from kotae.providers.images.base import ImageBackend, ImageJob, PartialCallback
from kotae.providers.inference.base import CancelToken
from kotae.services.models import resolve_path
from kotae.storage.repositories.image_jobs import ImageJobRepository

log = logging.getLogger("kotae.images")
INPUT_TTL_SECONDS = 3600  # a queued request's input pictures, and its row once ended
JOB_POLL_SECONDS = 0.1  # how often a waiting replica reads its job's row

SIZES = ("256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792")
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
QUALITIES = ("auto", "low", "medium", "high", "standard", "hd")
SECRET_SETTING = "image_url_secret"
NO_MODEL = (
    "No image generation model is configured, and none ships with kotae (no text-to-image "
    "weights are published on PyPI). With internet access, pull one and point kotae at it: "
    "`kotae models pull stabilityai/sd-turbo` then set KOTAE_IMAGE_MODEL=stabilityai/sd-turbo "
    "(any diffusers repository or local directory works). Or use a remote OpenAI-compatible "
    "image API: KOTAE_IMAGE_BASE_URL=http://host:port/v1 (and KOTAE_IMAGE_REMOTE_MODEL)."
)


def is_image_alias(name: str) -> bool:
    return name.startswith(("gpt-image-", "dall-e-", "chatgpt-image"))


class ImagesService:
    def __init__(
        self,
        settings: Settings,
        secret: str,
        blobs: BlobStore,
        jobs: ImageJobRepository | None = None,
    ) -> None:
        self._settings = settings
        self._blobs = blobs  # the images area: shared by replicas when it is S3
        # API replicas (`serve --no-worker`) hand image requests to workers through these.
        self._jobs = jobs
        self.owner = secrets.token_hex(8)  # this process, as the worker of what it takes
        self._secret = secret.encode()
        self._backend: ImageBackend | None = None

    # -- the model --------------------------------------------------------------------------

    def model_id(self) -> str | None:
        s = self._settings
        if s.image_base_url:
            return s.image_remote_model or "remote-image-model"
        if s.image_model and not s.run_worker:
            return s.image_model  # an API replica: the workers hold the weights
        path = self._local_path()
        if path is None:
            return None
        return s.image_model or path.name

    def _local_path(self) -> Path | None:
        s = self._settings
        if s.image_model:
            if "/" in s.image_model and not s.image_model.startswith(("/", ".", "~")):
                pulled = s.models_dir / s.image_model
                if (pulled / "model_index.json").is_file():
                    return pulled
            found = resolve_path(s.image_model, s.data_dir)
            return found if found is not None and (found / "model_index.json").is_file() else None
        return None

    def _named(self, model: str | None, param: str = "model") -> str:
        """The image model a request names: its id, an OpenAI image model name, or none."""
        model_id = self.model_id()
        if model_id is None:
            raise InvalidRequest(NO_MODEL, param=param, code="image_model_not_configured")
        if model is not None and model != model_id and not is_image_alias(model):
            raise InvalidRequest(
                f"The model '{model}' is not an image model here. Use '{model_id}' "
                "(or gpt-image-1 / dall-e-2 / dall-e-3, which name it).",
                param=param,
                code="model_not_found",
            )
        return model_id

    def backend(self, model: str | None, param: str = "model") -> ImageBackend:
        model_id = self._named(model, param)
        if self._backend is None:
            s = self._settings
            if s.image_base_url:
                from kotae.providers.images.openai_compat import OpenAICompatImages

                self._backend = OpenAICompatImages(
                    model_id,
                    s.image_base_url,
                    remote_model=s.image_remote_model,
                    api_key=s.image_api_key,
                )
            else:
                from kotae.providers.images.diffusers_runner import DiffusersRunnerBackend

                path = self._local_path()
                if path is None:  # named on an API replica that lacks the weights
                    raise InvalidRequest(NO_MODEL, param=param, code="image_model_not_configured")
                self._backend = DiffusersRunnerBackend(
                    model_id, path, steps=s.image_steps, max_queued=s.max_queued_images
                )
        return self._backend

    # -- requests ---------------------------------------------------------------------------

    async def create(
        self,
        params: dict[str, Any],
        base_url: str,
        *,
        image: Image.Image | None = None,
        mask: Image.Image | None = None,
        on_partial: PartialCallback | None = None,
    ) -> dict[str, Any]:
        """One generations / edits / variations request, validated, run here and encoded."""
        options = self._options(params)
        backend = self.backend(params.get("model"))
        backend.check_capacity()
        job = ImageJob(
            prompt=params.get("prompt") or "",
            n=options["n"],
            width=options["width"],
            height=options["height"],
            quality=options["quality"],
            image=image,
            mask=mask,
            partial_images=int(params.get("partial_images") or 0),
        )
        pictures = await backend.generate(job, on_partial)
        data = []
        for picture in pictures:
            encoded = encode(picture, options["fmt"], params.get("output_compression"))
            if options["response_format"] == "b64_json":
                data.append({"b64_json": base64.b64encode(encoded).decode()})
            else:
                data.append({"url": self._store(encoded, options["fmt"], base_url)})
        first = pictures[0]
        quality = options["quality"]
        return {
            "created": int(time.time()),
            "data": data,
            "background": "opaque",
            "output_format": options["fmt"],
            "quality": quality if quality != "auto" else "medium",
            "size": f"{first.width}x{first.height}",
        }

    def _options(self, params: dict[str, Any]) -> dict[str, Any]:
        """A request's options, checked (400 naming the bad one)."""
        model = params.get("model")
        self._named(model)
        size = params.get("size") or "auto"
        if size != "auto" and size not in SIZES:
            raise InvalidRequest(
                f"Invalid size '{size}'. Supported: auto, {', '.join(SIZES)}.", param="size"
            )
        quality = params.get("quality") or "auto"
        if quality not in QUALITIES:
            raise InvalidRequest(
                f"Invalid quality '{quality}'. Supported: {', '.join(QUALITIES)}.",
                param="quality",
            )
        fmt = params.get("output_format") or "png"
        if fmt not in FORMATS:
            raise InvalidRequest("output_format must be png, jpeg or webp.", param="output_format")
        if params.get("background") == "transparent":
            raise InvalidRequest(
                "Transparent backgrounds are not supported by this image model.",
                param="background",
            )
        gpt_image = isinstance(model, str) and model.startswith(("gpt-image-", "chatgpt-image"))
        response_format = params.get("response_format") or ("b64_json" if gpt_image else "url")
        if response_format not in ("url", "b64_json"):
            raise InvalidRequest(
                "response_format must be url or b64_json.", param="response_format"
            )
        n = int(params.get("n") or 1)
        if not 1 <= n <= 10:
            raise InvalidRequest("n must be between 1 and 10.", param="n")
        width = height = None
        if size != "auto":
            width, height = (int(v) for v in size.split("x"))
        return {
            "n": n,
            "width": width,
            "height": height,
            "quality": quality,
            "fmt": fmt,
            "response_format": response_format,
        }

    # -- through the queue: an API replica hands the work to a worker -------------------------

    async def request(
        self,
        project_id: str,
        params: dict[str, Any],
        base_url: str,
        cancel: CancelToken,
        *,
        image: Image.Image | None = None,
        mask: Image.Image | None = None,
    ) -> dict[str, Any]:
        """An /v1/images request: run here, or, on an API replica (`serve --no-worker`) with
        a local image model, checked here, then queued for a worker and its answer awaited.
        The limit on waiting requests is counted in the database, across replicas."""
        s = self._settings
        if s.run_worker or self._jobs is None or s.image_base_url:
            # Here: this process does the work, or the engine is a remote image API that
            # any replica calls (as a remote chat engine is).
            return await self.create(params, base_url, image=image, mask=mask)
        jobs = self._jobs
        self._options(params)
        waiting = await asyncio.to_thread(jobs.waiting)
        if waiting >= self._settings.max_queued_images:
            raise queue_full("The image queue", waiting, self._settings.max_queued_images)
        job_id = "imgjob_" + secrets.token_hex(12)
        # Inputs beside the pictures, named to expire with them (the purge removes both).
        expires = int(time.time()) + INPUT_TTL_SECONDS
        request: dict[str, Any] = {"params": params, "base_url": base_url}
        for name, picture in (("image", image), ("mask", mask)):
            if picture is not None:
                key = f"{expires}-in-{job_id}-{name}.png"
                data = encode(picture, "png")
                await asyncio.to_thread(self._blobs.put, key, io.BytesIO(data), len(data))
                request[name] = key
        await asyncio.to_thread(jobs.add, job_id, project_id, request)
        while not cancel.cancelled:
            status, outcome = await asyncio.to_thread(jobs.outcome, job_id)
            if status == "done" and outcome is not None:
                if "answer" in outcome:
                    return dict(outcome["answer"])
                raise _error(outcome["error"])
            await asyncio.sleep(JOB_POLL_SECONDS)
        await asyncio.to_thread(jobs.cancel, job_id)
        raise KotaeError("The client closed the request.")

    async def serve_queue(self) -> None:
        """Forever (in a worker, or plain `kotae serve`): take image requests that API
        replicas queued, one at a time (the pipeline runs one anyway), and store each
        answer or error for the replica that waits for it."""
        assert self._jobs is not None
        jobs = self._jobs
        lease = self._settings.lease_seconds
        while True:
            taken = None
            try:
                taken = await asyncio.to_thread(jobs.claim, self.owner, lease)
                if taken is not None:
                    await self._run_job(jobs, *taken)
            except Exception:
                log.exception("taking a queued image request failed")
            if taken is None:
                await asyncio.sleep(JOB_POLL_SECONDS * 5)

    async def _run_job(
        self, jobs: ImageJobRepository, job_id: str, request: dict[str, Any]
    ) -> None:
        async def keep_lease() -> None:
            every = max(0.2, self._settings.lease_seconds / 3)
            while True:
                await asyncio.sleep(every)
                await asyncio.to_thread(jobs.renew, self.owner, self._settings.lease_seconds)

        renewing = asyncio.create_task(keep_lease())
        try:
            inputs = {}
            for name in ("image", "mask"):
                if request.get(name):
                    data = await asyncio.to_thread(self._blobs.read_all, request[name])
                    inputs[name] = Image.open(io.BytesIO(data))
                    inputs[name].load()
            faults.point("images.after_claim")
            try:
                answer = await self.create(
                    request["params"],
                    request["base_url"],
                    image=inputs.get("image"),
                    mask=inputs.get("mask"),
                )
                outcome: dict[str, Any] = {"answer": answer}
            except KotaeError as exc:
                outcome = {"error": _error_fields(exc)}
            except Exception as exc:
                log.exception("image request %s failed", job_id)
                outcome = {"error": _error_fields(KotaeError(f"Image generation failed: {exc}"))}
            await asyncio.to_thread(jobs.finish, job_id, self.owner, outcome)
        finally:
            renewing.cancel()

    # -- signed URLs ------------------------------------------------------------------------

    def _store(self, data: bytes, fmt: str, base_url: str) -> str:
        expires = int(time.time()) + self._settings.image_url_ttl_seconds
        name = f"img-{secrets.token_urlsafe(18)}.{fmt}"
        self._blobs.put(f"{expires}-{name}", io.BytesIO(data), len(data))
        sig = self._sign(name, expires)
        return f"{base_url.rstrip('/')}/images/files/{name}?expires={expires}&signature={sig}"

    def _sign(self, name: str, expires: int) -> str:
        return hmac.new(self._secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()

    def open_signed(self, name: str, expires: int, signature: str) -> bytes:
        """The stored picture, if the link is genuine and not expired; else not found. Any
        replica answers it: the key and the pictures are shared."""
        good = hmac.compare_digest(self._sign(name, expires), signature)
        key = f"{expires}-{name}"
        if not good or expires < time.time() or "/" in name or not self._blobs.exists(key):
            raise NotFound("This image link is invalid or has expired.")
        return self._blobs.read_all(key)

    def purge_expired(self) -> int:
        now = time.time()
        removed = self._jobs.purge(INPUT_TTL_SECONDS) if self._jobs is not None else 0
        for key, _ in list(self._blobs.listing()):
            stamp = key.split("-", 1)[0]
            if stamp.isdigit() and int(stamp) < now:
                self._blobs.delete(key)
                removed += 1
        return removed

    def loaded_backend(self) -> ImageBackend | None:
        """The engine, once a request has needed it."""
        return self._backend

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()


def _error_fields(exc: KotaeError) -> dict[str, Any]:
    return {
        "status_code": exc.status_code,
        "type": exc.error_type,
        "code": exc.code,
        "param": exc.param,
        "message": exc.message,
    }


def _error(fields: dict[str, Any]) -> KotaeError:
    """A worker's error, raised again on the replica that waits: same status and body."""
    error = KotaeError(fields["message"], param=fields.get("param"), code=fields.get("code"))
    error.status_code = int(fields["status_code"])
    error.error_type = str(fields["type"])
    return error


def encode(picture: Image.Image, fmt: str, compression: int | None = None) -> bytes:
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if fmt in ("jpeg", "webp"):
        kwargs["quality"] = 100 - int(compression) if compression is not None else 90
    img = picture.convert("RGB") if fmt == "jpeg" else picture
    img.save(out, FORMATS[fmt], **kwargs)
    return out.getvalue()
