"""Responses over WebSocket (`GET /v1/responses` upgraded), as OpenAI's spec and the openai
SDK's `client.responses.connect()` speak it.

Each `response.create` event is a `POST /v1/responses` with `stream` implied (and
`background` refused), run through the same service. Events carrying the same `stream_id`
form a lane: run one after another, while lanes run side by side; every event of a lane
echoes its `stream_id`. `response.steer` queues user input for a running response: when it
completes, a successor continues from it with that input (or, when it stopped for the
client's tool results, the input waits for the client's own continuation)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from kotae.api.bounded import load_bounded
from kotae.api.deps import authenticate, meter
from kotae.api.errors import ErrorResponse, error_body, validation_to_envelope
from kotae.container import Container
from kotae.errors import InvalidRequest, KotaeError
from kotae.ops.logs import request_id
from kotae.schemas.responses import CreateResponse

router = APIRouter(tags=["responses"])
log = logging.getLogger("kotae.requests")

MAX_LANES = 16  # lanes a connection may hold at once
MAX_QUEUED = 64  # response.create events waiting in one lane
MAX_STEERS = 16  # steering submissions pending for one response
ROUTE = "/v1/responses"
ENDINGS = ("response.completed", "response.incomplete", "response.failed")


@dataclass
class Steer:
    id: str
    previous_response_id: str
    input: Any


@dataclass
class Running:
    """A response this socket made: its lane, settings and steering queue."""

    lane: str | None
    request: dict[str, Any]
    active: bool = True
    steers: list[Steer] = field(default_factory=list)


class Socket:
    def __init__(self, ws: WebSocket, container: Container, project: str) -> None:
        self.ws = ws
        self.container = container
        self.project = project
        self.lanes: dict[str | None, asyncio.Queue[dict[str, Any]]] = {}
        self.tasks: dict[str | None, asyncio.Task[None]] = {}
        self.responses: dict[str, Running] = {}
        self.sequence = 0  # the socket's own events (errors, steering)
        self.send_lock = asyncio.Lock()
        self.last_active = time.monotonic()
        self.working = 0  # responses running on this socket

    # -- sending -------------------------------------------------------------------------------

    async def send(self, event: dict[str, Any], lane: str | None) -> None:
        if lane is not None:
            event["stream_id"] = lane
        self.last_active = time.monotonic()
        async with self.send_lock:
            await self.ws.send_text(json.dumps(event, ensure_ascii=False))

    async def send_error(self, exc: KotaeError | dict[str, Any], lane: str | None) -> None:
        body = error_body(exc) if isinstance(exc, KotaeError) else exc
        status = exc.status_code if isinstance(exc, KotaeError) else 400
        self.sequence += 1
        event = {"type": "error", "status": status, "sequence_number": self.sequence, **body}
        await self.send(event, lane)
        self.container.metrics.requests.labels(ROUTE, "WEBSOCKET", str(status)).inc()

    # -- receiving -----------------------------------------------------------------------------

    async def serve(self) -> None:
        settings = self.container.settings
        opened = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                left = settings.websocket_max_seconds - (now - opened)
                idle = settings.websocket_idle_seconds
                busy = self.working > 0 or any(not q.empty() for q in self.lanes.values())
                if not busy:  # idle counts only while nothing runs
                    left = min(left, idle - (now - self.last_active))
                if left <= 0:
                    await self.ws.close(1000, "connection lifetime or idle limit reached")
                    return
                try:
                    # While busy, looked at again at least every idle period: the work ends
                    # without a message arriving here.
                    wait = min(left, idle) if busy else left
                    message = await asyncio.wait_for(self.ws.receive(), timeout=wait)
                except TimeoutError:
                    continue  # the limits are looked at again
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("bytes") or (message.get("text") or "").encode()
                await self.handle(raw)
        except WebSocketDisconnect:
            return
        finally:
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def handle(self, raw: bytes) -> None:
        self.last_active = time.monotonic()
        if len(raw) > self.container.settings.max_request_bytes:
            limit = self.container.settings.max_request_bytes
            await self.send_error(
                InvalidRequest(
                    f"The message is {len(raw)} bytes; at most {limit} are accepted.",
                    code="request_too_large",
                ),
                None,
            )
            return
        try:
            event = await load_bounded(raw, ROUTE)
            if not isinstance(event, dict):
                raise InvalidRequest("An event is a JSON object.", param="type")
        except KotaeError as exc:
            await self.send_error(exc, None)
            return
        kind = event.get("type")
        if kind == "response.create":
            await self.enqueue(event)
        elif kind == "response.steer":
            await self.steer(event)
        else:
            await self.send_error(
                InvalidRequest(
                    f"Unknown event type '{kind}': expected response.create or response.steer.",
                    param="type",
                    code="invalid_event_type",
                ),
                None,
            )

    async def enqueue(self, event: dict[str, Any]) -> None:
        lane = event.get("stream_id")
        if lane is not None and not _lane_name_ok(lane):
            await self.send_error(
                InvalidRequest(
                    "stream_id must be 1 to 256 characters of A-Z, a-z, 0-9, '_', '.', '-'.",
                    param="stream_id",
                ),
                None,
            )
            return
        queue = self.lanes.get(lane)
        if queue is None:
            if len(self.lanes) >= MAX_LANES:
                await self.send_error(
                    InvalidRequest(
                        "This WebSocket connection has reached its stream limit.",
                        param="stream_id",
                        code="websocket_stream_limit_reached",
                    ),
                    lane,
                )
                return
            queue = self.lanes[lane] = asyncio.Queue(MAX_QUEUED)
            self.tasks[lane] = asyncio.create_task(self.run_lane(lane, queue))
        if queue.full():
            await self.send_error(
                InvalidRequest(
                    f"Lane has {MAX_QUEUED} requests waiting.", param="stream_id", code="lane_full"
                ),
                lane,
            )
            return
        queue.put_nowait(event)

    async def run_lane(self, lane: str | None, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            event = await queue.get()
            self.working += 1
            try:
                await self.create(event, lane)
            except KotaeError as exc:
                await self.send_error(exc, lane)
            except (WebSocketDisconnect, RuntimeError):
                return  # the socket went while sending
            except Exception:
                log.exception("a WebSocket response failed")
                await self.send_error(KotaeError("The server had an error."), lane)
            finally:
                self.working -= 1
                self.last_active = time.monotonic()

    # -- one response ----------------------------------------------------------------------

    async def create(self, event: dict[str, Any], lane: str | None) -> None:
        body = {k: v for k, v in event.items() if k not in ("type", "stream_id")}
        if body.pop("background", False):
            raise InvalidRequest("background is not supported over WebSocket.", param="background")
        if body.pop("generate", True) is False:
            raise InvalidRequest(
                "generate: false (warming a prompt without an answer) is not supported.",
                param="generate",
            )
        body.pop("background_options", None)
        body["stream"] = True  # implied over WebSocket
        parent = self.responses.get(str(body.get("previous_response_id")))
        steers = parent.steers if parent is not None and not parent.active else []
        if steers:  # queued steering goes before the client's own continuation
            given = body.get("input") or []
            given = [{"role": "user", "content": given}] if isinstance(given, str) else given
            body["input"] = [*[m for s in steers for m in _messages(s.input)], *given]
        try:
            req = CreateResponse.model_validate(body)
        except ValidationError as exc:
            await self.send_error(
                json.loads(bytes(validation_to_envelope(list(exc.errors())).body)), lane
            )
            return
        if parent is not None and steers:
            parent.steers = []
        await meter(self.container, self.project)
        await self.run(req, body, lane)

    async def run(self, req: CreateResponse, body: dict[str, Any], lane: str | None) -> None:
        service = self.container.responses
        prepared = await service.prepare(self.project, req)
        response_id = prepared.response.id
        running = self.responses[response_id] = Running(lane, body)
        status = "completed"
        try:
            async for event in service.stream(prepared):
                data = json.loads(event.model_dump_json(exclude_unset=True, by_alias=True))
                if data.get("type") in (
                    "response.completed",
                    "response.incomplete",
                    "response.failed",
                ):
                    status = data["response"].get("status", status)
                    output = data["response"].get("output") or []
                    running.active = False
                    await self.send(data, lane)
                    await self._after(response_id, running, status, output)
                    continue
                await self.send(data, lane)
        finally:
            running.active = False
            self.container.metrics.requests.labels(ROUTE, "WEBSOCKET", "200").inc()

    async def _after(
        self, response_id: str, running: Running, status: str, output: list[dict[str, Any]]
    ) -> None:
        """A finished response with steering queued: its successor, or a note that the
        input waits for the client's tool results."""
        if not running.steers:
            return
        stubs = [
            {"type": f"{item['type']}_output", "call_id": item["call_id"]}
            for item in output
            if item.get("type") in ("function_call", "custom_tool_call") and item.get("call_id")
        ]
        if stubs:
            for s in running.steers:
                self.sequence += 1
                await self.send(
                    {
                        "type": "response.steer.pending",
                        "sequence_number": self.sequence,
                        "reason": "waiting_for_required_input",
                        "required_input": stubs,
                        "steer": {"id": s.id, "previous_response_id": response_id},
                    },
                    running.lane,
                )
            return
        steers, running.steers = running.steers, []
        body = {
            k: v
            for k, v in running.request.items()
            if k not in ("input", "previous_response_id", "conversation", "stream")
        }
        body.update(
            {
                "input": [m for s in steers for m in _messages(s.input)],
                "previous_response_id": response_id,
                "stream": True,
            }
        )
        try:
            if status == "failed":
                raise InvalidRequest("The steered response failed.")
            await self.run(CreateResponse.model_validate(body), body, running.lane)
        except (KotaeError, ValidationError) as exc:
            message = exc.message if isinstance(exc, KotaeError) else str(exc)
            for s in steers:
                await self._steer_failed(s, "successor_creation_failed", message, running.lane)

    # -- steering ------------------------------------------------------------------------------

    async def steer(self, event: dict[str, Any]) -> None:
        target = event.get("previous_response_id")
        given = event.get("input")
        running = self.responses.get(str(target))
        steer = Steer("steer_" + secrets.token_hex(12), str(target), given)
        lane = running.lane if running else None
        unknown = set(event) - {"type", "previous_response_id", "input"}
        if unknown or not isinstance(target, str) or not _steerable(given):
            await self._steer_failed(
                steer,
                "invalid_input",
                "Steering takes previous_response_id and input: text, or user messages.",
                lane,
                with_id=False,
            )
            return
        if running is None:
            await self._steer_failed(
                steer,
                "response_not_found",
                "No such response on this connection.",
                lane,
                with_id=False,
            )
            return
        if not running.active:
            await self._steer_failed(
                steer,
                "response_already_completed",
                "The response has completed.",
                lane,
                with_id=False,
            )
            return
        if len(running.steers) >= MAX_STEERS:
            await self._steer_failed(
                steer,
                "too_many_pending_steers",
                "Too much steering is pending.",
                lane,
                with_id=False,
            )
            return
        running.steers.append(steer)
        self.sequence += 1
        await self.send(
            {
                "type": "response.steer.accepted",
                "sequence_number": self.sequence,
                "steer": {"id": steer.id, "previous_response_id": steer.previous_response_id},
            },
            lane,
        )

    async def _steer_failed(
        self, steer: Steer, code: str, message: str, lane: str | None, *, with_id: bool = True
    ) -> None:
        self.sequence += 1
        shown: dict[str, Any] = {"previous_response_id": steer.previous_response_id}
        shown["input"] = steer.input
        if with_id:
            shown["id"] = steer.id
        await self.send(
            {
                "type": "response.steer.failed",
                "sequence_number": self.sequence,
                "error": {"type": "invalid_request_error", "code": code, "message": message},
                "steer": shown,
            },
            lane,
        )


