"""/v1/webhook_endpoints (as the `openai` SDK's `client.webhooks` calls them), the event
types sent, and kotae's own delivery log (/v1/webhook_deliveries, the console's view)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.api.pagination import check_limit, page
from kotae.api.params import Limit, WebhookEndpointId
from kotae.schemas.batches import (
    CreateWebhookEndpoint,
    RotateSecret,
    TestWebhookEndpoint,
    UpdateWebhookEndpoint,
)
from kotae.services.webhooks.service import EVENT_TYPES, endpoint_object
from kotae.storage.repositories.paging import cursor_page

router = APIRouter(route_class=BoundedRoute, prefix="/v1", tags=["webhooks"])


@router.post("/webhook_endpoints")
async def create_webhook_endpoint(
    req: CreateWebhookEndpoint, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(c.webhooks.create, p, req.name, req.url, req.event_types)


@router.get("/webhook_endpoints")
async def list_webhook_endpoints(
    c: ContainerDep, p: ProjectDep, after: str | None = None, limit: Limit = 20
) -> Any:
    rows = await to_thread.run_sync(c.webhooks.listing, p)
    return page(*cursor_page(rows, "id", check_limit(limit), after, None))


@router.get("/webhook_endpoints/{webhook_endpoint_id}")
async def retrieve_webhook_endpoint(
    webhook_endpoint_id: WebhookEndpointId, c: ContainerDep, p: ProjectDep
) -> Any:
    return endpoint_object(await to_thread.run_sync(c.webhooks.endpoint, p, webhook_endpoint_id))


@router.post("/webhook_endpoints/{webhook_endpoint_id}")
async def update_webhook_endpoint(
    webhook_endpoint_id: WebhookEndpointId,
    req: UpdateWebhookEndpoint,
    c: ContainerDep,
    p: ProjectDep,
) -> Any:
    return await to_thread.run_sync(
        lambda: c.webhooks.update(
            p, webhook_endpoint_id, name=req.name, url=req.url, event_types=req.event_types
        )
    )


@router.delete("/webhook_endpoints/{webhook_endpoint_id}")
async def delete_webhook_endpoint(
    webhook_endpoint_id: WebhookEndpointId, c: ContainerDep, p: ProjectDep
) -> Any:
    await to_thread.run_sync(c.webhooks.delete, p, webhook_endpoint_id)
    return {"id": webhook_endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}


@router.post("/webhook_endpoints/{webhook_endpoint_id}/rotate_secret")
async def rotate_webhook_secret(
    webhook_endpoint_id: WebhookEndpointId, req: RotateSecret, c: ContainerDep, p: ProjectDep
) -> Any:
    return await to_thread.run_sync(
        c.webhooks.rotate_secret, p, webhook_endpoint_id, req.keep_old_secret_active_for_24_hours
    )


@router.post("/webhook_endpoints/{webhook_endpoint_id}/test")
async def test_webhook_endpoint(
    webhook_endpoint_id: WebhookEndpointId, req: TestWebhookEndpoint, c: ContainerDep, p: ProjectDep
) -> Any:
    return await c.webhooks.test(p, webhook_endpoint_id, req.event_type)


@router.get("/webhook_event_types")
async def list_webhook_event_types(_: ProjectDep) -> Any:
    return {"object": "list", "data": list(EVENT_TYPES)}


@router.get("/webhook_deliveries")
async def list_webhook_deliveries(c: ContainerDep, p: ProjectDep, limit: Limit = 100) -> Any:
    """kotae's own: the project's deliveries, newest first, with each one's attempts."""
    rows = await to_thread.run_sync(c.webhooks.deliveries, p, limit)
    return page(rows, False)
