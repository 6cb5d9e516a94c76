"""Sentence embeddings with MiniLM (all-MiniLM-L6-v2), always ours.

Chroma's default embedding function downloads a model at run time, so every
vector that reaches Chroma is computed here. Vectors are L2-normalised, so a
dot product is the cosine similarity.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np

from reelgraph.resolve import resolve_text_model

EMBEDDING_DIM = 384


class TextEmbedder:
    """Lazy MiniLM sentence encoder.

    Args:
        model: hub name or path; resolved by :func:`reelgraph.resolve.resolve_text_model`.
        batch_size: texts per forward pass.
    """

    def __init__(self, model: str | None = None, batch_size: int = 64):
        self.model_path = resolve_text_model(model)
        self.batch_size = batch_size

    @functools.cached_property
    def _model(self):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(self.model_path, device="cpu")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return ``(N, 384)`` float32 unit vectors, one per text."""
        if len(texts) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)

    def similarity(self, a: str, b: str) -> float:
        va, vb = self.embed([a, b])
        return float(va @ vb)


@functools.lru_cache(maxsize=4)
def get_embedder(model: str | None = None) -> TextEmbedder:
    """One shared embedder per model, so the weights load once per process."""
    return TextEmbedder(model)
