"""A PEFT LoRA adapter as a llama.cpp GGUF adapter, so fine-tuned models are served by the
same embedded engine as their base (tools, JSON schema, streaming) with only the adapter
loaded on top. Tensor names and the q/k row order follow llama.cpp's convert scripts."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np

from kotae.errors import InvalidRequest

TENSOR_NAMES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
# Architectures whose converter reorders q/k rows for llama.cpp's rope (LlamaModel.permute).
PERMUTED = {"llama"}
SUPPORTED = PERMUTED | {"qwen2", "qwen3"}
_KEY = re.compile(r"layers\.(\d+)\.\w+\.(\w+)\.lora_([AB])(?:\.\w+)?\.weight$")


def base_architecture(gguf_path: Path) -> str:
    """Reading a GGUF's header takes seconds (every tensor's entry is parsed): call it off the
    event loop. Kept per file and modification time."""
    stat = gguf_path.stat()
    return _architecture(str(gguf_path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _architecture(path: str, _mtime_ns: int, _size: int) -> str:
    import gguf

    reader = gguf.GGUFReader(path)
    field = reader.fields["general.architecture"]
    return bytes(field.parts[field.data[0]]).decode()


def check_trainable(gguf_path: Path) -> None:
    arch = base_architecture(gguf_path)
    if arch not in SUPPORTED:
        raise InvalidRequest(
            f"Fine-tuning models of architecture '{arch}' is not supported yet "
            f"(supported: {', '.join(sorted(SUPPORTED))}).",
            param="model",
        )


def _permute(w: np.ndarray[Any, Any], n_head: int) -> np.ndarray[Any, Any]:
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def write_adapter(
    tensors: dict[str, np.ndarray[Any, Any]],
    out: Path,
    *,
    arch: str,
    alpha: float,
    n_head: int,
    n_kv_head: int,
) -> None:
    """`tensors`: PEFT state-dict names -> arrays."""
    import gguf

    tmp = out.with_suffix(".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    for name, value in sorted(tensors.items()):
        m = _KEY.search(name)
        if m is None:
            continue
        layer, proj, ab = m.groups()
        arr = np.ascontiguousarray(value, dtype=np.float32)
        if ab == "B" and arch in PERMUTED and proj in ("q_proj", "k_proj"):
            arr = _permute(arr, n_head if proj == "q_proj" else n_kv_head)
        writer.add_tensor(f"blk.{layer}.{TENSOR_NAMES[proj]}.weight.lora_{ab.lower()}", arr)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
