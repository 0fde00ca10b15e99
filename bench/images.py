"""Image generation: seconds per image through /v1/images vs. the same diffusers pipeline
called directly, in one run.

Run:  python bench/images.py [--size 512] [--steps 20] [--rounds 3] [--pipeline DIR]

Without --pipeline it builds the tests' tiny random-weight pipeline (its pictures are noise;
it shows kotae's overhead, not a real model's speed). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import OpenAI
from tests.helpers import Server, new_key
from tests.imagegen import build_tiny_pipeline


def direct(pipeline: Path, size: int, steps: int, rounds: int) -> list[float]:
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(pipeline), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    pipe("warm-up", num_inference_steps=1, width=size, height=size)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        pipe("a lighthouse at dusk", num_inference_steps=steps, width=size, height=size)
        times.append(time.perf_counter() - start)
    return times


def through_kotae(
    pipeline: Path, data_dir: Path, size: int, steps: int, rounds: int
) -> list[float]:
    srv = Server(data_dir, KOTAE_IMAGE_MODEL=str(pipeline), KOTAE_IMAGE_STEPS=str(steps))
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "b"), timeout=600)
        c.images.generate(prompt="warm-up", size="256x256", quality="low")
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            c.images.generate(
                prompt="a lighthouse at dusk",
                size=f"{size}x{size}",  # type: ignore[arg-type]
                quality="high",  # all the steps
                response_format="b64_json",
            )
            times.append(time.perf_counter() - start)
        return times
    finally:
        srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pipeline", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = args.pipeline or build_tiny_pipeline(Path(tmp) / "tiny-sd")
        d = direct(pipeline, args.size, args.steps, args.rounds)
        k = through_kotae(pipeline, Path(tmp) / "data", args.size, args.steps, args.rounds)
    print(f"\n{pipeline.name}, {args.size}x{args.size}, {args.steps} steps, {args.rounds} rounds\n")
    print("| path | s/image (median) | min | max |")
    print("|---|---|---|---|")
    for name, t in (("diffusers, direct", d), ("kotae /v1/images", k)):
        print(f"| {name} | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} |")
    print(f"\nkotae / direct: {statistics.median(k) / statistics.median(d):.2f}x")


if __name__ == "__main__":
    main()
