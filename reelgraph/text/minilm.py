"""all-MiniLM-L6-v2, the one text model of reelgraph, as a small torch module of our own.

Retrieval (sentence embeddings), the unit vectors, the rewrite guard and the
toy video model's cross-attention context (token states) all use MiniLM. The
model is a 6-layer BERT; its forward pass is the standard one (Devlin et al.
2019) and short enough to state here, which buys what a planner needs:
importing ``sentence_transformers`` takes 8-15 s on this CPU and ``transformers``
3-5 s, while this loads in a fraction of a second from the same files
(``tokenizer.json`` through the ``tokenizers`` library, weights from
``model.safetensors``). Tests check it against sentence-transformers and
transformers' ``BertModel`` to float precision.

Sentence embeddings follow the checkpoint's sentence-transformers recipe:
mean of the token states over the attention mask, then L2 normalisation,
at most 256 tokens.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

SENTENCE_MAX_TOKENS = 256


class MiniLM:
    """A BERT encoder read from a sentence-transformers / transformers folder.

    Args:
        path: folder with ``config.json``, ``tokenizer.json`` and ``model.safetensors``.
    """

    def __init__(self, path: str | Path):
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        path = Path(path)
        self.config = json.loads((path / "config.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.weights = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
        self.pad_id = int(self.config.get("pad_token_id", 0))
        self.hidden_size = int(self.config["hidden_size"])
        self.num_heads = int(self.config["num_attention_heads"])
        self.num_layers = int(self.config["num_hidden_layers"])
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))

    # -- tokens -----------------------------------------------------------------------
    def token_ids(
        self, texts: list[str], max_length: int, pad_to: int | None = None
    ) -> tuple[torch.Tensor, list[int]]:
        """``(B, L)`` ids, truncated to ``max_length`` (special tokens included) and right-padded;
        also each text's full length before truncation."""
        encodings = self.tokenizer.encode_batch(list(texts))
        full_lengths = [len(e.ids) for e in encodings]
        rows = []
        for encoding in encodings:
            ids = encoding.ids
            if len(ids) > max_length:  # keep [CLS] ... and the final [SEP]
                ids = [*ids[: max_length - 1], ids[-1]]
            rows.append(ids)
        width = pad_to if pad_to is not None else max(len(r) for r in rows)
        batch = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, ids in enumerate(rows):
            batch[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return batch, full_lengths

    # -- the encoder ------------------------------------------------------------------------
    def _w(self, name: str) -> torch.Tensor:
        return self.weights[name]

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self._w(f"{name}.weight"), self._w(f"{name}.bias"))

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(
            x, (self.hidden_size,), self._w(f"{name}.weight"), self._w(f"{name}.bias"), self.eps
        )

    @torch.inference_mode()
    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden states ``(B, L, D)`` and the attention mask ``(B, L)`` (padding = ``pad_token_id``)."""
        mask = input_ids != self.pad_id
        positions = torch.arange(input_ids.shape[1])
        x = (
            F.embedding(input_ids, self._w("embeddings.word_embeddings.weight"))
            + self._w("embeddings.position_embeddings.weight")[positions]
            + self._w("embeddings.token_type_embeddings.weight")[0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        b, length, d = x.shape
        heads, head_dim = self.num_heads, d // self.num_heads
        key_mask = mask[:, None, None, :]  # padding is hidden from every query
        for i in range(self.num_layers):
            p = f"encoder.layer.{i}"

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(b, length, heads, head_dim).transpose(1, 2)

            q = split(self._linear(x, f"{p}.attention.self.query"))
            k = split(self._linear(x, f"{p}.attention.self.key"))
            v = split(self._linear(x, f"{p}.attention.self.value"))
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim)
            scores = scores.masked_fill(~key_mask, torch.finfo(scores.dtype).min)
            context = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, length, d)
            x = self._norm(
                self._linear(context, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm"
            )
            hidden = F.gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._norm(self._linear(hidden, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        return x, mask

    def sentence_embeddings(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """``(N, D)`` unit vectors: masked mean of the token states (the checkpoint's pooling)."""
        chunks = []
        for start in range(0, len(texts), batch_size):
            ids, _ = self.token_ids(texts[start : start + batch_size], SENTENCE_MAX_TOKENS)
            states, mask = self.forward(ids)
            weights = mask.unsqueeze(-1).float()
            pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            chunks.append(F.normalize(pooled, p=2, dim=1))
        return torch.cat(chunks) if chunks else torch.zeros((0, self.hidden_size))


@functools.lru_cache(maxsize=2)
def load_minilm(path: str) -> MiniLM:
    """One MiniLM per folder per process."""
    return MiniLM(path)
