"""Batches: created from an input file, validated, run line by line by workers (one line at
a time, and only while no online request waits for the engine), then finalized into output
and error files. Every step is leased, so a worker killed at any point leaves the rest to
another, and a line that finished is never run again."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import time
from typing import Any

from kotae.config import Settings
from kotae.errors import InvalidRequest, KotaeError, NotFound
from kotae.ids import new_id
from kotae.services.batches.lines import ENDPOINTS, LineRunner
from kotae.services.batches.store import BatchStore
from kotae.services.batches.validate import MAX_BYTES, read_lines
from kotae.services.files import FilesService
from kotae.services.models import ModelRegistry
from kotae.services.webhooks.service import WebhooksService

log = logging.getLogger(__name__)

WINDOW_SECONDS = 24 * 3600
POLL_SECONDS = 0.2
YIELD_SECONDS = 5.0  # the longest a line waits for online requests to leave the engine
EMBEDDING_ENDPOINT = "/v1/embeddings"
END_EVENTS = {
    "completed": "batch.completed",
    "failed": "batch.failed",
    "cancelled": "batch.cancelled",
    "expired": "batch.expired",
}
NOT_RUN = {
    "cancelled": ("batch_cancelled", "This request was not run: the batch was cancelled."),
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
}


class BatchesService:
    def __init__(
        self,
        settings: Settings,
        store: BatchStore,
        files: FilesService,
        registry: ModelRegistry,
        embedding_model: Any,
        webhooks: WebhooksService | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._files = files
        self._registry = registry
        self._embedding_model = embedding_model  # (name) -> bool: an embeddings model here
        self.webhooks = webhooks
        self.runner: LineRunner | None = None  # set by the container once services exist
        self.owner = secrets.token_hex(8)
        self._endpoints: dict[str, tuple[str, dict[str, Any]]] = {}

    # -- the API -----------------------------------------------------------------------------

    def create(
        self,
        project_id: str,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, str] | None,
        output_expires_seconds: int | None,
    ) -> dict[str, Any]:
        if endpoint not in ENDPOINTS:
            raise InvalidRequest(
                f"Batches here run {', '.join(ENDPOINTS)}; not '{endpoint}'.", param="endpoint"
            )
        if completion_window != "24h":
            raise InvalidRequest("completion_window must be '24h'.", param="completion_window")
        source = self._files.find_row(project_id, input_file_id)
        if source is None:
            raise NotFound(f"No such File object: {input_file_id}", param="input_file_id")
        if source["purpose"] != "batch":
            raise InvalidRequest(
                f"The file {input_file_id} has purpose '{source['purpose']}'; a batch's input "
                "file needs purpose 'batch'.",
                param="input_file_id",
            )
        if source["bytes"] > MAX_BYTES:
            raise InvalidRequest(
                "A batch's input file may be at most 200 MB.", param="input_file_id"
            )
        now = int(time.time())
        body: dict[str, Any] = {
            "id": new_id("batch"),
            "object": "batch",
            "endpoint": endpoint,
            "model": None,
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": completion_window,
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + WINDOW_SECONDS,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
            "output_expires_after": output_expires_seconds,
        }
        self._store.insert(project_id, body)
        return _shown(body)

    def retrieve(self, project_id: str, batch_id: str) -> dict[str, Any]:
        row = self._store.get(project_id, batch_id)
        if row is None:
            raise NotFound(f"No batch found with id '{batch_id}'.", param="batch_id")
        return self._live(dict(row["body"]))

    def listing(self, project_id: str) -> list[dict[str, Any]]:
        return [self._live(b) for b in self._store.listing(project_id)]

    def cancel(self, project_id: str, batch_id: str) -> dict[str, Any]:
        self.retrieve(project_id, batch_id)
        now = int(time.time())
        changed = self._store.change(
            batch_id,
            {"status": "cancelling", "cancelling_at": now},
            only_from=("validating", "in_progress"),
        )
        if changed is None:
            body = self.retrieve(project_id, batch_id)
            if body["status"] in ("cancelling", "cancelled"):
                return body
            raise InvalidRequest(
                f"A batch that is {body['status']} cannot be cancelled.", param="batch_id"
            )
        return self._live(changed)

    def _live(self, body: dict[str, Any]) -> dict[str, Any]:
        """The batch with its request counts as of now while lines run."""
        if body["status"] in ("in_progress", "cancelling", "finalizing"):
            body["request_counts"] = _request_counts(self._store.counts(body["id"]))
        return _shown(body)

    # -- the work ----------------------------------------------------------------------------

    async def serve_queue(self) -> None:
        """Forever (in a worker, or plain `kotae serve`): validate new batches, stop the
        cancelled and overdue ones, run lines, and finish batches whose lines have ended."""
        keeper = asyncio.create_task(self._keep_leases())
        try:
            while True:
                worked = False
                for step in (self._validate_one, self._sweep, self._finish_one, self._run_one):
                    try:
                        worked = await step() or worked
                    except Exception:
                        log.exception("batch work (%s) failed", step.__name__)
                if not worked:
                    await asyncio.sleep(POLL_SECONDS)
        finally:
            keeper.cancel()

    async def _keep_leases(self) -> None:
        lease = self._settings.lease_seconds
        while True:
            await asyncio.sleep(max(0.2, lease / 3))
            try:
                await asyncio.to_thread(self._store.renew, self.owner, lease)
            except Exception:
                log.exception("renewing batch leases failed")

    async def _validate_one(self) -> bool:
        lease = self._settings.lease_seconds
        taken = await asyncio.to_thread(self._store.claim, self.owner, lease, "validating")
        if taken is None:
            return False
        body, project_id = taken["body"], taken["project_id"]
        try:
            lines, errors, model = await asyncio.to_thread(self._read, project_id, body)
        except KotaeError as exc:
            lines, errors, model = [], [{"code": "invalid_file", "message": exc.message}], None
        now = int(time.time())
        if errors:
            body.update(
                status="failed",
                failed_at=now,
                errors={"object": "list", "data": [_batch_error(e) for e in errors]},
            )
            await asyncio.to_thread(self._store.change, body["id"], body, only_from=("validating",))
            await asyncio.to_thread(self._store.release, body["id"], self.owner)
            await self._announce(project_id, body)
            return True
        body.update(
            status="in_progress",
            in_progress_at=now,
            model=model,
            request_counts={"total": len(lines), "completed": 0, "failed": 0},
        )
        if not await asyncio.to_thread(self._store.add_lines, body["id"], lines, body):
            await asyncio.to_thread(self._store.release, body["id"], self.owner)  # cancelled
        return True

    def _read(
        self, project_id: str, body: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
        source = self._files.find_row(project_id, body["input_file_id"])
        if source is None:
            raise InvalidRequest("The input file was deleted before the batch started.")
        endpoint = body["endpoint"]

        def model_ok(name: str) -> str | None:
            if endpoint == EMBEDDING_ENDPOINT:
                return (
                    None if self._embedding_model(name) else f"The model '{name}' does not exist."
                )
            try:
                self._registry.resolve(name, project_id)
            except KotaeError as exc:
                return exc.message
            return None

        return read_lines(self._files.content(source), endpoint, model_ok)

    async def _sweep(self) -> bool:
        """Cancelled batches stop their queued lines; overdue ones expire theirs."""
        worked = False
        for row in await asyncio.to_thread(self._store.overdue, int(time.time())):
            if await asyncio.to_thread(self._store.stop_queued, row, "expired"):
                worked = True
        cancelling = await asyncio.to_thread(self._store.claim, self.owner, 0, "cancelling")
        if cancelling is not None:
            await asyncio.to_thread(self._store.stop_queued, cancelling["id"], "cancelled")
            await asyncio.to_thread(self._store.release, cancelling["id"], self.owner)
        return worked

    async def _run_one(self) -> bool:
        if self.runner is None:
            return False
        await self._yield_to_online()
        lease = self._settings.lease_seconds
        line = await asyncio.to_thread(self._store.claim_line, self.owner, lease)
        if line is None:
            return False
        endpoint = await asyncio.to_thread(self._endpoint_of, line["batch_id"])
        status, answer = await self.runner.run(line["project_id"], endpoint, line["request"])
        result = {
            "status_code": status,
            "request_id": new_id("req"),
            "body": answer,
            "failed": status >= 400,
        }
        await asyncio.to_thread(self._store.finish_line, line["pk"], self.owner, result)
        return True

    def _endpoint_of(self, batch_id: str) -> str:
        row = self._store.get(None, batch_id)
        return str(row["body"]["endpoint"]) if row is not None else ""

    async def _yield_to_online(self) -> None:
        """Online requests first: a line waits (a while) until no request holds the engine."""
        deadline = time.monotonic() + YIELD_SECONDS
        while self._registry.busy() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _finish_one(self) -> bool:
        lease = self._settings.lease_seconds
        taken = await asyncio.to_thread(self._store.ready_to_finish, self.owner, lease)
        if taken is None:
            return False
        body, project_id = taken["body"], taken["project_id"]
        now = int(time.time())
        if body["status"] != "finalizing":
            body.update(status="finalizing", finalizing_at=now)
            await asyncio.to_thread(self._store.change, body["id"], body)
        lines = await asyncio.to_thread(self._store.lines, body["id"])
        output, errors = _result_files(body["id"], lines)
        expires = body.get("output_expires_after")
        for kind, data in (("output", output), ("error", errors)):
            if data:
                made = await self._files.create(
                    project_id,
                    io.BytesIO(data),
                    f"{body['id']}_{kind}.jsonl",
                    "batch_output",
                    expires,
                    "application/jsonl",
                )
                body[f"{kind}_file_id"] = made.id
        counts = _request_counts(await asyncio.to_thread(self._store.counts, body["id"]))
        if body.get("cancelling_at"):
            end = "cancelled"
        elif any(line["status"] == "expired" for line in lines):
            end = "expired"
        else:
            end = "completed"
        body.update({"status": end, f"{end}_at": int(time.time()), "request_counts": counts})
        await asyncio.to_thread(self._store.change, body["id"], body)
        await asyncio.to_thread(self._store.release, body["id"], self.owner)
        await self._announce(project_id, body)
        return True

    async def _announce(self, project_id: str, body: dict[str, Any]) -> None:
        event = END_EVENTS.get(body["status"])
        if event is not None and self.webhooks is not None:
            await self.webhooks.emit_soon(project_id, event, body["id"])


def _shown(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "output_expires_after"}


def _request_counts(counts: dict[str, int]) -> dict[str, int]:
    total = sum(n for status, n in counts.items() if status != "failed")
    failed = counts.get("failed", 0)
    ended_unrun = counts.get("cancelled", 0) + counts.get("expired", 0)
    return {
        "total": total,
        "completed": counts.get("done", 0) - failed,
        "failed": failed + ended_unrun,
    }


def _batch_error(error: dict[str, Any]) -> dict[str, Any]:
    return {k: error.get(k) for k in ("code", "message", "param", "line")}


def _result_files(batch_id: str, lines: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """The output file (2xx answers) and the error file (the rest), in OpenAI's shape."""
    output: list[str] = []
    errors: list[str] = []
    for line in lines:
        record: dict[str, Any] = {
            "id": f"batch_req_{secrets.token_hex(12)}",
            "custom_id": line["custom_id"],
        }
        result = line["result"]
        if line["status"] == "done" and result is not None:
            record["response"] = {
                "status_code": result["status_code"],
                "request_id": result["request_id"],
                "body": result["body"],
            }
            record["error"] = None
            (errors if result.get("failed") else output).append(json.dumps(record))
            continue
        code, message = NOT_RUN.get(
            line["status"], ("batch_cancelled", "This request was not run.")
        )
        record["response"] = None
        record["error"] = {"code": code, "message": message}
        errors.append(json.dumps(record))
    return (
        ("\n".join(output) + "\n").encode() if output else b"",
        ("\n".join(errors) + "\n").encode() if errors else b"",
    )
