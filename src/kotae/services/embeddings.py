"""/v1/embeddings on the packaged multilingual model (OpenAI's names alias it)."""

from __future__ import annotations

import base64
import fnmatch
import functools
from typing import Any

import numpy as np

from kotae.errors import InvalidRequest, ModelNotFound
from kotae.providers.embeddings.base import Embedder
from kotae.schemas.embeddings import CreateEmbedding
from kotae.services.vector_stores.chunking import count_tokens

ALIASES = ["text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"]
# OpenAI's limits: tokens an input, inputs a request, tokens a request.
MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
MAX_REQUEST_TOKENS = 300_000
# No token is longer than this many characters, so a longer input is refused unread (the
# encoder's memory grows with the input: a 10 MB input once took 20 GB).
MAX_CHARS_PER_TOKEN = 8


@functools.cache
def _cl100k() -> Any:
    from bpe_openai import get_encoding

    return get_encoding("cl100k_base")  # ~7 ms a call: made once


def decode_tokens(tokens: list[int], param: str) -> str:
    """A token array as text. OpenAI's embedding models read cl100k_base tokens, so clients
    that count tokens with tiktoken (LangChain does) send those: they are decoded with the
    same encoding (bpe-openai ships it; nothing is downloaded), then embedded as text."""
    encoding = _cl100k()
    if not tokens:
        raise InvalidRequest("A token array must not be empty.", param=param)
    top = encoding.n_vocab
    if min(tokens) < 0 or max(tokens) >= top:  # the request's validation made them ints
        j, token = next((j, t) for j, t in enumerate(tokens) if not 0 <= t < top)
        raise InvalidRequest(
            f"Invalid token {token!r}: cl100k_base tokens are 0 to {top - 1}.",
            param=f"{param}[{j}]",
        )
    text: str = encoding.decode(tokens)
    return text


class EmbeddingsService:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def names(self) -> list[str]:
        return [self.embedder.model_id, *ALIASES]

    def serves(self, name: str) -> bool:
        """Whether `model` names this embedding model (its id or an OpenAI alias)."""
        return name == self.embedder.model_id or any(fnmatch.fnmatchcase(name, a) for a in ALIASES)

    @staticmethod
    def _token_counts(texts: list[str], listed: bool) -> list[int]:
        """Each input's tokens, with the limits checked before the encoder sees anything."""
        counts: list[int] = []
        chars = 0
        for i, text in enumerate(texts):
            param = f"input[{i}]" if listed else "input"
            n = (
                MAX_INPUT_TOKENS + 1
                if len(text) > MAX_INPUT_TOKENS * MAX_CHARS_PER_TOKEN
                else count_tokens(text)
            )
            if n > MAX_INPUT_TOKENS:
                raise InvalidRequest(
                    f"Invalid '{param}': this model's maximum input length is "
                    f"{MAX_INPUT_TOKENS} tokens; this input is longer ({len(text)} characters).",
                    param=param,
                    code="context_length_exceeded",
                )
            counts.append(n)
            chars += len(text)
            if sum(counts) > MAX_REQUEST_TOKENS or chars > MAX_REQUEST_TOKENS * MAX_CHARS_PER_TOKEN:
                raise InvalidRequest(
                    f"Requests may hold at most {MAX_REQUEST_TOKENS} tokens in all inputs.",
                    param="input",
                    code="max_tokens_per_request",
                )
        return counts

    def create(self, req: CreateEmbedding) -> dict[str, Any]:
        if not self.serves(req.model):
            raise ModelNotFound(f"The model '{req.model}' does not exist.", param="model")
        given: list[Any] = [req.input] if isinstance(req.input, str) else list(req.input)
        if given and all(isinstance(t, int) for t in given):
            given = [given]  # one token array
        if not given:
            raise InvalidRequest("input must not be empty.", param="input")
        texts = [
            t if isinstance(t, str) else decode_tokens(t, f"input[{i}]")
            for i, t in enumerate(given)
        ]
        if len(texts) > MAX_INPUTS:
            raise InvalidRequest(f"At most {MAX_INPUTS} inputs a request.", param="input")
        if any(not t for t in texts):
            raise InvalidRequest("input strings must not be empty.", param="input")
        counts = self._token_counts([str(t) for t in texts], isinstance(req.input, list))
        full = self.embedder.dimensions
        if req.dimensions is not None and req.dimensions > full:
            raise InvalidRequest(f"dimensions may be at most {full}.", param="dimensions")
        vectors = self.embedder.embed([str(t) for t in texts], "passage")
        if req.dimensions is not None:
            # Shortened as OpenAI does: the leading dimensions, normalised again.
            vectors = vectors[:, : req.dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        tokens = sum(counts)
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
            "model": req.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
