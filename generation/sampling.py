"""Our denoising loops: DDIM sampling with classifier-free guidance, and DDIM inversion.

Every method of the papers lives inside these loops, so they are ours rather
than a pipeline's, yet they stay numerically identical to diffusers'
``TextToVideoSDPipeline`` (tested). Each sampler is one short free function
in the manner of k-diffusion; the per-method parts come in as arguments:

* ``prompt_embeds`` may be a callable ``step -> (B, L, D)``: the step-dependent
  conditioning of denoising with hybrid semantics (POS eq. 8);
* ``latents_hook(step, t, latents) -> latents`` runs before each UNet call:
  frame replacement for clip extension (VidRD eq. 8) and anchoring;
* ``callback(StepInfo)`` sees every step (progress bars, cancellation by
  raising).

Latents are ``(B, C, F, h, w)`` throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler


class Denoiser(Protocol):
    def predict_noise(
        self, latents: torch.Tensor, t: torch.Tensor | int, encoder_hidden_states: torch.Tensor
    ) -> torch.Tensor: ...


@dataclass
class StepInfo:
    """Handed to ``callback`` after step ``step`` (0-based) of ``num_steps``."""

    step: int
    num_steps: int
    timestep: int
    latents: torch.Tensor


Conditioning = torch.Tensor | Callable[[int], torch.Tensor]
LatentsHook = Callable[[int, int, torch.Tensor], torch.Tensor]
StepCallback = Callable[[StepInfo], None]


def _embeds_at(prompt_embeds: Conditioning, step: int) -> torch.Tensor:
    return prompt_embeds(step) if callable(prompt_embeds) else prompt_embeds


def guided_noise_pred(
    model: Denoiser,
    latents: torch.Tensor,
    t: torch.Tensor | int,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None,
    guidance_scale: float,
) -> torch.Tensor:
    """Classifier-free guidance: ``ε_u + w (ε_c − ε_u)``, one batched UNet call.

    Guidance is off for ``guidance_scale <= 1`` (as in diffusers), and then
    the negative embeddings are not used.
    """
    if guidance_scale <= 1.0 or negative_prompt_embeds is None:
        return model.predict_noise(latents, t, prompt_embeds)
    batch = latents.shape[0]
    negative = negative_prompt_embeds.expand(batch, *negative_prompt_embeds.shape[1:])
    noise_pred = model.predict_noise(
        torch.cat([latents, latents]), t, torch.cat([negative, prompt_embeds.expand_as(negative)])
    )
    noise_uncond, noise_text = noise_pred.chunk(2)
    return noise_uncond + guidance_scale * (noise_text - noise_uncond)


def _frames_as_batch(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, F, h, w)`` to ``(B·F, C, h, w)``: the layout diffusers' video pipelines step in."""
    b, c, f, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


def _batch_as_frames(x: torch.Tensor, b: int, f: int) -> torch.Tensor:
    return x.reshape(b, f, *x.shape[1:]).permute(0, 2, 1, 3, 4)


def sample_ddim(
    model: Denoiser,
    scheduler: DDIMScheduler,
    latents: torch.Tensor,
    prompt_embeds: Conditioning,
    negative_prompt_embeds: torch.Tensor | None = None,
    *,
    num_inference_steps: int = 25,
    guidance_scale: float = 9.0,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    latents_hook: LatentsHook | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """DDIM sampling, POS eq. 1: ``z_{t-1} = DN(z_t, t, c)`` from ``z_T = latents`` down to ``z_0``.

    Args:
        latents: initial noise ``z_T`` of shape ``(B, C, F, h, w)`` (Gaussian, ONA's
            mixture, or VidRD's reverted noise), already scaled by the scheduler's
            ``init_noise_sigma`` if it differs from 1.
        prompt_embeds: ``(B, L, D)`` context, or ``step -> context`` (POS eq. 8).
        negative_prompt_embeds: ``(1 or B, L, D)`` unconditional context for guidance.
        eta: DDIM's η; stochastic steps draw from ``generator``.

    The scheduler steps frames as a batch ``(B·F, C, h, w)`` as
    ``TextToVideoSDPipeline`` does, or the ``(B, C, F, h, w)`` latents as they
    are where ``model.frames_as_batch`` is false (``AnimateDiffPipeline``);
    the step is elementwise, so only the layout of η's noise differs.

    Returns:
        ``z_0``, shape ``(B, C, F, h, w)``.
    """
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    timesteps = scheduler.timesteps
    b, _, f, _, _ = latents.shape
    as_batch = getattr(model, "frames_as_batch", True)
    for i, t in enumerate(timesteps):
        if latents_hook is not None:
            latents = latents_hook(i, int(t), latents)
        model_input = scheduler.scale_model_input(latents, t)
        noise_pred = guided_noise_pred(
            model, model_input, t, _embeds_at(prompt_embeds, i), negative_prompt_embeds, guidance_scale
        )
        if not as_batch:
            latents = scheduler.step(noise_pred, t, latents, eta=eta, generator=generator).prev_sample
        else:
            step = scheduler.step(
                _frames_as_batch(noise_pred), t, _frames_as_batch(latents), eta=eta, generator=generator
            )
            latents = _batch_as_frames(step.prev_sample, b, f)
        if callback is not None:
            callback(StepInfo(i, len(timesteps), int(t), latents))
    return latents


def invert_ddim(
    model: Denoiser,
    scheduler: DDIMInverseScheduler,
    latents: torch.Tensor,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None = None,
    *,
    num_inference_steps: int = 25,
    guidance_scale: float = 1.0,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """DDIM inversion, POS eq. 2: ``z_{t+1} = INV(z_t, t, c)`` from clean latents ``z_0`` to ``z_T``.

    ONA inverts with the empty prompt and no guidance (``guidance_scale = 1``).
    The inverse scheduler visits the noise levels of :func:`sample_ddim` with
    the same ``num_inference_steps`` in reverse, so denoising the result with
    the same context reconstructs ``latents`` up to the ODE's discretisation
    error.

    Args:
        latents: ``z_0``, ``(B, C, F, h, w)`` VAE latents (already scaled).

    Returns:
        ``ε_inv = z_T``, shape ``(B, C, F, h, w)``.
    """
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    timesteps = scheduler.timesteps
    b, _, f, _, _ = latents.shape
    for i, t in enumerate(timesteps):
        noise_pred = guided_noise_pred(
            model, latents, t, prompt_embeds, negative_prompt_embeds, guidance_scale
        )
        step = scheduler.step(_frames_as_batch(noise_pred), t, _frames_as_batch(latents))
        latents = _batch_as_frames(step.prev_sample, b, f)
        if callback is not None:
            callback(StepInfo(i, len(timesteps), int(t), latents))
    return latents
