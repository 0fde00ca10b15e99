"""Containers: their rows and files (kept in the blob store, so they outlive a restart), and
the live sandboxed process of each, started on first use and fed the container's files."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, cast

from kotae.config import Settings
from kotae.errors import InvalidRequest, NotFound
from kotae.ids import new_id
from kotae.providers.blobs.base import BlobStore
from kotae.providers.sandbox.base import Execution, Limits, Sandbox, SandboxError, Session
from kotae.services.containers.runs import RunQueue
from kotae.services.containers.store import ContainerStore
from kotae.services.files import FilesService

log = logging.getLogger(__name__)

MEMORY_LIMITS = {"1g": 1 << 30, "4g": 4 << 30, "16g": 16 << 30, "64g": 64 << 30}
MOUNT = PurePosixPath("/mnt/data")
MAX_FILES = 1000  # container files one call may leave behind
NOT_CONFIGURED = "code_interpreter_not_configured"
RUN_POLL_SECONDS = 0.1  # how often a replica reads its queued run, and an idle worker the queue
RUNS_AT_ONCE = 4  # containers one worker runs code in at the same time


@dataclass
class Ran:
    """A call's execution and the container files it made or changed."""

    execution: Execution
    files: list[dict[str, Any]]


def container_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "container",
        "created_at": row["created_at"],
        "status": row["status"],
        "expires_after": {"anchor": "last_active_at", "minutes": row["expires_minutes"]},
        "last_active_at": row["last_active_at"],
        "memory_limit": row["memory_limit"],
        "name": row["name"],
    }


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "container.file",
        "bytes": row["bytes"],
        "container_id": row["container_id"],
        "created_at": row["created_at"],
        "path": row["path"],
        "source": row["source"],
    }


