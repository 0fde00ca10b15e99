"""Fine-tuning artifacts (validated examples, adapters, checkpoints) in the blob store, under
keys "<job>/...", with this machine's folder as their cache and the trainer's workspace."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from kotae.providers.blobs.base import BlobStore


class Artifacts:
    def __init__(self, store: BlobStore, root: Path) -> None:
        self.store = store
        self.root = root

    def keep(self, path: Path) -> str:
        """A file the trainer wrote under the local folder, into the store; its key."""
        key = path.relative_to(self.root).as_posix()
        if self.store.local_path(key) != path.resolve():
            with open(path, "rb") as source:
                self.store.put(key, source, path.stat().st_size)
        return key

    def fetch(self, key: str) -> Path | None:
        """A stored artifact as a local file (downloaded once into the cache); None if gone."""
        if Path(key).is_absolute():  # a job trained before artifacts went to the store
            return Path(key) if Path(key).is_file() else None
        local = self.store.local_path(key)
        if local is not None:
            return local if local.is_file() else None
        path = self.root / key
        if not path.is_file():
            if not self.store.exists(key):
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
            with open(tmp, "wb") as out:
                for chunk in self.store.read(key):
                    out.write(chunk)
            tmp.replace(path)
        return path

    def forget(self, job: str) -> None:
        shutil.rmtree(self.root / job, True)  # the cache (and, on local disk, the store)
        for key, _ in list(self.store.listing()):
            if key.startswith(f"{job}/"):
                self.store.delete(key)
