"""VMC-style motion distillation into a temporal LoRA (Search-T2V §4.3 eq. 10; VMC's temporal attention adaptation).

The keyframes ``{f}_n`` are encoded to latents ``z_0`` ``(1, C, F, h, w)``.
Each step draws a timestep ``t`` and noise ``ε`` (from an explicit
``torch.Generator``), noises ``z_t = sqrt(ᾱ_t) z_0 + sqrt(1 - ᾱ_t) ε`` and
asks the UNet, carrying a LoRA on its temporal attention projections only,
for ``ε_θ(z_t, t, c)`` with an appearance-free prompt ``c`` ("a ball
zigzags"). The loss aligns the frame-to-frame residuals of predicted and
true noise (eq. 10):

    δε^n = ε^{n+1} - ε^n,    ℓ = E_{t, n} [1 - cos(δε_t^n, δε_θ,t^n)]

so only how noise changes from frame to frame is learnt, not what each
frame looks like: the motion, not the appearance. For a v-prediction model
the target is the velocity instead of ``ε``.

On a flow-matching transformer (Wan) the same loss runs over latent frames
(each one 4 video frames after the first): ``z_σ = (1 − σ) z_0 + σ ε`` with
σ drawn on the sampler's shifted grid, ``σ = s·u / (1 + (s − 1) u)`` for
``u ~ U(timestep_range)`` and flow shift ``s``, and the target is the
velocity ``v = ε − z_0``, so ``δv^n = δε^n − δz_0^n``. The LoRA sits on the
blocks' self-attention (:func:`generation.adapters.transformer_target_pattern`).

LoRAs live in a content-addressed cache, ``<home>/cache/lora/<key>.safetensors``
with a ``<key>.json`` record beside it, keyed by the model's weights hash, the
video (id and content hash), the keyframes (span, crop), the training prompt
and the tuning config. A second request with the same key reuses the file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from reelgraph.atomic import write_json
from reelgraph.cache_kinds import CacheKind, register
from reelgraph.hashing import key_hash

LORAS = register(CacheKind("lora", "files", rank=40, pattern="*.*", owner="motion_prior.tuning"))

LossHook = Callable[[int, int, float], None]
"""``progress(step, steps, loss)`` after each optimiser step (1-based ``step``)."""


class TuningConfig(BaseModel):
    """Motion distillation settings. Defaults tune the toy model on a laptop CPU in well under a minute."""

    steps: int = Field(150, ge=1, description="optimiser steps")
    rank: int = Field(8, ge=1, description="LoRA rank")
    alpha: float | None = Field(None, gt=0, description="LoRA alpha; unset: equal to the rank (scale 1)")
    learning_rate: float = Field(2e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(0.0, ge=0)
    projections: list[str] = Field(
        default_factory=lambda: [
            "attn1.to_q",
            "attn1.to_k",
            "attn1.to_v",
            "attn2.to_q",
            "attn2.to_k",
            "attn2.to_v",
        ],
        description="projections inside each temporal transformer block that get a LoRA",
    )
    include_transformer_in: bool = Field(
        False, description="also adapt the UNet3D's input temporal transformer"
    )
    timestep_range: tuple[float, float] = Field(
        (0.0, 1.0), description="fraction of the training timesteps that t is drawn from"
    )
    batch_size: int = Field(1, ge=1, description="(t, ε) draws per step, as one batch")
    seed: int = Field(0, ge=0, description="seed of the timestep and noise generator")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory (large UNets)")

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha if self.alpha is not None else self.rank)

    def target_pattern(self) -> str:
        from generation.adapters import temporal_target_pattern

        return temporal_target_pattern(self.projections, include_transformer_in=self.include_transformer_in)


# --- the loss ------------------------------------------------------------------------------------------


def frame_residuals(x):
    """``δx^n = x^{n+1} - x^n`` along frames: ``(B, C, F, h, w)`` to ``(B, C, F-1, h, w)``."""
    return x[:, :, 1:] - x[:, :, :-1]


def vmc_loss(noise_pred, target):
    """Search-T2V eq. 10 / VMC: mean over batch and frame pairs of ``1 - cos(δε_θ^n, δε^n)``.

    Cosine similarity is taken per frame pair over ``(C, h, w)``. Inputs are
    ``(B, C, F, h, w)`` with ``F >= 2``.
    """
    import torch.nn.functional as F

    if noise_pred.shape[2] < 2:
        raise ValueError("the motion loss needs at least two frames")
    pred, true = frame_residuals(noise_pred.float()), frame_residuals(target.float())
    b, c, n, h, w = pred.shape
    pred = pred.permute(0, 2, 1, 3, 4).reshape(b * n, c * h * w)
    true = true.permute(0, 2, 1, 3, 4).reshape(b * n, c * h * w)
    return (1.0 - F.cosine_similarity(pred, true, dim=1, eps=1e-8)).mean()


# --- the training loop ------------------------------------------------------------------------------


class DistillResult(BaseModel):
    losses: list[float]
    seconds: float
    modules: list[str]
    trainable_parameters: int


def init_lora_weights(unet, generator) -> list:
    """Draw the adapter's start from ``generator`` (peft draws from the global RNG) and return its parameters.

    peft's LoRA start: ``A ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (Kaiming
    uniform with ``a = sqrt(5)``), ``B = 0``, so the adapted UNet starts
    equal to the base UNet. Adapters train in float32, also on a
    half-precision UNet.
    """
    import torch

    params = []
    for name, param in sorted(unet.named_parameters(), key=lambda item: item[0]):
        if ".lora_A." in name:
            bound = 1.0 / math.sqrt(param.shape[1])
            values = (torch.rand(param.shape, generator=generator) * 2 - 1) * bound
        elif ".lora_B." in name:
            values = torch.zeros(param.shape)
        else:
            continue
        param.data = values.to(param.device)
        param.requires_grad_(True)
        params.append(param)
    return params


def is_flow_scheduler(scheduler) -> bool:
    """Whether ``scheduler`` integrates a flow ODE (``FlowMatch*``, or UniPC with flow sigmas)."""
    return "FlowMatch" in type(scheduler).__name__ or bool(scheduler.config.get("use_flow_sigmas"))


def _flow_draw(scheduler, z0, config: TuningConfig, generator):
    """``(z_σ, t, v)`` for one flow-matching draw: σ on the shifted grid, ``t = σ·T``, ``v = ε − z_0``."""
    import torch

    shift = float(scheduler.config.get("flow_shift") or scheduler.config.get("shift") or 1.0)
    low, high = config.timestep_range
    u = low + (high - low) * torch.rand((z0.shape[0],), generator=generator)
    sigma = shift * u / (1 + (shift - 1) * u)
    noise = torch.randn(z0.shape, generator=generator).to(z0.device, z0.dtype)
    s = sigma.to(z0.device, z0.dtype).view(-1, 1, 1, 1, 1)
    t = (sigma * scheduler.config.num_train_timesteps).to(z0.device)
    return (1 - s) * z0 + s * noise, t, noise - z0


def distill_motion(
    unet,
    scheduler,
    latents,
    context,
    config: TuningConfig,
    progress: LossHook | None = None,
    pattern: str | None = None,
) -> tuple[dict, DistillResult]:
    """Train a temporal LoRA on clean latents ``(1, C, F, h, w)`` with context ``(1, L, D)`` (eq. 10).

    ``scheduler`` supplies the noise schedule (``alphas_cumprod`` for a
    DDPM-family model; a flow-matching scheduler's shift for a flow
    transformer, whose target is the velocity). ``pattern`` overrides the
    config's temporal-attention targets (a transformer's self-attention).
    The LoRA is removed from ``unet`` before returning, so the network ends
    as it began; returns the adapter's state dict (float32, CPU) and the loss curve.
    """
    import torch

    from generation.adapters import inject_lora, lora_state_dict, remove_lora, unet_noise

    started = time.perf_counter()
    device = latents.device
    generator = torch.Generator("cpu").manual_seed(config.seed)
    num_train = int(scheduler.config.num_train_timesteps)
    low = round(config.timestep_range[0] * (num_train - 1))
    high = max(low + 1, round(config.timestep_range[1] * (num_train - 1)) + 1)
    flow = is_flow_scheduler(scheduler)
    prediction = "flow" if flow else scheduler.config.get("prediction_type", "epsilon")
    if not flow and prediction not in ("epsilon", "v_prediction"):
        from reelgraph.errors import ReelgraphError

        raise ReelgraphError(
            f"Motion tuning does not support {prediction!r} models.", fix="use an ε- or v-prediction model."
        )
    batch = config.batch_size
    z0 = latents.expand(batch, *latents.shape[1:])
    ctx = context.expand(batch, *context.shape[1:])
    alphas = None if flow else scheduler.alphas_cumprod.to(device)
    was_checkpointing = bool(getattr(unet, "gradient_checkpointing", False))
    modules = inject_lora(unet, config.rank, config.lora_alpha, pattern or config.target_pattern())
    try:
        params = init_lora_weights(unet, generator)
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        if config.gradient_checkpointing and hasattr(unet, "enable_gradient_checkpointing"):
            unet.enable_gradient_checkpointing()
        losses = []
        for step in range(config.steps):
            if flow:
                noisy, t, target = _flow_draw(scheduler, z0, config, generator)
            else:
                t = torch.randint(low, high, (batch,), generator=generator)
                noise = torch.randn(z0.shape, generator=generator).to(device, z0.dtype)
                t = t.to(device)
                a = alphas[t].to(z0.dtype).view(batch, 1, 1, 1, 1)
                noisy = a.sqrt() * z0 + (1 - a).sqrt() * noise
                target = noise if prediction == "epsilon" else a.sqrt() * noise - (1 - a).sqrt() * z0
            with torch.enable_grad():
                pred = unet_noise(unet, noisy, t, ctx)
                loss = vmc_loss(pred, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, config.steps, losses[-1])
        state = lora_state_dict(unet)
    finally:
        if (
            config.gradient_checkpointing
            and not was_checkpointing
            and hasattr(unet, "disable_gradient_checkpointing")
        ):
            unet.disable_gradient_checkpointing()
        remove_lora(unet)
    result = DistillResult(
        losses=losses,
        seconds=time.perf_counter() - started,
        modules=modules,
        trainable_parameters=int(sum(v.numel() for v in state.values())),
    )
    return state, result


# --- the cache ------------------------------------------------------------------------------------------


def lora_cache_key(
    weights_hash: str,
    video_id: str,
    video_hash: str,
    keyframes: dict,
    training_prompt: str,
    config: TuningConfig,
) -> str:
    """Content address of a LoRA: everything that decides its weights."""
    return key_hash(
        {
            "weights": weights_hash,
            "video": video_id,
            "video_sha256": video_hash,
            "keyframes": keyframes,
            "prompt": training_prompt,
            "config": config.model_dump(mode="json"),
        },
        length=24,
    )


class LoraCache:
    """``<root>/<key>.safetensors`` plus ``<key>.json`` (what was tuned, losses, time)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.safetensors"

    def record_path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def record(self, key: str) -> dict[str, Any] | None:
        import json

        try:
            return json.loads(self.record_path(key).read_text())
        except (OSError, ValueError):
            return None

    def store(self, key: str, state: dict, settings: dict[str, Any], record: dict[str, Any]) -> Path:
        from generation.adapters import save_lora

        path = save_lora(self.path(key), state, settings)
        write_json(self.record_path(key), record)
        return path


