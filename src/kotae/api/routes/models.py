"""/v1/models: the real models and the names that alias them."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from kotae.api.bounded import BoundedRoute
from kotae.api.deps import ContainerDep, ProjectDep
from kotae.errors import ModelNotFound, PermissionDenied

router = APIRouter(route_class=BoundedRoute, prefix="/v1/models", tags=["models"])


def _model(model_id: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


@router.get("")
async def list_models(container: ContainerDep, project_id: ProjectDep) -> dict[str, Any]:
    data = []
    container.models.refresh()  # a model pulled while the server runs is listed
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
    data.extend(await to_thread.run_sync(container.fine_tuning.models, project_id))
    return {"object": "list", "data": data}


@router.get("/{model_id:path}")
async def retrieve_model(
    model_id: str, container: ContainerDep, project_id: ProjectDep
) -> dict[str, Any]:
    if model_id.startswith("ft:"):
        found = [
            m
            for m in await to_thread.run_sync(container.fine_tuning.models, project_id)
            if m["id"] == model_id
        ]
        if found:
            return found[0]
        entry = container.models.resolve(model_id, project_id)  # checkpoints, or 404
        return _model(model_id, entry.created, "kotae:checkpoint")
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


@router.delete("/{model_id:path}")
async def delete_model(model_id: str, container: ContainerDep, project_id: ProjectDep) -> Any:
    if not model_id.startswith("ft:"):
        container.models.resolve(model_id)  # 404 for an unknown one
        raise PermissionDenied(
            f"The model '{model_id}' is not a fine-tuned model of this project; it cannot be "
            "deleted.",
            param="model",
        )
    return await container.fine_tuning.delete_model(project_id, model_id)
