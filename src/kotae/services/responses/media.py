"""Images and files inside messages: loaded (URL through the fetch guard, data URL, or the
project's file), checked, then turned into what the model can take — the picture itself for a
vision model, otherwise the perception models' description; files become their text."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from kotae.errors import InvalidRequest, KotaeError
from kotae.net.fetch import Fetcher
from kotae.providers.inference.base import ChatMessage
from kotae.providers.vision.perception import PerceptionModels, open_image
from kotae.providers.vision.perception_runner import PerceptionRunner
from kotae.services.files import FilesService
from kotae.services.vector_stores.extract import extract_text

IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
CACHE_SIZE = 64


@dataclass
class Media:
    """What one content part adds to its message."""

    text: str = ""
    images: list[str] = field(default_factory=list)  # data URLs, for vision models
    picture: bytes | None = None  # an input image's own bytes (the image tool edits them)

    def attach(self, message: ChatMessage) -> None:
        """Into the message it belongs to: the text after the message's own words, the
        pictures beside them."""
        if self.text:
            message.content = "\n\n".join(t for t in (message.content, self.text) if t)
        message.images.extend(self.images)


@dataclass
class Loaded:
    data: bytes
    filename: str


def has_media(items: list[dict[str, Any]]) -> bool:
    return any(
        part.get("type") in ("input_image", "input_file")
        for item in items
        if item.get("type", "message") == "message"
        for part in item.get("content") or []
    )


class MediaResolver:
    def __init__(
        self,
        fetcher: Fetcher | None,
        files: FilesService,
        perception: PerceptionRunner,
        *,
        max_image_bytes: int,
        max_image_pixels: int,
        max_file_bytes: int,
    ) -> None:
        self._fetcher = fetcher
        self._files = files
        self._perception = perception
        self._max_image = max_image_bytes
        self._max_pixels = max_image_pixels
        self._max_file = max_file_bytes
        self._cache: OrderedDict[tuple[str, bool], Media] = OrderedDict()

    async def resolve(
        self,
        project_id: str,
        history: list[dict[str, Any]],
        new_items: list[dict[str, Any]],
        *,
        vision: bool,
        param: str = "input",
    ) -> dict[tuple[str, int], Media]:
        """Media for every image/file part, keyed by (item id, part index). A part of the new
        input that fails is a 400 naming it; an older turn's part that no longer loads is
        noted in the text instead, so the thread goes on."""
        out: dict[tuple[str, int], Media] = {}
        number = 0
        for is_new, items in ((False, history), (True, new_items)):
            for i, item in enumerate(items):
                if item.get("type", "message") != "message":
                    continue
                for j, part in enumerate(item.get("content") or []):
                    kind = part.get("type")
                    if kind not in ("input_image", "input_file"):
                        continue
                    if kind == "input_image":
                        number += 1
                    where = f"{param}[{i}].content[{j}]"
                    try:
                        media = await self._one(project_id, part, number, vision, where)
                    except KotaeError as exc:
                        if is_new:
                            raise
                        media = Media(f"[An earlier {kind} could not be loaded again: {exc}]")
                    out[(item["id"], j)] = media
        return out

    async def _one(
        self, project_id: str, part: dict[str, Any], number: int, vision: bool, where: str
    ) -> Media:
        key = project_id + ":" + self._key(part)
        cached = self._cache.get((key, vision))
        if cached is not None:
            self._cache.move_to_end((key, vision))
            return _renumber(cached, number) if part["type"] == "input_image" else cached
        if part["type"] == "input_image":
            media = await self._image(project_id, part, number, vision, where)
        else:
            media = await self._file(project_id, part, where)
        self._cache[(key, vision)] = media
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return media

    @staticmethod
    def _key(part: dict[str, Any]) -> str:
        raw = part.get("file_id") or part.get("image_url") or part.get("file_url") or ""
        raw = raw or part.get("file_data") or ""
        return str(part["type"]) + ":" + hashlib.sha256(str(raw).encode()).hexdigest()

    async def _image(
        self, project_id: str, part: dict[str, Any], number: int, vision: bool, where: str
    ) -> Media:
        if part.get("file_id"):
            where = f"{where}.file_id"
            loaded = await self._from_file(project_id, part["file_id"], where)
        elif part.get("image_url"):
            where = f"{where}.image_url"
            loaded = await self._from_url(part["image_url"], where, self._max_image)
        else:
            raise InvalidRequest("input_image needs image_url or file_id.", param=where)
        if len(loaded.data) > self._max_image:
            raise InvalidRequest(
                f"The image is {len(loaded.data)} bytes; the limit is {self._max_image}.",
                param=where,
                code="image_too_large",
            )
        try:
            img = open_image(loaded.data, self._max_pixels)
        except InvalidRequest as exc:
            raise InvalidRequest(exc.message, param=where, code=exc.code) from exc
        fmt = img.format or ""
        if fmt not in IMAGE_FORMATS:
            raise InvalidRequest(
                f"Images of type {fmt or 'unknown'} are not supported; send PNG, JPEG, GIF or "
                "WebP.",
                param=where,
                code="invalid_image_format",
            )
        if vision:
            data_url = f"data:{IMAGE_FORMATS[fmt]};base64," + base64.b64encode(loaded.data).decode()
            return Media("", [data_url], loaded.data)
        missing = PerceptionModels.available()
        if missing:
            raise InvalidRequest(missing, param=where)
        seen = await self._perception.perceive(loaded.data, fmt)
        return Media(seen.describe(number), picture=loaded.data)

    async def _file(self, project_id: str, part: dict[str, Any], where: str) -> Media:
        if part.get("file_id"):
            loaded = await self._from_file(project_id, part["file_id"], f"{where}.file_id")
        elif part.get("file_data"):
            data = _decode_data(part["file_data"], f"{where}.file_data")
            loaded = Loaded(data, part.get("filename") or "file")
        elif part.get("file_url"):
            loaded = await self._from_url(part["file_url"], f"{where}.file_url", self._max_file)
        else:
            raise InvalidRequest("input_file needs file_id, file_data or file_url.", param=where)
        name = part.get("filename") or loaded.filename
        try:
            text = await asyncio.to_thread(extract_text, name, loaded.data)
        except InvalidRequest as exc:
            raise InvalidRequest(
                f"{name}: {exc.message}", param=where, code="invalid_file"
            ) from exc
        return Media(f"[File {name}]\n{text.strip()}\n[End of file {name}]")

    async def _from_file(self, project_id: str, file_id: str, where: str) -> Loaded:
        row = await asyncio.to_thread(self._files.find_row, project_id, file_id)
        if row is None:  # another project's file is missing here too
            raise InvalidRequest(f"No such File object: {file_id}", param=where)
        data = await asyncio.to_thread(self._files.read_all, row)
        return Loaded(data, str(row["filename"]))

    async def _from_url(self, url: str, where: str, limit: int) -> Loaded:
        if url.startswith("data:"):
            return Loaded(_decode_data(url, where), "inline")
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(
                "Expected an http(s) URL or a data URL (data:image/png;base64,...).", param=where
            )
        if self._fetcher is None:
            raise InvalidRequest("This server does not fetch URLs.", param=where)
        try:
            fetched = await self._fetcher.get(url, max_bytes=limit + 1)
        except InvalidRequest as exc:  # refused by the guard
            raise InvalidRequest(exc.message, param=where, code=exc.code) from exc
        except KotaeError as exc:
            raise InvalidRequest(
                f"Could not download {url}: {exc.message}", param=where, code="url_unreachable"
            ) from exc
        if fetched.status != 200:
            raise InvalidRequest(
                f"Downloading {url} gave HTTP {fetched.status}.",
                param=where,
                code="url_unreachable",
            )
        if len(fetched.body) > limit:
            raise InvalidRequest(
                f"{url} is larger than the limit of {limit} bytes.",
                param=where,
                code="file_too_large",
            )
        return Loaded(fetched.body, url.rsplit("/", 1)[-1].split("?")[0] or "download")


def _decode_data(value: str, where: str) -> bytes:
    """`data:<mime>;base64,<data>`, or bare base64."""
    payload = value
    if value.startswith("data:"):
        header, _, payload = value.partition(",")
        if ";base64" not in header:
            raise InvalidRequest("Only base64 data URLs are supported.", param=where)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("The data is not valid base64.", param=where) from exc


def _renumber(media: Media, number: int) -> Media:
    if media.text.startswith("[Image "):
        _, _, rest = media.text.partition(":")
        return Media(f"[Image {number}:{rest}", media.images, media.picture)
    return media
