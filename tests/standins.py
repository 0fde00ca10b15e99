"""Loopback stand-ins for services at the edge of the internet, speaking their protocols."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

HUB_COMMIT = "a" * 40


class _Handler(BaseHTTPRequestHandler):
    """Quiet, with one way to answer."""

    def log_message(self, *args: Any) -> None:
        return None

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SearxngStandIn:
    """SearXNG's `/search?format=json`, plus the pages its results point at (and redirects,
    for the SSRF tests)."""

    def __init__(self, pages: dict[str, tuple[str, str]], host: str = "127.0.0.1") -> None:
        self.pages = pages  # path -> (title, html)
        self.queries: list[str] = []
        self.fetched: list[str] = []
        self.redirects: dict[str, str] = {}
        self.down = False
        stand_in = self

        class Handler(_Handler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/search":
                    if stand_in.down:
                        self._send(503, b"down", "text/plain")
                        return
                    query = parse_qs(url.query).get("q", [""])[0]
                    stand_in.queries.append(query)
                    results = [
                        {
                            "url": f"{stand_in.url}{path}",
                            "title": title,
                            "content": html[:80],
                            "engine": "stand-in",
                        }
                        for path, (title, html) in stand_in.pages.items()
                    ]
                    self._send(
                        200,
                        json.dumps({"query": query, "results": results}).encode(),
                        "application/json",
                    )
                    return
                stand_in.fetched.append(url.path)
                if url.path in stand_in.redirects:
                    self.send_response(302)
                    self.send_header("Location", stand_in.redirects[url.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                page = stand_in.pages.get(url.path)
                if page is None:
                    self._send(404, b"not found", "text/plain")
                    return
                self._send(200, page[1].encode(), "text/html; charset=utf-8")

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class StaticSite:
    """A web host serving fixed files (images, PDFs), recording what was fetched."""

    def __init__(self, files: dict[str, tuple[bytes, str]], host: str = "127.0.0.1") -> None:
        self.files = files  # path -> (body, content type)
        self.fetched: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                site.fetched.append(self.path)
                body, ctype = site.files.get(self.path, (b"not found", "text/plain"))
                self.send_response(200 if self.path in site.files else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class FakeHub:
    """The Hugging Face Hub's file tree API and resolve URLs (with commit and ETag headers)
    for one repository."""

    def __init__(self, files: dict[str, bytes], repo: str) -> None:
        self.files = files
        self.repo = repo
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _file(self) -> tuple[str, bytes] | None:
                path = unquote(urlparse(self.path).path)
                prefix = f"/{hub.repo}/resolve/"
                if not path.startswith(prefix):
                    return None
                _rev, _, name = path[len(prefix) :].partition("/")
                return (name, hub.files[name]) if name in hub.files else None

            def _headers_for(self, data: bytes) -> None:
                etag = hashlib.sha256(data).hexdigest()
                self.send_header("X-Repo-Commit", HUB_COMMIT)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")

            def do_HEAD(self) -> None:
                hub.requests.append(f"HEAD {self.path}")
                found = self._file()
                if found is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                self.send_response(200)
                self._headers_for(found[1])
                self.end_headers()

            def do_GET(self) -> None:
                hub.requests.append(f"GET {self.path}")
                path = urlparse(self.path).path
                if path.startswith(f"/api/models/{hub.repo}/tree/"):
                    body = json.dumps(
                        [
                            {
                                "type": "file",
                                "path": name,
                                "size": len(data),
                                "oid": hashlib.sha1(data).hexdigest(),
                            }
                            for name, data in hub.files.items()
                        ]
                    ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                found = self._file()
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self._headers_for(found[1])
                self.end_headers()
                self.wfile.write(found[1])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class ScriptedChatEngine:
    """An engine speaking OpenAI's chat protocol with native tool calls (as vLLM, SGLang or
    Ollama do), whose model follows a script: turn N (N = assistant turns with tool calls
    already in the request) makes `steps[N]`, a list of (function, arguments) calls, or says
    `steps[N]` when it is text. Past the script it answers quoting the last tool result."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = steps
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(_Handler):
            def do_GET(self) -> None:
                models = {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
                self._send(200, json.dumps(models).encode(), "application/json")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append(body)
                text, calls = stand_in.reply(body)
                usage = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
                finish = "tool_calls" if calls else "stop"
                wire_calls = [
                    {
                        "index": i,
                        "id": f"call_{len(stand_in.requests)}_{i}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                    for i, (name, args) in enumerate(calls)
                ]
                if not body.get("stream"):
                    message: dict[str, Any] = {"role": "assistant", "content": text or None}
                    if wire_calls:
                        message["tool_calls"] = [
                            {k: v for k, v in c.items() if k != "index"} for c in wire_calls
                        ]
                    answer = {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                        "usage": usage,
                    }
                    self._send(200, json.dumps(answer).encode(), "application/json")
                    return
                chunks: list[dict[str, Any]] = []
                for word in text.split(" ") if text else []:
                    chunks.append({"choices": [{"index": 0, "delta": {"content": word + " "}}]})
                for call in wire_calls:
                    chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
                chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
                chunks.append({"choices": [], "usage": usage})
                sse = "".join(
                    f"data: {json.dumps({'id': 'chatcmpl-1', 'object': 'chat.completion.chunk', **c})}\n\n"  # noqa: E501
                    for c in chunks
                )
                self._send(200, (sse + "data: [DONE]\n\n").encode(), "text/event-stream")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, body: dict[str, Any]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        messages = body.get("messages") or []
        turn = sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))
        offered = {t["function"]["name"] for t in body.get("tools") or []}
        if body.get("tool_choice") == "none":
            offered = set()
        if turn < len(self.steps):
            step = self.steps[turn]
            if isinstance(step, str):
                return step, []
            calls = [(name, args) for name, args in step if name in offered]
            if calls:
                return "", calls
        results = [str(m.get("content")) for m in messages if m.get("role") == "tool"]
        return ("Done. " + (results[-1][:200] if results else "No tools were used.")), []

    def tools_offered(self, index: int) -> list[str]:
        return [t["function"]["name"] for t in self.requests[index].get("tools") or []]

    def close(self) -> None:
        self.server.shutdown()


