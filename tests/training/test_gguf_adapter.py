"""A PEFT adapter converted to GGUF gives llama.cpp the same logits that transformers + peft
compute, on the tiny llama (both runtimes agree on its base output too)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from kotae.training.gguf_adapter import base_architecture, write_adapter
from kotae.training.lora import TARGETS

TOKENS = [1, 100, 200, 300, 400]


def tiny_gguf() -> Path:
    spec = importlib.util.find_spec("tinycoder")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "models" / "tiny.gguf"


def test_llama_cpp_with_the_converted_adapter_matches_peft(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from llama_cpp import Llama
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    gguf = tiny_gguf()
    assert base_architecture(gguf) == "llama"
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, lora_dropout=0.0)
    )
    torch.manual_seed(0)
    for name, p in peft_model.named_parameters():
        if "lora_" in name:  # B starts at zero; make the adapter do something
            p.data = torch.randn_like(p) * 0.5
    with torch.no_grad():
        expected = peft_model(torch.tensor([TOKENS])).logits[0, -1].numpy()
    tensors = {n: p.detach().numpy() for n, p in peft_model.named_parameters() if "lora_" in n}
    cfg = model.config
    write_adapter(
        tensors,
        tmp_path / "adapter.gguf",
        arch="llama",
        alpha=8,
        n_head=cfg.num_attention_heads,
        n_kv_head=cfg.num_key_value_heads,
    )

    def last_logits(**kwargs: str) -> np.ndarray:  # type: ignore[type-arg]
        llama = Llama(model_path=str(gguf), n_ctx=64, logits_all=True, verbose=False, **kwargs)
        llama.eval(TOKENS)
        return np.array(llama.scores[len(TOKENS) - 1])

    base = last_logits()
    tuned = last_logits(lora_path=str(tmp_path / "adapter.gguf"))
    assert np.abs(tuned - base).max() > 0.1  # the adapter changes the output...
    assert np.abs(tuned - expected).max() < 1e-3  # ...exactly as peft does
