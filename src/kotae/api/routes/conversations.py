"""/v1/conversations and their items."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter
from pydantic import Field

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import check_limit, page
from kotae.api.params import ConversationId, Includes, Limit
from kotae.schemas.common import StrictModel, Tagged, WithMetadata

router = APIRouter(route_class=BoundedRoute, prefix="/v1/conversations", tags=["conversations"])


class CreateConversation(WithMetadata):
    items: list[Tagged] | None = None


class UpdateConversation(WithMetadata):
    metadata: Annotated[dict[str, str], Field(max_length=16)]


class AddItems(StrictModel):
    items: list[Tagged]


@router.post("")
async def create_conversation(req: CreateConversation, c: ContainerDep, p: ProjectDep) -> Any:
    return await to_thread.run_sync(c.conversations.create, p, req.items, req.metadata)


@router.get("/{conversation_id}")
async def retrieve_conversation(
    conversation_id: ConversationId, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(c.conversations.retrieve, p, conversation_id)


@router.post("/{conversation_id}")
async def update_conversation(
    conversation_id: ConversationId, req: UpdateConversation, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(c.conversations.update, p, conversation_id, req.metadata)


@router.delete("/{conversation_id}")
async def delete_conversation(
    conversation_id: ConversationId, c: ContainerDep, p: ProjectDep
) -> Any:
    await to_thread.run_sync(c.conversations.delete, p, conversation_id)
    return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}


@router.get("/{conversation_id}/items")
async def list_items(
    conversation_id: ConversationId,
    c: ContainerDep,
    p: ProjectDep,
    _include: Includes,
    limit: Limit = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> Any:
    items, more = await to_thread.run_sync(
        lambda: c.conversations.list_items(
            p, conversation_id, limit=check_limit(limit), order=order, after=after
        )
    )
    return page(items, more)


@router.post("/{conversation_id}/items")
async def add_items(
    conversation_id: ConversationId, req: AddItems, c: ContainerDep, p: ProjectDep
) -> Any:
    items = await to_thread.run_sync(c.conversations.add_items, p, conversation_id, req.items)
    return page(items, False)


@router.get("/{conversation_id}/items/{item_id}")
async def retrieve_item(
    conversation_id: ConversationId, item_id: str, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(c.conversations.get_item, p, conversation_id, item_id)


@router.delete("/{conversation_id}/items/{item_id}")
async def delete_item(
    conversation_id: ConversationId, item_id: str, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(c.conversations.delete_item, p, conversation_id, item_id)
