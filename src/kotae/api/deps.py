"""Request dependencies: the container, and the project behind the API key."""

from __future__ import annotations

import hashlib
from typing import Annotated

import anyio
from fastapi import Depends, Request

from kotae.container import Container
from kotae.errors import AuthenticationFailed


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def bearer_key(request: Request) -> str:
    """The key in `Authorization: Bearer KEY`, or a 401 saying how to send one."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationFailed(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    return key


async def get_project(request: Request, container: ContainerDep) -> str:
    key = bearer_key(request)
    digest = hashlib.sha256(key.encode()).hexdigest()
    project = container.key_cache.get(digest)
    if project is None:
        project = await anyio.to_thread.run_sync(container.projects.verify, key)
        if project is None:
            shown = f"{key[:8]}***{key[-4:]}" if len(key) > 12 else "***"
            raise AuthenticationFailed(f"Incorrect API key provided: {shown}.")
        container.key_cache.put(digest, project)
    return project


ProjectDep = Annotated[str, Depends(get_project)]
