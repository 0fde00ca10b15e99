"""create_app(settings): the FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator

import anyio
from fastapi import FastAPI

from kotae import __version__
from kotae.api import docs, errors, openapi
from kotae.api.bounded import CHECKER
from kotae.api.limits import BodyLimit
from kotae.api.observe import Observe
from kotae.api.routes import (
    batches,
    chat_completions,
    completions,
    containers,
    conversations,
    embeddings,
    files,
    fine_tuning,
    health,
    images,
    models,
    organization,
    prompts,
    responses,
    responses_socket,
    uploads,
    vector_stores,
    webhooks,
)
from kotae.config import Settings
from kotae.console import install as install_console
from kotae.container import Container

log = logging.getLogger("kotae")
PURGE_INTERVAL_SECONDS = 3600
CONTAINER_SWEEP_SECONDS = 30


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    *,
    access_log: bool = True,
) -> FastAPI:
    settings = settings or Settings()
    given = container

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = (
            given
            if given is not None
            else await anyio.to_thread.run_sync(Container.build, settings)
        )
        app.state.container = built
        leases = asyncio.create_task(built.responses.keep_leases())
        # What a crash left between the database and the blobs, before the first request.
        await anyio.to_thread.run_sync(built.reconciler.repair)
        built.models.warm_up(settings.default_model)
        queues: list[asyncio.Task[None]] = []
        if settings.run_worker:  # else `kotae worker` processes take the work from the DB
            built.vector_stores.start()
            await anyio.to_thread.run_sync(built.fine_tuning.start)
            queues = [
                asyncio.create_task(built.responses.serve_queue()),
                asyncio.create_task(built.images.serve_queue()),
                asyncio.create_task(built.containers.serve_queue()),
                asyncio.create_task(built.batches.serve_queue()),
                asyncio.create_task(built.webhooks.serve_deliveries()),
            ]
        purge = asyncio.create_task(_purge_forever(built))
        reaper = asyncio.create_task(_expire_containers_forever(built))
        if settings.gc_freeze:
            # What startup made lives as long as the server: a full collection (triggered by
            # a large request's many new objects) then walks only what came after.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            purge.cancel()
            reaper.cancel()
            leases.cancel()
            for queue in queues:
                queue.cancel()
            if settings.run_worker:
                await built.vector_stores.stop()
                await anyio.to_thread.run_sync(built.fine_tuning.stop)
            await built.responses.shutdown()
            CHECKER.close()
            await built.models.close()
            await built.images.close()
            await built.perception.close()
            await built.containers.close()

    # /docs is kotae's own (offline assets); ReDoc would load its script from a CDN.
    app = FastAPI(
        title="kotae", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    errors.install(app)
    openapi.install(app)
    docs.install(app)
    install_console(app)

    app.add_middleware(
        BodyLimit, limit=settings.max_request_bytes, upload_limit=settings.max_file_bytes
    )
    # Outermost: it sees every answer, the body limit's 413 included.
    app.add_middleware(Observe, access_log=access_log)

    for router in (
        responses.router,
        responses_socket.router,
        chat_completions.router,
        batches.router,
        completions.router,
        containers.router,
        files.router,
        uploads.router,
        vector_stores.router,
        embeddings.router,
        conversations.router,
        fine_tuning.router,
        images.router,
        models.router,
        organization.router,
        prompts.router,
        health.router,
        webhooks.router,
    ):
        app.include_router(router)
    return app


async def _expire_containers_forever(container: Container) -> None:
    """Containers idle past their `expires_after` expire (every replica checks)."""
    while True:
        await asyncio.sleep(CONTAINER_SWEEP_SECONDS)
        try:
            await container.containers.expire_idle()
        except Exception:
            log.exception("expiring idle containers failed")


async def _purge_forever(container: Container) -> None:
    while True:
        try:
            removed = await anyio.to_thread.run_sync(container.responses_repo.purge_expired)
            removed += await anyio.to_thread.run_sync(container.files.purge_expired)
            removed += await anyio.to_thread.run_sync(container.images.purge_expired)
            removed += await anyio.to_thread.run_sync(container.containers.purge_runs)
            removed += len(await anyio.to_thread.run_sync(container.reconciler.repair))
            minute = int(time.time() // 60)
            await anyio.to_thread.run_sync(container.rate_limits.purge, minute - 1)
            if removed:
                log.info("purged %d expired responses and files", removed)
        except Exception:
            log.exception("purging expired responses failed")
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)
