"""Fine-tuning: seconds per training step through kotae vs. the same peft loop run directly.

Run:  python bench/fine_tuning.py [--model smollm2-135m-instruct] [--epochs 2]

Same data (tests/data/finetune_data.jsonl), same base weights, same LoRA settings, batch 1, in
one run: first the direct loop in this process (transformers + peft, the dequantised base
kotae caches), then a job through the API on a fresh server. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import OpenAI
from tests.helpers import Server, new_key

from kotae.providers.inference.llama_cpp import FALLBACK_TEMPLATE
from kotae.services.models import BUILTIN_MODELS, resolve_path
from kotae.training.data import load_examples
from kotae.training.hyperparameters import AUTO_MULTIPLIER, BASE_LEARNING_RATE
from kotae.training.lora import LORA_ALPHA, LORA_RANK, TARGETS, _batch, encode, load_base

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "finetune_data.jsonl"


def direct(model_id: str, epochs: int, hf_dir: Path) -> tuple[float, int, float, float]:
    """(s/step, steps, first loss, last loss) of a plain peft loop."""
    import torch
    from peft import LoraConfig, get_peft_model

    cfg = next(m for m in BUILTIN_MODELS if m.id == model_id)
    gguf = resolve_path(cfg.path or "", Path("."))
    assert gguf is not None
    model, tok = load_base(gguf, hf_dir, FALLBACK_TEMPLATE)
    torch.manual_seed(0)
    model = get_peft_model(
        model,
        LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, target_modules=TARGETS, lora_dropout=0.0),
    )
    rows = [
        encode(tok, ex, cfg.context_window, i)
        for i, ex in enumerate(load_examples(DATA.read_bytes()))
    ]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=BASE_LEARNING_RATE * AUTO_MULTIPLIER)
    times, losses = [], []
    for _ in range(epochs):
        for row in rows:
            start = time.perf_counter()
            loss = model(**_batch([row], tok.pad_token_id)).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - start)
            losses.append(float(loss))
    return statistics.median(times), len(times), losses[0], losses[-1]


def through_kotae(
    model_id: str, epochs: int, data_dir: Path
) -> tuple[float, int, float, float, float]:
    """(s/step, steps, first loss, last loss, job minutes) of a job through the API."""
    srv = Server(data_dir)
    try:
        c = OpenAI(base_url=srv.base_url, api_key=new_key(srv.env, "bench"), max_retries=0)
        f = c.files.create(file=("d.jsonl", io.BytesIO(DATA.read_bytes())), purpose="fine-tune")
        started = time.monotonic()
        job = c.fine_tuning.jobs.create(
            training_file=f.id, model=model_id, hyperparameters={"n_epochs": epochs}, seed=0
        )
        while job.status not in ("succeeded", "failed", "cancelled"):
            time.sleep(1)
            job = c.fine_tuning.jobs.retrieve(job.id)
        minutes = (time.monotonic() - started) / 60
        assert job.status == "succeeded", job.error
        steps = [
            e
            for e in reversed(list(c.fine_tuning.jobs.list_events(job.id, limit=100)))
            if e.type == "metrics"
        ]
        # The trainer logs each step's own time in the job's train.log.
        log = (data_dir / "fine_tuning" / job.id / "train.log").read_text()
        per_step = statistics.median(
            float(line.split()[-2]) for line in log.splitlines() if line.startswith("step ")
        )
        first, last = (s.data["train_loss"] for s in (steps[0], steps[-1]))  # type: ignore[index]
        return per_step, len(steps), first, last, minutes
    finally:
        srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        # The server caches the dequantised base here; the direct loop converts it first, so
        # neither side pays the conversion in its timing.
        d = direct(args.model, args.epochs, data_dir / "hf" / args.model)
        k = through_kotae(args.model, args.epochs, data_dir)
    print(f"\nmodel {args.model}, {args.epochs} epochs of {DATA.name}, batch 1\n")
    print("| path | s/step | steps | first loss | last loss |")
    print("|---|---|---|---|---|")
    print(f"| peft loop, direct | {d[0]:.3f} (median) | {d[1]} | {d[2]:.3f} | {d[3]:.3f} |")
    print(f"| kotae job | {k[0]:.3f} (median) | {k[1]} | {k[2]:.3f} | {k[3]:.3f} |")
    print(f"\nkotae / direct: {k[0] / d[0]:.2f}x; whole job {k[4]:.2f} min")


if __name__ == "__main__":
    main()
