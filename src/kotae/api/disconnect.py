"""Stops a non-streamed request's work when its client goes away (a streamed one stops when
its generator is closed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from kotae.errors import ClientGone
from kotae.providers.inference.base import CancelToken

T = TypeVar("T")


async def _until_disconnect(request: Request) -> None:
    # The body is read already; the next message comes only when the client leaves.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def cancel_on_disconnect(request: Request, cancel: CancelToken, work: Awaitable[T]) -> T:
    async def watch() -> None:
        await _until_disconnect(request)
        cancel.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher


async def stop_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """`work` (preparing a request: counting tokens, compacting), cancelled if the client goes
    away first; the client that would read the answer is gone, so it raises ClientGone."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_until_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ClientGone("The client closed the connection before the request was prepared.")
    return task.result()
