"""The mcp tool: a remote MCP server's tools offered to the model, called by kotae with the
official `mcp` SDK (streamable HTTP, or SSE for a URL ending in /sse), each URL through the
SSRF guard. The server's tool list is fetched once per thread (an `mcp_list_tools` item, reused
by later turns of the thread as OpenAI does); calls that need approval end the response with
an `mcp_approval_request`, answered by the client's `mcp_approval_response` in the next one."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from openai.types.responses.response_output_item import McpApprovalRequest, McpCall, McpListTools

from kotae import ids
from kotae.errors import InvalidRequest, KotaeError, refuse_unknown
from kotae.providers.inference.base import FunctionSpec, ToolCall
from kotae.services.responses.builtin.base import BuiltinTool, Outcome, ToolDeps, ToolRun
from kotae.services.responses.events import StreamEvent

OPTIONS = {
    "type",
    "server_label",
    "server_url",
    "server_description",
    "headers",
    "authorization",
    "allowed_tools",
    "require_approval",
    "connector_id",
}
LABEL = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
CONNECT_SECONDS = 10.0
CALL_SECONDS = 120.0
OUTPUT_CHARS = 20_000  # of a tool's output, for the model (the item keeps it whole)


class McpUnavailable(KotaeError):
    """The MCP server could not be reached or listed (OpenAI answers 424 here too)."""

    status_code = 424
    error_type = "external_connector_error"
    default_code = "mcp_list_tools_failed"


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _reason(exc: BaseException) -> str:
    leaf = _leaf(exc)
    return f"{type(leaf).__name__}: {leaf}" if str(leaf) else type(leaf).__name__


def engine_name(label: str, tool: str) -> str:
    """The function name the model calls a server's tool by."""
    return f"mcp__{label}__{re.sub(r'[^A-Za-z0-9_-]', '_', tool)}"[:64]


