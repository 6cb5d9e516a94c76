"""Training data, rendered on the fly: VAE frame batches, the caption bank, the latent replay pool.

Every draw comes from the ``numpy.random.Generator`` / ``torch.Generator`` passed in, in a fixed
order, so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reelgraph.atomic import write_json
from toyworld.spec import BACKGROUNDS, Label
from toyworld.training.checkpoints import load_tensors, save_tensors
from toyworld.training.console import progress_range


def render(labels: list[Label], num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 clips ``(N, F, H, W, 3)`` of ``labels``."""
    from toyworld.render import render_batch

    return render_batch(labels, num_frames, rng)


def sample_labels(rng: np.random.Generator, n: int, distribution: str) -> list[Label]:
    from toyworld.captions import sample_label

    return [sample_label(rng, distribution) for _ in range(n)]


def to_unit_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, F, H, W, 3)`` to float ``(N·F, 3, H, W)`` in [-1, 1]."""
    x = torch.from_numpy(frames).float().div_(127.5).sub_(1.0)
    return x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).contiguous()


def object_mask(frames: np.ndarray, labels: list[Label]) -> torch.Tensor:
    """``(N·F, 1, H, W)``: 1 where a pixel differs from its clip's background colour."""
    background = np.array([BACKGROUNDS[label.background] for label in labels], dtype=np.int16)
    diff = np.abs(frames.astype(np.int16) - background[:, None, None, None, :]).max(axis=-1)
    mask = torch.from_numpy((diff > 4).astype(np.float32))
    return mask.reshape(-1, 1, *mask.shape[-2:])


