"""Flow-ODE inversion: clean latents to the noise our flow loop would turn back into them.

The sampler integrates ``dx/dσ = v(x, σ)`` from σ = 1 (noise) down to 0; the
inversion runs the same Euler scheme forwards in σ, from 0 to 1, on the
scheduler's own (shifted) σ grid: ``x_{σ_{i+1}} = x_{σ_i} + (σ_{i+1} − σ_i) v(x_{σ_i}, σ_i)``
(rectified-flow inversion as in RF-Solver / UniEdit-Flow, first order). This
is the flow path's counterpart of DDIM inversion for ONA (POS eq. 2-4).
Wan 2.2's two experts invert as they sample: the low-noise expert below
``boundary_timestep``, the high-noise expert from it up. Latents are
``(B, C, F, h, w)``.
"""

from __future__ import annotations

import itertools

import torch

from generation.flow_sampling import Expert, guided_velocity


def flow_invert(
    expert: Expert | tuple[Expert, ...],
    scheduler,
    latents: torch.Tensor,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None,
    num_inference_steps: int,
    boundary_timestep: float | None = None,
) -> torch.Tensor:
    """Euler forwards in time from clean ``latents`` (σ = 0) to noise (σ = σ_max) on ``scheduler``'s grid.

    ``expert`` is one expert or, as for :func:`~generation.flow_sampling.flow_sample`,
    ``(high-noise, low-noise)`` split at ``boundary_timestep``.
    """
    experts = expert if isinstance(expert, tuple) else (expert,)
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    sigmas = scheduler.sigmas.flip(0)  # 0, ..., σ_max: the sampler's grid walked backwards
    train_steps = scheduler.config.num_train_timesteps
    for sigma, sigma_next in itertools.pairwise(sigmas):
        t = (sigma * train_steps).reshape(())
        low_noise = boundary_timestep is not None and len(experts) > 1 and t < boundary_timestep
        velocity = guided_velocity(
            experts[1] if low_noise else experts[0], latents, t, prompt_embeds, negative_prompt_embeds
        )
        latents = latents + (sigma_next - sigma) * velocity
    return latents
