"""/v1/completions (legacy text completions)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, MeteredProjectDep
from kotae.api.disconnect import cancel_on_disconnect
from kotae.api.sse import sse_response
from kotae.providers.inference.base import CancelToken
from kotae.schemas.completions import CreateCompletion

router = APIRouter(route_class=BoundedRoute, prefix="/v1", tags=["completions"])


@router.post("/completions")
async def create_completion(
    req: CreateCompletion, request: Request, container: ContainerDep, project: MeteredProjectDep
) -> Response:
    service = container.completions
    backend, requests, model, admission = await service.prepare(project, req)
    echo = bool(req.echo)
    if req.stream:
        usage = bool(req.stream_options and req.stream_options.include_usage)
        events = service.stream(backend, requests, model, admission, echo, usage)
        return sse_response(events, done_marker=True)
    cancel = CancelToken()
    result = await cancel_on_disconnect(
        request, cancel, service.create(backend, requests, model, admission, echo, cancel)
    )
    return JSONResponse(result.model_dump(mode="json", exclude_unset=True))
