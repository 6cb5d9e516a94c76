"""Anchoring every clip to the video's first frame, training-free (a reading of ART-V §3.4).

ART-V keeps scenes and objects consistent over a long video by giving the
denoiser the video's first frame as a *global anchor*, injected with cross
attention, in a model trained for it. Our models were not, so we borrow the
training-free form of the same idea ("reference attention", as in
reference-only control and cross-frame attention): in every spatial
self-attention layer of the UNet, each frame of the current clip attends to
its own tokens *and* to the anchor frame's tokens at the same layer and
denoising step. Appearance (colour, shape, size, background) can flow from
the anchor; nothing pins the layout, so motion stays free.

Per denoising step this costs one extra UNet pass on one frame (the anchor at
the step's noise level, along the first clip's own trajectory, with its own
prompt), which records the layers' inputs, then the clip's pass attends to
them. The anchor is recorded while the first clip is sampled
(:class:`AnchorRecorder`): frame 0's latents at each of the ``S`` steps and
the first scene's prompt embedding, ``(S, B, C, 1, h, w)``; it does not grow
with the video.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

SPATIAL_SELF_ATTENTION = ".attentions."  # UNet3D: spatial transformers; temporal ones are temp_attentions


def spatial_self_attention_names(unet: torch.nn.Module) -> list[str]:
    """Processor names of the spatial self-attention layers (``attn1`` of the spatial transformers)."""
    return [
        name
        for name in unet.attn_processors
        if SPATIAL_SELF_ATTENTION in name and name.endswith("attn1.processor")
    ]


class _Store:
    """Shared by a UNet's anchor processors: what the anchor pass recorded, per layer."""

    def __init__(self) -> None:
        self.mode = "off"  # off | record | apply
        self.tokens: dict[str, torch.Tensor] = {}


class ReferenceAttnProcessor:
    """Self-attention whose keys and values also include a recorded anchor frame's tokens.

    ``record``: plain self-attention that stores its input ``(B_a, L, D)``.
    ``apply``: for input ``(B·F, L, D)`` (batch-major frames), keys and values
    come from ``[own tokens, anchor tokens of the same batch element]``,
    ``(B·F, 2L, D)``. ``off``: plain self-attention.
    """

    def __init__(self, name: str, store: _Store):
        self.name = name
        self.store = store

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3:
            raise ValueError("reference attention replaces plain 3-D self-attention only")
        if attn.group_norm is not None or attn.spatial_norm is not None or attn.residual_connection:
            raise ValueError("reference attention does not support this attention layer's options")
        context = hidden_states
        if self.store.mode == "record":
            self.store.tokens[self.name] = hidden_states.detach()
        elif self.store.mode == "apply":
            anchor = self.store.tokens[self.name]
            per_element = hidden_states.shape[0] // anchor.shape[0]
            context = torch.cat([hidden_states, anchor.repeat_interleave(per_element, dim=0)], dim=1)
        batch = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        key = attn.to_k(context)
        value = attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        return out / attn.rescale_output_factor


class AnchorRecorder:
    """A ``latents_hook`` that keeps frame 0 of the first clip at every step: the anchor's trajectory."""

    def __init__(self) -> None:
        self.latents: list[torch.Tensor] = []
        self.timesteps: list[int] = []

    def __call__(self, step: int, t: int, latents: torch.Tensor) -> torch.Tensor:
        self.latents.append(latents[:, :, :1].detach().clone())
        self.timesteps.append(int(t))
        return latents

    def save(self, path: Path, prompt_embeds: torch.Tensor) -> None:
        from safetensors.torch import save_file

        from reelgraph.atomic import atomic_path

        tensors = {
            "latents": torch.stack(self.latents).float().cpu().contiguous(),
            "timesteps": torch.tensor(self.timesteps, dtype=torch.long),
            "prompt_embeds": prompt_embeds.float().cpu().contiguous(),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp))


class AnchoredDenoiser:
    """A denoiser whose every call first runs the anchor frame at the same step, then attends to it.

    Args:
        model: anything with ``unet`` and ``predict_noise(latents, t, context)``.
        latents: the anchor's trajectory ``(S, B, C, 1, h, w)``, entry ``k`` at ``timesteps[k]``.
        prompt_embeds: the anchor clip's prompt ``(1, L, D)``; under classifier-free
            guidance it replaces the conditional half of the context, so the
            unconditional half of the clip attends to an unconditional anchor.
    """

    def __init__(self, model: Any, latents: torch.Tensor, timesteps: list[int], prompt_embeds: torch.Tensor):
        self.model = model
        self.by_timestep = {int(t): latents[k] for k, t in enumerate(timesteps)}
        self.prompt_embeds = prompt_embeds
        self.store = _Store()

    @property
    def frames_as_batch(self) -> bool:
        """The wrapped model's scheduler layout (:func:`generation.sampling.sample_ddim`)."""
        return getattr(self.model, "frames_as_batch", True)

    @classmethod
    def load(cls, model: Any, path: Path) -> AnchoredDenoiser:
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        device, dtype = model.device, model.dtype
        return cls(
            model,
            tensors["latents"].to(device, dtype),
            tensors["timesteps"].tolist(),
            tensors["prompt_embeds"].to(device, dtype),
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[AnchoredDenoiser]:
        """Swap the reference processors in for the duration, restoring the UNet's own afterwards."""
        unet = self.model.unet
        original = dict(unet.attn_processors)
        names = spatial_self_attention_names(unet)
        processors = dict(original)
        for name in names:
            processors[name] = ReferenceAttnProcessor(name, self.store)
        unet.set_attn_processor(processors)
        try:
            yield self
        finally:
            unet.set_attn_processor(original)
            self.store.tokens.clear()

    def predict_noise(
        self, latents: torch.Tensor, t: torch.Tensor | int, encoder_hidden_states: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        anchor = self.by_timestep.get(int(t))
        if anchor is None:
            raise ValueError(f"the anchor has no latents at timestep {int(t)}; sample with the same steps")
        batch = latents.shape[0]
        anchor = anchor.expand(batch, *anchor.shape[1:]) if anchor.shape[0] == 1 else anchor
        context = encoder_hidden_states.clone()
        context[-1:] = self.prompt_embeds.to(context.dtype)
        self.store.mode = "record"
        self.model.predict_noise(anchor, t, context, **kwargs)
        self.store.mode = "apply"
        try:
            return self.model.predict_noise(latents, t, encoder_hidden_states, **kwargs)
        finally:
            self.store.mode = "off"
