"""Refuses bodies over the size limit before they are read whole (plain ASGI: no buffering of
streamed responses, unlike Starlette's BaseHTTPMiddleware)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = limit
        # File uploads carry the file plus multipart framing.
        self.upload_limit = upload_limit + 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        uploads = path.startswith(("/v1/files", "/v1/uploads"))
        limit = self.upload_limit if uploads else self.json_limit
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send, int(value), limit)
                return
        seen = 0
        too_big = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, too_big
            if too_big:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # The app stops reading as if the client had gone; the 413 is sent here,
                    # since a parser would turn an exception into its own 400.
                    too_big = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_big and not started:
                return  # the app's answer to a body cut short is not the answer
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_big or started:
                raise
        if too_big and not started:
            await self._refuse(send, seen, limit)

    async def _refuse(self, send: Send, size: int, limit: int) -> None:
        body = json.dumps(
            {
                "error": {
                    "message": f"Request body is over {limit} bytes (got {size} or more).",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "request_too_large",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
