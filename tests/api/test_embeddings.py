from __future__ import annotations

import base64

import numpy as np
import openai
import pytest
from openai import OpenAI


def test_openai_names_and_cross_lingual_similarity(client: OpenAI) -> None:
    r = client.embeddings.create(
        model="text-embedding-3-small",
        input=["The dog runs in the park", "犬が公園で走っている", "Stock markets fell today"],
    )
    # The name asked for is echoed, as every other endpoint's aliases are.
    assert r.model == "text-embedding-3-small" and len(r.data) == 3
    v = np.array([d.embedding for d in r.data])
    assert v.shape == (3, 512)
    assert v[0] @ v[1] > 0.7 > v[0] @ v[2]
    assert r.usage.prompt_tokens > 0


def test_dimensions_and_base64(client: OpenAI) -> None:
    r = client.embeddings.create(
        model="text-embedding-3-large", input="hello", dimensions=64, encoding_format="base64"
    )
    raw = r.data[0].embedding
    vec = (
        np.frombuffer(base64.b64decode(raw), dtype=np.float32)
        if isinstance(raw, str)
        else np.array(raw)
    )
    assert vec.shape == (64,) and abs(np.linalg.norm(vec) - 1) < 1e-4
    # The SDK decodes base64 itself when it asked for it on the caller's behalf.
    r = client.embeddings.create(model="text-embedding-ada-002", input="hello", dimensions=8)
    assert len(r.data[0].embedding) == 8


def test_errors(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="x")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=4096)
    with pytest.raises(openai.BadRequestError):  # not a cl100k_base token
        client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 10**6]])
    assert "text-embedding-3-small" in [m.id for m in client.models.list()]
