"""/v1/embeddings."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, MeteredProjectDep
from kotae.schemas.embeddings import CreateEmbedding

router = APIRouter(route_class=BoundedRoute, prefix="/v1/embeddings", tags=["embeddings"])


@router.post("")
async def create_embedding(req: CreateEmbedding, c: ContainerDep, _: MeteredProjectDep) -> Any:
    return await to_thread.run_sync(c.embeddings.create, req)
