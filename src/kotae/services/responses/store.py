"""Stored responses: retrieve (optionally as events), list, input items, delete and cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.responses import Response

from kotae.errors import InvalidRequest, NotFound
from kotae.services.responses.background import FOLLOW_POLL_SECONDS, Background
from kotae.services.responses.replay import replay_events
from kotae.services.responses.run import SEQUENCE_END
from kotae.storage.repositories.responses import ItemPage, ResponseRepository


class StoredResponses:
    def __init__(self, repo: ResponseRepository, background: Background) -> None:
        self._repo = repo
        self._background = background

    async def retrieve(self, project_id: str, response_id: str) -> Response:
        return Response.model_validate(upgrade_body(await self._body(project_id, response_id)))

    async def _body(self, project_id: str, response_id: str) -> dict[str, Any]:
        body = await asyncio.to_thread(self._repo.get, project_id, response_id)
        if body is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        return dict(body)

    async def replay(
        self, project_id: str, response_id: str, starting_after: int | None
    ) -> AsyncIterator[Any]:
        """The events of a stored response. A background one's come from the store with the
        numbers they were sent with, then live while it runs here (or from the store, polled,
        while another process runs it or until a lapsed lease ends it); others are rebuilt."""
        body = await self._body(project_id, response_id)
        sequence_end = body.get(SEQUENCE_END)
        response = Response.model_validate(upgrade_body(body))
        if response.background:
            last = -1 if starting_after is None else starting_after
            while True:
                for stored in await asyncio.to_thread(self._repo.events, response_id, last):
                    last = stored.sequence_number
                    yield stored
                run = self._background.live(response_id)
                if run is not None:
                    async for event in self._background.follow(run, last):
                        yield event
                    return
                status = await asyncio.to_thread(self._repo.status, project_id, response_id)
                if status not in ("queued", "in_progress"):
                    for stored in await asyncio.to_thread(self._repo.events, response_id, last):
                        yield stored
                    return
                await asyncio.sleep(FOLLOW_POLL_SECONDS)
        for event in replay_events(response, sequence_end):
            if starting_after is None or event.sequence_number > starting_after:
                yield event

    async def list_stored(
        self, project_id: str, *, limit: int, order: str, after: str | None, before: str | None
    ) -> tuple[list[Response], bool]:
        """A project's stored responses and whether more follow (kotae's own list: OpenAI
        shows them only in its dashboard; kotae's console reads them here)."""
        found = await asyncio.to_thread(
            lambda: self._repo.list_responses(
                project_id, limit=limit, order=order, after=after, before=before
            )
        )
        return [Response.model_validate(upgrade_body(b)) for b in found.items], found.has_more

    async def input_items(
        self,
        project_id: str,
        response_id: str,
        *,
        limit: int,
        order: str,
        after: str | None,
        before: str | None,
    ) -> ItemPage:
        page = await asyncio.to_thread(
            lambda: self._repo.list_input_items(
                project_id, response_id, limit=limit, order=order, after=after, before=before
            )
        )
        if page is None:
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")
        return page

    async def delete(self, project_id: str, response_id: str) -> None:
        run = self._background.live(response_id)
        if run is not None and not run.done:
            run.cancel.cancel()
        if not await asyncio.to_thread(self._repo.delete, project_id, response_id):
            raise NotFound(f"Response with id '{response_id}' not found.", param="response_id")

    async def cancel(self, project_id: str, response_id: str) -> Response:
        response = await self.retrieve(project_id, response_id)
        if not response.background:
            raise InvalidRequest(
                "Only responses created with background=true can be cancelled.",
                param="response_id",
            )
        run = self._background.live(response_id)
        if response.status in ("queued", "in_progress") and run is not None:
            run.cancel.cancel()
            if run.task is not None:
                await asyncio.wait({run.task}, timeout=30)
            return await self.retrieve(project_id, response_id)
        if response.status == "queued" and await asyncio.to_thread(
            self._repo.cancel_waiting, project_id, response_id
        ):  # no worker had taken it yet
            return await self.retrieve(project_id, response_id)
        if response.status in ("queued", "in_progress"):
            # Another process runs it: flag it for that one, and wait for it to stop.
            await asyncio.to_thread(self._repo.request_cancel, project_id, response_id)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status = await asyncio.to_thread(self._repo.status, project_id, response_id)
                if status not in ("queued", "in_progress"):
                    break
                await asyncio.sleep(FOLLOW_POLL_SECONDS / 5)
            return await self.retrieve(project_id, response_id)
        if response.status == "cancelled":
            return response
        raise InvalidRequest(
            f"Cannot cancel a response with status '{response.status}'.", param="response_id"
        )


def upgrade_body(body: dict[str, Any]) -> dict[str, Any]:
    """A stored body as this version shows it: without what is kept beside the response, and
    (stored before 0.1.1) a json_schema format under its wire name `schema`, not `schema_`."""
    body.pop(SEQUENCE_END, None)
    fmt = (body.get("text") or {}).get("format")
    if isinstance(fmt, dict) and "schema_" in fmt:
        fmt["schema"] = fmt.pop("schema_")
    return body
