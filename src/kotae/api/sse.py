"""Server-sent events as OpenAI sends them: `event: <type>` and `data: <json>`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Protocol

from starlette.responses import StreamingResponse

from kotae.api.errors import error_body
from kotae.errors import KotaeError

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class JsonEvent(Protocol):
    def model_dump_json(
        self, *, exclude_unset: bool = False, by_alias: bool | None = None
    ) -> str: ...


async def _frames(events: AsyncIterator[JsonEvent], done_marker: bool) -> AsyncIterator[str]:
    try:
        async for event in events:
            kind = getattr(event, "type", None)
            data = event.model_dump_json(exclude_unset=True, by_alias=True)
            yield f"event: {kind}\ndata: {data}\n\n" if kind else f"data: {data}\n\n"
    except KotaeError as exc:
        # Headers are gone already; the error travels as a data frame, as OpenAI's does.
        yield f"event: error\ndata: {json.dumps(error_body(exc))}\n\n"
    if done_marker:
        yield "data: [DONE]\n\n"


def sse_response(
    events: AsyncIterator[JsonEvent], *, done_marker: bool = False
) -> StreamingResponse:
    return StreamingResponse(
        _frames(events, done_marker), media_type="text/event-stream", headers=SSE_HEADERS
    )
