"""Text embeddings behind one small interface."""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    model_id: str
    dimensions: int

    def embed(self, texts: list[str], kind: Kind) -> npt.NDArray[np.float32]:
        """(len(texts), dimensions), L2-normalised. Blocking: call it off the event loop."""
        ...
