"""Liveness and readiness."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep

router = APIRouter(route_class=BoundedRoute, tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", include_in_schema=False)
async def metrics(container: ContainerDep) -> Response:
    """Prometheus text format; like /health it needs no key (it names models and counts, no
    project's data)."""
    body = await anyio.to_thread.run_sync(container.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/ready")
async def ready(container: ContainerDep) -> JSONResponse:
    """Ready when the database answers, file storage takes a write and the default model can
    serve; every started engine runner is listed with its state and, when down, why."""
    checks: dict[str, str] = {}
    try:
        await anyio.to_thread.run_sync(container.projects.get_setting, "schema")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc}"
    storage = ""
    try:
        storage = await anyio.to_thread.run_sync(container.blobs.check)
        checks["files"] = "ok"
    except Exception as exc:
        checks["files"] = f"error: {exc}"
    default_id = container.settings.default_model
    default = container.models.entries.get(default_id)
    engines = container.engines()
    if default is None or not default.available:
        checks["default_model"] = "missing"
    elif engines.get(default_id, {}).get("state") in ("unavailable", "restarting"):
        checks["default_model"] = f"engine down: {engines[default_id]['reason']}"
    else:
        checks["default_model"] = "ok"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {
            "status": "ready" if ok else "not_ready",
            "checks": checks,
            "storage": storage,
            "engines": engines,
        },
        status_code=200 if ok else 503,
    )
