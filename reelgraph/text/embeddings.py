"""Sentence embeddings with MiniLM (all-MiniLM-L6-v2), always ours.

Chroma's default embedding function downloads a model at run time, so every
vector that reaches Chroma is computed here. Vectors are L2-normalised, so a
dot product is the cosine similarity.

A BERT checkpoint with mean pooling (MiniLM is one) runs on
:mod:`reelgraph.text.minilm`, which loads in well under a second; any other
sentence-transformers model goes through the ``sentence_transformers``
library (slower to import: 8-15 s here).

``encoder="onnx"`` runs that MiniLM through ONNX Runtime instead
(:mod:`reelgraph.text.minilm_onnx`: the same weights, exported locally on first
use into ``cache``); vectors agree with the torch path to cosine > 0.9999
(``bench/results/text_encoder.md``). ``encoder="torch"`` (fp32 eager) stays the default.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reelgraph.errors import ReelgraphError
from reelgraph.resolve import resolve_text_model

EMBEDDING_DIM = 384
ENCODERS = ("torch", "onnx")


class TextEmbedder:
    """Lazy MiniLM sentence encoder.

    Args:
        model: hub name or path; resolved by :func:`reelgraph.resolve.resolve_text_model`.
        batch_size: texts per forward pass.
        encoder: ``"torch"`` or ``"onnx"`` (a mean-pooled BERT such as MiniLM only).
        cache: folder for the ONNX export (``encoder="onnx"``); default ``~/.cache/reelgraph/text``.
    """

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 64,
        encoder: str = "torch",
        cache: str | os.PathLike[str] | None = None,
    ):
        if encoder not in ENCODERS:
            raise ReelgraphError(
                f"Text encoder {encoder!r} is not known.", fix=f"use one of {', '.join(ENCODERS)}."
            )
        self.model_path = resolve_text_model(model)
        self.batch_size = batch_size
        self.encoder = encoder
        self.cache = Path(cache) if cache is not None else Path.home() / ".cache" / "reelgraph" / "text"

    @functools.cached_property
    def _fast(self):
        """Our MiniLM module when the checkpoint is a mean-pooled BERT in a local folder, else None."""
        from reelgraph.text.minilm import load_minilm

        return load_minilm(self.model_path) if _is_mean_pooled_bert(Path(self.model_path)) else None

    @functools.cached_property
    def _onnx(self):
        if self._fast is None:
            raise ReelgraphError(
                f"The ONNX text encoder needs a mean-pooled BERT checkpoint; {self.model_path} is not one.",
                fix="set text_encoder = torch (REELGRAPH_TEXT_ENCODER=torch).",
            )
        from reelgraph.text.minilm_onnx import OnnxMiniLM

        return OnnxMiniLM(self._fast, self.model_path, self.cache)

    @functools.cached_property
    def _model(self):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(self.model_path, device="cpu")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return ``(N, 384)`` float32 unit vectors, one per text."""
        if len(texts) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        if self.encoder == "onnx":
            return self._onnx.sentence_embeddings(list(texts), self.batch_size)
        if self._fast is not None:
            return self._fast.sentence_embeddings(list(texts), self.batch_size).numpy().astype(np.float32)
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


def _is_mean_pooled_bert(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        normalized = any(
            "Normalize" in m.get("type", "") for m in json.loads((folder / "modules.json").read_text())
        )
    except (OSError, json.JSONDecodeError):
        return False
    return (
        config.get("model_type") == "bert"
        and pooling.get("pooling_mode_mean_tokens") is True
        and not any(pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens"))
        and normalized
        and (folder / "tokenizer.json").is_file()
        and (folder / "model.safetensors").is_file()
    )


@functools.lru_cache(maxsize=4)
def get_embedder(model: str | None = None, encoder: str = "torch", cache: str | None = None) -> TextEmbedder:
    """One shared embedder per model and encoder, so the weights load once per process."""
    return TextEmbedder(model, encoder=encoder, cache=cache)
