"""Ingestion speed with one `kotae worker` and with two, behind an API replica that only
writes the work (`kotae serve --no-worker`), on the same files in the same run.

Run:  python bench/workers.py [--files 24] [--pages 8]

Each file is `--pages` pages of varied English text (about 3,000 characters a page). The
clock runs from the moment the workers start until every file is `completed`. Both runs use
one SQLite state store on this machine; on a machine with few cores, two workers share them.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import Server, kotae_env, new_key

WORDS = [
    "boiler",
    "pressure",
    "valve",
    "shift",
    "schedule",
    "maintenance",
    "report",
    "safety",
    "audit",
    "invoice",
    "budget",
    "customer",
    "order",
    "delivery",
    "warehouse",
    "contract",
    "policy",
    "training",
    "manual",
    "procedure",
    "review",
]
PAGE_CHARS = 3000


def page(rng: random.Random) -> str:
    out, size = [], 0
    while size < PAGE_CHARS:
        sentence = " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "."
        out.append(sentence)
        size += len(sentence) + 1
    return " ".join(out)


def run(workers: int, files: int, pages: int, work: Path) -> float:
    data = work / f"w{workers}"
    srv = Server(data, args=["--no-worker"], worker=False)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "bench"), max_retries=0)
        rng = random.Random(0)
        ids = [
            c.files.create(
                file=(f"doc{i}.txt", "\n\n".join(page(rng) for _ in range(pages)).encode()),
                purpose="assistants",
            ).id
            for i in range(files)
        ]
        store = c.vector_stores.create(name="bench", file_ids=ids)
        started = time.perf_counter()
        for n in range(workers):
            log = open(work / f"worker-{workers}-{n}.log", "w")  # noqa: SIM115
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "kotae", "worker"],
                    env=kotae_env(data),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        while True:
            counts = c.vector_stores.retrieve(store.id).file_counts
            if counts.in_progress == 0:
                break
            time.sleep(0.2)
        return time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--pages", type=int, default=8)
    args = parser.parse_args()
    total = args.files * args.pages
    with tempfile.TemporaryDirectory() as tmp:
        times = {n: run(n, args.files, args.pages, Path(tmp)) for n in (1, 2)}
    print(
        f"\nIngestion of {args.files} files x {args.pages} pages ({total} pages), "
        f"{os.cpu_count()} cores; seconds include each worker's start\n"
    )
    print(f"{'workers':>8} {'seconds':>8} {'pages/s':>8}")
    for n, seconds in times.items():
        print(f"{n:8d} {seconds:8.1f} {total / seconds:8.1f}")


if __name__ == "__main__":
    main()
