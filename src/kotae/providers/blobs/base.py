"""Where file bytes live. Local disk by default; the scale-out issue adds S3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Protocol


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

    def check(self) -> str:
        """ "ok, N GB free" when a blob can be written and removed; else why not (raises)."""
        ...
