"""A short-lived cache of verified API keys."""

from __future__ import annotations

import time


class KeyCache:
    """Verified keys for a few seconds, so the hot path does not hit the database."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._entries: dict[str, tuple[str, float]] = {}
        self._marked: dict[str, float] = {}  # when each key's last_used_at was last written

    def get(self, digest: str) -> str | None:
        hit = self._entries.get(digest)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        return None

    def put(self, digest: str, project_id: str) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (project_id, time.monotonic() + self._ttl)

    def due_for_use_mark(self, digest: str, every: float = 60.0) -> bool:
        """Whether the key's `last_used_at` should be written now: once a minute a key (a
        write a request would slow the hot path)."""
        now = time.monotonic()
        if now - self._marked.get(digest, -every) < every:
            return False
        if len(self._marked) > 10_000:
            self._marked.clear()
        self._marked[digest] = now
        return True

    def clear(self) -> None:
        self._entries.clear()
