"""/v1/models: the real models and the names that alias them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kotae.api.deps import ContainerDep, ProjectDep
from kotae.errors import ModelNotFound

router = APIRouter(prefix="/v1/models", tags=["models"])


def _model(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


@router.get("")
async def list_models(container: ContainerDep, _: ProjectDep) -> dict[str, Any]:
    data = []
    for entry in container.models.entries.values():
        if not entry.available:
            continue
        data.append(_model(entry.config.id, entry.created, "kotae"))
        data.extend(
            _model(alias, entry.created, f"kotae:alias-of:{entry.config.id}")
            for alias in entry.aliases
        )
    embedder = container.embeddings.embedder.model_id
    data.append(_model(embedder, 0, "kotae"))
    data.extend(
        _model(a, 0, f"kotae:alias-of:{embedder}") for a in container.embeddings.names()[1:]
    )
    return {"object": "list", "data": data}


@router.get("/{model_id:path}")
async def retrieve_model(model_id: str, container: ContainerDep, _: ProjectDep) -> dict[str, Any]:
    names = container.embeddings.names()
    if model_id in names:
        owner = "kotae" if model_id == names[0] else f"kotae:alias-of:{names[0]}"
        return _model(model_id, 0, owner)
    entry = container.models.resolve(model_id)
    if model_id == entry.config.id:
        return _model(model_id, entry.created, "kotae")
    if not entry.available:
        raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
    return _model(model_id, entry.created, f"kotae:alias-of:{entry.config.id}")
