"""Where file bytes live: local disk by default, or an S3-compatible bucket (`blob_url`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from kotae.config import Settings


class BlobStore(Protocol):
    def put(self, key: str, source: BinaryIO, limit: int) -> int:
        """Copies `source` in chunks; returns its size. Over `limit` bytes: removes what it
        wrote and raises PayloadTooLarge."""
        ...

    def read(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    def read_all(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def listing(self) -> Iterator[tuple[str, float]]:
        """Every blob's key and modification time (the reconciliation sweep's view)."""
        ...

    def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None:
        """Where the blob is on this machine's disk, for a store that keeps it there."""
        ...

    def check(self) -> str:
        """ "ok, N GB free" when a blob can be written and removed; else why not (raises)."""
        ...


AREAS = ("files", "images", "fine_tuning", "containers")


def blob_store(settings: Settings, area: str = "files") -> BlobStore:
    """One area of the store the settings name: `s3://bucket/prefix/AREA`, else the folder
    AREA under the data dir. Areas: uploaded files and parts, generated images (behind
    signed URLs), fine-tuning examples and adapters, code interpreter containers' files."""
    assert area in AREAS
    if settings.blob_url:
        from kotae.providers.blobs.s3 import S3BlobStore

        return S3BlobStore(
            f"{settings.blob_url.rstrip('/')}/{area}",
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            region=settings.s3_region,
        )
    from kotae.providers.blobs.local import LocalBlobStore

    return LocalBlobStore(settings.data_dir / area)
