"""A real MCP server for the tests (the `mcp` SDK's own MCPServer), on loopback:
`python -m tests.mcp_server PORT TRANSPORT [TOKEN]`, TRANSPORT streamable-http or sse. With
TOKEN, requests without `Authorization: Bearer TOKEN` get a 401."""

from __future__ import annotations

import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

server = MCPServer("plant-tools", instructions="Tools about the Alpha plant.")
CALLS: list[str] = []


@server.tool(description="The boiler pressure limit of a plant, in bar.")
def pressure_limit(plant: str) -> str:
    CALLS.append(plant)
    return f"The {plant} boiler pressure limit is 12 bar."


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="A tool that always fails.")
def explode() -> str:
    raise RuntimeError("the valve sensor is offline")


class NeedsToken:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            auth = Request(scope).headers.get("authorization")
            if auth != f"Bearer {self.token}":
                response: Response = PlainTextResponse("unauthorized", status_code=401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def main() -> None:
    port, transport = int(sys.argv[1]), sys.argv[2]
    app: ASGIApp = server.sse_app() if transport == "sse" else server.streamable_http_app()
    if len(sys.argv) > 3:
        app = NeedsToken(app, sys.argv[3])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
