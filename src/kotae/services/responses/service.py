"""ResponsesService: the face the routes call. Each job lives in a module of its own:

- `prepare.py`: a request checked and made ready (`Prepared`), before any event;
- `run.py`: one response's run, its events, checkpoints and storage;
- `background.py`: background responses, the workers' queue, leases;
- `store.py`: stored responses read back, deleted, cancelled.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.responses import Response

from kotae import ids
from kotae.config import Settings
from kotae.errors import InvalidRequest
from kotae.net.fetch import Fetcher
from kotae.ops.metrics import Metrics
from kotae.providers.inference.base import CancelToken
from kotae.providers.web_search.base import WebSearchProvider
from kotae.schemas.responses import CompactResponse, CreateResponse
from kotae.services.containers.service import ContainersService
from kotae.services.conversations import ConversationsService
from kotae.services.images import ImagesService
from kotae.services.models import ModelRegistry
from kotae.services.prompts import PromptsService
from kotae.services.responses import compaction
from kotae.services.responses.background import Background, BackgroundRun
from kotae.services.responses.builtin import ToolDeps
from kotae.services.responses.convert import normalize_input
from kotae.services.responses.events import StreamEvent
from kotae.services.responses.media import MediaResolver
from kotae.services.responses.prepare import Prepared, Preparer
from kotae.services.responses.run import Runner, usage_of
from kotae.services.responses.sealing import Sealer
from kotae.services.responses.store import StoredResponses
from kotae.services.responses.summary import summarize
from kotae.services.vector_stores.service import VectorStoresService
from kotae.storage.repositories.responses import ItemPage, ResponseRepository


class ResponsesService:
    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        repo: ResponseRepository,
        vector_stores: VectorStoresService,
        web_provider: WebSearchProvider | None = None,
        fetcher: Fetcher | None = None,
        conversations: ConversationsService | None = None,
        media: MediaResolver | None = None,
        images: ImagesService | None = None,
        metrics: Metrics | None = None,
        containers: ContainersService | None = None,
        prompts: PromptsService | None = None,
        sealer: Sealer | None = None,
    ) -> None:
        # This process, as the owner of the responses it runs (leases in the store).
        self.owner = secrets.token_hex(8)
        tool_deps = ToolDeps(settings, vector_stores, web_provider, fetcher, images, containers)
        self._preparer = Preparer(
            settings, registry, repo, tool_deps, conversations, media, metrics
        )
        self._preparer.prompts = prompts
        self._preparer.sealer = sealer
        self._runner = Runner(settings, repo, tool_deps, self.owner, conversations, metrics)
        self._runner.sealer = sealer
        self._background = Background(settings, repo, self._preparer, self._runner, self.owner)
        self._stored = StoredResponses(repo, self._background)

    # -- create ------------------------------------------------------------------------------

    async def prepare(self, project_id: str, req: CreateResponse) -> Prepared:
        return await self._preparer.prepare(project_id, req)

    async def create(self, p: Prepared, cancel: CancelToken | None = None) -> Response:
        return await self._runner.create(p, cancel)

    def stream(self, p: Prepared) -> AsyncIterator[StreamEvent]:
        return self._runner.stream(p)

    async def start_background(self, p: Prepared) -> BackgroundRun:
        return await self._background.start(p)

    async def enqueue(self, p: Prepared) -> None:
        await self._background.enqueue(p)

    def follow(self, run: BackgroundRun, starting_after: int | None) -> AsyncIterator[StreamEvent]:
        return self._background.follow(run, starting_after)

    def live(self, response_id: str) -> BackgroundRun | None:
        return self._background.live(response_id)

    async def count_input_tokens(self, project_id: str, req: CreateResponse) -> int:
        """The tokens `req` would give the model, counted as a create would build them."""
        prepared = await self.prepare(project_id, req)
        prepared.admission.release()
        return prepared.context.input_tokens

    async def compact(self, project_id: str, req: CompactResponse) -> dict[str, Any]:
        """The thread (previous_response_id and input) as its user messages and one compaction
        item holding the model's summary of the rest."""
        if not req.model:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model")
        _, backend, admission = await self._preparer.model(req.model, project_id)
        try:
            history = await self._preparer.thread(project_id, req.previous_response_id, None)
            given = await self._preparer.resolve_references(project_id, req.input)
            items = [*history, *normalize_input(given)]
            if not items:
                raise InvalidRequest("Missing required parameter: 'input'.", param="input")
            summary, finished = await summarize(backend, items, req.instructions, CancelToken())
        finally:
            admission.release()
        return {
            "id": ids.response_id(),
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": [*compaction.kept_messages(items), compaction.item(summary)],
            "usage": usage_of(finished, [0, 0, 0, 0]).model_dump(mode="json"),
        }

    # -- stored responses --------------------------------------------------------------------

    async def retrieve(self, project_id: str, response_id: str) -> Response:
        return await self._stored.retrieve(project_id, response_id)

    def replay(
        self, project_id: str, response_id: str, starting_after: int | None
    ) -> AsyncIterator[Any]:
        return self._stored.replay(project_id, response_id, starting_after)

    async def list_stored(
        self, project_id: str, *, limit: int, order: str, after: str | None, before: str | None
    ) -> tuple[list[Response], bool]:
        return await self._stored.list_stored(
            project_id, limit=limit, order=order, after=after, before=before
        )

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
        return await self._stored.input_items(
            project_id, response_id, limit=limit, order=order, after=after, before=before
        )

    async def delete(self, project_id: str, response_id: str) -> None:
        await self._stored.delete(project_id, response_id)

    async def cancel(self, project_id: str, response_id: str) -> Response:
        return await self._stored.cancel(project_id, response_id)

    # -- the process's background work -------------------------------------------------------

    async def serve_queue(self) -> None:
        await self._background.serve_queue()

    async def keep_leases(self) -> None:
        await self._background.keep_leases()

    async def shutdown(self) -> None:
        await self._background.shutdown()


__all__ = ["BackgroundRun", "Prepared", "ResponsesService"]