REASONING_STREAMS = Path(__file__).parent / "data" / "reasoning"


class ThinkingEngine:
    """A thinking model's server, replaying a stream in its wire format (`<name>.sse` under
    tests/data/reasoning: vLLM's, llama.cpp server's and Ollama's reasoning fields, or a raw
    <think> block). A summary pass (its system turn asks for a summary) gets `summary.sse`.
    A non-streamed request gets the same stream folded into one body, the reasoning under
    the same field name. Every request body is kept."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(_Handler):
            def do_GET(self) -> None:
                models = {"object": "list", "data": [{"id": "thinker", "object": "model"}]}
                self._send(200, json.dumps(models).encode(), "application/json")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.requests.append(body)
                system = " ".join(
                    str(m.get("content")) for m in body["messages"] if m["role"] == "system"
                )
                name = "summary" if "Summarize the reasoning" in system else stand_in.stream
                sse = (REASONING_STREAMS / f"{name}.sse").read_text()
                if body.get("stream"):
                    self._send(200, sse.encode(), "text/event-stream")
                    return
                self._send(200, json.dumps(folded(sse)).encode(), "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def folded(sse: str) -> dict[str, Any]:
    """A recorded stream as the one body a non-streamed request gets."""
    message: dict[str, Any] = {"role": "assistant", "content": ""}
    usage: dict[str, Any] = {}
    finish = "stop"
    for line in sse.splitlines():
        if not line.startswith("data: {"):
            continue
        chunk = json.loads(line[6:])
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            finish = choice.get("finish_reason") or finish
            for name, value in (choice.get("delta") or {}).items():
                if name != "role" and isinstance(value, str):
                    message[name] = message.get(name, "") + value
    return {
        "id": "chatcmpl-folded",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }
