"""Liveness and readiness."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kotae.api.deps import ContainerDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(container: ContainerDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await anyio.to_thread.run_sync(container.projects.get_setting, "schema")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc}"
    default = container.models.entries.get(container.settings.default_model)
    checks["default_model"] = "ok" if default and default.available else "missing"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
    )
