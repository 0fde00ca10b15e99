"""`kotae worker`: the background work without the API. It takes files to ingest,
fine-tuning jobs, queued background responses and image requests from the database under
leases, as `kotae serve` does in its own process; API replicas started with `kotae serve
--no-worker` only write the rows. A worker killed mid-task leaves its lease to lapse, and
another worker (or a restart) takes the task over: ingestion replaces the chunks an
interrupted try wrote and an image request is generated again; a training run or a
response that had started is failed visibly (neither is safe to run twice)."""

from __future__ import annotations

import asyncio
import logging
import signal

from kotae.config import Settings
from kotae.container import Container

log = logging.getLogger("kotae.worker")


async def run(settings: Settings) -> None:
    container = await asyncio.to_thread(Container.build, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    container.vector_stores.start()
    await asyncio.to_thread(container.fine_tuning.start)
    tasks = [
        asyncio.create_task(container.responses.keep_leases()),
        asyncio.create_task(container.responses.serve_queue()),
        asyncio.create_task(container.images.serve_queue()),
        asyncio.create_task(container.containers.serve_queue()),
        asyncio.create_task(container.batches.serve_queue()),
        asyncio.create_task(container.webhooks.serve_deliveries()),
    ]
    log.info("worker %s: taking the background work", container.vector_stores.owner)
    print(
        "kotae: worker started (ingestion, fine-tuning, background responses, images, "
        "code interpreter, batches, webhooks)",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await container.responses.shutdown()
        await container.vector_stores.stop()
        await asyncio.to_thread(container.fine_tuning.stop)
        await container.models.close()
        await container.images.close()
        await container.perception.close()
        await container.containers.close()
