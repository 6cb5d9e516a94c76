"""The calibrate phase: standardise the VAE's latent channels and measure ``scaling_factor``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from toyworld.spec import Label


@torch.no_grad()
def standardize_latent_channels(vae: torch.nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Re-parameterise ``vae`` so that its latent channel c becomes ``(z_c - mean_c) * a_c``.

    ``a_c = rms(std) / std_c`` equalises the channels' spread and keeps the overall scale. Exact: the
    encoder's ``quant_conv`` rows for the mean (and the log-variance bias, by ``2 log a_c``) absorb the
    map, the decoder's ``post_quant_conv`` absorbs its inverse, so ``decode(encode(x))`` is unchanged.
    """
    if vae.quant_conv is None or vae.post_quant_conv is None:
        raise ValueError("standardize_latent_channels needs the VAE's quant_conv and post_quant_conv")
    mean = mean.to(vae.quant_conv.weight)
    std = std.to(vae.quant_conv.weight)
    gain = std.pow(2).mean().sqrt() / std
    channels = mean.numel()
    enc_w, enc_b = vae.quant_conv.weight, vae.quant_conv.bias  # (2C, 2C, 1, 1): [mean; logvar] rows
    enc_w[:channels] *= gain.view(-1, 1, 1, 1)
    enc_b[:channels] = (enc_b[:channels] - mean) * gain
    enc_b[channels:] += 2.0 * gain.log()
    dec_w, dec_b = vae.post_quant_conv.weight, vae.post_quant_conv.bias  # (C, C, 1, 1)
    dec_b += (dec_w[:, :, 0, 0] @ mean.view(-1, 1)).view(-1)
    dec_w /= gain.view(1, -1, 1, 1)


@torch.no_grad()
def stat_latents(
    seed: int,
    clips: int,
    sample_labels: Callable[[np.random.Generator, int], list[Label]],
    render: Callable[[list[Label], np.random.Generator], np.ndarray],
    encode: Callable[[np.ndarray, torch.Generator], torch.Tensor],
) -> torch.Tensor:
    """Latents ``(N, C, F, h, w)`` of ``clips`` fixed clips (the same clips on every call)."""
    rng = np.random.default_rng([seed, 4])
    gen = torch.Generator().manual_seed(seed * 1000 + 17)
    labels = sample_labels(rng, clips)
    return torch.cat([encode(render(labels[i : i + 32], rng), gen) for i in range(0, len(labels), 32)])


@torch.no_grad()
def calibrate_latents(vae: torch.nn.Module, measure: Callable[[], torch.Tensor]) -> dict[str, object]:
    """Standardise the latent channels inside ``vae``, then set ``scaling_factor`` = 1 / latent std.

    The channels come out of VAE training with means of several stds and unequal spreads; the
    sampler only divides by ``scaling_factor`` (no shift), so the per-channel shift and relative
    scale are folded into the VAE's 1x1 ``quant_conv`` / ``post_quant_conv``
    (:func:`standardize_latent_channels`, exact). The global scale is what Stable Diffusion's
    0.18215 is: 1 / std of the latents. ``measure`` encodes the fixed statistics clips.
    Returns the measured figures under their :class:`TrainingProgress` names.
    """
    vae.eval()
    vae.register_to_config(scaling_factor=1.0)
    raw = measure()
    dims = (0, 2, 3, 4)
    figures: dict[str, object] = {
        "latent_mean": [float(v) for v in raw.mean(dim=dims)],
        "latent_channel_std": [float(v) for v in raw.std(dim=dims)],
    }
    standardize_latent_channels(vae, raw.mean(dim=dims), raw.std(dim=dims))
    std = float(measure().std())
    figures["latent_std"] = std
    figures["scaling_factor"] = 1.0 / std
    vae.register_to_config(scaling_factor=figures["scaling_factor"])
    return figures
