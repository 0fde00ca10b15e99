"""FilesService: upload (streamed to the blob store), list, retrieve, delete, content."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from openai.types import FileObject

from kotae import faults
from kotae.config import Settings
from kotae.errors import InvalidRequest, NotFound
from kotae.providers.blobs.base import BlobStore
from kotae.storage.repositories.files import FileRepository

PURPOSES = {"assistants", "user_data", "vision", "fine-tune", "batch", "evals"}
MIN_EXPIRY, MAX_EXPIRY = 3600, 30 * 24 * 3600


def new_file_id() -> str:
    return "file-" + secrets.token_urlsafe(18).replace("-", "A").replace("_", "B")


def to_object(row: dict[str, Any]) -> FileObject:
    body = {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": row["created_at"],
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": row.get("status") or "processed",
    }
    # Optional and never null in OpenAI's schema: present only when there is one.
    for name in ("expires_at", "status_details"):
        if row.get(name) is not None:
            body[name] = row[name]
    # Built, not validated: the SDK's `purpose` type lags the API (it has no "evals"), and a
    # stored file must never make listing the project's files fail.
    return FileObject.model_construct(**body)


class FilesService:
    def __init__(self, settings: Settings, repo: FileRepository, blobs: BlobStore) -> None:
        self._settings = settings
        self._repo = repo
        self._blobs = blobs
        # Called with (project_id, file_id) after a delete: vector stores drop its chunks.
        self.on_delete: list[Callable[[str, str], None]] = []

    @staticmethod
    def check_purpose(purpose: str | None) -> str:
        if purpose not in PURPOSES:
            raise InvalidRequest(
                f"Invalid purpose '{purpose}'. Expected one of: {', '.join(sorted(PURPOSES))}.",
                param="purpose",
            )
        return purpose

    @staticmethod
    def check_expiry(anchor: str | None, seconds: str | int | None) -> int | None:
        if anchor is None and seconds is None:
            return None
        if anchor != "created_at":
            raise InvalidRequest(
                "expires_after.anchor must be 'created_at'.", param="expires_after.anchor"
            )
        try:
            value = int(seconds)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidRequest(
                "expires_after.seconds must be an integer.", param="expires_after.seconds"
            ) from None
        if not MIN_EXPIRY <= value <= MAX_EXPIRY:
            raise InvalidRequest(
                f"expires_after.seconds must be between {MIN_EXPIRY} and {MAX_EXPIRY}.",
                param="expires_after.seconds",
            )
        return value

    async def create(
        self,
        project_id: str,
        source: BinaryIO,
        filename: str,
        purpose: str,
        expires_seconds: int | None,
        mime_type: str | None = None,
    ) -> FileObject:
        file_id = new_file_id()
        key = f"{project_id}/{file_id}"
        size = await asyncio.to_thread(self._blobs.put, key, source, self._settings.max_file_bytes)
        faults.point("files.after_blob")
        now = int(time.time())
        row = {
            "id": file_id,
            "project_id": project_id,
            "filename": filename,
            "purpose": purpose,
            "bytes": size,
            "created_at": now,
            "expires_at": now + expires_seconds if expires_seconds else None,
            "blob_key": key,
            "mime_type": mime_type,
        }
        try:
            await asyncio.to_thread(self._repo.insert, row)
        except BaseException:
            await asyncio.to_thread(self._blobs.delete, key)  # no orphan blob
            raise
        return to_object(row)

    async def get_row(self, project_id: str, file_id: str) -> dict[str, Any]:
        row = await asyncio.to_thread(self._repo.get, project_id, file_id)
        if row is None:
            raise NotFound(f"No such File object: {file_id}", param="file_id")
        return row

    def find_row(self, project_id: str, file_id: str) -> dict[str, Any] | None:
        return self._repo.get(project_id, file_id)

    async def retrieve(self, project_id: str, file_id: str) -> FileObject:
        return to_object(await self.get_row(project_id, file_id))

    async def list(
        self, project_id: str, *, purpose: str | None, limit: int, order: str, after: str | None
    ) -> tuple[list[FileObject], bool]:
        rows, more = await asyncio.to_thread(
            lambda: self._repo.page(
                project_id, purpose=purpose, limit=limit, order=order, after=after
            )
        )
        return [to_object(r) for r in rows], more

    async def delete(self, project_id: str, file_id: str) -> None:
        row = await asyncio.to_thread(self._repo.delete, project_id, file_id)
        if row is None:
            raise NotFound(f"No such File object: {file_id}", param="file_id")
        await asyncio.to_thread(self._blobs.delete, row["blob_key"])
        for hook in self.on_delete:
            await asyncio.to_thread(hook, project_id, file_id)

    def _check_blob(self, row: dict[str, Any]) -> None:
        if row.get("status") == "error" or not self._blobs.exists(row["blob_key"]):
            raise NotFound(
                f"The content of file {row['id']} is missing from the server's storage"
                f"{': ' + row['status_details'] if row.get('status_details') else ''}.",
                param="file_id",
                code="file_content_missing",
            )

    def content(self, row: dict[str, Any]) -> Iterator[bytes]:
        self._check_blob(row)
        return self._blobs.read(row["blob_key"])

    def read_all(self, row: dict[str, Any]) -> bytes:
        self._check_blob(row)
        return self._blobs.read_all(row["blob_key"])

    def purge_expired(self) -> int:
        rows = self._repo.expired()
        for row in rows:
            self._repo.delete(row["project_id"], row["id"])
            self._blobs.delete(row["blob_key"])
            for hook in self.on_delete:
                hook(row["project_id"], row["id"])
        return len(rows)
