"""/v1/uploads: create, add parts, complete, cancel."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Request
from pydantic import Field
from starlette.datastructures import UploadFile

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.params import UploadId
from kotae.api.routes.files import read_form
from kotae.api.wire import wire
from kotae.errors import InvalidRequest
from kotae.schemas.common import StrictModel

router = APIRouter(route_class=BoundedRoute, prefix="/v1/uploads", tags=["uploads"])


class CreateUpload(StrictModel):
    filename: Annotated[str, Field(min_length=1)]
    purpose: Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
    bytes: Annotated[int, Field(ge=0)]
    mime_type: str
    expires_after: dict[str, Any] | None = None


class CompleteUpload(StrictModel):
    part_ids: list[str]
    md5: str | None = None


@router.post("")
async def create_upload(req: CreateUpload, c: ContainerDep, p: ProjectDep) -> Any:
    up = await to_thread.run_sync(
        c.uploads.create, p, req.filename, req.purpose, req.bytes, req.mime_type
    )
    return wire(up)


@router.post("/{upload_id}/parts")
async def add_part(upload_id: UploadId, request: Request, c: ContainerDep, p: ProjectDep) -> Any:
    form = await read_form(request)
    try:
        data = form.get("data")
        if not isinstance(data, UploadFile):
            raise InvalidRequest("Missing required parameter: 'data'.", param="data")
        if not data.size:
            raise InvalidRequest("The part is empty: send a part with content.", param="data")
        part = await to_thread.run_sync(c.uploads.add_part, p, upload_id, data.file)
    finally:
        await form.close()
    return wire(part)


@router.post("/{upload_id}/complete")
async def complete_upload(
    upload_id: UploadId, req: CompleteUpload, c: ContainerDep, p: ProjectDep
) -> Any:
    upload, stream, row = await to_thread.run_sync(c.uploads.complete, p, upload_id, req.part_ids)
    file = await c.files.create(p, stream, row["filename"], row["purpose"], None, row["mime_type"])
    await to_thread.run_sync(c.uploads.finish, p, row, file.id)
    upload.status = "completed"
    upload.file = file
    return wire(upload)


@router.post("/{upload_id}/cancel")
async def cancel_upload(upload_id: UploadId, c: ContainerDep, p: ProjectDep) -> Any:
    return wire(await to_thread.run_sync(c.uploads.cancel, p, upload_id))
