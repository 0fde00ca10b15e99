"""The code interpreter's sandbox: its cold start (a new container's process) and a warm call
of `print(1)`, against a bare `python -c "print(1)"` on the same interpreter, in one run.

Run:  python bench/code_interpreter.py [--rounds 20]

The goal of the issue: a warm call adds under 50 ms. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kotae.config import Settings  # noqa: E402
from kotae.providers.sandbox.base import Limits  # noqa: E402
from kotae.providers.sandbox.bubblewrap import BubblewrapSandbox  # noqa: E402

LIMITS = Limits(
    memory_bytes=1 << 30, cpu_seconds=30, wall_seconds=60, processes=64, disk_bytes=1 << 30
)


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[max(0, int(len(values) * 0.95) - 1)]
    return f"{statistics.median(values) * 1000:8.1f} {p95 * 1000:8.1f}"


async def measure(rounds: int) -> None:
    s = Settings()
    sandbox = BubblewrapSandbox(s.code_interpreter_python, s.code_interpreter_site)
    why = sandbox.missing()
    if why:
        sys.exit(why)
    root = Path(tempfile.mkdtemp(prefix="kotae-bench-"))
    root.chmod(0o711)
    cold, warm, imports = [], [], []
    try:
        for i in range(rounds):
            began = time.perf_counter()
            session = await sandbox.start(root / f"cntr_{i}", f"cntr_{i}", LIMITS)
            first = await session.run("print(1)")
            cold.append(time.perf_counter() - began)
            assert first.logs == "1\n", first.logs
            began = time.perf_counter()
            await session.run("import numpy, pandas, matplotlib.pyplot")
            imports.append(time.perf_counter() - began)
            for _ in range(5):
                began = time.perf_counter()
                await session.run("print(1)")
                warm.append(time.perf_counter() - began)
            await session.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    bare = []
    for _ in range(rounds):
        began = time.perf_counter()
        subprocess.run(
            [s.code_interpreter_python, "-c", "print(1)"], check=True, capture_output=True
        )
        bare.append(time.perf_counter() - began)
    print(f"{'':44} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'python -c print(1) (no sandbox)':44} {ms(bare)}")
    print(f"{'cold: new container + print(1)':44} {ms(cold)}")
    print(f"{'first import numpy, pandas, matplotlib':44} {ms(imports)}")
    print(f"{'warm call print(1)':44} {ms(warm)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(measure(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
