"""A pool of servers for one remote model (vLLM, SGLang, Ollama or llama.cpp replicas): each
request goes to the least busy healthy one; a connection error (before the request reached
the engine, so before any token) marks that server down and the next one is tried. A down
server is probed (`GET /models`) in the background until it answers again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

PROBE_SECONDS = 2.0


@dataclass
class Upstream:
    base_url: str
    in_flight: int = 0
    served: int = 0
    failures: int = 0
    healthy: bool = True
    last_error: str = ""

    def status(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "state": "up" if self.healthy else "down",
            "in_flight": self.in_flight,
            "served": self.served,
            "failures": self.failures,
            **({"reason": self.last_error} if not self.healthy else {}),
        }


class UpstreamPool:
    def __init__(self, base_urls: list[str]) -> None:
        if not base_urls:
            raise ValueError("a pool needs at least one base_url")
        self.upstreams = [Upstream(u.rstrip("/")) for u in dict.fromkeys(base_urls)]
        self._turn = 0
        self._probe: asyncio.Task[None] | None = None

    def candidates(self) -> list[Upstream]:
        """Healthy servers, least busy first (ties taken in turn), then the down ones (a
        request still tries them rather than fail without trying)."""
        self._turn += 1
        n = len(self.upstreams)
        ranked = sorted(
            enumerate(self.upstreams),
            key=lambda p: (not p[1].healthy, p[1].in_flight, (p[0] - self._turn) % n),
        )
        return [u for _, u in ranked]

    @contextlib.asynccontextmanager
    async def using(self, upstream: Upstream) -> AsyncIterator[None]:
        upstream.in_flight += 1
        try:
            yield
        finally:
            upstream.in_flight -= 1

    def succeeded(self, upstream: Upstream) -> None:
        upstream.served += 1
        upstream.healthy = True

    def failed(
        self, upstream: Upstream, error: BaseException, session: aiohttp.ClientSession
    ) -> None:
        upstream.failures += 1
        upstream.last_error = f"{type(error).__name__}: {error}"
        upstream.healthy = False
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_down(session))

    async def _probe_down(self, session: aiohttp.ClientSession) -> None:
        while any(not u.healthy for u in self.upstreams):
            await asyncio.sleep(PROBE_SECONDS)
            for u in [u for u in self.upstreams if not u.healthy]:
                try:
                    timeout = aiohttp.ClientTimeout(total=PROBE_SECONDS)
                    async with session.get(f"{u.base_url}/models", timeout=timeout) as resp:
                        if resp.status < 500:
                            u.healthy = True
                except (aiohttp.ClientError, TimeoutError):
                    continue

    def status(self) -> list[dict[str, Any]]:
        return [u.status() for u in self.upstreams]

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