class ContainersService:
    def __init__(
        self,
        settings: Settings,
        store: ContainerStore,
        blobs: BlobStore,
        files: FilesService,
        sandbox: Sandbox | None,
        runs: RunQueue | None = None,
    ) -> None:
        self._settings = settings
        self._runs = runs
        self.owner = secrets.token_hex(8)  # this process, as the host of live containers
        self._store = store
        self._blobs = blobs
        self._files = files
        self.sandbox = sandbox
        self._sessions: dict[str, Session] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Per live container: what its files were after the last call (size, mtime).
        self._seen: dict[str, dict[str, tuple[int, int]]] = {}

    # -- availability ----------------------------------------------------------------------

    def unavailable(self) -> str | None:
        """Why this server cannot run code (what to install), or None."""
        if self.sandbox is None:
            return "The code_interpreter tool is turned off on this server."
        if not self._settings.run_worker and self._runs is not None:
            return None  # an API replica: the workers run the code, in their sandboxes
        return self.sandbox.missing()

    def require(self) -> Sandbox:
        why = self.unavailable()
        if why is not None or self.sandbox is None:
            raise InvalidRequest(why or "", code=NOT_CONFIGURED)
        return self.sandbox

    # -- containers ------------------------------------------------------------------------

    async def create(
        self,
        project_id: str,
        name: str,
        *,
        minutes: int | None = None,
        file_ids: list[str] | None = None,
        memory_limit: str | None = None,
        param: str = "",
    ) -> dict[str, Any]:
        self.require()
        memory_limit = memory_limit or "1g"
        if memory_limit not in MEMORY_LIMITS:
            raise InvalidRequest(
                f"memory_limit must be one of {', '.join(MEMORY_LIMITS)}.",
                param=f"{param}memory_limit",
            )
        minutes = minutes or self._settings.container_idle_minutes
        if not 1 <= minutes <= 20 * 24 * 60:
            raise InvalidRequest(
                "expires_after.minutes must be between 1 and 28800.",
                param=f"{param}expires_after.minutes",
            )
        container_id = new_id("cntr")
        now = int(time.time())
        copies: list[dict[str, Any]] = []
        try:
            for i, file_id in enumerate(file_ids or []):
                copies.append(
                    await self._copy_file(
                        project_id, container_id, file_id, f"{param}file_ids[{i}]"
                    )
                )
            row = {
                "id": container_id,
                "project_id": project_id,
                "name": name,
                "created_at": now,
                "last_active_at": now,
                "expires_minutes": minutes,
                "memory_limit": memory_limit,
                "status": "running",
            }
            await asyncio.to_thread(self._store.insert, row, copies)
        except BaseException:
            for copy in copies:  # no orphan blobs
                await asyncio.to_thread(self._blobs.delete, copy["blob_key"])
            raise
        return container_object(row)

    async def _copy_file(
        self, project_id: str, container_id: str, file_id: str, param: str
    ) -> dict[str, Any]:
        source = self._files.find_row(project_id, file_id)
        if source is None:
            raise NotFound(f"No such File object: {file_id}", param=param)
        name = _filename(source["filename"], param)
        stream = cast(BinaryIO, _Chunks(self._files.content(source)))
        return await self._put(container_id, project_id, stream, name, "user")

    async def _put(
        self, container_id: str, project_id: str, source: BinaryIO, name: str, origin: str
    ) -> dict[str, Any]:
        file_id = new_id("cfile")
        key = f"{container_id}/{file_id}"
        size = await asyncio.to_thread(self._blobs.put, key, source, self._settings.max_file_bytes)
        return {
            "id": file_id,
            "container_id": container_id,
            "project_id": project_id,
            "path": str(MOUNT / name),
            "bytes": size,
            "source": origin,
            "created_at": int(time.time()),
            "blob_key": key,
        }

    async def row(self, project_id: str, container_id: str) -> dict[str, Any]:
        """The container's row; one past its expiry is expired now."""
        row = await asyncio.to_thread(self._store.get, project_id, container_id)
        if row is None:
            raise NotFound(f"Container with id '{container_id}' not found.", param="container_id")
        if row["status"] == "running" and _expired(row, int(time.time())):
            await self._expire(container_id)
            row["status"] = "expired"
        return row

    async def find(self, project_id: str, container_id: str) -> dict[str, Any] | None:
        try:
            return await self.row(project_id, container_id)
        except NotFound:
            return None

    def has_file(self, project_id: str, file_id: str) -> bool:
        """Whether the project has this file of /v1/files (one a container may copy)."""
        return self._files.find_row(project_id, file_id) is not None

    async def active(self, project_id: str, container_id: str, param: str = "") -> dict[str, Any]:
        """The container, refused (400) when it has expired."""
        row = await self.row(project_id, container_id)
        if row["status"] != "running":
            raise InvalidRequest(
                f"Container '{container_id}' has expired; its files are gone. Create a new "
                "container.",
                param=param or "container_id",
                code="container_expired",
            )
        return row

    async def retrieve(self, project_id: str, container_id: str) -> dict[str, Any]:
        return container_object(await self.row(project_id, container_id))

    async def listing(self, project_id: str, name: str | None, order: str) -> list[dict[str, Any]]:
        rows = await asyncio.to_thread(self._store.listing, project_id, name, order)
        return [container_object(r) for r in rows]

    async def delete(self, project_id: str, container_id: str) -> None:
        await self.row(project_id, container_id)
        async with self._lock(container_id):
            await self._stop(container_id)
            keys = await asyncio.to_thread(self._store.delete, container_id)
            await self._drop_blobs(keys)

    async def expire_idle(self) -> int:
        """Expires the containers idle past their `expires_after`, and stops this process's
        sandboxes of containers that are no longer running (expired or deleted elsewhere)."""
        idle = await asyncio.to_thread(self._store.idle, int(time.time()))
        for container_id in idle:
            await self._expire(container_id)
        live = list(self._sessions)
        if live:
            running = await asyncio.to_thread(self._store.running, live)
            for container_id in live:
                if container_id not in running:
                    async with self._lock(container_id):
                        await self._stop(container_id)
        return len(idle)

    async def _expire(self, container_id: str) -> None:
        async with self._lock(container_id):
            await self._stop(container_id)
            keys = await asyncio.to_thread(self._store.expire, container_id)
            await self._drop_blobs(keys)
        log.info("container %s expired", container_id)

    async def _drop_blobs(self, keys: list[str]) -> None:
        for key in keys:
            await asyncio.to_thread(self._blobs.delete, key)

    async def _stop(self, container_id: str) -> None:
        session = self._sessions.pop(container_id, None)
        if session is not None:
            await session.close()
            if self._runs is not None:
                await asyncio.to_thread(self._runs.release, container_id, self.owner)
        self._seen.pop(container_id, None)
        await asyncio.to_thread(shutil.rmtree, self._settings.containers_dir / container_id, True)

    def purge_runs(self) -> int:
        """Ended code runs, long after their replica read them."""
        return self._runs.purge(3600) if self._runs is not None else 0

    async def close(self) -> None:
        for container_id in list(self._sessions):
            await self._stop(container_id)

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self._locks.setdefault(container_id, asyncio.Lock())

    # -- files -----------------------------------------------------------------------------

    async def add_file(
        self,
        project_id: str,
        container_id: str,
        *,
        upload: tuple[BinaryIO, str] | None = None,
        file_id: str | None = None,
    ) -> dict[str, Any]:
        await self.active(project_id, container_id)
        if (upload is None) == (file_id is None):
            raise InvalidRequest("Send either a file or a file_id.", param="file")
        if upload is not None:
            stream, filename = upload
            row = await self._put(
                container_id, project_id, stream, _filename(filename, "file"), "user"
            )
        else:
            assert file_id is not None
            row = await self._copy_file(project_id, container_id, file_id, "file_id")
        async with self._lock(container_id):
            try:
                old = [
                    f
                    for f in await asyncio.to_thread(self._store.files, container_id)
                    if f["path"] == row["path"]
                ]
                await asyncio.to_thread(self._store.add_file, row)
            except BaseException:
                await asyncio.to_thread(self._blobs.delete, row["blob_key"])
                raise
            for replaced in old:  # one file per path, as on a disk
                await asyncio.to_thread(self._store.delete_file, replaced["id"])
                await asyncio.to_thread(self._blobs.delete, replaced["blob_key"])
            if container_id in self._sessions:
                await self._write_local(container_id, row)
            await asyncio.to_thread(self._store.touch, container_id)
        return file_object(row)

    async def list_files(
        self, project_id: str, container_id: str, order: str
    ) -> list[dict[str, Any]]:
        await self.row(project_id, container_id)
        rows = await asyncio.to_thread(self._store.files, container_id, order)
        return [file_object(r) for r in rows]

    async def file_row(self, project_id: str, container_id: str, file_id: str) -> dict[str, Any]:
        await self.row(project_id, container_id)
        row = await asyncio.to_thread(self._store.file, container_id, file_id)
        if row is None:
            raise NotFound(f"Container file with id '{file_id}' not found.", param="file_id")
        return row

    async def retrieve_file(
        self, project_id: str, container_id: str, file_id: str
    ) -> dict[str, Any]:
        return file_object(await self.file_row(project_id, container_id, file_id))

    def content(self, row: dict[str, Any]) -> Iterator[bytes]:
        return self._blobs.read(row["blob_key"])

    async def delete_file(self, project_id: str, container_id: str, file_id: str) -> None:
        row = await self.file_row(project_id, container_id, file_id)
        async with self._lock(container_id):
            await asyncio.to_thread(self._store.delete_file, file_id)
            await asyncio.to_thread(self._blobs.delete, row["blob_key"])
            local = self._local(container_id, row["path"])
            if local is not None:
                with contextlib.suppress(OSError):
                    local.unlink()
                self._seen.get(container_id, {}).pop(row["path"], None)

    # -- running code ----------------------------------------------------------------------

    async def run(self, project_id: str, container_id: str, code: str) -> Ran:
        """Runs `code` in the container's process, here, or (on an API replica, `serve
        --no-worker`) on the worker that hosts the container."""
        self.require()
        await self.active(project_id, container_id)
        if self._settings.run_worker or self._runs is None:
            return await self._run_here(project_id, container_id, code)
        return await self._run_on_worker(self._runs, project_id, container_id, code)

    async def _run_on_worker(
        self, runs: RunQueue, project_id: str, container_id: str, code: str
    ) -> Ran:
        run_id = new_id("crun")
        await asyncio.to_thread(runs.add, run_id, container_id, project_id, code)
        queued_until = time.monotonic() + self._settings.code_interpreter_call_seconds
        while True:
            status, outcome = await asyncio.to_thread(runs.outcome, run_id)
            if status == "done" and outcome is not None:
                return _ran_from(outcome)
            if status == "queued" and time.monotonic() > queued_until:
                await asyncio.to_thread(runs.cancel, run_id)
                return Ran(
                    Execution(
                        "No worker took the code in time: is `kotae worker` running?",
                        error="NoWorker",
                        ended=True,
                    ),
                    [],
                )
            await asyncio.sleep(RUN_POLL_SECONDS)

    async def serve_queue(self) -> None:
        """Forever (in a worker, or plain `kotae serve`): run the code API replicas queued
        for the containers this process hosts (or that nobody hosts), several containers
        at once, and keep the leases on them."""
        assert self._runs is not None
        runs = self._runs
        lease = self._settings.lease_seconds
        slots = asyncio.Semaphore(RUNS_AT_ONCE)
        keeper = asyncio.create_task(self._keep_hosts(runs, lease))
        busy: set[asyncio.Task[None]] = set()
        try:
            while True:
                taken = None
                await slots.acquire()
                try:
                    if self.sandbox is not None and self.sandbox.missing() is None:
                        taken = await asyncio.to_thread(runs.claim, self.owner, lease)
                except Exception:
                    log.exception("taking a queued code run failed")
                if taken is None:
                    slots.release()
                    await asyncio.sleep(RUN_POLL_SECONDS * 2)
                    continue
                task = asyncio.create_task(self._take(runs, *taken))
                busy.add(task)
                task.add_done_callback(busy.discard)
                task.add_done_callback(lambda _: slots.release())
        finally:
            keeper.cancel()
            for task in busy:
                task.cancel()

    async def _keep_hosts(self, runs: RunQueue, lease: int) -> None:
        while True:
            await asyncio.sleep(max(0.2, lease / 3))
            try:
                await asyncio.to_thread(runs.renew, self.owner, list(self._sessions), lease)
            except Exception:
                log.exception("renewing container leases failed")

    async def _take(
        self, runs: RunQueue, run_id: str, container_id: str, project_id: str, code: str
    ) -> None:
        try:
            ran = await self._run_here(project_id, container_id, code)
        except Exception as exc:
            log.exception("code run %s failed", run_id)
            ran = Ran(Execution(f"The run failed on its worker: {exc}", error="SandboxError"), [])
        outcome = {
            "execution": {
                "logs": ran.execution.logs,
                "error": ran.execution.error,
                "images": [base64.b64encode(i).decode() for i in ran.execution.images or []],
                "ended": ran.execution.ended,
            },
            "files": ran.files,
        }
        await asyncio.to_thread(runs.finish, run_id, self.owner, outcome)

    async def _run_here(self, project_id: str, container_id: str, code: str) -> Ran:
        """Runs `code` in the container's process (started, with its files, if it is not
        live), then keeps what the code wrote under /mnt/data as container files."""
        sandbox = self.require()
        row = await self.active(project_id, container_id)
        async with self._lock(container_id):
            await self._sync_down(container_id)
            session = self._sessions.get(container_id)
            if session is None or not session.alive:
                try:
                    session = await sandbox.start(
                        self._root(container_id), container_id, self._limits(row)
                    )
                except SandboxError as exc:
                    return Ran(Execution(str(exc), error="SandboxError", ended=True), [])
                self._sessions[container_id] = session
            execution = await session.run(code)
            if execution.ended or not session.alive:
                self._sessions.pop(container_id, None)
                await session.close()
            changed = await self._collect(project_id, container_id)
            await asyncio.to_thread(self._store.touch, container_id)
        return Ran(execution, changed)

    def _limits(self, row: dict[str, Any]) -> Limits:
        s = self._settings
        return Limits(
            memory_bytes=MEMORY_LIMITS.get(row["memory_limit"], 1 << 30),
            cpu_seconds=s.code_interpreter_cpu_seconds,
            wall_seconds=s.code_interpreter_call_seconds,
            processes=s.container_processes,
            disk_bytes=s.container_disk_mb << 20,
        )

    def _root(self, container_id: str) -> Path:
        return self._settings.containers_dir / container_id

    def _local(self, container_id: str, path: str) -> Path | None:
        relative = PurePosixPath(path).relative_to(MOUNT)
        if ".." in relative.parts:
            return None
        return self._root(container_id) / "data" / relative

    async def _sync_down(self, container_id: str) -> None:
        """The container's files on this machine's disk as the blob store has them: files
        added (or removed) through the API, on any replica, since the last call here."""
        base = self._settings.containers_dir
        base.mkdir(parents=True, exist_ok=True, mode=0o711)
        base.chmod(0o711)  # its users traverse it; none lists it
        rows = await asyncio.to_thread(self._store.files, container_id)
        seen = self._seen.setdefault(container_id, {})
        for row in rows:
            local = self._local(container_id, row["path"])
            state = seen.get(row["path"])
            if local is not None and (
                state is None or state[0] != row["bytes"] or not local.exists()
            ):
                await self._write_local(container_id, row)
        kept = {r["path"] for r in rows}
        for path in [p for p in seen if p not in kept]:
            seen.pop(path)
            local = self._local(container_id, path)
            if local is not None:
                with contextlib.suppress(OSError):
                    local.unlink()

    async def _write_local(self, container_id: str, row: dict[str, Any]) -> None:
        local = self._local(container_id, row["path"])
        if local is None:
            return
        local.parent.mkdir(parents=True, exist_ok=True)

        def write() -> None:
            with open(local, "wb") as out:
                for chunk in self._blobs.read(row["blob_key"]):
                    out.write(chunk)

        await asyncio.to_thread(write)
        if self.sandbox is not None:
            self.sandbox.adopt(self._root(container_id), container_id)
        info = local.stat()
        self._seen.setdefault(container_id, {})[row["path"]] = (info.st_size, info.st_mtime_ns)

    async def _collect(self, project_id: str, container_id: str) -> list[dict[str, Any]]:
        """Files the call made or changed become (or update) container files; files it
        removed are forgotten. Links are never followed: the code may point one anywhere."""
        data = self._root(container_id) / "data"
        seen = self._seen.setdefault(container_id, {})
        now = await asyncio.to_thread(_regular_files, data)
        rows = {r["path"]: r for r in await asyncio.to_thread(self._store.files, container_id)}
        changed: list[dict[str, Any]] = []
        for path, state in list(now.items())[:MAX_FILES]:
            if seen.get(path) == state:
                continue
            local = data / PurePosixPath(path).relative_to(MOUNT)
            try:
                with _open_nofollow(local) as source:
                    row = rows.get(path)
                    if row is None:
                        row = await self._put(
                            container_id,
                            project_id,
                            source,
                            path[len(str(MOUNT)) + 1 :],
                            "assistant",
                        )
                        await asyncio.to_thread(self._store.add_file, row)
                    else:
                        size = await asyncio.to_thread(
                            self._blobs.put,
                            row["blob_key"],
                            source,
                            self._settings.max_file_bytes,
                        )
                        await asyncio.to_thread(self._store.resize_file, row["id"], size)
                        row["bytes"] = size
            except OSError as exc:
                log.info("container %s: %s not kept: %s", container_id, path, exc)
                continue
            seen[path] = state
            changed.append(row)
        for path in [p for p in seen if p not in now]:
            seen.pop(path)
            gone = rows.get(path)
            if gone is not None:
                await asyncio.to_thread(self._store.delete_file, gone["id"])
                await asyncio.to_thread(self._blobs.delete, gone["blob_key"])
        return changed


