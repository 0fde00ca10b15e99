"""The LoRA training loop (transformers + peft), run inside the training process.

Progress goes out through `emit` as plain dicts: the server records them as job events."""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kotae.training.gguf_adapter import write_adapter
from kotae.training.hyperparameters import BASE_LEARNING_RATE

Emit = Callable[[dict[str, Any]], None]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_RANK, LORA_ALPHA = 8, 16
KEEP_CHECKPOINTS = 3  # OpenAI keeps the last three epochs' checkpoints


class TrainingError(Exception):
    def __init__(self, message: str, code: str = "training_failed") -> None:
        super().__init__(message)
        self.code = code


def load_base(gguf_path: Path, hf_dir: Path, fallback_template: str) -> tuple[Any, Any]:
    """The base model in HF form. The first time, it is dequantised from the GGUF and saved
    under `hf_dir`, which later jobs load in a fraction of the time."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (hf_dir / "config.json").exists():
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
        # A GGUF-loaded model refuses save_pretrained; a plain copy of its weights does not.
        plain = AutoModelForCausalLM.from_config(loaded.config)  # type: ignore[no-untyped-call]
        plain.load_state_dict(loaded.state_dict())
        tmp = hf_dir.with_name(hf_dir.name + f".tmp{time.time_ns()}")
        plain.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        hf_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(hf_dir)
        except OSError:  # another job got there first
            shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    if not tok.chat_template:
        tok.chat_template = fallback_template  # what llama.cpp uses for this model too
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return model, tok


def encode(
    tok: Any, example: list[dict[str, Any]], limit: int, number: int
) -> tuple[list[int], list[int]]:
    """Token ids and labels: only assistant turns with weight 1 are learned (-100 elsewhere)."""
    messages = [{"role": m["role"], "content": m["content"]} for m in example]

    def ids(upto: int, prompt: bool) -> list[int]:
        text = tok.apply_chat_template(
            messages[:upto], tokenize=False, add_generation_prompt=prompt
        )
        return list(tok(text, add_special_tokens=False)["input_ids"])

    full = ids(len(messages), False)
    if len(full) > limit:
        raise TrainingError(
            f"Example {number} is {len(full)} tokens; the base model's limit is {limit}.",
            code="invalid_training_file",
        )
    labels = [-100] * len(full)
    for k, m in enumerate(example):
        if m["role"] == "assistant" and m["weight"]:
            start, end = len(ids(k, True)), len(ids(k + 1, False))
            labels[start:end] = full[start:end]
    return full, labels


def _batch(rows: list[tuple[list[int], list[int]]], pad: int) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in rows)
    input_ids = [ids + [pad] * (width - len(ids)) for ids, _ in rows]
    labels = [lab + [-100] * (width - len(lab)) for _, lab in rows]
    mask = [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]
    return {
        "input_ids": torch.tensor(input_ids),
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(labels),
    }


def _loss_and_accuracy(model: Any, batch: dict[str, Any]) -> tuple[Any, float]:
    out = model(**batch)
    logits = out.logits[:, :-1]
    target = batch["labels"][:, 1:]
    keep = target != -100
    correct = (logits.argmax(-1) == target) & keep
    accuracy = float(correct.sum()) / max(1, int(keep.sum()))
    return out.loss, accuracy


def evaluate(model: Any, rows: list[tuple[list[int], list[int]]], pad: int) -> tuple[float, float]:
    import torch

    losses, accs = [], []
    with torch.no_grad():
        for i in range(0, len(rows), 8):
            loss, acc = _loss_and_accuracy(model, _batch(rows[i : i + 8], pad))
            losses.append(float(loss))
            accs.append(acc)
    return sum(losses) / len(losses), sum(accs) / len(accs)


def train(spec: dict[str, Any], emit: Emit) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    seed = int(spec["seed"])
    random.seed(seed)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.monotonic()
    model, tok = load_base(Path(spec["base_gguf"]), Path(spec["hf_dir"]), spec["template"])
    emit({"event": "loaded", "seconds": round(time.monotonic() - started, 2), "device": device})
    limit = int(spec["context_window"])
    examples = json.loads(Path(spec["examples_path"]).read_text())
    train_rows = [encode(tok, ex, limit, i + 1) for i, ex in enumerate(examples["train"])]
    valid_rows = [encode(tok, ex, limit, i + 1) for i, ex in enumerate(examples["valid"] or [])]
    hp = spec["hyperparameters"]
    epochs, batch_size = hp["n_epochs"], hp["batch_size"]
    steps_per_epoch = math.ceil(len(train_rows) / batch_size)
    total = epochs * steps_per_epoch
    model = get_peft_model(
        model,
        LoraConfig(
            r=LORA_RANK,
            lora_alpha=LORA_ALPHA,
            target_modules=TARGETS,
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
        ),
    ).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = BASE_LEARNING_RATE * hp["learning_rate_multiplier"]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))
    pad = tok.pad_token_id
    order = list(range(len(train_rows)))
    shuffler = random.Random(seed)
    out_dir = Path(spec["out_dir"])
    trained_tokens = 0
    step = 0
    checkpoints: list[Path] = []
    for epoch in range(epochs):
        shuffler.shuffle(order)
        for start in range(0, len(order), batch_size):
            step_started = time.monotonic()
            rows = [train_rows[i] for i in order[start : start + batch_size]]
            batch = {k: v.to(device) for k, v in _batch(rows, pad).items()}
            model.train()
            loss, acc = _loss_and_accuracy(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            trained_tokens += sum(len(ids) for ids, _ in rows)
            # The job's log (train.log): one line a step, with the step's own time.
            print(
                f"step {step}/{total} loss {loss.item():.4f} "
                f"{time.monotonic() - step_started:.3f} s",
                file=sys.stderr,
                flush=True,
            )
            metrics: dict[str, Any] = {
                "step": step,
                "train_loss": round(loss.item(), 4),
                "train_mean_token_accuracy": round(acc, 4),
            }
            last_of_epoch = start + batch_size >= len(order)
            if valid_rows and last_of_epoch:
                model.eval()
                v_loss, v_acc = evaluate(model, valid_rows, pad)
                metrics["valid_loss"] = round(v_loss, 4)
                metrics["valid_mean_token_accuracy"] = round(v_acc, 4)
                metrics["full_valid_loss"] = metrics["valid_loss"]
                metrics["full_valid_mean_token_accuracy"] = metrics["valid_mean_token_accuracy"]
            emit(
                {
                    "event": "step",
                    "total_steps": total,
                    "trained_tokens": trained_tokens,
                    "elapsed": round(time.monotonic() - started, 2),
                    **metrics,
                }
            )
            if last_of_epoch:
                path = out_dir / f"step-{step}"
                save(model, path, spec)
                checkpoints.append(path)
                while len(checkpoints) > KEEP_CHECKPOINTS:
                    shutil.rmtree(checkpoints.pop(0), ignore_errors=True)
                emit({"event": "checkpoint", "path": str(path), "metrics": metrics, "epoch": epoch})
    emit({"event": "done", "trained_tokens": trained_tokens, "path": str(checkpoints[-1])})


def save(model: Any, path: Path, spec: dict[str, Any]) -> None:
    """The PEFT adapter (for transformers users) and its GGUF twin (for llama.cpp)."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    cfg = model.base_model.model.config
    tensors = {
        name: p.detach().float().cpu().numpy()
        for name, p in model.named_parameters()
        if "lora_" in name
    }
    write_adapter(
        tensors,
        path / "adapter.gguf",
        arch=spec["arch"],
        alpha=LORA_ALPHA,
        n_head=cfg.num_attention_heads,
        n_kv_head=cfg.num_key_value_heads,
    )
