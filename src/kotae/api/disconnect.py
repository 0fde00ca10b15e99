"""Stops a non-streamed request's work when its client goes away (a streamed one stops when
its generator is closed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from kotae.providers.inference.base import CancelToken

T = TypeVar("T")


async def cancel_on_disconnect(request: Request, cancel: CancelToken, work: Awaitable[T]) -> T:
    async def watch() -> None:
        # The body is read already; the next message comes only when the client leaves.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        cancel.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
