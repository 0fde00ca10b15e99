"""/v1/prompts: kotae's own management of reusable prompts (OpenAI keeps them in its
dashboard); `responses.create(prompt={"id", "version", "variables"})` uses them."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import check_limit, page
from kotae.api.params import Limit, PromptId
from kotae.schemas.prompts import PromptVersionBody, body_of
from kotae.storage.repositories.paging import cursor_page

router = APIRouter(route_class=BoundedRoute, prefix="/v1/prompts", tags=["prompts"])


@router.post("")
async def create_prompt(req: PromptVersionBody, c: ContainerDep, p: ProjectDep) -> Any:
    return await to_thread.run_sync(c.prompts.create, p, body_of(req))


@router.get("")
async def list_prompts(
    c: ContainerDep, p: ProjectDep, after: str | None = None, limit: Limit = 20
) -> Any:
    rows = await to_thread.run_sync(c.prompts.listing, p)
    return page(*cursor_page(rows, "id", check_limit(limit), after, None))


@router.get("/{prompt_id}")
async def retrieve_prompt(
    prompt_id: PromptId, c: ContainerDep, p: ProjectDep, version: str | None = None
) -> Any:
    return await to_thread.run_sync(c.prompts.get, p, prompt_id, version)


@router.post("/{prompt_id}/versions")
async def create_prompt_version(
    prompt_id: PromptId, req: PromptVersionBody, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(c.prompts.add_version, p, prompt_id, body_of(req))


@router.get("/{prompt_id}/versions")
async def list_prompt_versions(prompt_id: PromptId, c: ContainerDep, p: ProjectDep) -> Any:
    return page(await to_thread.run_sync(c.prompts.versions, p, prompt_id), False)


@router.delete("/{prompt_id}")
async def delete_prompt(prompt_id: PromptId, c: ContainerDep, p: ProjectDep) -> Any:
    await to_thread.run_sync(c.prompts.delete, p, prompt_id)
    return {"id": prompt_id, "object": "prompt.deleted", "deleted": True}
