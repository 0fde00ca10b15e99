"""Background responses: run here as tasks whose events are kept for followers, or queued in
the store for a worker (`serve --no-worker`), which claims them under a lease. Leases are
renewed here, and what a dead process left running is failed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from kotae.config import Settings
from kotae.errors import KotaeError, RateLimited, queue_full
from kotae.providers.inference.base import CancelToken
from kotae.schemas.responses import CreateResponse
from kotae.services.responses.events import StreamEvent
from kotae.services.responses.prepare import Prepared, Preparer
from kotae.services.responses.run import Runner
from kotae.storage.repositories.responses import ResponseRepository

log = logging.getLogger("kotae.responses")
FOLLOW_POLL_SECONDS = 0.5  # a stream followed from the store, for one that runs elsewhere
RESTARTED = (
    "The server running this response stopped before it finished (a restart or a crash); "
    "the output so far is kept."
)


@dataclass
class BackgroundRun:
    """Events of a background response, kept so streams can follow or replay it."""

    cancel: CancelToken
    events: list[StreamEvent] = field(default_factory=list)
    done: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Background:
    def __init__(
        self,
        settings: Settings,
        repo: ResponseRepository,
        preparer: Preparer,
        runner: Runner,
        owner: str,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._preparer = preparer
        self._runner = runner
        self._owner = owner
        self._runs: dict[str, BackgroundRun] = {}

    def live(self, response_id: str) -> BackgroundRun | None:
        """The run of a background response in this process (for 60 s after it ends)."""
        return self._runs.get(response_id)

    async def start(self, p: Prepared) -> BackgroundRun:
        if not p.saved:
            await self._runner.save_running(p)
        run = BackgroundRun(cancel=CancelToken())
        self._runs[p.response.id] = run

        async def drive() -> None:
            try:
                events = self._runner.checkpointed(
                    p, self._runner.events(p, run.cancel, background=True)
                )
                async for event in events:
                    # Stored before anyone sees it: a stream resumed after a restart gets the
                    # same numbers, and never misses the end.
                    data = event.model_dump_json(exclude_unset=True, by_alias=True)
                    await asyncio.to_thread(
                        self._repo.add_event, p.response.id, event.sequence_number, event.type, data
                    )
                    run.events.append(event)
                    run.changed.set()
            except Exception as exc:  # a crash must not leave it "in progress" forever
                p.response.status = "failed"
                await self._runner.persist(p, p.response, True)
                raise exc
            finally:
                p.admission.release()
                run.done = True
                run.changed.set()
                # Followers replay from the store once the run is over.
                asyncio.get_running_loop().call_later(60, self._runs.pop, p.response.id, None)

        run.task = asyncio.create_task(drive())
        return run

    async def follow(
        self, run: BackgroundRun, starting_after: int | None
    ) -> AsyncIterator[StreamEvent]:
        index = 0
        while True:
            while index < len(run.events):
                event = run.events[index]
                index += 1
                if starting_after is None or event.sequence_number > starting_after:
                    yield event
            if run.done:
                return
            run.changed.clear()
            if index < len(run.events):
                continue
            await run.changed.wait()

    # -- the queue of a --no-worker replica's background responses ---------------------------

    async def enqueue(self, p: Prepared) -> None:
        """A background response for a worker (this replica runs `--no-worker`): its row,
        queued with its request, which a worker takes (`serve_queue`). The limit on waiting
        ones holds across replicas: it is counted in the database."""
        waiting = await asyncio.to_thread(self._repo.waiting)
        if waiting >= self._settings.max_waiting_responses:
            p.admission.release()
            raise queue_full(
                "The background response queue", waiting, self._settings.max_waiting_responses
            )
        request = p.request.model_dump_json(exclude_unset=True, by_alias=True)
        await self._runner.save_running(p, request=request)
        p.admission.release()  # the worker that takes it is admitted by its own engine

    async def serve_queue(self) -> None:
        """Forever: take background responses that API replicas queued, while this process
        has room for them (`worker_responses`), and run them as if they were made here."""
        while True:
            taken = None
            try:
                running = sum(1 for run in self._runs.values() if not run.done)
                if running < self._settings.worker_responses:
                    taken = await asyncio.to_thread(
                        self._repo.claim, self._owner, self._settings.lease_seconds
                    )
                if taken is not None:
                    await self._start_taken(*taken)
            except Exception:
                log.exception("taking a queued background response failed")
            if taken is None:
                await asyncio.sleep(FOLLOW_POLL_SECONDS)

    async def _start_taken(self, project_id: str, response_id: str, request: str) -> None:
        stored = await asyncio.to_thread(self._repo.get, project_id, response_id)
        if stored is None:  # deleted (or expired) meanwhile
            return
        try:
            p = await self._preparer.prepare(
                project_id, CreateResponse.model_validate_json(request)
            )
        except RateLimited:  # no room in this process's engine now: back in the queue
            await asyncio.to_thread(self._repo.unclaim, response_id, self._owner, request)
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
            return
        except Exception as exc:  # what changed since it was queued (a deleted thread...)
            message = exc.message if isinstance(exc, KotaeError) else "The server failed."
            if not isinstance(exc, KotaeError):
                log.exception("preparing queued response %s failed", response_id)
            body = {**stored, "status": "failed"}
            body["error"] = {"code": "server_error", "message": message}
            await asyncio.to_thread(self._repo.fail, project_id, response_id, body)
            return
        # The same response the replica answered with: its id, time and input items (the
        # ones stored, with their ids, which a conversation appends).
        p.response.id, p.response.created_at = response_id, stored["created_at"]
        page = await asyncio.to_thread(
            lambda: self._repo.list_input_items(
                project_id, response_id, limit=10**6, order="asc", after=None, before=None
            )
        )
        if page is not None:
            p.new_items = page.items
        p.saved = True
        await self.start(p)

    # -- leases and stopping ------------------------------------------------------------------

    async def keep_leases(self) -> None:
        """Forever: renew the leases of what this process runs, and fail what a dead one left
        running (its lease lapsed). The first sweep runs at once. Between sweeps, while
        background responses run here, a cancel asked on another replica is looked for every
        half second."""
        every = max(0.2, self._settings.lease_seconds / 3)
        next_sweep = 0.0
        while True:
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + every
                    await asyncio.to_thread(
                        self._repo.renew, self._owner, self._settings.lease_seconds
                    )
                    failed = await asyncio.to_thread(self._repo.fail_lapsed, RESTARTED)
                    if failed:
                        log.warning("%d responses were cut off by a stopped server: failed", failed)
                if any(not run.done for run in self._runs.values()):
                    asked = await asyncio.to_thread(self._repo.cancel_requests, self._owner)
                    for response_id in asked:
                        run = self._runs.get(response_id)
                        if run is not None and not run.done:
                            run.cancel.cancel()  # cancelled on another replica
            except Exception:
                log.exception("renewing response leases failed")
            await asyncio.sleep(min(every, FOLLOW_POLL_SECONDS))

    async def shutdown(self) -> None:
        for run in list(self._runs.values()):
            run.cancel.cancel()
        tasks = [r.task for r in self._runs.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=30)
