"""Every HTTP request: an id (`x-request-id`: the client's own when it sent a sane one, as a
proxy's), its time and status in the metrics, and one log line that says why it failed."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kotae.errors import queue_full_engine
from kotae.ops.logs import request_id
from kotae.ops.metrics import public_name

log = logging.getLogger("kotae.requests")
SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_ERROR_BYTES = 65536


def _error(body: bytes) -> dict[str, Any]:
    try:
        found = json.loads(body).get("error") if body else None
    except (ValueError, AttributeError):
        return {}
    return found if isinstance(found, dict) else {}


class Observe:
    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if SANE_ID.match(given) else "req_" + secrets.token_hex(12)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        body = bytearray()  # an error's envelope, for the log line (errors are small)

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers.append("x-request-id", rid)
                # A metered route's rate-limit state, on success and 429 alike.
                for name, value in (scope.get("state") or {}).get("ratelimit", {}).items():
                    if name not in headers:
                        headers.append(name, value)
            elif status >= 400 and len(body) < MAX_ERROR_BYTES:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            self._record(scope, status, time.perf_counter() - started, _error(bytes(body)))
            request_id.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float, error: dict[str, Any]) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "")
        container = getattr(getattr(scope.get("app"), "state", None), "container", None)
        if container is not None:
            container.metrics.requests.labels(route, method, str(status)).inc()
            container.metrics.latency.labels(route, method).observe(seconds)
        engine = queue_full_engine(str(error.get("message", ""))) if status == 429 else None
        if engine is not None and container is not None:
            container.metrics.queue_full.labels(public_name(engine)).inc()
        if not self.access_log and status < 400:
            return
        extra: dict[str, Any] = {
            "method": method,
            "path": scope.get("path", ""),
            "status": status,
            "ms": round(seconds * 1000, 1),
        }
        text = f"{method} {scope.get('path', '')} {status} {extra['ms']}ms"
        if status >= 400:
            extra.update(
                error_type=error.get("type"), error_code=error.get("code"), param=error.get("param")
            )
            text += f" {error.get('type') or 'error'}: {error.get('message') or '(no message)'}"
            if error.get("param"):
                text += f" (param {error['param']})"
        log.log(logging.ERROR if status >= 500 else logging.INFO, text, extra=extra)
