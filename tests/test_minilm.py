"""Our MiniLM forward pass against the libraries it stands in for."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reelgraph.resolve import resolve_text_model
from reelgraph.text.minilm import MiniLM

TEXTS = [
    "a red ball rolls to the right",
    "",
    "A blue box is pushed by a red ball 🎈 über café",
    "ball " * 300,
]


@pytest.fixture(scope="module")
def minilm():
    return MiniLM(resolve_text_model())


def test_sentence_embeddings_match_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(resolve_text_model(), device="cpu").encode(
        TEXTS, normalize_embeddings=True
    )
    ours = minilm.sentence_embeddings(TEXTS).numpy()
    assert ours.shape == (4, 384)
    assert np.abs(ours - reference).max() < 1e-5


def test_token_states_match_transformers_bert(minilm):
    from transformers import AutoModel, AutoTokenizer

    path = resolve_text_model()
    tokens = AutoTokenizer.from_pretrained(path)(
        TEXTS, padding="max_length", max_length=32, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        reference = AutoModel.from_pretrained(path)(**tokens).last_hidden_state
    ids, full = minilm.token_ids(TEXTS, 32, pad_to=32)
    assert torch.equal(ids, tokens.input_ids)
    states, mask = minilm.forward(ids)
    assert torch.equal(mask, tokens.attention_mask.bool())
    assert (states - reference).abs().max() < 2e-4
    assert [n > 32 for n in full] == [False, False, False, True]


def test_embedder_uses_the_fast_path():
    from reelgraph.text.embeddings import TextEmbedder

    embedder = TextEmbedder()
    assert embedder._fast is not None
    a, b, c = embedder.embed(["a red ball rolls", "a red sphere rolls", "a dog barks at night"])
    assert a @ b > a @ c