@torch.no_grad()
def encode_latents(
    vae: torch.nn.Module, frames: np.ndarray, generator: torch.Generator, device: torch.device, autocast: bool
) -> torch.Tensor:
    """uint8 clips ``(N, F, H, W, 3)`` to scaled latents ``(N, C, F, h, w)`` (posterior samples)."""
    n, f = frames.shape[:2]
    pixels = to_unit_range(frames).to(device)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        posterior = vae.encode(pixels).latent_dist
    noise = torch.randn(posterior.mean.shape, generator=generator).to(device)
    latents = (posterior.mean + posterior.std * noise).float()
    latents = latents * float(vae.config.scaling_factor)
    return latents.reshape(n, f, *latents.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()


@dataclass
class VaeBatch:
    pixels: torch.Tensor  # (N, 3, H, W) in [-1, 1]
    pixel_weight: torch.Tensor  # (N, 1, H, W)
    noise: torch.Tensor  # (N, C, h, w) posterior sample noise
    decoder_noise: torch.Tensor  # (N, C, h, w)


def vae_batch(
    vae: torch.nn.Module,
    config: Any,
    rng: np.random.Generator,
    generator: torch.Generator,
    device: torch.device,
) -> VaeBatch:
    """One random frame from each of ``vae_batch_frames`` fresh clips: frames of one clip share
    objects and background, so distinct clips give the VAE far more to learn from per step."""
    labels = sample_labels(rng, config.vae_batch_frames, config.distribution)
    clips = render(labels, config.num_frames, rng)
    picks = rng.integers(0, clips.shape[1], size=len(labels))
    frames = clips[np.arange(len(labels)), picks][:, None]
    pixels = to_unit_range(frames).to(device)
    weight = 1.0 + config.object_weight * object_mask(frames, labels).to(device)
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    latent_shape = (pixels.shape[0], vae.config.latent_channels, *(d // scale for d in pixels.shape[-2:]))
    noise = torch.randn(latent_shape, generator=generator).to(device)
    # Per-frame strength uniform in [0, vae_decoder_noise]: clean latents must still decode sharply.
    strength = torch.rand(latent_shape[0], 1, 1, 1, generator=generator) * config.vae_decoder_noise
    decoder_noise = (strength * torch.randn(latent_shape, generator=generator)).to(device)
    return VaeBatch(pixels, weight, noise, decoder_noise)


@dataclass
class CaptionBank:
    """Pre-encoded captions: MiniLM costs ~12 ms a caption on this CPU, more than rendering and
    VAE encoding together, so the denoiser phase draws captions from a fixed bank."""

    embeds: torch.Tensor  # (K, L, D) float16
    uncond: torch.Tensor  # (1, L, D) float16, the "" caption
    labels: list[Label]


def caption_bank(
    seed: int, config: Any, cache_dir: Path, encoder: Callable[[], Any], progress: bool
) -> CaptionBank:
    """Encode ``caption_bank`` captions of training labels once (cached in ``cache_dir``, one file per
    network: the flow transformer's context has its padding zeroed, the UNet's keeps it)."""
    from toyworld.captions import describe

    rng = np.random.default_rng([seed, 2])
    labels = sample_labels(rng, config.caption_bank, config.distribution)
    captions = [describe(label, rng).text for label in labels]
    name = "caption_bank" if config.network == "unet3d" else f"caption_bank_{config.network}"
    cache = cache_dir / f"{name}.safetensors"
    meta_path = cache_dir / f"{name}.json"
    if cache.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()) == captions:
        tensors = load_tensors(cache)
    else:
        prompt_encoder = encoder()
        chunks = []
        for start in progress_range(0, len(captions), 64, "encoding captions", progress):
            chunks.append(prompt_encoder.encode(captions[start : start + 64]).embeds.cpu())
        tensors = {
            "bank": torch.cat(chunks).to(torch.float16),
            "uncond": prompt_encoder.encode([""]).embeds.cpu().to(torch.float16),
        }
        cache_dir.mkdir(parents=True, exist_ok=True)
        save_tensors(cache, tensors)
        write_json(meta_path, captions)
    return CaptionBank(tensors["bank"], tensors["uncond"], labels)


class LatentPool:
    """The replay pool of encoded clips ``(N, C, F, h, w)`` with their bank caption indices.

    Encoding costs a third of a denoiser step per clip, so each clip serves about
    ``batch / refresh`` steps before a fresh one replaces it.
    """

    def __init__(self, encode: Callable[[np.ndarray, torch.Generator], torch.Tensor], num_frames: int):
        self.encode = encode
        self.num_frames = num_frames
        self.latents: torch.Tensor | None = None
        self.captions: torch.Tensor | None = None

    def fresh_clips(
        self, bank: CaptionBank, count: int, rng: np.random.Generator, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` newly rendered clips of random bank captions: latents ``(N, C, F, h, w)``, bank indices."""
        captions = torch.randint(len(bank.labels), (count,), generator=generator)
        labels = [bank.labels[int(i)] for i in captions]
        latents = torch.cat(
            [
                self.encode(render(labels[i : i + 64], self.num_frames, rng), generator).cpu()
                for i in range(0, count, 64)
            ]
        )
        return latents, captions

    def fill(
        self,
        bank: CaptionBank,
        size: int,
        rng: np.random.Generator,
        generator: torch.Generator,
        progress: bool,
    ) -> None:
        if self.latents is not None:
            return
        chunks, captions = [], []
        for _ in progress_range(0, size, 256, "encoding clips", progress):
            latents, caption_ids = self.fresh_clips(
                bank, min(256, size - len(captions) * 256), rng, generator
            )
            chunks.append(latents)
            captions.append(caption_ids)
        self.latents = torch.cat(chunks)
        self.captions = torch.cat(captions)

    def refresh(
        self, bank: CaptionBank, count: int, rng: np.random.Generator, generator: torch.Generator
    ) -> None:
        """Replace ``count`` random slots with fresh clips."""
        assert self.latents is not None and self.captions is not None
        if count <= 0:
            return
        slots = torch.randint(len(self.latents), (count,), generator=generator)
        fresh, caption_ids = self.fresh_clips(bank, count, rng, generator)
        self.latents[slots] = fresh
        self.captions[slots] = caption_ids


@dataclass
class DenoiserBatch:
    latents: torch.Tensor  # (B, C, F, h, w)
    context: torch.Tensor  # (B, L, D)
    timesteps: torch.Tensor  # (B,)
    noise: torch.Tensor  # (B, C, F, h, w)


def denoiser_batch(
    pool: LatentPool,
    bank: CaptionBank,
    batch: int,
    caption_dropout: float,
    num_train_timesteps: int,
    generator: torch.Generator,
    device: torch.device,
) -> DenoiserBatch:
    """Clips from the pool, their captions (``caption_dropout`` of them "" for classifier-free
    guidance), uniform timesteps and ε."""
    assert pool.latents is not None and pool.captions is not None
    picks = torch.randint(len(pool.latents), (batch,), generator=generator)
    latents = pool.latents[picks].to(device)
    context = bank.embeds[pool.captions[picks]].float()
    drop = torch.rand(batch, generator=generator) < caption_dropout
    context[drop] = bank.uncond.float()
    timesteps = torch.randint(num_train_timesteps, (batch,), generator=generator)
    noise = torch.randn(latents.shape, generator=generator).to(device)
    return DenoiserBatch(latents, context.to(device), timesteps.to(device), noise)


@dataclass
class FlowBatch:
    latents: torch.Tensor  # (B, C, F, h, w)
    context: torch.Tensor  # (B, L, D)
    sigmas: torch.Tensor  # (B,) in (0, 1)
    noise: torch.Tensor  # (B, C, F, h, w)
    given_mask: torch.Tensor  # (B, 1, F, h, w): 1 on frames given through the conditioning channels
    given: torch.Tensor  # (B, C, F, h, w): the given frames, noised to given_sigma (ART-V §3.3)
    given_sigma: torch.Tensor  # (B,): their noise level, 0 without noise augmentation
    anchor: torch.Tensor | None  # (B, C, h, w): an anchor frame (zeros for none), None without anchors


def flow_batch(
    pool: LatentPool,
    bank: CaptionBank,
    config: Any,
    generator: torch.Generator,
    device: torch.device,
) -> FlowBatch:
    """Clips from the pool, their captions (``caption_dropout`` of them ""), logit-normal σ
    (``sigmoid(N(logit_mean, logit_std))``, SD3 §3.1), ε, and for ``condition_share`` of the clips
    their first k frames given (k uniform in 1..``condition_max_frames``).

    A network with ``condition_noise`` gets the given frames noised along the flow,
    ``(1 − s) x₀ + s ε'`` with ``s ~ U(0, condition_noise_max)`` (ART-V §3.3: the network sees clean and
    corrupted references, as it will see generated ones). One with ``anchor_frame`` gets, for
    ``anchor_share`` of the conditioned clips, one clean frame of the same clip picked at random as the
    anchor (ART-V §3.4 picks a frame from a window before the current ones; a clip of 8 frames is our
    window), zeros otherwise (ART-V's "no anchor")."""
    assert pool.latents is not None and pool.captions is not None
    batch = config.unet_batch
    picks = torch.randint(len(pool.latents), (batch,), generator=generator)
    latents = pool.latents[picks].to(device)
    context = bank.embeds[pool.captions[picks]].float()
    drop = torch.rand(batch, generator=generator) < config.caption_dropout
    context[drop] = bank.uncond.float()
    normal = torch.randn(batch, generator=generator)
    sigmas = torch.sigmoid(config.logit_mean + config.logit_std * normal)
    noise = torch.randn(latents.shape, generator=generator).to(device)
    given = torch.rand(batch, generator=generator) < config.condition_share
    counts = torch.randint(1, config.condition_max_frames + 1, (batch,), generator=generator) * given
    frames = torch.arange(latents.shape[2])
    mask = (frames[None, :] < counts[:, None]).float().view(batch, 1, -1, 1, 1)
    mask = mask.expand(-1, 1, -1, *latents.shape[-2:]).contiguous().to(device)
    network = config.unet_config
    given_sigma = torch.zeros(batch)
    given_frames = latents
    if network.get("condition_noise"):
        given_sigma = torch.rand(batch, generator=generator) * config.condition_noise_max
        s = given_sigma.view(-1, 1, 1, 1, 1).to(device)
        reference_noise = torch.randn(latents.shape, generator=generator).to(device)
        given_frames = (1.0 - s) * latents + s * reference_noise
    anchor = None
    if network.get("anchor_frame"):
        anchored = given & (torch.rand(batch, generator=generator) < config.anchor_share)
        which = torch.randint(latents.shape[2], (batch,), generator=generator)
        anchor = latents[torch.arange(batch), :, which] * anchored.view(-1, 1, 1, 1).to(latents)
    return FlowBatch(
        latents,
        context.to(device),
        sigmas.to(device),
        noise,
        mask,
        given_frames,
        given_sigma.to(device),
        anchor,
    )
