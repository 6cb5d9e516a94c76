"""The embedded toy model's denoiser: diffusers' ``WanTransformer3DModel`` plus a pooled-text path.

Wan's transformer brings what the toy model needs to learn motion: full 3-D self-attention over
(frame, row, column) tokens with 3-D RoPE (Wan 2.1 §3.1), text cross-attention in every block,
and adaptive norms driven by the timestep (DiT's adaLN, with Wan's learned ``scale_shift_table``).
Two minimal extensions, both declared in the config so ``from_pretrained`` rebuilds them:

* ``pooled_text``: the masked mean of the text states, through a two-layer MLP, is added to the
  timestep embedding before Wan's ``time_proj`` (DiT §3.2's adaLN on class + time; SD3 adds pooled
  text the same way). Cross-attention alone leaves the caption weak at high noise, where a clip's
  trajectory is decided; the adaptive norms reach every token of every block.
* ``condition_channels``: Wan's image-to-video input layout: the noisy latents are concatenated
  with a mask channel (1 where a frame is given) and the given frames' latents, ``(B, C + 1 + C,
  F, h, w)``; zeros when nothing is given (text-to-video). Trained with a share of clips whose
  first frames are given, so one network also continues videos (ART-V's masked diffusion).
* ``condition_noise``: the given frames may be noised (ART-V §3.3 noise augmentation) and their
  tokens then get the timestep of their own noise level instead of the clip's, through Wan 2.2's
  per-token timesteps (``timestep (B, seq_len)``, as its TI2V model gives the image's tokens t = 0).
  ART-V adds the level to the timestep embedding; per-token timesteps say the same to exactly the
  tokens it concerns and need no new weights.
* ``anchor_frame``: one latent frame ``(B, C, h, w)``, the video's first frame (ART-V §3.4 anchored
  conditioning), patchified like the clip and embedded into extra cross-attention tokens placed
  before the text tokens, through the slot Wan's image-to-video model gives its CLIP image tokens
  (``encoder_hidden_states_image``). ART-V also injects its anchor by cross-attention; without an
  anchor the context is the text alone, so the same weights run text-to-video unchanged.

Padding of the text states is zeroed by the prompt encoder (as ``WanPipeline`` does), so the
pooled mean counts rows that are not all zero.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import PixArtAlphaTextProjection
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanTimeTextImageEmbedding, WanTransformer3DModel


def pooled_text(states: torch.Tensor) -> torch.Tensor:
    """Mean over the rows of ``(B, L, D)`` states that are not all zero (padding is zeroed): ``(B, D)``."""
    valid = states.abs().amax(dim=-1, keepdim=True).gt(0).to(states.dtype)
    return (states * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1.0)


class GivenFrames(NamedTuple):
    """What a clip is conditioned on besides its caption (ART-V §3): ``latents`` ``(B, C, F, h, w)``
    given where ``mask`` ``(B, 1, F, h, w)`` is 1, already noised to ``sigma`` (a float or ``(B,)``;
    0 for clean frames), and an optional ``anchor`` latent frame ``(B, C, h, w)``."""

    latents: torch.Tensor
    mask: torch.Tensor
    sigma: float | torch.Tensor = 0.0
    anchor: torch.Tensor | None = None

    def kwargs(self) -> dict:
        """These frames as :meth:`ToyWanTransformer.forward`'s keywords."""
        return {
            "given_latents": self.latents,
            "given_mask": self.mask,
            "given_sigma": self.sigma,
            "anchor_latents": self.anchor,
        }


class AnchorEmbedding(torch.nn.Module):
    """An anchor latent frame ``(B, C, h, w)`` to ``(B, h/p * w/p, dim)`` cross-attention tokens:
    ``p x p`` patches (the clip's spatial patch), a learned position per patch, norm, MLP, norm
    (the layout of Wan's ``WanImageEmbedding``)."""

    def __init__(self, channels: int, patch: int, tokens: int, dim: int):
        super().__init__()
        self.patch = patch
        features = channels * patch * patch
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, tokens, features))
        self.norm1 = FP32LayerNorm(features)
        self.proj = PixArtAlphaTextProjection(features, dim, act_fn="gelu_tanh")
        self.norm2 = FP32LayerNorm(dim)

    def forward(self, anchor: torch.Tensor) -> torch.Tensor:
        patches = torch.nn.functional.pixel_unshuffle(anchor, self.patch).flatten(2).transpose(1, 2)
        if patches.shape[1] != self.pos_embed.shape[1]:
            raise ValueError(
                f"an anchor of {patches.shape[1]} patches; this network was built for {self.pos_embed.shape[1]}"
            )
        return self.norm2(self.proj(self.norm1(patches + self.pos_embed)))


class PooledTextTimeEmbedding(WanTimeTextImageEmbedding):
    """Wan's time / text embedder with the pooled caption added to the timestep embedding, per-token
    timesteps (``timestep_seq_len``) and, when ``anchor`` is set, an :class:`AnchorEmbedding` in the
    slot of Wan's image embedder."""

    def __init__(
        self,
        dim: int,
        time_freq_dim: int,
        time_proj_dim: int,
        text_embed_dim: int,
        anchor: AnchorEmbedding | None = None,
    ):
        super().__init__(dim, time_freq_dim, time_proj_dim, text_embed_dim)
        self.pooled_embedder = PixArtAlphaTextProjection(text_embed_dim, dim, act_fn="silu")
        self.image_embedder = anchor

    def forward(
        self,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
        timestep_seq_len: int | None = None,
    ):
        frequencies = self.timesteps_proj(timestep).to(next(self.time_embedder.parameters()).dtype)
        if timestep_seq_len is not None:
            frequencies = frequencies.unflatten(0, (-1, timestep_seq_len))
        temb = self.time_embedder(frequencies).type_as(encoder_hidden_states)
        pooled = self.pooled_embedder(pooled_text(encoder_hidden_states))
        temb = temb + (pooled if timestep_seq_len is None else pooled[:, None])
        timestep_proj = self.time_proj(self.act_fn(temb))
        anchor = None
        if encoder_hidden_states_image is not None:
            if self.image_embedder is None:
                raise ValueError("this network was built without anchor_frame")
            anchor = self.image_embedder(encoder_hidden_states_image).type_as(encoder_hidden_states)
        return temb, timestep_proj, self.text_embedder(encoder_hidden_states), anchor


