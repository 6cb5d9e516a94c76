"""MiniLM sentence embeddings through ONNX Runtime: the same weights, less per-call overhead.

A warm query embeds one short prompt (and a few unit phrases); in eager torch that
is ~80 small kernel launches through Python (about 8-12 ms on this CPU), in ONNX
Runtime one session call. The graph is exported here, locally, from the
packaged checkpoint's weights: :class:`reelgraph.text.minilm.MiniLM`'s forward
pass plus the masked mean pooling and L2 normalisation, traced once and written
to ``<cache>/<key>.onnx``, the key a hash of the weights file, the config and
the exporter's versions. No file comes from anywhere else.

Agreement with the fp32 torch vectors is measured by ``bench/text_encoder.py``
and checked by ``tests/test_text_encoder.py``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from reelgraph.atomic import atomic_path

EXPORT_VERSION = 1  # bump when the exported graph changes


def _weights_key(model_path: Path) -> str:
    import onnxruntime
    import torch

    digest = hashlib.sha256()
    with open(model_path / "model.safetensors", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update((model_path / "config.json").read_bytes())
    digest.update(json.dumps([EXPORT_VERSION, torch.__version__, onnxruntime.__version__]).encode())
    return digest.hexdigest()[:24]


def export_minilm(minilm, target: Path) -> Path:
    """Trace ``minilm`` (ids ``(B, L)`` -> unit vectors ``(B, D)``) into an ONNX file at ``target``."""
    import torch
    import torch.nn.functional as F

    class SentenceEncoder(torch.nn.Module):
        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            states, mask = minilm.forward.__wrapped__(minilm, input_ids)  # without inference_mode
            weights = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            return F.normalize(pooled, p=2, dim=1)

    example, _ = minilm.token_ids(["a red ball rolls to the right", "a dog"], 256)
    with atomic_path(target) as tmp, torch.no_grad(), warnings.catch_warnings():
        # math.sqrt(head_dim) is a constant of the checkpoint, which is what the tracer warns about
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            SentenceEncoder(),
            (example,),
            str(tmp),
            input_names=["input_ids"],
            output_names=["embeddings"],
            dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "embeddings": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return target


class OnnxMiniLM:
    """Sentence embeddings of a :class:`~reelgraph.text.minilm.MiniLM` checkpoint via ONNX Runtime.

    Args:
        minilm: the loaded torch model (tokeniser and the weights to export).
        model_path: its folder (the cache key hashes its weights).
        cache: folder for the exported graph.
        threads: ONNX Runtime intra-op threads.
    """

    def __init__(self, minilm, model_path: str | Path, cache: str | Path, threads: int = 1):
        import onnxruntime

        self.minilm = minilm
        cache = Path(cache).expanduser()
        self.path = cache / f"minilm-{_weights_key(Path(model_path))}.onnx"
        if not self.path.is_file():
            export_minilm(minilm, self.path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )

    def sentence_embeddings(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """``(N, D)`` float32 unit vectors (the torch path's pooling, in the graph)."""
        from reelgraph.text.minilm import SENTENCE_MAX_TOKENS

        chunks = []
        for start in range(0, len(texts), batch_size):
            ids, _ = self.minilm.token_ids(texts[start : start + batch_size], SENTENCE_MAX_TOKENS)
            (vectors,) = self.session.run(None, {"input_ids": ids.numpy()})
            chunks.append(vectors.astype(np.float32, copy=False))
        if not chunks:
            return np.zeros((0, self.minilm.hidden_size), np.float32)
        return np.concatenate(chunks)