class _Chunks:
    """A file-like reader over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def _ran_from(outcome: dict[str, Any]) -> Ran:
    """A worker's outcome, as the replica that waited reads it."""
    done = outcome["execution"]
    execution = Execution(
        logs=str(done["logs"]),
        error=done.get("error"),
        images=[base64.b64decode(i) for i in done.get("images") or []],
        ended=bool(done.get("ended")),
    )
    return Ran(execution, list(outcome.get("files") or []))


def _expired(row: dict[str, Any], now: int) -> bool:
    return bool(row["last_active_at"] + row["expires_minutes"] * 60 < now)


def _filename(name: str | None, param: str) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    if not base or base in (".", "..") or "\x00" in base or len(base.encode()) > 255:
        raise InvalidRequest("The file needs a plain file name.", param=param)
    return base


def _regular_files(data: Path) -> dict[str, tuple[int, int]]:
    """Regular files under `data` (links and devices left out), as /mnt/data paths."""
    found: dict[str, tuple[int, int]] = {}
    for base, dirs, names in os.walk(data):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(base, d))]
        for name in names:
            full = os.path.join(base, name)
            with contextlib.suppress(OSError):
                info = os.lstat(full)
                if stat.S_ISREG(info.st_mode):
                    relative = os.path.relpath(full, data)
                    found[str(MOUNT / relative)] = (info.st_size, info.st_mtime_ns)
    return found


def _open_nofollow(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    return os.fdopen(fd, "rb")
