"""Our flow-matching loop: Euler (or UniPC) steps along a rectified-flow ODE with CFG.

The flow model predicts a velocity ``v = ε − x₀`` along ``x_σ = (1 − σ) x₀ + σ ε``;
the scheduler integrates ``dx/dσ = v`` from σ = 1 to 0 (Wan 2.1 §3.1,
rectified flow; Euler step ``x_{σ'} = x_σ + (σ' − σ) v``). Classifier-free
guidance combines the conditional and unconditional velocities
``v_u + w (v_c − v_u)`` as diffusers' ``WanPipeline`` does, with two model
calls (not one batched call) so the result stays identical to it (tested).

Wan 2.2's two experts: the high-noise expert denoises while
``t >= boundary_ratio · num_train_timesteps``, the low-noise expert (with its
own ``guidance_scale_2``) after. Latents are ``(B, C, F, h, w)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from generation.sampling import Conditioning, StepCallback, StepInfo, _embeds_at

LatentsHook = Callable[[int, int, torch.Tensor], torch.Tensor]
Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Expert:
    """A velocity model and the guidance scale it samples with."""

    velocity: Velocity  # (latents, timestep (B,), prompt_embeds) -> velocity, same shape as latents
    guidance_scale: float


def guided_velocity(
    expert: Expert,
    latents: torch.Tensor,
    t: torch.Tensor,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None,
) -> torch.Tensor:
    """Classifier-free guidance on velocities: ``v_u + w (v_c − v_u)``; off for ``w <= 1``."""
    timestep = t.expand(latents.shape[0])
    velocity = expert.velocity(latents, timestep, prompt_embeds)
    if expert.guidance_scale <= 1.0 or negative_prompt_embeds is None:
        return velocity
    velocity_uncond = expert.velocity(latents, timestep, negative_prompt_embeds)
    return velocity_uncond + expert.guidance_scale * (velocity - velocity_uncond)


def flow_sample(
    experts: tuple[Expert, ...],
    scheduler,
    latents: torch.Tensor,
    prompt_embeds: Conditioning,
    negative_prompt_embeds: torch.Tensor | None,
    num_inference_steps: int,
    boundary_timestep: float | None = None,
    callback: StepCallback | None = None,
    latents_hook: LatentsHook | None = None,
) -> torch.Tensor:
    """Integrate the flow ODE from noise ``latents`` ``(B, C, F, h, w)`` to clean latents.

    ``experts[0]`` denoises while ``t >= boundary_timestep`` (or always when it
    is None); ``experts[1]`` (Wan 2.2's low-noise expert) after. ``scheduler``
    is a diffusers flow-matching scheduler (``FlowMatchEulerDiscreteScheduler``
    or ``UniPCMultistepScheduler`` with ``use_flow_sigmas``), set up here.
    ``prompt_embeds`` may be a callable ``step -> (B, L, D)``: hybrid semantics
    (POS eq. 8), the rewritten text for the first ⌊γT⌋ steps, the original after.
    ``latents_hook(step, t, latents)`` sees (and may replace) the input of each
    step, entry ``k`` = input of step ``k``, as in
    :func:`~generation.sampling.sample_ddim` (VidRD extension on latent
    frames, :mod:`generation.flow_extension`); entry ``S``, the output, is the
    caller's.
    """
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    scheduler.set_begin_index(0)
    timesteps = scheduler.timesteps
    for i, t in enumerate(timesteps):
        low_noise = boundary_timestep is not None and t < boundary_timestep
        expert = experts[1] if low_noise else experts[0]
        if latents_hook is not None:
            latents = latents_hook(i, int(t), latents)
        velocity = guided_velocity(expert, latents, t, _embeds_at(prompt_embeds, i), negative_prompt_embeds)
        latents = scheduler.step(velocity, t, latents, return_dict=False)[0]
        if callback is not None:
            callback(StepInfo(step=i, num_steps=len(timesteps), timestep=int(t), latents=latents))
    return latents
