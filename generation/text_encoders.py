"""Text encoders: prompts to the cross-attention context of a video UNet.

Two kinds share one interface:

* :class:`CLIPPromptEncoder`: the CLIP text tower of ModelScope / Zeroscope
  checkpoints (``text_encoder`` + ``tokenizer`` folders), as diffusers'
  ``TextToVideoSDPipeline`` encodes prompts.
* :class:`MiniLMPromptEncoder`: all-MiniLM-L6-v2's last hidden states, the
  toy model's context, computed by :mod:`reelgraph.text.minilm`. Its weights come
  from the offline copy that :func:`reelgraph.resolve.resolve_text_model`
  finds, not from the model folder.

Both pad to a fixed ``max_length`` and truncate longer prompts, reporting
which prompts were truncated so callers can warn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class EncodedPrompts:
    """``embeds``: ``(B, L, D)``; ``truncated[i]`` is True where prompt i lost tokens."""

    embeds: torch.Tensor
    truncated: list[bool]


class _TokenizingEncoder:
    """Shared tokenizing and device handling; subclasses define ``encode(prompts) -> EncodedPrompts``."""

    tokenizer = None
    model = None
    max_length: int

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> _TokenizingEncoder:
        self.model.to(device=device, dtype=dtype)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _tokenize(self, prompts: list[str]):
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        full = self.tokenizer(prompts, padding="longest", return_tensors="pt").input_ids
        truncated = [int((row != self.tokenizer.pad_token_id).sum()) > self.max_length for row in full]
        return tokens, truncated


class CLIPPromptEncoder(_TokenizingEncoder):
    """CLIP text encoder as diffusers' text-to-video pipelines use it (no attention mask)."""

    def __init__(self, tokenizer, text_encoder):
        self.tokenizer = tokenizer
        self.model = text_encoder.eval().requires_grad_(False)
        self.max_length = tokenizer.model_max_length

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> EncodedPrompts:
        tokens, truncated = self._tokenize(prompts)
        embeds = self.model(tokens.input_ids.to(self.device))[0]
        return EncodedPrompts(embeds, truncated)


class MiniLMPromptEncoder:
    """all-MiniLM-L6-v2 token states ``(B, max_length, 384)``, padding included.

    The BERT attention mask hides padding from the real tokens; the padded
    positions' states are kept because the toy UNet was trained on exactly
    this fixed-length context. ``zero_padding`` zeroes them instead, as
    ``WanPipeline`` does with T5 states: the toy flow transformer's context.
    Runs on the CPU (22M parameters, milliseconds
    per prompt) through :mod:`reelgraph.text.minilm`; embeddings move to the
    model's device afterwards.
    """

    def __init__(self, model_path: str, max_length: int = 32, zero_padding: bool = False):
        from reelgraph.text.minilm import load_minilm

        self.minilm = load_minilm(str(model_path))
        self.max_length = max_length
        self.zero_padding = zero_padding
        self.hidden_size = self.minilm.hidden_size

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> MiniLMPromptEncoder:
        return self  # stays on the CPU; see the class docstring

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> EncodedPrompts:
        ids, full_lengths = self.minilm.token_ids(list(prompts), self.max_length, pad_to=self.max_length)
        states, mask = self.minilm.forward(ids)
        if self.zero_padding:
            states = states * mask.unsqueeze(-1).to(states.dtype)
        return EncodedPrompts(states.clone(), [n > self.max_length for n in full_lengths])
