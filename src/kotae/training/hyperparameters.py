"""`auto` hyperparameters, chosen the way OpenAI documents it: enough epochs that a small
file is seen about 100 times in all, a batch that grows with the data."""

from __future__ import annotations

import math
from typing import Any

from kotae.errors import InvalidRequest

MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES = 100, 25_000
DEFAULT_EPOCHS, MAX_EPOCHS = 3, 25
BASE_LEARNING_RATE = 5e-4  # LoRA's rate at multiplier 1
AUTO_MULTIPLIER = 2.0
AUTO_BETA = 0.1  # DPO: how far the model may move from the base


def check(hp: dict[str, Any], param: str, dpo: bool = False) -> dict[str, Any]:
    """The request's values, checked; `auto` (or absent) kept as "auto"."""
    out: dict[str, Any] = {}
    known: list[tuple[str, type, float, float]] = [
        ("n_epochs", int, 1, 50),
        ("batch_size", int, 1, 256),
        ("learning_rate_multiplier", float, 1e-3, 50.0),
    ]
    if dpo:
        known.append(("beta", float, 1e-3, 2.0))
    for name, kind, low, high in known:
        value = hp.get(name, "auto")
        if value is None or value == "auto":
            out[name] = "auto"
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{name} must be 'auto' or a number.", param=f"{param}.{name}")
        if kind is int and value != int(value):
            raise InvalidRequest(f"{name} must be an integer.", param=f"{param}.{name}")
        if not low <= value <= high:
            raise InvalidRequest(
                f"{name} must be between {low} and {high}.", param=f"{param}.{name}"
            )
        out[name] = kind(value)
    unknown = set(hp) - set(out)
    if unknown:
        raise InvalidRequest(
            f"Unknown hyperparameter '{sorted(unknown)[0]}'.", param=f"{param}.{sorted(unknown)[0]}"
        )
    return out


def resolve(hp: dict[str, Any], n_examples: int) -> dict[str, Any]:
    """Concrete values for a file of `n_examples`."""
    epochs = hp.get("n_epochs", "auto")
    if epochs == "auto":
        epochs = DEFAULT_EPOCHS
        if n_examples * epochs < MIN_TARGET_EXAMPLES:
            epochs = min(MAX_EPOCHS, math.ceil(MIN_TARGET_EXAMPLES / n_examples))
        elif n_examples * epochs > MAX_TARGET_EXAMPLES:
            epochs = max(1, MAX_TARGET_EXAMPLES // n_examples)
    batch = hp.get("batch_size", "auto")
    if batch == "auto":
        batch = max(1, min(256, round(n_examples * 0.002)))
    multiplier = hp.get("learning_rate_multiplier", "auto")
    if multiplier == "auto":
        multiplier = AUTO_MULTIPLIER
    out = {
        "n_epochs": int(epochs),
        "batch_size": int(min(batch, n_examples)),
        "learning_rate_multiplier": float(multiplier),
    }
    if "beta" in hp:
        out["beta"] = AUTO_BETA if hp["beta"] == "auto" else float(hp["beta"])
    return out
