"""What a flow-matching model encodes with: prompt encoders and video codecs behind one interface.

:class:`~generation.wan_backend.WanModel` samples any Wan-layout transformer; what differs between
Wan 2.x and the embedded toy flow model is how a prompt becomes text states and how a video becomes
latents:

* Wan: UMT5 states, padded to ``max_sequence_length``, zeroed past each prompt
  (:class:`T5Prompts`, as ``WanPipeline._get_t5_prompt_embeds``); the causal 3-D
  ``AutoencoderKLWan``, latents normalised by the VAE's ``latents_mean`` / ``latents_std``
  (:class:`WanVideoCodec`).
* The toy flow model: all-MiniLM-L6-v2 token states with the padding zeroed (:class:`MiniLMPrompts`);
  a per-frame 2-D ``AutoencoderKL`` whose latents are multiplied by its ``scaling_factor``
  (:class:`FrameVideoCodec`), no temporal compression.

Videos are ``(B, 3, F, H, W)`` in [-1, 1]; latents ``(B, C, f, h, w)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class T5Prompts:
    """UMT5 (or T5) text states as ``WanPipeline`` computes them."""

    tokenizer: object
    text_encoder: torch.nn.Module
    device: torch.device

    @torch.no_grad()
    def encode(self, prompts: list[str], max_sequence_length: int) -> torch.Tensor:
        """``(B, L, D)`` text states, zero past each prompt's tokens."""
        from diffusers.pipelines.wan.pipeline_wan import prompt_clean

        tokens = self.tokenizer(
            [prompt_clean(p) for p in prompts],
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        mask = tokens.attention_mask.to(self.device)
        states = self.text_encoder(tokens.input_ids.to(self.device), mask).last_hidden_state
        # Zeroing (not just masking) the padding is what Wan's cross-attention was trained with.
        return states * mask.gt(0).unsqueeze(-1).to(states.dtype)


@dataclass
class MiniLMPrompts:
    """all-MiniLM-L6-v2 token states, padding zeroed (:class:`~generation.text_encoders.MiniLMPromptEncoder`)."""

    encoder: object  # a MiniLMPromptEncoder with zero_padding=True
    device: torch.device

    @torch.no_grad()
    def encode(self, prompts: list[str], max_sequence_length: int) -> torch.Tensor:
        """``(B, L, 384)``: the encoder's fixed length (its ``max_length``) whatever is asked, since
        the model was trained on exactly that context."""
        return self.encoder.encode(list(prompts)).embeds.to(self.device)


@dataclass
class WanVideoCodec:
    """Wan's causal 3-D VAE: ``f = (F − 1) / 4 + 1`` latent frames, normalised latents."""

    vae: torch.nn.Module

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.vae.config
        shape = (1, config.z_dim, 1, 1, 1)
        mean = torch.tensor(config.latents_mean).view(shape).to(like)
        std = torch.tensor(config.latents_std).view(shape).to(like)
        return mean, std

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """The posterior mean (one video, one inversion), then ``(z − mean) / std``."""
        z = self.vae.encode(video.to(self.vae.device, self.vae.dtype)).latent_dist.mode()
        mean, std = self._stats(z)
        return (z - mean) / std

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(self.vae.dtype)
        mean, std = self._stats(latents)
        return self.vae.decode(latents * std + mean, return_dict=False)[0]


@dataclass
class FrameVideoCodec:
    """A 2-D ``AutoencoderKL`` applied frame by frame; latents scaled by its ``scaling_factor``."""

    vae: torch.nn.Module

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = video.shape
        frames = video.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).to(self.vae.device, self.vae.dtype)
        z = self.vae.encode(frames).latent_dist.mode() * float(self.vae.config.scaling_factor)
        return z.reshape(b, f, *z.shape[1:]).permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = latents.shape
        z = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).to(self.vae.dtype)
        frames = self.vae.decode(z / float(self.vae.config.scaling_factor), return_dict=False)[0]
        return frames.reshape(b, f, *frames.shape[1:]).permute(0, 2, 1, 3, 4)
