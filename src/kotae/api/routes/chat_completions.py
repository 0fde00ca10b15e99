"""/v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from kotae.api.deps import ContainerDep, ProjectDep, json_body
from kotae.api.errors import validation_to_envelope
from kotae.api.sse import sse_response
from kotae.schemas.chat_completions import CreateChatCompletion

router = APIRouter(prefix="/v1/chat", tags=["chat"])


@router.post("/completions")
async def create_chat_completion(
    request: Request, container: ContainerDep, _: ProjectDep
) -> Response:
    try:
        req = CreateChatCompletion.model_validate(await json_body(request))
    except ValidationError as exc:
        return validation_to_envelope(list(exc.errors()))
    service = container.chat_completions
    backend, chat, model = await service.prepare(req)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return sse_response(service.stream(backend, chat, model, include_usage), done_marker=True)
    result = await service.create(backend, chat, model)
    return JSONResponse(result.model_dump(mode="json", exclude_unset=True))
