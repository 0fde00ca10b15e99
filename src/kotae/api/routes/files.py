"""/v1/files: upload, list, retrieve, delete, content."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import UploadFile

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import Order, check_limit, page
from kotae.api.params import FileId
from kotae.api.wire import wire
from kotae.errors import InvalidRequest

router = APIRouter(route_class=BoundedRoute, prefix="/v1/files", tags=["files"])


async def read_form(request: Request) -> Any:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("Uploads must be multipart/form-data.")
    # Starlette spools each file to disk past 1 MB: never whole in memory.
    return await request.form(max_files=1, max_fields=32)


@router.post("")
async def create_file(request: Request, container: ContainerDep, project: ProjectDep) -> Any:
    form = await read_form(request)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        if not upload.size:
            raise InvalidRequest("The file is empty: upload a file with content.", param="file")
        service = container.files
        purpose = service.check_purpose(_text(form.get("purpose")))
        expires = service.check_expiry(
            _text(form.get("expires_after[anchor]")), _text(form.get("expires_after[seconds]"))
        )
        created = await service.create(
            project,
            upload.file,
            upload.filename or "upload",
            purpose,
            expires,
            upload.content_type,
        )
    finally:
        await form.close()
    return wire(created)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@router.get("")
async def list_files(
    container: ContainerDep,
    project: ProjectDep,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Order = "desc",
    after: str | None = None,
) -> JSONResponse:
    check_limit(limit, 10000)
    files, more = await container.files.list(
        project, purpose=purpose, limit=limit, order=order, after=after
    )
    return JSONResponse(page([wire(f) for f in files], more))


@router.get("/{file_id}")
async def retrieve_file(file_id: FileId, container: ContainerDep, project: ProjectDep) -> Any:
    return wire(await container.files.retrieve(project, file_id))


@router.delete("/{file_id}")
async def delete_file(file_id: FileId, container: ContainerDep, project: ProjectDep) -> Any:
    await container.files.delete(project, file_id)
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/{file_id}/content")
async def file_content(
    file_id: FileId, container: ContainerDep, project: ProjectDep
) -> StreamingResponse:
    row = await container.files.get_row(project, file_id)
    return StreamingResponse(
        container.files.content(row),
        media_type=row["mime_type"] or "application/octet-stream",
        headers={"Content-Length": str(row["bytes"])},
    )
