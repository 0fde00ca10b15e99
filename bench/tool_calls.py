"""How often a forced function call from the default model is valid for its schema.

Run:  python bench/tool_calls.py [--runs 50]

Each run asks SmolLM2 (through kotae, temperature 1.0 so runs differ) for a forced call of a
function with a required string, an enum and an integer range, then checks the arguments
against the schema with plain Python. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import Server, new_key

TOOL = {
    "type": "function",
    "name": "book_table",
    "description": "Book a restaurant table",
    "parameters": {
        "type": "object",
        "properties": {
            "restaurant": {"type": "string"},
            "time": {"type": "string", "enum": ["18:00", "19:00", "20:00"]},
            "people": {"type": "integer", "minimum": 1, "maximum": 12},
        },
        "required": ["restaurant", "time", "people"],
    },
}
PROMPTS = [
    "Book a table for 4 at Sushi Dai at 7pm.",
    "I need dinner for two at Luigi's, 8 o'clock.",
    "Reserve Le Petit for six people at 18:00.",
    "Table for 3 at the noodle bar please, 19:00.",
    "予約: 寿司屋 5人 20:00",
]


def valid(arguments: str) -> bool:
    try:
        args: Any = json.loads(arguments)
    except ValueError:
        return False
    return (
        isinstance(args, dict)
        and set(args) == {"restaurant", "time", "people"}
        and isinstance(args["restaurant"], str)
        and args["time"] in ("18:00", "19:00", "20:00")
        and isinstance(args["people"], int)
        and 1 <= args["people"] <= 12
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "data")
        try:
            client = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "bench"))
            rows = {"tool_choice=required": 0, "tool_choice=function": 0}
            seconds = []
            for i in range(args.runs):
                for label, choice in (
                    ("tool_choice=required", "required"),
                    ("tool_choice=function", {"type": "function", "name": "book_table"}),
                ):
                    t = time.perf_counter()
                    r = client.responses.create(
                        model="gpt-4o",
                        input=PROMPTS[i % len(PROMPTS)],
                        tools=[TOOL],
                        tool_choice=choice,
                        temperature=1.0,  # type: ignore[arg-type]
                    )
                    seconds.append(time.perf_counter() - t)
                    calls = [o for o in r.output if o.type == "function_call"]
                    if len(calls) == 1 and valid(calls[0].arguments):
                        rows[label] += 1
        finally:
            srv.stop()
    print(f"\nForced function calls with the default model (SmolLM2-135M), {args.runs} runs each")
    print(f"{'request':24} {'valid':>8} {'of':>4}")
    for label, ok in rows.items():
        print(f"{label:24} {ok:8d} {args.runs:4d}")
    seconds.sort()
    print(
        f"latency p50 {seconds[len(seconds) // 2] * 1000:.0f} ms, "
        f"p95 {seconds[int(len(seconds) * 0.95)] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