class ToyWanTransformer(WanTransformer3DModel):
    """``WanTransformer3DModel`` with the pooled-text path and conditioning channels (module docstring).

    ``forward(hidden_states (B, in_channels, F, h, w), timestep (B,), encoder_hidden_states (B, L, D))``
    as Wan's; ``in_channels = 2 * out_channels + 1`` when ``condition_channels`` is set.
    """

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 6,
        attention_head_dim: int = 32,
        in_channels: int = 9,
        out_channels: int = 4,
        text_dim: int = 384,
        freq_dim: int = 256,
        ffn_dim: int = 768,
        num_layers: int = 8,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 64,
        pos_embed_seq_len: int | None = None,
        pooled_text: bool = True,
        condition_channels: bool = True,
        condition_noise: bool = False,
        anchor_frame: bool = False,
        anchor_tokens: int = 16,
    ) -> None:
        super().__init__(
            patch_size=patch_size,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            text_dim=text_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            image_dim=image_dim,
            added_kv_proj_dim=added_kv_proj_dim,
            rope_max_seq_len=rope_max_seq_len,
            pos_embed_seq_len=pos_embed_seq_len,
        )
        if condition_channels and in_channels != 2 * out_channels + 1:
            raise ValueError(
                f"condition_channels needs in_channels = 2 * out_channels + 1, not {in_channels}"
            )
        if (condition_noise or anchor_frame) and not (pooled_text and condition_channels):
            raise ValueError("condition_noise and anchor_frame build on pooled_text and condition_channels")
        if pooled_text:
            inner = num_attention_heads * attention_head_dim
            anchor = None
            if anchor_frame:
                anchor = AnchorEmbedding(out_channels, patch_size[-1], anchor_tokens, inner)
            self.condition_embedder = PooledTextTimeEmbedding(inner, freq_dim, inner * 6, text_dim, anchor)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict | None = None,
        given_latents: torch.Tensor | None = None,
        given_mask: torch.Tensor | None = None,
        given_sigma: float | torch.Tensor = 0.0,
        anchor_latents: torch.Tensor | None = None,
    ):
        """Wan's forward; plain ``(B, C, F, h, w)`` latents get the conditioning channels here (zeros,
        or ``given_latents`` ``(B, C, F, h, w)`` where ``given_mask`` ``(B, 1, F, h, w)`` is 1), so every
        caller of a Wan transformer (sampling, inversion, LoRA tuning) calls this one the same way.
        With ``condition_noise`` the given frames' tokens get timestep ``1000 * given_sigma`` (their
        noise level); ``anchor_latents`` ``(B, C, h, w)`` needs ``anchor_frame``, and such a network
        without one gets a zero anchor (ART-V's "no anchor", as it was trained)."""
        if self.config.condition_channels and hidden_states.shape[1] == self.config.out_channels:
            if self.config.condition_noise and given_mask is not None:
                timestep = token_timesteps(timestep, given_mask, given_sigma, self.config.patch_size)
            hidden_states = conditioned_input(hidden_states, given_latents, given_mask)
        if self.config.anchor_frame and anchor_latents is None:
            b, _, _, h, w = hidden_states.shape
            anchor_latents = hidden_states.new_zeros(b, self.config.out_channels, h, w)
        if anchor_latents is not None:
            encoder_hidden_states_image = anchor_latents.to(hidden_states.dtype)
        return super().forward(
            hidden_states,
            timestep,
            encoder_hidden_states,
            encoder_hidden_states_image=encoder_hidden_states_image,
            return_dict=return_dict,
            attention_kwargs=attention_kwargs,
        )


def token_timesteps(
    timestep: torch.Tensor, mask: torch.Tensor, given_sigma: float | torch.Tensor, patch_size
) -> torch.Tensor:
    """Per-token timesteps ``(B, F/p_t * h/p_h * w/p_w)`` in Wan's token order (frame, row, column):
    the clip's ``timestep`` ``(B,)``, and ``1000 * given_sigma`` on the tokens of given frames."""
    p_t, p_h, p_w = patch_size
    batch = mask.shape[0]
    given = mask[:, 0, ::p_t, ::p_h, ::p_w].flatten(1) > 0.5  # (B, tokens)
    clip = timestep.to(torch.float32).reshape(-1, 1).expand(batch, given.shape[1])
    level = torch.as_tensor(given_sigma, dtype=torch.float32, device=clip.device).reshape(-1, 1) * 1000.0
    return torch.where(given, level.expand_as(clip), clip)


def conditioned_input(
    latents: torch.Tensor, given: torch.Tensor | None = None, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Wan's image-to-video input: ``(B, C, F, h, w)`` latents, ``(B, 1, F, h, w)`` mask and
    ``(B, C, F, h, w)`` given latents concatenated to ``(B, 2C + 1, F, h, w)``; zeros when none given."""
    if given is None:
        b, _, f, h, w = latents.shape
        mask = latents.new_zeros(b, 1, f, h, w)
        given = torch.zeros_like(latents)
    assert mask is not None
    return torch.cat([latents, mask.to(latents), (given * mask).to(latents)], dim=1)
