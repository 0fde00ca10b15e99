"""/v1/embeddings on the packaged multilingual model (OpenAI's names alias it)."""

from __future__ import annotations

import base64
import fnmatch
from typing import Any

import numpy as np

from kotae.errors import InvalidRequest, ModelNotFound
from kotae.providers.embeddings.base import Embedder
from kotae.schemas.embeddings import CreateEmbedding
from kotae.services.vector_stores.chunking import count_tokens

ALIASES = ["text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"]
MAX_INPUTS = 2048


class EmbeddingsService:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def names(self) -> list[str]:
        return [self.embedder.model_id, *ALIASES]

    def create(self, req: CreateEmbedding) -> dict[str, Any]:
        if req.model != self.embedder.model_id and not any(
            fnmatch.fnmatchcase(req.model, a) for a in ALIASES
        ):
            raise ModelNotFound(f"The model '{req.model}' does not exist.", param="model")
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts:
            raise InvalidRequest("input must not be empty.", param="input")
        if not all(isinstance(t, str) for t in texts):
            raise InvalidRequest("Token arrays are not supported here; send text.", param="input")
        if len(texts) > MAX_INPUTS:
            raise InvalidRequest(f"At most {MAX_INPUTS} inputs a request.", param="input")
        if any(not t for t in texts):
            raise InvalidRequest("input strings must not be empty.", param="input")
        full = self.embedder.dimensions
        if req.dimensions is not None and req.dimensions > full:
            raise InvalidRequest(f"dimensions may be at most {full}.", param="dimensions")
        vectors = self.embedder.embed([str(t) for t in texts], "passage")
        if req.dimensions is not None:
            # Shortened as OpenAI does: the leading dimensions, normalised again.
            vectors = vectors[:, : req.dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        tokens = sum(count_tokens(str(t)) for t in texts)
        data = []
        for i, v in enumerate(vectors.astype(np.float32)):
            value: Any = (
                base64.b64encode(v.tobytes()).decode()
                if req.encoding_format == "base64"
                else [float(x) for x in v]
            )
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {
            "object": "list",
            "data": data,
            "model": self.embedder.model_id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