# --- estimates -------------------------------------------------------------------------------------------


def estimate_tuning_seconds(info, config: TuningConfig, num_frames: int, device: str) -> float:
    """Rough time of a tuning run: forward plus backward (about three forwards) per draw, plus the encode."""
    from generation.estimate import device_kind, unet_call_seconds

    kind = device_kind(device)
    per_step = 3.0 * unet_call_seconds(info, num_frames, config.batch_size, kind)
    if config.gradient_checkpointing:
        per_step *= 4.0 / 3.0  # the forward pass runs twice
    return config.steps * per_step + num_frames * info.height * info.width * 3e-6


def lora_settings(config: TuningConfig, pattern: str | None = None) -> dict[str, Any]:
    """What :func:`generation.adapters.applied_lora` needs to inject the adapter again."""
    return {"rank": config.rank, "alpha": config.lora_alpha, "pattern": pattern or config.target_pattern()}


def keyframes_to_tensor(frames: np.ndarray):
    """``(F, H, W, 3)`` uint8 keyframes to ``(1, 3, F, H, W)`` floats in [-1, 1]."""
    from generation.backend import uint8_to_frames

    return uint8_to_frames(frames)


def loss_summary(losses: list[float]) -> dict[str, float]:
    """First and last tenth of the loss curve, for records and reports."""
    if not losses:
        return {}
    k = max(1, math.ceil(len(losses) / 10))
    return {"first": float(np.mean(losses[:k])), "last": float(np.mean(losses[-k:]))}
