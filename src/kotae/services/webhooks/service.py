"""Webhook endpoints of a project and the delivery of its events: each event a signed POST,
sent at least once from a worker, retried with exponential backoff for up to 72 hours, every
attempt through the SSRF guard (internal receivers need `webhook_allow_hosts`)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from kotae.errors import InvalidRequest, NotFound
from kotae.ids import new_id
from kotae.net.guard import FetchGuard, FetchRefused
from kotae.services.webhooks import signing
from kotae.services.webhooks.store import WebhookStore

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "batch.completed",
    "batch.failed",
    "batch.expired",
    "batch.cancelled",
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
    "fine_tuning.job.succeeded",
    "fine_tuning.job.failed",
    "fine_tuning.job.cancelled",
)
GIVE_UP_SECONDS = 72 * 3600
FIRST_RETRY_SECONDS = 5
LONGEST_WAIT_SECONDS = 3600
SEND_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.5
AT_ONCE = 8


def retry_delay(attempts: int) -> int:
    """Seconds before the next try after `attempts` failed ones: 5, 10, 20, ... up to an hour."""
    return int(min(FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1), LONGEST_WAIT_SECONDS))


def endpoint_object(row: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    shown = {
        "id": row["id"],
        "object": "webhook_endpoint",
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "name": row["name"],
        "url": row["url"],
        "event_types": list(row["event_types"]),
        "signing_secret_hint": signing.hint(row["secret"]),
    }
    if secret is not None:
        shown["signing_secret"] = secret
    return shown


def event_body(event_type: str, object_id: str) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "object": "event",
        "created_at": int(time.time()),
        "type": event_type,
        "data": {"id": object_id},
    }


class WebhooksService:
    def __init__(self, store: WebhookStore, guard: FetchGuard, lease_seconds: int) -> None:
        self._store = store
        self._guard = guard
        self._lease = lease_seconds
        self.owner = secrets.token_hex(8)

    # -- endpoints ---------------------------------------------------------------------------

    def create(
        self, project_id: str, name: str, url: str, event_types: list[str]
    ) -> dict[str, Any]:
        _check_url(url)
        _check_types(event_types)
        secret = signing.new_secret()
        row = {
            "id": new_id("whep"),
            "project_id": project_id,
            "name": name,
            "url": url,
            "event_types": list(dict.fromkeys(event_types)),
            "secret": secret,
            "created_at": int(time.time()),
            "updated_at": None,
        }
        self._store.add_endpoint(row)
        return endpoint_object(row, secret)

    def endpoint(self, project_id: str, endpoint_id: str) -> dict[str, Any]:
        row = self._store.endpoint(project_id, endpoint_id)
        if row is None:
            raise NotFound(
                f"Webhook endpoint '{endpoint_id}' not found.", param="webhook_endpoint_id"
            )
        return row

    def listing(self, project_id: str) -> list[dict[str, Any]]:
        return [endpoint_object(r) for r in self._store.endpoints(project_id)]

    def update(
        self,
        project_id: str,
        endpoint_id: str,
        *,
        name: str | None,
        url: str | None,
        event_types: list[str] | None,
    ) -> dict[str, Any]:
        row = self.endpoint(project_id, endpoint_id)
        values: dict[str, Any] = {}
        if name is not None and name != row["name"]:
            values["name"] = name
        if url is not None and url != row["url"]:
            _check_url(url)
            values["url"] = url
        if event_types is not None and list(event_types) != list(row["event_types"]):
            _check_types(event_types)
            values["event_types"] = list(dict.fromkeys(event_types))
        if values:
            values["updated_at"] = int(time.time())
            self._store.update_endpoint(endpoint_id, values)
            row.update(values)
        return endpoint_object(row)

    def delete(self, project_id: str, endpoint_id: str) -> None:
        self.endpoint(project_id, endpoint_id)
        self._store.delete_endpoint(endpoint_id)

    def rotate_secret(self, project_id: str, endpoint_id: str, keep_old: bool) -> dict[str, Any]:
        row = self.endpoint(project_id, endpoint_id)
        secret = signing.new_secret()
        values: dict[str, Any] = {
            "secret": secret,
            "old_secret": row["secret"] if keep_old else None,
            "old_secret_until": int(time.time()) + 86400 if keep_old else None,
            "updated_at": int(time.time()),
        }
        self._store.update_endpoint(endpoint_id, values)
        row.update(values)
        return endpoint_object(row, secret)

    async def test(self, project_id: str, endpoint_id: str, event_type: str) -> dict[str, Any]:
        """Sends one sample event now (not queued, not retried) and says what came back."""
        row = await asyncio.to_thread(self.endpoint, project_id, endpoint_id)
        _check_types([event_type])
        sample = f"{event_type.split('.')[0]}_test_{secrets.token_hex(6)}"
        status, error = await self._send(row, event_body(event_type, sample))
        if status is None:
            raise InvalidRequest(
                f"The endpoint could not be reached: {error}", param="webhook_endpoint_id"
            )
        return {
            "object": "webhook_endpoint.test",
            "webhook_endpoint_id": endpoint_id,
            "event_type": event_type,
            "status_code": status,
            "success": True,
        }

    def deliveries(self, project_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The project's delivery log, newest first (the console shows it)."""
        return [
            {
                "id": d["id"],
                "object": "webhook_delivery",
                "webhook_endpoint_id": d["endpoint_id"],
                "event": d["event"],
                "status": d["status"],
                "attempts": d["attempts"],
                "next_attempt_at": d["next_attempt_at"] if d["status"] == "pending" else None,
                "last_status_code": d["last_status_code"],
                "last_error": d["last_error"],
                "created_at": d["created_at"],
                "delivered_at": d["delivered_at"],
            }
            for d in self._store.deliveries(project_id, limit)
        ]

    # -- events ------------------------------------------------------------------------------

    def emit(self, project_id: str, event_type: str, object_id: str) -> int:
        """Owes `event_type` about `object_id` to each of the project's endpoints that
        listens for it. Returns how many deliveries that makes."""
        event = event_body(event_type, object_id)
        now = int(time.time())
        rows = [
            {
                "id": new_id("whd"),
                "endpoint_id": endpoint["id"],
                "project_id": project_id,
                "event": event,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint in self._store.endpoints(project_id)
            if event_type in endpoint["event_types"]
        ]
        self._store.add_deliveries(rows)
        return len(rows)

    async def emit_soon(self, project_id: str, event_type: str, object_id: str) -> None:
        try:
            await asyncio.to_thread(self.emit, project_id, event_type, object_id)
        except Exception:
            log.exception("recording the %s event of %s failed", event_type, object_id)

    async def serve_deliveries(self) -> None:
        """Forever (in a worker, or plain `kotae serve`): send what is due."""
        while True:
            sent = 0
            try:
                due = await asyncio.to_thread(
                    self._store.claim_due, self.owner, self._lease, AT_ONCE
                )
                await asyncio.gather(*(self._deliver(row) for row in due))
                sent = len(due)
            except Exception:
                log.exception("delivering webhooks failed")
            if not sent:
                await asyncio.sleep(POLL_SECONDS)

    async def _deliver(self, delivery: dict[str, Any]) -> None:
        endpoint = await asyncio.to_thread(self._store.endpoint_by_id, delivery["endpoint_id"])
        attempts = delivery["attempts"] + 1
        if endpoint is None:
            await asyncio.to_thread(
                self._store.record,
                delivery["pk"],
                {"status": "failed", "attempts": attempts, "last_error": "The endpoint is gone."},
            )
            return
        status, error = await self._send(endpoint, delivery["event"])
        now = int(time.time())
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": status}
        if status is not None and 200 <= status < 300:
            values.update(status="delivered", delivered_at=now, last_error=None)
        else:
            values["last_error"] = error or f"The endpoint answered {status}."
            wait = retry_delay(attempts)
            if now + wait > delivery["created_at"] + GIVE_UP_SECONDS:
                values["status"] = "failed"
            else:
                values["next_attempt_at"] = now + wait
        await asyncio.to_thread(self._store.record, delivery["pk"], values)

    async def _send(
        self, endpoint: dict[str, Any], event: dict[str, Any]
    ) -> tuple[int | None, str]:
        """(the receiver's status, or None when it was not reached; why)."""
        body = json.dumps(event, separators=(",", ":")).encode()
        in_use = [endpoint["secret"]]
        if endpoint.get("old_secret") and (endpoint.get("old_secret_until") or 0) > time.time():
            in_use.append(endpoint["old_secret"])
        headers = signing.headers(in_use, event["id"], int(time.time()), body)
        try:
            await asyncio.to_thread(self._guard.check, endpoint["url"])
            async with httpx.AsyncClient(
                timeout=SEND_TIMEOUT_SECONDS, follow_redirects=False
            ) as client:
                answer = await client.post(endpoint["url"], content=body, headers=headers)
            return answer.status_code, ""
        except FetchRefused as exc:
            return None, exc.message
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("url must be an http or https URL.", param="url")


def _check_types(event_types: list[str]) -> None:
    if not event_types:
        raise InvalidRequest("event_types needs at least one event type.", param="event_types")
    for i, kind in enumerate(event_types):
        if kind not in EVENT_TYPES:
            raise InvalidRequest(
                f"Event type '{kind}' is not sent by this server. It sends: "
                f"{', '.join(EVENT_TYPES)}.",
                param=f"event_types[{i}]",
            )
