"""UploadsService: a file sent in parts (each up to 64 MB), joined on complete."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from openai.types import Upload
from openai.types.uploads import UploadPart
from sqlalchemy import Engine, Table, select, update

from kotae import ids
from kotae.errors import InvalidRequest, NotFound, PayloadTooLarge
from kotae.providers.blobs.base import BlobStore
from kotae.services.files import FilesService
from kotae.storage.orm import Upload as UploadRow

UPLOADS = cast(Table, UploadRow.__table__)
PART_LIMIT = 64 * 1024 * 1024
UPLOAD_LIFETIME = 3600


class _Joined:
    """The parts, in order, read as one stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


class UploadsService:
    def __init__(
        self, engine: Engine, blobs: BlobStore, files: FilesService, max_file_bytes: int
    ) -> None:
        self._engine = engine
        self._blobs = blobs
        self._files = files
        self._max = max_file_bytes

    def _row(self, project_id: str, upload_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(UPLOADS).where(UPLOADS.c.id == upload_id, UPLOADS.c.project_id == project_id)
            ).first()
        if row is None:
            raise NotFound(f"No such upload: {upload_id}", param="upload_id")
        data = dict(row._mapping)
        if data["status"] == "pending" and data["expires_at"] <= time.time():
            data["status"] = "expired"
        return data

    def _object(self, row: dict[str, Any], file: Any = None) -> Upload:
        return Upload.model_validate(
            {
                "id": row["id"],
                "object": "upload",
                "bytes": row["bytes"],
                "created_at": row["created_at"],
                "expires_at": row["expires_at"],
                "filename": row["filename"],
                "purpose": row["purpose"],
                "status": row["status"],
                "file": file,
            }
        )

    def create(
        self, project_id: str, filename: str, purpose: str, size: int, mime_type: str
    ) -> Upload:
        FilesService.check_purpose(purpose)
        if size > self._max:
            raise PayloadTooLarge(f"bytes is over the {self._max}-byte limit.", param="bytes")
        now = int(time.time())
        row = {
            "id": ids.new_id("upload")[:33],
            "project_id": project_id,
            "filename": filename,
            "purpose": purpose,
            "bytes": size,
            "mime_type": mime_type,
            "created_at": now,
            "expires_at": now + UPLOAD_LIFETIME,
            "status": "pending",
            "file_id": None,
            "parts": {},
        }
        with self._engine.begin() as conn:
            conn.execute(UPLOADS.insert(), row)
        return self._object(row)

    def _pending(self, project_id: str, upload_id: str) -> dict[str, Any]:
        row = self._row(project_id, upload_id)
        if row["status"] != "pending":
            raise InvalidRequest(f"Upload {upload_id} is {row['status']}.", param="upload_id")
        return row

    def add_part(self, project_id: str, upload_id: str, data: BinaryIO) -> UploadPart:
        self._pending(project_id, upload_id)
        part_id = ids.new_id("part")[:29]
        key = f"{project_id}/uploads/{upload_id}/{part_id}"
        size = self._blobs.put(key, data, PART_LIMIT)
        with self._engine.begin() as conn:
            parts = conn.execute(select(UPLOADS.c.parts).where(UPLOADS.c.id == upload_id)).scalar()
            conn.execute(
                update(UPLOADS)
                .where(UPLOADS.c.id == upload_id)
                .values(parts={**(parts or {}), part_id: size})
            )
        return UploadPart.model_validate(
            {
                "id": part_id,
                "object": "upload.part",
                "created_at": int(time.time()),
                "upload_id": upload_id,
            }
        )

    def complete(
        self, project_id: str, upload_id: str, part_ids: list[str]
    ) -> tuple[Upload, BinaryIO, dict[str, Any]]:
        row = self._pending(project_id, upload_id)
        parts: dict[str, int] = row["parts"]
        for i, part_id in enumerate(part_ids):
            if part_id not in parts:
                raise InvalidRequest(f"Unknown part id '{part_id}'.", param=f"part_ids[{i}]")
        if len(set(part_ids)) != len(part_ids):
            raise InvalidRequest("part_ids repeats a part.", param="part_ids")
        total = sum(parts[p] for p in part_ids)
        if total != row["bytes"]:
            raise InvalidRequest(
                f"The parts hold {total} bytes; the upload was created with {row['bytes']}.",
                param="part_ids",
            )
        keys = [f"{project_id}/uploads/{upload_id}/{p}" for p in part_ids]
        stream = _Joined(chunk for key in keys for chunk in self._blobs.read(key))
        return self._object(row), cast(BinaryIO, stream), row

    def finish(self, project_id: str, row: dict[str, Any], file_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(UPLOADS)
                .where(UPLOADS.c.id == row["id"])
                .values(status="completed", file_id=file_id)
            )
        self._drop_parts(project_id, row)

    def cancel(self, project_id: str, upload_id: str) -> Upload:
        row = self._pending(project_id, upload_id)
        with self._engine.begin() as conn:
            conn.execute(
                update(UPLOADS).where(UPLOADS.c.id == upload_id).values(status="cancelled")
            )
        self._drop_parts(project_id, row)
        row["status"] = "cancelled"
        return self._object(row)

    def live_part_keys(self) -> set[str]:
        """Blob keys of the parts of uploads still pending and unexpired."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(UPLOADS.c.id, UPLOADS.c.project_id, UPLOADS.c.parts).where(
                    UPLOADS.c.status == "pending", UPLOADS.c.expires_at > int(time.time())
                )
            ).all()
        return {
            f"{r.project_id}/uploads/{r.id}/{part_id}" for r in rows for part_id in r.parts or {}
        }

    def expired_pending(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(UPLOADS).where(
                    UPLOADS.c.status == "pending", UPLOADS.c.expires_at <= int(time.time())
                )
            ).all()
        return [dict(r._mapping) for r in rows]

    def expire(self, row: dict[str, Any]) -> None:
        """An upload past its hour: marked expired and its parts freed."""
        with self._engine.begin() as conn:
            conn.execute(
                update(UPLOADS)
                .where(UPLOADS.c.id == row["id"], UPLOADS.c.status == "pending")
                .values(status="expired")
            )
        self._drop_parts(row["project_id"], row)

    def _drop_parts(self, project_id: str, row: dict[str, Any]) -> None:
        for part_id in row["parts"]:
            self._blobs.delete(f"{project_id}/uploads/{row['id']}/{part_id}")
