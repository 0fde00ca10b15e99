"""One batch line run as its endpoint would run it online: the same request schema, the same
service calls, the same answer or error body."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kotae.api.errors import error_body, validation_to_envelope
from kotae.errors import InvalidRequest, KotaeError
from kotae.schemas.chat_completions import CreateChatCompletion
from kotae.schemas.completions import CreateCompletion
from kotae.schemas.embeddings import CreateEmbedding
from kotae.schemas.responses import CreateResponse
from kotae.services.chat_completions import ChatCompletionsService
from kotae.services.completions import CompletionsService
from kotae.services.embeddings import EmbeddingsService
from kotae.services.responses.service import ResponsesService
from kotae.services.stored_chat_completions import StoredChatCompletions

ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions")


@dataclass
class LineRunner:
    responses: ResponsesService
    chat: ChatCompletionsService
    stored_chat: StoredChatCompletions
    completions: CompletionsService
    embeddings: EmbeddingsService

    async def run(self, project_id: str, endpoint: str, body: dict[str, Any]) -> tuple[int, Any]:
        """(HTTP status, body) as the online endpoint would answer this request."""
        try:
            if body.get("stream"):
                raise InvalidRequest("Batch requests cannot stream.", param="stream")
            return 200, await self._run(project_id, endpoint, body)
        except ValidationError as exc:
            return 400, json.loads(bytes(validation_to_envelope(list(exc.errors())).body))
        except KotaeError as exc:
            return exc.status_code, error_body(exc)

    async def _run(self, project_id: str, endpoint: str, body: dict[str, Any]) -> Any:
        if endpoint == "/v1/responses":
            req = CreateResponse.model_validate(body)
            if req.background:
                raise InvalidRequest(
                    "Batch requests run in the batch: background is not allowed.",
                    param="background",
                )
            prepared = await self.responses.prepare(project_id, req)
            answer = await self.responses.create(prepared)
            return json.loads(answer.model_dump_json(exclude_unset=True, by_alias=True))
        if endpoint == "/v1/chat/completions":
            chat_req = CreateChatCompletion.model_validate(body)
            backend, chat, model, admission = await self.chat.prepare(project_id, chat_req)
            result = await self.chat.create(backend, chat, model, admission, None, chat_req.n or 1)
            out: dict[str, Any] = result.model_dump(mode="json", exclude_unset=True, by_alias=True)
            if chat_req.store:
                await asyncio.to_thread(self.stored_chat.save, project_id, chat_req, out)
                out["metadata"] = chat_req.metadata or {}
            return out
        if endpoint == "/v1/completions":
            text_req = CreateCompletion.model_validate(body)
            backend, requests, model, admission = await self.completions.prepare(
                project_id, text_req
            )
            done = await self.completions.create(
                backend, requests, model, admission, bool(text_req.echo)
            )
            return done.model_dump(mode="json", exclude_unset=True)
        if endpoint == "/v1/embeddings":
            embed_req = CreateEmbedding.model_validate(body)
            return await asyncio.to_thread(self.embeddings.create, embed_req)
        raise InvalidRequest(f"Batches do not run {endpoint}.", param="url")
