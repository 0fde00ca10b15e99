"""Request bodies of /v1/images (generations as JSON; edits and variations as forms)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kotae.schemas.common import StrictModel


class ImageOptions(StrictModel):
    model: str | None = None
    n: int | None = Field(default=1, ge=1, le=10)
    size: str | None = None
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    background: Literal["transparent", "opaque", "auto"] | None = None
    user: str | None = None


class CreateImage(ImageOptions):
    prompt: str = Field(max_length=32000)
    moderation: Literal["auto", "low"] | None = None
    style: Literal["vivid", "natural"] | None = None
    stream: bool | None = None
    partial_images: int | None = Field(default=None, ge=0, le=3)


class EditImage(ImageOptions):
    prompt: str = Field(max_length=32000)
    input_fidelity: Literal["high", "low"] | None = None
    stream: bool | None = None
    partial_images: int | None = Field(default=None, ge=0, le=3)


class ImageVariation(ImageOptions):
    pass
