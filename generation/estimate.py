"""Rough cost estimates for a plan, from configs alone (no torch, no weights).

Time: one UNet call costs about ``2 · P · N / 4`` floating-point operations
for ``P`` UNet parameters and ``N = F · h · w`` latent positions (a conv/attention
UNet applies most of its weights at a quarter of the positions, on average,
across its resolution levels); classifier-free guidance doubles the batch.
Divided by an effective throughput per device kind (CPU and GPU constants
calibrated on the toy model and documented in ``bench/``), plus the VAE
decode. Memory: weights plus a few activation copies of the batch.

These numbers are for choosing tools and warning users, accurate to a factor
of about two; they are not benchmarks.
"""

from __future__ import annotations

import shutil

from generation.model_info import ModelInfo

# Effective FLOP/s of a UNet forward pass (calibrated on the toy model: bench/results/toy_speed.md).
EFFECTIVE_FLOPS = {"cpu": 1.2e10, "cuda": 8.0e13, "mps": 4.0e12}
BYTES_PER_PARAM = {"cpu": 4, "cuda": 2, "mps": 2}
ACTIVATION_BYTES_PER_POSITION_CHANNEL = 4 * 24  # a UNet keeps ~24 feature maps alive at its widest level


def device_kind(device: str) -> str:
    """``auto`` resolved without importing torch: a working ``nvidia-smi`` means CUDA."""
    if device == "auto":
        return "cuda" if shutil.which("nvidia-smi") else "cpu"
    return device.split(":")[0]


def unet_call_seconds(info: ModelInfo, num_frames: int, batch: int, kind: str) -> float:
    s = info.vae_scale_factor
    positions = num_frames * (info.height // s) * (info.width // s)
    flops = 2.0 * info.unet_parameters * positions / 4.0 * batch
    return flops / EFFECTIVE_FLOPS.get(kind, EFFECTIVE_FLOPS["cpu"])


def estimate_clip(
    info: ModelInfo, num_frames: int, num_inference_steps: int, guidance_scale: float, device: str
) -> tuple[float, float]:
    """``(seconds, peak_memory_gb)`` for one clip."""
    kind = device_kind(device)
    batch = 2 if guidance_scale > 1 else 1
    seconds = num_inference_steps * unet_call_seconds(info, num_frames, batch, kind)
    seconds += num_frames * info.height * info.width * 3e-6  # VAE decode, per output pixel
    weights = info.unet_parameters * BYTES_PER_PARAM.get(kind, 4) * 1.3  # + VAE and text encoder
    s = info.vae_scale_factor
    positions = num_frames * (info.height // s) * (info.width // s)
    activations = batch * positions * info.unet_max_channels * ACTIVATION_BYTES_PER_POSITION_CHANNEL
    return seconds, (weights + activations) / 1e9
