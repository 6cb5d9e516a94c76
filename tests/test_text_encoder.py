"""The ONNX MiniLM path: exported locally from the packaged weights, agrees with the fp32 torch vectors."""

from __future__ import annotations

import numpy as np
import pytest

from reelgraph.errors import ReelgraphError
from reelgraph.text.embeddings import TextEmbedder

CAPTIONS = [
    "a red ball rolls to the right",
    "a small blue square slides up on a striped background",
    "a dog runs in the park",
    "aerial view of the city at night",
    "",
    "🐶🏃‍♂️💨",
    "x " * 400,  # past the 256-token limit: truncated alike
]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    cache = tmp_path_factory.mktemp("text-cache")
    return TextEmbedder(encoder="torch"), TextEmbedder(encoder="onnx", cache=cache), cache


def test_onnx_vectors_agree_with_torch(encoders):
    torch_path, onnx_path, _ = encoders
    texts = CAPTIONS + [f"a {c} circle moves {d}" for c in ("red", "green") for d in ("left", "up", "down")]
    a, b = torch_path.embed(texts), onnx_path.embed(texts)
    assert b.shape == a.shape == (len(texts), 384) and b.dtype == np.float32
    cosine = (a * b).sum(axis=1)
    assert cosine.min() >= 0.999, cosine.min()
    assert np.abs(a - b).max() < 1e-4
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    # batching does not change a vector (padding is masked in the graph too)
    assert np.allclose(onnx_path.embed(texts[:1])[0], b[0], atol=1e-6)


def test_export_is_cached_by_weights(encoders):
    _, onnx_path, cache = encoders
    onnx_path.embed(["warm"])
    (exported,) = cache.glob("minilm-*.onnx")
    stamp = exported.stat().st_mtime_ns
    again = TextEmbedder(encoder="onnx", cache=cache)
    again.embed(["a ball"])
    assert again._onnx.path == exported and exported.stat().st_mtime_ns == stamp


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(ReelgraphError, match="not known"):
        TextEmbedder(encoder="tensorrt")


def test_setting_selects_the_encoder(tmp_path, monkeypatch):
    from reelgraph.settings import load_settings
    from reelgraph.text.models import TextModels

    monkeypatch.setenv("REELGRAPH_TEXT_ENCODER", "onnx")
    settings = load_settings(home=tmp_path).settings
    embedder = TextModels.from_settings(settings.text).embedder
    assert embedder.encoder == "onnx" and embedder.cache == tmp_path / "cache" / "text"
    monkeypatch.setenv("REELGRAPH_TEXT_ENCODER", "int4")
    with pytest.raises(Exception, match="text_encoder"):
        load_settings(home=tmp_path)
