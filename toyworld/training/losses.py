"""The training objectives (VAE reconstruction, ε prediction, rectified flow) and min-SNR-γ weighting."""

from __future__ import annotations

import torch

from generation.toy_transformer import GivenFrames
from toyworld.training import network


def min_snr_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ loss weights for ε prediction: ``min(SNR_t, γ) / SNR_t`` (Hang et al. 2023, eq. 9)."""
    alpha_bar = alphas_cumprod[timesteps]
    snr = alpha_bar / (1.0 - alpha_bar)
    return torch.clamp(snr, max=gamma) / snr


def vae_loss(
    vae: torch.nn.Module,
    pixels: torch.Tensor,
    pixel_weight: torch.Tensor,
    noise: torch.Tensor,
    kl_weight: float,
    decoder_noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """VAE objective on frames ``(N, 3, H, W)`` in [-1, 1]: weighted MSE + ``kl_weight`` x KL per pixel.

    ``noise`` ``(N, C, h, w)`` draws the posterior sample (reparameterised). ``decoder_noise``, if
    given, is added to the sample in units of the batch's latent std (detached): the decoder then
    learns to map slightly-off latents, which is what a diffusion model hands it, to clean frames
    instead of coloured speckle. Returns (loss, mse).
    """
    posterior = vae.encode(pixels).latent_dist
    latents = posterior.mean + posterior.std * noise
    if decoder_noise is not None:
        latents = latents + decoder_noise * posterior.mean.detach().std()
    recon = vae.decode(latents).sample
    mse = (pixel_weight * (recon.float() - pixels).pow(2)).mean()
    kl = posterior.kl().float().mean() / pixels[0].numel()
    return mse + kl_weight * kl, mse


def diffusion_loss(
    denoiser: torch.nn.Module,
    alphas_cumprod: torch.Tensor,
    latents: torch.Tensor,
    context: torch.Tensor,
    timesteps: torch.Tensor,
    noise: torch.Tensor,
    min_snr_gamma: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ε-prediction objective (DDPM eq. 14) on latents ``(B, C, F, h, w)`` with context ``(B, L, D)``.

    ``z_t = sqrt(ᾱ_t) z_0 + sqrt(1 - ᾱ_t) ε`` (DDPM eq. 4); per-clip MSE weighted by min-SNR-γ when
    ``min_snr_gamma`` is set. Returns (weighted loss, unweighted per-clip MSE ``(B,)``).
    """
    alpha_bar = alphas_cumprod[timesteps].view(-1, 1, 1, 1, 1)
    noisy = alpha_bar.sqrt() * latents + (1.0 - alpha_bar).sqrt() * noise
    pred = network.NETWORKS["unet3d"].predict(denoiser, noisy, timesteps, context)
    per_clip = (pred.float() - noise).pow(2).mean(dim=(1, 2, 3, 4))
    if min_snr_gamma is None:
        return per_clip.mean(), per_clip
    return (min_snr_weights(alphas_cumprod, timesteps, min_snr_gamma) * per_clip).mean(), per_clip


def flow_loss(
    denoiser: torch.nn.Module,
    latents: torch.Tensor,
    context: torch.Tensor,
    sigmas: torch.Tensor,
    noise: torch.Tensor,
    given: GivenFrames,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rectified-flow objective (SD3 eq. 1-3) on latents ``(B, C, F, h, w)`` with context ``(B, L, D)``.

    ``x_σ = (1 − σ) x₀ + σ ε`` for ``sigmas`` ``(B,)``; the network predicts the velocity
    ``v = ε − x₀`` at timestep ``1000 σ`` (Wan's and diffusers' flow schedulers' convention).
    ``given`` holds the frames handed over through the conditioning channels (masked diffusion, maybe
    noise-augmented) and the anchor; the given frames' loss counts like any other frame's, so the
    network learns to keep them. Returns (loss, per-clip velocity MSE ``(B,)``).
    """
    s = sigmas.view(-1, 1, 1, 1, 1)
    noisy = (1.0 - s) * latents + s * noise
    pred = network.NETWORKS["wan"].predict(denoiser, noisy, sigmas * 1000.0, context, given=given)
    per_clip = (pred.float() - (noise - latents)).pow(2).mean(dim=(1, 2, 3, 4))
    return per_clip.mean(), per_clip
