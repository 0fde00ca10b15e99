"""Liveness and readiness."""

from __future__ import annotations

import hmac
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, bearer_key
from kotae.api.errors import envelope
from kotae.container import Container
from kotae.errors import AuthenticationFailed
from kotae.ops.metrics import public_name

router = APIRouter(route_class=BoundedRoute, tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _operator(request: Request, container: Container) -> bool:
    """Whether the caller may see the ops routes' detail: the metrics token or an admin key."""
    try:
        key = bearer_key(request)
    except AuthenticationFailed:
        return False
    token = container.settings.metrics_token
    if token and hmac.compare_digest(key.encode(), token.encode()):
        return True
    return bool(await anyio.to_thread.run_sync(container.projects.is_admin, key))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, container: ContainerDep) -> Response:
    """Prometheus text format. Its labels name no tenant (fine-tuned models are opaque), so it
    is open unless `metrics_token` is set; then it needs that token (or an admin key)."""
    if container.settings.metrics_token and not await _operator(request, container):
        return envelope(401, "/metrics needs the metrics token.", "invalid_request_error")
    body = await anyio.to_thread.run_sync(container.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/ready")
async def ready(request: Request, container: ContainerDep) -> JSONResponse:
    """Ready when the database answers, file storage takes a write and the default model can
    serve. Anyone sees the states; the detail (errors, storage path, engine processes and
    pools) is for an admin key or the metrics token."""
    checks: dict[str, str] = {}
    errors: dict[str, str] = {}
    try:
        await anyio.to_thread.run_sync(container.projects.get_setting, "schema")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"], errors["database"] = "error", str(exc)
    storage = ""
    try:
        storage = await anyio.to_thread.run_sync(container.blobs.check)
        checks["files"] = "ok"
    except Exception as exc:
        checks["files"], errors["files"] = "error", str(exc)
    default_id = container.settings.default_model
    default = container.models.entries.get(default_id)
    engines = container.engines()
    if default is None or not default.available:
        checks["default_model"] = "missing"
    elif engines.get(default_id, {}).get("state") in ("unavailable", "restarting"):
        checks["default_model"] = "engine down"
        errors["default_model"] = str(engines[default_id].get("reason", ""))
    else:
        checks["default_model"] = "ok"
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ready" if ok else "not_ready", "checks": checks}
    if await _operator(request, container):
        body.update(errors=errors, storage=storage, engines=engines)
    else:
        body["engines"] = {
            public_name(name): {"state": info.get("state")} for name, info in engines.items()
        }
    return JSONResponse(body, status_code=200 if ok else 503)