def _lane_name_ok(lane: Any) -> bool:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
    return isinstance(lane, str) and 1 <= len(lane) <= 256 and set(lane) <= allowed


def _steerable(given: Any) -> bool:
    """Text, or a non-empty list of user messages (type, role, content only)."""
    if isinstance(given, str):
        return bool(given)
    if not isinstance(given, list) or not given:
        return False
    return all(
        isinstance(m, dict)
        and m.get("role") == "user"
        and m.get("type", "message") == "message"
        and set(m) <= {"type", "role", "content"}
        for m in given
    )


def _messages(given: Any) -> list[dict[str, Any]]:
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return list(given)


@router.websocket("/v1/responses")
async def responses_socket(ws: WebSocket) -> None:
    container: Container = ws.app.state.container
    given = ws.headers.get("x-request-id", "")
    rid = given if 0 < len(given) <= 128 and given.isascii() else "req_" + secrets.token_hex(12)
    token = request_id.set(rid)
    started = time.perf_counter()
    try:
        try:
            project = await authenticate(ws.headers.get("authorization", ""), container)
        except KotaeError as exc:
            # OpenAI's error, as an HTTP answer to the upgrade (not an empty 403).
            log.info("WebSocket %s refused %d: %s", ROUTE, exc.status_code, exc.message)
            await ws.send_denial_response(
                ErrorResponse(
                    error_body(exc), status_code=exc.status_code, headers={"x-request-id": rid}
                )
            )
            return
        await ws.accept(headers=[(b"x-request-id", rid.encode())])
        log.info("WebSocket %s opened", ROUTE)
        with contextlib.suppress(WebSocketDisconnect):
            await Socket(ws, container, project).serve()
        log.info("WebSocket %s closed after %.1f s", ROUTE, time.perf_counter() - started)
    finally:
        request_id.reset(token)
