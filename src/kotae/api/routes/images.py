"""/v1/images/generations, /edits, /variations, and the signed links of generated images."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from PIL import Image
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, MeteredProjectDep
from kotae.api.disconnect import cancel_on_disconnect
from kotae.container import Container
from kotae.errors import InvalidRequest, invalid_from
from kotae.providers.inference.base import CancelToken
from kotae.providers.vision.perception import open_image
from kotae.schemas.images import CreateImage, EditImage, ImageVariation

router = APIRouter(route_class=BoundedRoute, prefix="/v1/images", tags=["images"])
MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def _base(request: Request) -> str:
    public = request.app.state.container.settings.public_url
    return (public or str(request.base_url)).rstrip("/") + "/v1"


@router.post("/generations")
async def create_image(
    req: CreateImage, request: Request, c: ContainerDep, project: MeteredProjectDep
) -> Any:
    if req.stream:
        raise InvalidRequest(
            "Streamed image generation is not supported by this server; use the "
            "image_generation tool in /v1/responses for partial images.",
            param="stream",
        )
    return await _answer(request, c, project, req.model_dump(exclude_none=True))


async def _answer(
    request: Request,
    c: Container,
    project: str,
    params: dict[str, Any],
    image: Image.Image | None = None,
    mask: Image.Image | None = None,
) -> dict[str, Any]:
    """Run here or by a worker (`serve --no-worker`); stopped when the client leaves."""
    cancel = CancelToken()
    work = c.images.request(project, params, _base(request), cancel, image=image, mask=mask)
    return await cancel_on_disconnect(request, cancel, work)


async def _form(request: Request) -> tuple[dict[str, Any], list[UploadFile], UploadFile | None]:
    form = await request.form()
    images = [f for key in ("image", "image[]") for f in form.getlist(key)]
    files = [f for f in images if isinstance(f, UploadFile)]
    if not files:
        raise InvalidRequest("Missing required parameter: 'image'.", param="image")
    mask = form.get("mask")
    fields = {
        k: v for k, v in form.multi_items() if isinstance(v, str) and k not in ("image", "image[]")
    }
    return fields, files, mask if isinstance(mask, UploadFile) else None


async def _picture(upload: UploadFile, param: str, limit: int) -> Image.Image:
    data = await upload.read()
    if len(data) > limit:
        raise InvalidRequest(f"The {param} is larger than {limit} bytes.", param=param)
    try:
        return open_image(data, 40_000_000)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message, param=param, code=exc.code) from exc


def _edit_mask(mask: Image.Image, image: Image.Image) -> Image.Image:
    """OpenAI's mask is transparent where the picture may change; diffusers wants white."""
    if mask.size != image.size:
        raise InvalidRequest("The mask must have the same size as the image.", param="mask")
    if "A" not in mask.getbands():
        raise InvalidRequest("The mask must be a PNG with an alpha channel.", param="mask")
    return mask.getchannel("A").point(lambda a: 255 if a == 0 else 0)


@router.post("/edits")
async def edit_image(request: Request, c: ContainerDep, project: MeteredProjectDep) -> Any:
    fields, files, mask_file = await _form(request)
    try:
        options = EditImage.model_validate(fields, strict=False)
    except ValidationError as exc:
        raise invalid_from(exc, "edit", "") from exc
    if options.stream:
        raise InvalidRequest("Streamed image edits are not supported.", param="stream")
    image = await _picture(files[0], "image", c.settings.max_image_bytes)
    mask = None
    if mask_file is not None:
        mask = _edit_mask(await _picture(mask_file, "mask", c.settings.max_image_bytes), image)
    return await _answer(
        request, c, project, options.model_dump(exclude_none=True), image.convert("RGB"), mask
    )


@router.post("/variations")
async def image_variation(request: Request, c: ContainerDep, project: MeteredProjectDep) -> Any:
    fields, files, _mask = await _form(request)
    try:
        options = ImageVariation.model_validate(fields, strict=False)
    except ValidationError as exc:
        raise invalid_from(exc, "variation", "") from exc
    image = await _picture(files[0], "image", c.settings.max_image_bytes)
    return await _answer(
        request, c, project, options.model_dump(exclude_none=True), image.convert("RGB")
    )


@router.get("/files/{name}", include_in_schema=False)
async def image_file(name: str, expires: int, signature: str, c: ContainerDep) -> Any:
    """No API key: the signed link is the credential, as OpenAI's temporary URLs are."""
    data = await asyncio.to_thread(c.images.open_signed, name, expires, signature)
    return Response(data, media_type=MEDIA.get(name.rsplit(".", 1)[-1], "image/png"))
