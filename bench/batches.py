"""Batches against the same requests sent one by one, and online latency while a batch runs,
in one run on one server.

Run:  python bench/batches.py [--embeddings 1000] [--responses 100] [--model gpt-4o]

1. 1,000 embeddings lines as a batch, then the same 1,000 requests one by one.
2. 100 short responses as a batch, then one by one.
3. Online /v1/responses p50 with nothing else running, then while a batch of responses runs
   (batch lines yield to online requests).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import Server, new_key  # noqa: E402


def as_batch(c: OpenAI, endpoint: str, bodies: list[dict[str, Any]]) -> float:
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": endpoint, "body": b}
        for i, b in enumerate(bodies)
    ]
    data = "\n".join(json.dumps(x) for x in lines).encode()
    began = time.perf_counter()
    f = c.files.create(file=("b.jsonl", io.BytesIO(data)), purpose="batch")
    batch = c.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    while c.batches.retrieve(batch.id).status not in ("completed", "failed", "cancelled"):
        time.sleep(0.2)
    return time.perf_counter() - began


def one_by_one(c: OpenAI, endpoint: str, bodies: list[dict[str, Any]]) -> float:
    began = time.perf_counter()
    for body in bodies:
        if endpoint == "/v1/embeddings":
            c.embeddings.create(**body)
        else:
            c.responses.create(**body)
    return time.perf_counter() - began


def online_p50(c: OpenAI, model: str, n: int) -> float:
    took = []
    for _ in range(n):
        began = time.perf_counter()
        c.responses.create(model=model, input="Say hi.", max_output_tokens=16)
        took.append(time.perf_counter() - began)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embeddings", type=int, default=1000)
    parser.add_argument("--responses", type=int, default=100)
    parser.add_argument("--model", default="gpt-4o")
    args = parser.parse_args()
    srv = Server(Path(tempfile.mkdtemp()) / "data")
    try:
        c = OpenAI(
            base_url=srv.base_url, api_key=new_key(srv.env, "bench"), max_retries=0, timeout=600
        )
        embeds = [
            {"model": "text-embedding-3-small", "input": f"line {i} of the corpus"}
            for i in range(args.embeddings)
        ]
        short = [
            {"model": args.model, "input": f"Say hi to {i}.", "max_output_tokens": 16}
            for i in range(args.responses)
        ]
        c.responses.create(model=args.model, input="warm up", max_output_tokens=16)
        rows = [
            (
                f"{args.embeddings} embeddings",
                as_batch(c, "/v1/embeddings", embeds),
                one_by_one(c, "/v1/embeddings", embeds),
            ),
            (
                f"{args.responses} short responses",
                as_batch(c, "/v1/responses", short),
                one_by_one(c, "/v1/responses", short),
            ),
        ]
        print(f"{'':24} {'batch s':>9} {'one by one s':>13}")
        for name, batch_s, single_s in rows:
            print(f"{name:24} {batch_s:9.1f} {single_s:13.1f}")
        idle = online_p50(c, args.model, 10)
        lines = [
            {"custom_id": f"l{i}", "method": "POST", "url": "/v1/responses", "body": b}
            for i, b in enumerate(short)
        ]
        f = c.files.create(
            file=("b.jsonl", io.BytesIO("\n".join(json.dumps(x) for x in lines).encode())),
            purpose="batch",
        )
        batch = c.batches.create(
            input_file_id=f.id, endpoint="/v1/responses", completion_window="24h"
        )
        while c.batches.retrieve(batch.id).status == "validating":
            time.sleep(0.1)
        busy = online_p50(c, args.model, 10)
        c.batches.cancel(batch.id)
        print(f"\nonline /v1/responses p50: idle {idle * 1000:.0f} ms, ", end="")
        print(f"during a batch {busy * 1000:.0f} ms")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
