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
DPO_RATE_SCALE = 0.2  # at the supervised rate, SmolLM2 over-fit a 10-pair set into babble
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


class Supervised:
    """Next-token loss on the assistant turns."""

    def __init__(self, tok: Any, examples: dict[str, Any], limit: int) -> None:
        self.pad = tok.pad_token_id
        self.rows = [encode(tok, ex, limit, i + 1) for i, ex in enumerate(examples["train"])]
        self.valid = [encode(tok, ex, limit, i + 1) for i, ex in enumerate(examples["valid"] or [])]

    def tokens(self, rows: list[Any]) -> int:
        return sum(len(ids) for ids, _ in rows)

    def step(self, model: Any, rows: list[Any], device: str) -> tuple[Any, dict[str, float]]:
        batch = {k: v.to(device) for k, v in _batch(rows, self.pad).items()}
        loss, acc = _loss_and_accuracy(model, batch)
        return loss, {"train_mean_token_accuracy": round(acc, 4)}

    def evaluate(self, model: Any, device: str) -> dict[str, float]:
        v_loss, v_acc = evaluate(model, self.valid, self.pad)
        return {
            "valid_loss": round(v_loss, 4),
            "valid_mean_token_accuracy": round(v_acc, 4),
            "full_valid_loss": round(v_loss, 4),
            "full_valid_mean_token_accuracy": round(v_acc, 4),
        }


class Preference:
    """Direct preference optimisation: the adapter learns to prefer one answer over another,
    measured against the base model (the adapter switched off) as the reference."""

    def __init__(self, tok: Any, examples: dict[str, Any], limit: int, beta: float) -> None:
        self.pad = tok.pad_token_id
        self.beta = beta
        self.rows = [self._encode(tok, ex, limit, i + 1) for i, ex in enumerate(examples["train"])]
        self.valid = [
            self._encode(tok, ex, limit, i + 1) for i, ex in enumerate(examples["valid"] or [])
        ]

    @staticmethod
    def _encode(tok: Any, ex: dict[str, Any], limit: int, number: int) -> list[Any]:
        pair = []
        for answer in (ex["chosen"], ex["rejected"]):
            turns = [
                *({**m, "weight": 0} for m in ex["prompt"]),  # only the answer is scored
                {"role": "assistant", "content": answer, "weight": 1},
            ]
            pair.append(encode(tok, turns, limit, number))
        return pair

    def tokens(self, rows: list[Any]) -> int:
        return sum(len(ids) for pair in rows for ids, _ in pair)

    def _margins(self, model: Any, rows: list[Any], device: str) -> tuple[Any, Any]:
        import torch

        flat = [seq for pair in rows for seq in pair]  # chosen, rejected, chosen, ...
        batch = {k: v.to(device) for k, v in _batch(flat, self.pad).items()}

        def logps(m: Any) -> Any:
            logits = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            target = batch["labels"][:, 1:]
            keep = target != -100
            picked = torch.gather(
                logits[:, :-1].log_softmax(-1), 2, target.clamp(min=0).unsqueeze(-1)
            ).squeeze(-1)
            return (picked * keep).sum(-1)

        policy = logps(model)
        with torch.no_grad(), model.disable_adapter():
            reference = logps(model)
        ratio = policy - reference
        return ratio[0::2], ratio[1::2]

    def step(self, model: Any, rows: list[Any], device: str) -> tuple[Any, dict[str, float]]:
        import torch

        chosen, rejected = self._margins(model, rows, device)
        margin = self.beta * (chosen - rejected)
        loss = -torch.nn.functional.logsigmoid(margin).mean()
        return loss, {
            "train_reward_margin": round(float(margin.mean().detach()), 4),
            "train_reward_accuracy": round(float((margin > 0).float().mean()), 4),
        }

    def evaluate(self, model: Any, device: str) -> dict[str, float]:
        import torch

        losses, margins = [], []
        with torch.no_grad():
            for i in range(0, len(self.valid), 4):
                chosen, rejected = self._margins(model, self.valid[i : i + 4], device)
                margin = self.beta * (chosen - rejected)
                losses.append(float(-torch.nn.functional.logsigmoid(margin).mean()))
                margins.append(float(margin.mean()))
        loss = sum(losses) / len(losses)
        return {
            "valid_loss": round(loss, 4),
            "full_valid_loss": round(loss, 4),
            "valid_reward_margin": round(sum(margins) / len(margins), 4),
        }


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
    hp = spec["hyperparameters"]
    objective: Supervised | Preference = (
        Preference(tok, examples, limit, float(hp["beta"]))
        if spec.get("method") == "dpo"
        else Supervised(tok, examples, limit)
    )
    epochs, batch_size = hp["n_epochs"], hp["batch_size"]
    steps_per_epoch = math.ceil(len(objective.rows) / batch_size)
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
    if spec.get("method") == "dpo":
        lr *= DPO_RATE_SCALE
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))
    order = list(range(len(objective.rows)))
    shuffler = random.Random(seed)
    out_dir = Path(spec["out_dir"])
    trained_tokens = 0
    step = 0
    checkpoints: list[Path] = []
    for epoch in range(epochs):
        shuffler.shuffle(order)
        for start in range(0, len(order), batch_size):
            step_started = time.monotonic()
            rows = [objective.rows[i] for i in order[start : start + batch_size]]
            model.train()
            loss, details = objective.step(model, rows, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            trained_tokens += objective.tokens(rows)
            # The job's log (train.log): one line a step, with the step's own time.
            print(
                f"step {step}/{total} loss {loss.item():.4f} "
                f"{time.monotonic() - step_started:.3f} s",
                file=sys.stderr,
                flush=True,
            )
            metrics: dict[str, Any] = {"step": step, "train_loss": round(loss.item(), 4), **details}
            last_of_epoch = start + batch_size >= len(order)
            if objective.valid and last_of_epoch:
                model.eval()
                metrics.update(objective.evaluate(model, device))
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
