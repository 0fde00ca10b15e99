"""Request dependencies: the container, and the project behind the API key."""

from __future__ import annotations

import hashlib
import math
import time
from typing import Annotated

import anyio
from fastapi import Depends, Request

from kotae.container import Container
from kotae.errors import AuthenticationFailed, RequestRateLimited


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def bearer_key(request: Request) -> str:
    """The key in `Authorization: Bearer KEY`, or a 401 saying how to send one."""
    return _bearer(request.headers.get("authorization", ""))


def _bearer(header: str) -> str:
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationFailed(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="missing_api_key",
        )
    return key


async def get_project(request: Request, container: ContainerDep) -> str:
    return await authenticate(request.headers.get("authorization", ""), container)


async def authenticate(authorization: str, container: Container) -> str:
    """The project of the key in an Authorization header (HTTP or a WebSocket's upgrade)."""
    key = _bearer(authorization)
    digest = hashlib.sha256(key.encode()).hexdigest()
    project = container.key_cache.get(digest)
    if project is None:
        project = await anyio.to_thread.run_sync(container.projects.verify, key)
        if project is None:
            shown = f"{key[:8]}***{key[-4:]}" if len(key) > 12 else "***"
            raise AuthenticationFailed(f"Incorrect API key provided: {shown}.")
        container.key_cache.put(digest, project)
    if container.key_cache.due_for_use_mark(digest):
        await anyio.to_thread.run_sync(container.projects.mark_used, key, int(time.time()))
    return project


ProjectDep = Annotated[str, Depends(get_project)]


async def get_metered_project(
    request: Request, container: ContainerDep, project: ProjectDep
) -> str:
    """The project, its request counted against `rate_limit_rpm` (the model routes). The
    count is in the database: the limit holds however many replicas share the load. The
    answer carries OpenAI's `x-ratelimit-*` headers (added by `Observe`)."""
    headers = await meter(container, project)
    if headers:
        request.state.ratelimit = headers
    return project


async def meter(container: Container, project: str) -> dict[str, str]:
    """One request counted against the project's `rate_limit_rpm` (a 429 over it): the
    x-ratelimit-* headers of its answer."""
    limit = container.settings.rate_limit_rpm
    if limit > 0:
        now = time.time()
        used = await anyio.to_thread.run_sync(container.rate_limits.hit, project, int(now // 60))
        wait = max(1, math.ceil(60 - now % 60))
        headers = {
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": str(max(0, limit - used)),
            "x-ratelimit-reset-requests": f"{wait}s",
        }
        if used > limit:
            raise RequestRateLimited(
                f"Rate limit reached for project {project} on requests per min (RPM): "
                f"Limit {limit}, Used {limit}, Requested 1. Please try again in {wait}s.",
                headers={
                    "retry-after": str(wait),
                    "x-ratelimit-limit-requests": str(limit),
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": f"{wait}s",
                },
            )
        return headers
    return {}


MeteredProjectDep = Annotated[str, Depends(get_metered_project)]
