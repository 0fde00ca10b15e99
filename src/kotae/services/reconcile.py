"""The reconciliation sweep: what a crash or an expiry left behind between the database and
the blob store, found and repaired — at start, on a timer, and shown by
`kotae doctor --check-storage` without repairing.

- blobs (and unfinished `.part` writes) that no file row or live upload part names, older
  than the grace period (a younger one may be a write in flight): deleted;
- uploads past their hour still pending: marked expired, their parts deleted;
- file rows whose blob is missing: marked `error` with the reason, never dropped silently."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kotae.providers.blobs.base import BlobStore
from kotae.services.uploads import UploadsService
from kotae.storage.repositories.files import FileRepository

log = logging.getLogger("kotae.reconcile")


@dataclass
class Repair:
    kind: str  # orphan blob | unfinished write | expired upload | missing blob
    target: str
    action: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.target} -> {self.action}"


class Reconciler:
    def __init__(
        self,
        files: FileRepository,
        uploads: UploadsService,
        blobs: BlobStore,
        grace_seconds: float,
    ) -> None:
        self._files = files
        self._uploads = uploads
        self._blobs = blobs
        self._grace = grace_seconds

    def plan(self) -> list[Repair]:
        expired = self._uploads.expired_pending()
        repairs = [
            Repair("expired upload", row["id"], f"mark expired, delete {len(row['parts'])} parts")
            for row in expired
        ]
        rows = self._files.blob_rows()
        named = {key for _, key, _ in rows} | self._uploads.live_part_keys()
        named |= {f"{r['project_id']}/uploads/{r['id']}/{p}" for r in expired for p in r["parts"]}
        old = time.time() - self._grace
        for key, mtime in self._blobs.listing():
            if mtime > old or key in named:
                continue
            kind = "unfinished write" if key.endswith(".part") else "orphan blob"
            repairs.append(Repair(kind, key, "delete"))
        for file_id, key, status in rows:
            if status != "error" and not self._blobs.exists(key):
                repairs.append(Repair("missing blob", file_id, "mark the file 'error'"))
        return repairs

    def repair(self) -> list[Repair]:
        expired = {row["id"]: row for row in self._uploads.expired_pending()}
        done = []
        for item in self.plan():
            if item.kind == "expired upload" and item.target in expired:
                self._uploads.expire(expired[item.target])
            elif item.kind in ("orphan blob", "unfinished write"):
                self._blobs.delete(item.target)
            elif item.kind == "missing blob":
                self._files.mark_missing(item.target, "its bytes were not found in the blob store")
            else:
                continue
            log.warning("reconciled %s", item)
            done.append(item)
        return done
