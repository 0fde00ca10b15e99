"""Model turns and wall time per response when tools are enabled but none is needed: the agent
loop (this tree) beside the fixed pipeline it replaced (a baseline commit), in the same run.

Run:  python bench/agent_turns.py [--baseline b1714cb] [--runs 5]

The baseline is checked out with `git worktree` under a temporary folder and served from the
same virtual environment (PYTHONPATH points at its src/). For each tree one kotae serves:
- `scripted`, a remote engine with native tool calls (a loopback stand-in that counts the
  requests it gets: the model turns), which answers at once;
- the embedded default (SmolLM2), where every turn is real decoding: wall time and the input
  tokens the response's turns read.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import OpenAI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api.test_vector_stores import create_and_poll  # noqa: E402
from tests.helpers import Server, new_key  # noqa: E402
from tests.standins import ScriptedChatEngine, SearxngStandIn  # noqa: E402

QUESTION = "Hello! How are you today?"
PAGES = {"/a": ("A page", "<html><body><p>Nothing to see.</p></body></html>")}


def scenarios(store: str) -> list[tuple[str, list[dict[str, Any]]]]:
    return [
        ("no tools", []),
        ("file_search", [{"type": "file_search", "vector_store_ids": [store]}]),
        (
            "file_search + web_search",
            [{"type": "file_search", "vector_store_ids": [store]}, {"type": "web_search_preview"}],
        ),
    ]


def measure(tree: Path, runs: int, work: Path) -> dict[str, dict[str, float]]:
    engine = ScriptedChatEngine(["Hello! I am fine."])
    web = SearxngStandIn(PAGES)
    models = [
        {"id": "scripted", "backend": "openai_compat", "base_url": engine.url},
    ]
    srv = Server(
        work,
        KOTAE_MODELS=json.dumps(models),
        KOTAE_WEB_SEARCH_PROVIDER="searxng",
        KOTAE_SEARXNG_URL=web.url,
        KOTAE_FETCH_ALLOW_HOSTS="127.0.0.1",
        PYTHONPATH=str(tree / "src"),
    )
    out: dict[str, dict[str, float]] = {}
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "bench"), max_retries=0)
        doc = c.files.create(
            file=("faq.txt", b"Our office opens at nine and closes at six."), purpose="assistants"
        )
        store = create_and_poll(c, name="faq", file_ids=[doc.id]).id
        c.responses.create(model="gpt-4o", input="Hi", max_output_tokens=16)  # warm
        for name, tools in scenarios(store):
            engine.requests.clear()
            c.responses.create(model="scripted", input=QUESTION, tools=tools)  # type: ignore[arg-type]
            turns = len(engine.requests)
            walls, inputs, calls = [], [], []
            for _ in range(runs):
                started = time.perf_counter()
                r = c.responses.create(
                    model="gpt-4o",
                    input=QUESTION,
                    tools=tools,  # type: ignore[arg-type]
                    max_output_tokens=40,
                    temperature=0,
                )
                walls.append(time.perf_counter() - started)
                inputs.append(r.usage.input_tokens if r.usage else 0)
                calls.append(sum(o.type != "message" for o in r.output))
            out[name] = {
                "turns": turns,
                "wall": statistics.median(walls),
                "input": statistics.median(inputs),
                "calls": statistics.median(calls),
            }
    finally:
        srv.stop()
        engine.close()
        web.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="b1714cb", help="commit of the fixed pipeline")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
            check=True,
            capture_output=True,
        )
        try:
            before = measure(base, args.runs, Path(tmp) / "d-before")
            after = measure(ROOT, args.runs, Path(tmp) / "d-after")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                check=False,
            )
    print(f"\n'{QUESTION}' (no tool needed), median of {args.runs}; baseline {args.baseline}\n")
    print(
        f"{'tools enabled':<26} {'turns (remote) before → after':>30} "
        f"{'embedded wall s before → after':>32} {'input tokens before → after':>29} "
        f"{'tool calls before → after':>27}"
    )
    for name in before:
        b, a = before[name], after[name]
        print(
            f"{name:<26} {b['turns']:>22.0f} → {a['turns']:<5.0f} "
            f"{b['wall']:>24.2f} → {a['wall']:<5.2f} {b['input']:>21.0f} → {a['input']:<5.0f} "
            f"{b['calls']:>19.0f} → {a['calls']:<5.0f}"
        )


if __name__ == "__main__":
    main()
