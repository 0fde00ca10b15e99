"""/v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.sse import sse_response
from kotae.schemas.chat_completions import CreateChatCompletion

router = APIRouter(prefix="/v1/chat", tags=["chat"])


@router.post("/completions")
async def create_chat_completion(
    req: CreateChatCompletion, container: ContainerDep, project_id: ProjectDep
) -> Response:
    service = container.chat_completions
    backend, chat, model = await service.prepare(project_id, req)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return sse_response(service.stream(backend, chat, model, include_usage), done_marker=True)
    result = await service.create(backend, chat, model)
    return JSONResponse(result.model_dump(mode="json", exclude_unset=True))
