"""/v1/organization/projects and their API keys, for an admin key, shaped like OpenAI's
Administration API. Creating a project key over HTTP is kotae's own (OpenAI makes them only in
its dashboard): the console's Keys page uses it; the plain key is in that answer only."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from pydantic import Field

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, bearer_key, get_project
from kotae.api.pagination import check_limit, page
from kotae.api.params import Limit
from kotae.errors import PermissionDenied
from kotae.schemas.common import StrictModel
from kotae.storage.repositories.paging import cursor_page
from kotae.storage.repositories.projects import KeyInfo, ProjectInfo

router = APIRouter(
    route_class=BoundedRoute, prefix="/v1/organization/projects", tags=["organization"]
)


async def require_admin(request: Request, container: ContainerDep) -> None:
    await get_project(request, container)  # a valid key first: 401 before 403
    if not await anyio.to_thread.run_sync(container.projects.is_admin, bearer_key(request)):
        raise PermissionDenied(
            "This needs an admin key (kotae keys create --admin).", code="admin_key_required"
        )


Admin = Annotated[None, Depends(require_admin)]


class CreateProject(StrictModel):
    name: str = Field(min_length=1, max_length=256)


class CreateKey(StrictModel):
    name: str = Field(default="", max_length=256)


def _project(p: ProjectInfo) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "organization.project",
        "name": p.name,
        "created_at": p.created_at,
        "archived_at": None,
        "status": "active",
    }


def _key(k: KeyInfo) -> dict[str, Any]:
    return {
        "object": "organization.project.api_key",
        "id": k.id,
        "name": k.name,
        "redacted_value": k.redacted,
        "created_at": k.created_at,
        "last_used_at": k.last_used_at,
        "owner": {"type": "service_account"},
        "admin": k.admin,  # kotae's own: whether the key may use these routes
    }


def _page(rows: list[dict[str, Any]], limit: int, after: str | None) -> dict[str, Any]:
    items, more = cursor_page(rows, "id", check_limit(limit), after, None)
    return page(items, more)


@router.get("")
async def list_projects(
    container: ContainerDep, _: Admin, limit: Limit = 20, after: str | None = None
) -> dict[str, Any]:
    found = await anyio.to_thread.run_sync(container.projects.list_projects)
    return _page([_project(p) for p in found], limit, after)


@router.post("")
async def create_project(req: CreateProject, container: ContainerDep, _: Admin) -> dict[str, Any]:
    return _project(await anyio.to_thread.run_sync(container.projects.create_project, req.name))


@router.get("/{project_id}")
async def retrieve_project(project_id: str, container: ContainerDep, _: Admin) -> dict[str, Any]:
    return _project(await anyio.to_thread.run_sync(container.projects.get_project, project_id))


@router.get("/{project_id}/api_keys")
async def list_keys(
    project_id: str,
    container: ContainerDep,
    _: Admin,
    limit: Limit = 20,
    after: str | None = None,
) -> dict[str, Any]:
    await anyio.to_thread.run_sync(container.projects.get_project, project_id)  # or 404
    keys = await anyio.to_thread.run_sync(
        lambda: container.projects.list_keys(project_id=project_id)
    )
    return _page([_key(k) for k in keys if k.revoked_at is None], limit, after)


@router.post("/{project_id}/api_keys")
async def create_key(
    project_id: str, req: CreateKey, container: ContainerDep, _: Admin
) -> dict[str, Any]:
    project = await anyio.to_thread.run_sync(container.projects.get_project, project_id)
    value, info = await anyio.to_thread.run_sync(
        lambda: container.projects.create_key(project.name, req.name)
    )
    return {**_key(info), "value": value}


@router.delete("/{project_id}/api_keys/{key_id}")
async def delete_key(
    project_id: str, key_id: str, container: ContainerDep, _: Admin
) -> dict[str, Any]:
    await anyio.to_thread.run_sync(container.projects.revoke, key_id, project_id)
    # Refused from now on, not after the cache's few seconds.
    container.key_cache.clear()
    return {"object": "organization.project.api_key.deleted", "id": key_id, "deleted": True}