class Mcp(BuiltinTool):
    kind = "mcp"
    secret_fields = ("headers", "authorization")

    def __init__(self, raw: dict[str, Any], index: int) -> None:
        super().__init__(raw, index)
        where = f"tools[{index}]"
        refuse_unknown(raw, OPTIONS, where)
        label = raw.get("server_label")
        if not isinstance(label, str) or not LABEL.match(label):
            raise InvalidRequest(
                "An mcp tool needs a server_label of letters, digits, _ or - (at most 40).",
                param=f"{where}.server_label",
            )
        if raw.get("connector_id") is not None:
            raise InvalidRequest(
                "OpenAI's connectors are not available here; give a server_url.",
                param=f"{where}.connector_id",
            )
        url = raw.get("server_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidRequest(
                "An mcp tool needs a server_url (http or https).", param=f"{where}.server_url"
            )
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise InvalidRequest("headers must map names to strings.", param=f"{where}.headers")
        self.headers = dict(headers)
        if raw.get("authorization"):
            self.headers["Authorization"] = f"Bearer {raw['authorization']}"
        self.label: str = label
        self.url: str = url
        self._allowed, self._read_only = _allowed(raw.get("allowed_tools"), where)
        self._approval = _approval(raw.get("require_approval"), where)
        self.param = where
        self.tools: list[dict[str, Any]] = []  # as listed: name, description, input_schema...
        self._listed_now = False  # listed for this response (else reused from the thread)
        self._names: dict[str, str] = {}  # engine name -> the server's tool name

    def slot(self) -> tuple[str, ...]:
        return (self.kind, self.label)

    def named_by(self, choice: dict[str, Any]) -> bool:
        return choice.get("type") == "mcp" and choice.get("server_label") == self.label

    def matches(self, choice: dict[str, Any]) -> list[str]:
        if not self.named_by(choice):
            return []
        wanted = choice.get("name")
        return [e for e, name in self._names.items() if wanted is None or name == wanted]

    def functions(self) -> list[FunctionSpec]:
        about = f" ({self.raw['server_description']})" if self.raw.get("server_description") else ""
        return [
            FunctionSpec(
                engine_name(self.label, t["name"]),
                f"[{self.label}{about}] {t.get('description') or t['name']}",
                t.get("input_schema") or {"type": "object", "properties": {}},
                strict=False,
            )
            for t in self.tools
        ]

    # -- the server ------------------------------------------------------------------------

    def _client(self) -> AbstractAsyncContextManager[Any]:
        import httpx2
        from mcp import Client
        from mcp.client.sse import sse_client
        from mcp.client.streamable_http import streamable_http_client

        if self.url.rstrip("/").endswith("/sse"):
            transport = sse_client(self.url, headers=self.headers, timeout=CONNECT_SECONDS)
        else:
            http = httpx2.AsyncClient(
                headers=self.headers, timeout=httpx2.Timeout(CALL_SECONDS, connect=CONNECT_SECONDS)
            )
            transport = streamable_http_client(self.url, http_client=http)
        return Client(transport, read_timeout_seconds=CALL_SECONDS)

    async def check(
        self, project_id: str, param: str, deps: ToolDeps, history: list[dict[str, Any]]
    ) -> None:
        """The server's tools: the thread's earlier listing, or listed now (a 424 when the
        server cannot be reached, before any event, as OpenAI answers)."""
        if deps.fetcher is None:
            raise InvalidRequest("The mcp tool is not available on this server.", param=param)
        await asyncio.to_thread(deps.fetcher.guard.check, self.url)
        listed = next(
            (
                item
                for item in reversed(history)
                if item.get("type") == "mcp_list_tools"
                and item.get("server_label") == self.label
                and not item.get("error")
            ),
            None,
        )
        if listed is not None:
            tools = list(listed.get("tools") or [])
        else:
            try:
                async with self._client() as client:
                    found = await client.list_tools()
            except Exception as exc:
                raise McpUnavailable(
                    f"Error retrieving tool list from MCP server '{self.label}': {_reason(exc)}",
                    param=f"{param}.server_url",
                ) from None
            tools = [
                {
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.input_schema,
                    "annotations": t.annotations.model_dump(exclude_none=True)
                    if t.annotations
                    else None,
                }
                for t in found.tools
            ]
            self._listed_now = True
        self.tools = [t for t in tools if self._offers(t)]
        self._names = {engine_name(self.label, t["name"]): t["name"] for t in self.tools}

    def _offers(self, tool: dict[str, Any]) -> bool:
        if self._allowed is not None and tool["name"] not in self._allowed:
            return False
        if self._read_only:
            return bool((tool.get("annotations") or {}).get("readOnlyHint"))
        return True

    def _needs_approval(self, name: str) -> bool:
        mode, always, never = self._approval
        if name in always:
            return True
        if name in never:
            return False
        return mode == "always"

    # -- in the response -------------------------------------------------------------------

    async def open(self, run: ToolRun) -> AsyncIterator[StreamEvent | Outcome]:
        """The listing's item when it was fetched for this response; then the calls the client
        approved (or declined) since the last response."""
        if self._listed_now:
            item = McpListTools(
                id=ids.new_id("mcpl"), type="mcp_list_tools", server_label=self.label, tools=[]
            )
            for event in run.emitter.start_item(item, "response.mcp_list_tools.in_progress"):
                yield event
            done = McpListTools.model_validate({**item.model_dump(), "tools": self.tools_listed()})
            for event in run.emitter.finish_item(done, "response.mcp_list_tools.completed"):
                yield event
        requests = {
            item["id"]: item
            for item in [*run.history, *run.new_items]
            if item.get("type") == "mcp_approval_request" and item.get("server_label") == self.label
        }
        executed = {
            item.get("approval_request_id")
            for item in [*run.history, *run.new_items]
            if item.get("type") == "mcp_call"
        }
        for answer in run.new_items:
            if answer.get("type") != "mcp_approval_response":
                continue
            request = requests.get(answer.get("approval_request_id", ""))
            if request is None or request["id"] in executed:
                continue
            call = ToolCall(
                request["id"], engine_name(self.label, request["name"]), request["arguments"]
            )
            if not answer.get("approve"):
                yield Outcome(f"The user declined the call of {request['name']}.", call=call)
                continue
            async for step in self._execute(run, request["name"], call, request["id"]):
                yield step

    def tools_listed(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in t.items() if v is not None} for t in self.tools]

    async def run(self, call: ToolCall, run: ToolRun) -> AsyncIterator[StreamEvent | Outcome]:
        name = self._names.get(call.name, call.name)
        if self._needs_approval(name):
            item = McpApprovalRequest(
                id=ids.new_id("mcpr"),
                type="mcp_approval_request",
                server_label=self.label,
                name=name,
                arguments=call.arguments,
            )
            for event in run.emitter.whole_item(item):
                yield event
            yield Outcome("The call waits for the user's approval.", ends_response=True)
            return
        async for step in self._execute(run, name, call, None):
            yield step

    async def _execute(
        self, run: ToolRun, name: str, call: ToolCall, approval_id: str | None
    ) -> AsyncIterator[StreamEvent | Outcome]:
        item = McpCall(
            id=ids.new_id("mcp"),
            type="mcp_call",
            server_label=self.label,
            name=name,
            arguments="",
            approval_request_id=approval_id,
            status="in_progress",
        )
        for event in run.emitter.start_mcp_call(item, call.arguments):
            yield event
        try:
            arguments = json.loads(call.arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("the arguments are not an object")
        except ValueError as exc:
            error = {
                "type": "mcp_protocol_error",
                "code": -32602,
                "message": f"Bad arguments: {exc}",
            }
            async for step in self._failed(run, item, call, error):
                yield step
            return
        try:
            async with self._client() as client:
                result = await client.call_tool(name, arguments)
        except Exception as exc:
            leaf = _leaf(exc)
            code = getattr(getattr(leaf, "error", None), "code", None)
            error = (
                {"type": "mcp_protocol_error", "code": int(code), "message": str(leaf)}
                if isinstance(code, int)
                else {"type": "http_error", "code": 502, "message": _reason(leaf)}
            )
            async for step in self._failed(run, item, call, error):
                yield step
            return
        content = [c.model_dump(mode="json", exclude_none=True) for c in result.content]
        text = "\n".join(c.get("text", "") for c in content if c.get("type") == "text")
        if result.is_error:
            error = {"type": "mcp_tool_execution_error", "content": content}
            async for step in self._failed(run, item, call, error, text):
                yield step
            return
        done = item.model_copy(update={"status": "completed", "output": text})
        for event in run.emitter.finish_item(done, "response.mcp_call.completed"):
            yield event
        yield Outcome(text[:OUTPUT_CHARS], call=call)

    async def _failed(
        self,
        run: ToolRun,
        item: McpCall,
        call: ToolCall,
        error: dict[str, Any],
        text: str = "",
    ) -> AsyncIterator[StreamEvent | Outcome]:
        done = McpCall.model_validate(
            {**item.model_dump(), "status": "failed", "error": error, "output": None}
        )
        for event in run.emitter.finish_item(done, "response.mcp_call.failed"):
            yield event
        said = text or error.get("message") or "no details"
        yield Outcome(f"The call of {item.name} failed: {said}", call=call)


def _allowed(raw: Any, where: str) -> tuple[set[str] | None, bool]:
    if raw is None:
        return None, False
    if isinstance(raw, list) and all(isinstance(n, str) for n in raw):
        return set(raw), False
    if isinstance(raw, dict) and set(raw) <= {"tool_names", "read_only"}:
        names = raw.get("tool_names")
        return (set(names) if names is not None else None), bool(raw.get("read_only"))
    raise InvalidRequest(
        "allowed_tools is a list of tool names or {tool_names, read_only}.",
        param=f"{where}.allowed_tools",
    )


def _approval(raw: Any, where: str) -> tuple[str, set[str], set[str]]:
    """(the default for tools not named, tools always approved first, tools never)."""
    if raw is None or raw == "always":
        return "always", set(), set()
    if raw == "never":
        return "never", set(), set()
    if isinstance(raw, dict) and set(raw) <= {"always", "never"}:
        always = set((raw.get("always") or {}).get("tool_names") or [])
        never = set((raw.get("never") or {}).get("tool_names") or [])
        # Named tools follow their list; the rest need approval, as OpenAI's default.
        return "always", always, never
    raise InvalidRequest(
        "require_approval is 'always', 'never' or {always: {tool_names}, never: {tool_names}}.",
        param=f"{where}.require_approval",
    )
