"""Blobs as files under the data dir, written to a temporary name and renamed into place, so
a reader never sees half a blob and a failed write leaves nothing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kotae import faults
from kotae.errors import PayloadTooLarge, StorageFull, is_disk_full

CHUNK = 1 << 20


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def put(self, key: str, source: BinaryIO, limit: int) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        size = 0
        try:
            with open(tmp, "wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(
                            f"File is over the {limit}-byte limit.", code="file_too_large"
                        )
                    out.write(chunk)
            faults.point("blob.after_write")
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if is_disk_full(exc):
                raise StorageFull(
                    "The server's disk is full: the file was not stored. Free space and retry."
                ) from exc
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    def listing(self) -> Iterator[tuple[str, float]]:
        """Every blob's key and modification time; unfinished writes end in `.part`."""
        for path in self.root.rglob("*"):
            if path.is_file():
                try:
                    mtime = path.stat().st_mtime
                except FileNotFoundError:
                    continue  # removed meanwhile
                yield path.relative_to(self.root).as_posix(), mtime

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def read(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def read_all(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def check(self) -> str:
        probe = self.root / f".ready-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
        free = shutil.disk_usage(self.root).free
        return f"ok, {free / 2**30:.1f} GB free in {self.root}"
