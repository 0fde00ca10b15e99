"""/v1/containers and /v1/containers/{id}/files: the code interpreter's containers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import Order, check_limit, page
from kotae.api.params import ContainerFileId, ContainerId, Limit
from kotae.api.routes.files import read_form
from kotae.errors import InvalidRequest
from kotae.schemas.containers import CreateContainer
from kotae.storage.repositories.paging import cursor_page


def _sandbox_ready(c: ContainerDep) -> None:
    """Every containers call is a 400 saying what to install when code cannot run here."""
    c.containers.require()


router = APIRouter(
    route_class=BoundedRoute,
    prefix="/v1/containers",
    tags=["containers"],
    dependencies=[Depends(_sandbox_ready)],
)


@router.post("")
async def create_container(req: CreateContainer, c: ContainerDep, p: ProjectDep) -> Any:
    return await c.containers.create(
        p,
        req.name,
        minutes=req.expires_after.minutes if req.expires_after else None,
        file_ids=req.file_ids,
        memory_limit=req.memory_limit,
    )


@router.get("")
async def list_containers(
    c: ContainerDep,
    p: ProjectDep,
    name: str | None = None,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "desc",
) -> Any:
    rows = await c.containers.listing(p, name, order)
    return page(*cursor_page(rows, "id", check_limit(limit), after, None))


@router.get("/{container_id}")
async def retrieve_container(container_id: ContainerId, c: ContainerDep, p: ProjectDep) -> Any:
    return await c.containers.retrieve(p, container_id)


@router.delete("/{container_id}")
async def delete_container(container_id: ContainerId, c: ContainerDep, p: ProjectDep) -> Any:
    await c.containers.delete(p, container_id)
    return {"id": container_id, "object": "container.deleted", "deleted": True}


@router.post("/{container_id}/files")
async def create_container_file(
    container_id: ContainerId, request: Request, c: ContainerDep, p: ProjectDep
) -> Any:
    """An upload (multipart `file`) or a copy of a file of /v1/files (JSON `file_id`)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        file_id = body.get("file_id") if isinstance(body, dict) else None
        if not isinstance(file_id, str) or not file_id.startswith("file-"):
            raise InvalidRequest("Send a file_id of /v1/files, or upload a file.", param="file_id")
        return await c.containers.add_file(p, container_id, file_id=file_id)
    form = await read_form(request)
    try:
        upload = form.get("file")
        file_id = form.get("file_id")
        if isinstance(file_id, str) and file_id:
            return await c.containers.add_file(p, container_id, file_id=file_id)
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        return await c.containers.add_file(
            p, container_id, upload=(upload.file, upload.filename or "upload")
        )
    finally:
        await form.close()


@router.get("/{container_id}/files")
async def list_container_files(
    container_id: ContainerId,
    c: ContainerDep,
    p: ProjectDep,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "desc",
) -> Any:
    rows = await c.containers.list_files(p, container_id, order)
    return page(*cursor_page(rows, "id", check_limit(limit), after, None))


@router.get("/{container_id}/files/{file_id}")
async def retrieve_container_file(
    container_id: ContainerId, file_id: ContainerFileId, c: ContainerDep, p: ProjectDep
) -> Any:
    return await c.containers.retrieve_file(p, container_id, file_id)


@router.delete("/{container_id}/files/{file_id}")
async def delete_container_file(
    container_id: ContainerId, file_id: ContainerFileId, c: ContainerDep, p: ProjectDep
) -> Any:
    await c.containers.delete_file(p, container_id, file_id)
    return {"id": file_id, "object": "container.file.deleted", "deleted": True}


@router.get("/{container_id}/files/{file_id}/content")
async def container_file_content(
    container_id: ContainerId, file_id: ContainerFileId, c: ContainerDep, p: ProjectDep
) -> StreamingResponse:
    row = await c.containers.file_row(p, container_id, file_id)
    return StreamingResponse(
        c.containers.content(row),
        media_type="application/octet-stream",
        headers={"Content-Length": str(row["bytes"])},
    )
