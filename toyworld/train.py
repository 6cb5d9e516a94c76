"""Train the embedded toy model: VAE first, then the text-conditioned video UNet.

``train_toy_model(out_dir, minutes)`` writes a diffusers text-to-video folder
(``model_index.json``, ``reelgraph.json``, ``unet/``, ``vae/``, ``scheduler/``,
``MODEL_CARD.md``, ``loss_curve.png``) that :func:`generation.loaders.load_video_model`
reads like any checkpoint. Resume state lives in ``out_dir/.checkpoint/``
(safetensors for tensors, JSON for everything else); calling again with the
same folder continues where the last call stopped, and a larger budget extends
a finished run.

Phases
    vae: ``AutoencoderKL`` on single frames of freshly rendered clips; loss is
        a per-pixel MSE that weighs object pixels ``1 + object_weight`` (objects
        cover ~3 % of a frame, yet their colour and outline are all the probe
        reads) plus a small KL term.
    calibrate: the latent std over ``latent_stat_clips`` clips sets
        ``vae.config.scaling_factor`` so that scaled latents have unit variance.
    unet: ``UNet3DConditionModel`` on VAE latents of freshly rendered 8-frame
        clips (every clip is new, so nothing is memorised), conditioned on a bank
        of pre-encoded captions (MiniLM costs ~12 ms a caption on this CPU, more
        than rendering and VAE encoding together). Epsilon prediction on the
        cosine schedule (:data:`toyworld.architecture.SCHEDULER_CONFIG`), min-SNR-γ
        loss weighting (Hang et al. 2023: ``min(SNR, γ) / SNR`` for ε targets),
        ``caption_dropout`` of captions replaced by "" for classifier-free
        guidance, AdamW with linear warmup, gradient clipping, and an EMA of the
        weights, which is what gets saved.

Randomness: the data come from ``numpy.random.Generator`` objects and the noise,
timesteps, dropout and batch picks from ``torch.Generator`` objects, all derived
from ``seed`` and saved in checkpoints, so a resumed run equals an uninterrupted
one. Weight initialisation seeds torch's global generator inside
``torch.random.fork_rng`` (module constructors accept no generator), leaving the
caller's global state untouched. Dropout layers are switched off (they would
draw from the global generator; the model underfits anyway).
"""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reelgraph.atomic import atomic_path, write_json, write_text
from reelgraph.errors import ReelgraphError
from toyworld import architecture
from toyworld.spec import BACKGROUNDS, FPS, FRAME_SIZE, Label

CHECKPOINT_DIR = ".checkpoint"
PHASES = ("vae", "calibrate", "unet", "done")
TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_INDEX = {
    "_class_name": "ReelgraphToyT2V",
    "unet": ["diffusers", "UNet3DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["reelgraph", "MiniLMPromptEncoder"],
}


@dataclass
class TrainConfig:
    """Everything that shapes a run. Step counts, when given, replace the time budget of their phase."""

    minutes: float = 85.0
    vae_share: float = 0.15
    vae_steps: int | None = None
    unet_steps: int | None = None
    num_frames: int = 8
    distribution: str = "train"
    # VAE
    vae_batch_frames: int = 32
    vae_lr: float = 2e-3
    vae_warmup_steps: int = 50
    vae_grad_clip: float = 5.0
    vae_logvar_init: float = -6.0
    vae_cooldown: float = 0.3
    vae_decoder_noise: float = 0.25
    kl_weight: float = 1e-6
    object_weight: float = 4.0
    latent_stat_clips: int = 256
    # UNet
    unet_batch: int = 16
    unet_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    unet_cooldown: float = 0.2
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # Which UNet weights the model folder gets: "raw" (the optimiser's, after the LR cooldown) or "ema".
    # An EMA of 0.999 spans ~1,000 steps, which in a run of a few thousand reaches back before the LR
    # cooldown; on the selection draw the committed run's raw weights scored higher (MODEL_CARD.md).
    # Both stay in the checkpoint.
    saved_weights: str = "raw"
    caption_dropout: float = 0.1
    min_snr_gamma: float = 5.0
    caption_bank: int = 8000
    latent_pool: int = 2048
    pool_refresh: int = 8
    guidance_scale: float = 6.0
    # bookkeeping
    checkpoint_minutes: float = 3.0
    unet_config: dict[str, Any] = field(default_factory=lambda: dict(architecture.UNET_CONFIG))
    vae_config: dict[str, Any] = field(default_factory=lambda: dict(architecture.VAE_CONFIG))
    scheduler_config: dict[str, Any] = field(default_factory=lambda: dict(architecture.SCHEDULER_CONFIG))

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


# -- small helpers ----------------------------------------------------------------------------------


def _init_seeded(build: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _init_logvar(vae: torch.nn.Module, logvar: float) -> None:
    """Start the posterior narrow (std = exp(logvar / 2)): with a tiny KL weight the encoder would
    spend its first hundreds of steps shrinking a unit-variance posterior whose noise blurs every
    reconstruction. The encoder's last conv emits [mean, logvar] channels."""
    conv = vae.encoder.conv_out
    half = conv.out_channels // 2
    with torch.no_grad():
        conv.bias[half:].fill_(logvar)


def _disable_dropout(module: torch.nn.Module) -> None:
    for sub in module.modules():
        if isinstance(sub, torch.nn.Dropout):
            sub.p = 0.0


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """AdamW state as flat safetensors entries plus JSON-able hyper-parameters."""
    state = optimizer.state_dict()
    tensors = {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            tensors[f"{index}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, {"param_groups": state["param_groups"]}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _numpy_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _numpy_from_state(state: dict) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def _to_unit_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, F, H, W, 3)`` to float ``(N·F, 3, H, W)`` in [-1, 1]."""
    x = torch.from_numpy(frames).float().div_(127.5).sub_(1.0)
    return x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).contiguous()


def _object_mask(frames: np.ndarray, labels: list[Label]) -> torch.Tensor:
    """``(N·F, 1, H, W)``: 1 where a pixel differs from its clip's background colour."""
    background = np.array([BACKGROUNDS[label.background] for label in labels], dtype=np.int16)
    diff = np.abs(frames.astype(np.int16) - background[:, None, None, None, :]).max(axis=-1)
    mask = torch.from_numpy((diff > 4).astype(np.float32))
    return mask.reshape(-1, 1, *mask.shape[-2:])


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
    unet: torch.nn.Module,
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
    pred = unet(noisy, timesteps, encoder_hidden_states=context).sample
    per_clip = (pred.float() - noise).pow(2).mean(dim=(1, 2, 3, 4))
    if min_snr_gamma is None:
        return per_clip.mean(), per_clip
    return (min_snr_weights(alphas_cumprod, timesteps, min_snr_gamma) * per_clip).mean(), per_clip


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


def save_model_folder(
    out_dir: str | Path,
    unet: torch.nn.Module,
    vae: torch.nn.Module,
    scheduler_config: dict[str, Any],
    num_frames: int = 8,
    guidance_scale: float = 7.5,
) -> Path:
    """Write the toy model layout (``model_index.json``, ``reelgraph.json``, ``unet/``, ``vae/``, ``scheduler/``)."""
    from diffusers import DDIMScheduler

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "model_index.json", MODEL_INDEX)
    write_json(
        out / "reelgraph.json",
        {
            "num_frames": num_frames,
            "height": FRAME_SIZE,
            "width": FRAME_SIZE,
            "fps": FPS,
            "guidance_scale": guidance_scale,
            "text_encoder": {"model": TEXT_MODEL, "max_length": architecture.TEXT_TOKENS},
        },
    )
    unet.save_pretrained(out / "unet", safe_serialization=True)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    DDIMScheduler(**scheduler_config).save_pretrained(out / "scheduler")
    return out


# -- run state --------------------------------------------------------------------------------------


@dataclass
class RunState:
    phase: str = "vae"
    vae_step: int = 0
    unet_step: int = 0
    elapsed_s: float = 0.0
    vae_elapsed_s: float = 0.0
    scaling_factor: float | None = None
    latent_mean: list[float] | None = None
    latent_channel_std: list[float] | None = None
    latent_std: float | None = None
    vae_losses: list[float] = field(default_factory=list)
    unet_losses: list[float] = field(default_factory=list)
    numpy_rngs: dict[str, dict] = field(default_factory=dict)
    device: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Trainer:
    """One training run in ``out_dir``; see :func:`train_toy_model`."""

    def __init__(
        self,
        out_dir: Path,
        config: TrainConfig,
        seed: int,
        device: torch.device,
        prompt_encoder: Any,
        progress: bool,
    ):
        self.out = out_dir
        self.ckpt = out_dir / CHECKPOINT_DIR
        self.config = config
        self.seed = seed
        self.device = device
        self.autocast = device.type == "cuda"
        self._prompt_encoder = prompt_encoder
        self.progress = progress
        self.state = RunState(device=str(device))
        self.session_start = time.perf_counter()
        self.elapsed_at_start = 0.0
        self.last_checkpoint = time.perf_counter()

        self.vae = _init_seeded(lambda: architecture.build_vae(config.vae_config), seed)
        self.unet = _init_seeded(lambda: architecture.build_unet(config.unet_config), seed + 1)
        _init_logvar(self.vae, config.vae_logvar_init)
        _disable_dropout(self.vae)
        _disable_dropout(self.unet)
        self.vae.to(device)
        self.unet.to(device)
        self.ema = [p.detach().clone() for p in self.unet.parameters()]
        self.scheduler = architecture.build_scheduler(config.scheduler_config)
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(device)
        self.vae_opt = torch.optim.AdamW(self.vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
        self.unet_opt = torch.optim.AdamW(
            self.unet.parameters(), lr=config.unet_lr, weight_decay=config.weight_decay
        )
        self.vae_rng = np.random.default_rng([seed, 1])
        self.unet_rng = np.random.default_rng([seed, 3])
        self.vae_gen = torch.Generator().manual_seed(seed * 1000 + 11)
        self.unet_gen = torch.Generator().manual_seed(seed * 1000 + 13)
        self.bank: torch.Tensor | None = None
        self.bank_labels: list[Label] = []
        self.uncond: torch.Tensor | None = None
        self.pool_latents: torch.Tensor | None = None
        self.pool_captions: torch.Tensor | None = None

    # -- time ------------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return self.elapsed_at_start + (time.perf_counter() - self.session_start)

    @property
    def budget_s(self) -> float:
        return self.config.minutes * 60.0

    def _vae_finished(self) -> bool:
        if self.config.vae_steps is not None:
            return self.state.vae_step >= self.config.vae_steps
        return self.elapsed >= self.config.vae_share * self.budget_s

    def _unet_finished(self) -> bool:
        if self.config.unet_steps is not None:
            return self.state.unet_step >= self.config.unet_steps
        return self.elapsed >= self.budget_s

    # -- checkpoints -----------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        self.ckpt.mkdir(parents=True, exist_ok=True)
        self.state.elapsed_s = self.elapsed
        self.state.numpy_rngs = {"vae": _numpy_state(self.vae_rng), "unet": _numpy_state(self.unet_rng)}
        _save_tensors(self.ckpt / "vae.safetensors", self.vae.state_dict())
        _save_tensors(self.ckpt / "unet.safetensors", self.unet.state_dict())
        names = [name for name, _ in self.unet.named_parameters()]
        _save_tensors(self.ckpt / "unet_ema.safetensors", dict(zip(names, self.ema, strict=True)))
        vae_opt, vae_meta = _optimizer_tensors(self.vae_opt)
        unet_opt, unet_meta = _optimizer_tensors(self.unet_opt)
        _save_tensors(self.ckpt / "vae_optimizer.safetensors", vae_opt)
        _save_tensors(self.ckpt / "unet_optimizer.safetensors", unet_opt)
        if self.pool_latents is not None:
            _save_tensors(
                self.ckpt / "latent_pool.safetensors",
                {"latents": self.pool_latents, "captions": self.pool_captions},
            )
        _save_tensors(
            self.ckpt / "generators.safetensors",
            {"vae": self.vae_gen.get_state(), "unet": self.unet_gen.get_state()},
        )
        write_json(
            self.ckpt / "state.json",
            {
                "seed": self.seed,
                "config": self.config.to_json(),
                "state": self.state.to_json(),
                "optimizers": {"vae": vae_meta, "unet": unet_meta},
            },
        )
        self.last_checkpoint = time.perf_counter()

    def load_checkpoint(self) -> bool:
        path = self.ckpt / "state.json"
        if not path.is_file():
            return False
        saved = json.loads(path.read_text())
        if saved["config"]["unet_config"] != self.config.to_json()["unet_config"] or (
            saved["config"]["vae_config"] != self.config.to_json()["vae_config"]
        ):
            raise ReelgraphError(
                f"The checkpoint in {self.ckpt} was trained with other model configs.",
                fix="train into a new folder, or pass resume=False to start over.",
            )
        if saved["seed"] != self.seed:
            raise ReelgraphError(
                f"The checkpoint in {self.ckpt} was trained with seed {saved['seed']}, not {self.seed}.",
                fix=f"pass seed={saved['seed']}, or resume=False to start over.",
            )
        self.state = RunState(**saved["state"])
        self.elapsed_at_start = self.state.elapsed_s
        self.session_start = time.perf_counter()
        self.vae.load_state_dict(_load_tensors(self.ckpt / "vae.safetensors"))
        self.unet.load_state_dict(_load_tensors(self.ckpt / "unet.safetensors"))
        ema = _load_tensors(self.ckpt / "unet_ema.safetensors")
        self.ema = [ema[name].to(self.device) for name, _ in self.unet.named_parameters()]
        _load_optimizer(
            self.vae_opt, _load_tensors(self.ckpt / "vae_optimizer.safetensors"), saved["optimizers"]["vae"]
        )
        _load_optimizer(
            self.unet_opt,
            _load_tensors(self.ckpt / "unet_optimizer.safetensors"),
            saved["optimizers"]["unet"],
        )
        generators = _load_tensors(self.ckpt / "generators.safetensors")
        self.vae_gen.set_state(generators["vae"])
        self.unet_gen.set_state(generators["unet"])
        self.vae_rng = _numpy_from_state(self.state.numpy_rngs["vae"])
        self.unet_rng = _numpy_from_state(self.state.numpy_rngs["unet"])
        if self.state.scaling_factor is not None:
            self.vae.register_to_config(scaling_factor=self.state.scaling_factor)
        pool_path = self.ckpt / "latent_pool.safetensors"
        if self.state.phase in ("unet", "done") and pool_path.is_file():
            pool = _load_tensors(pool_path)
            self.pool_latents, self.pool_captions = pool["latents"], pool["captions"]
        return True

    def _maybe_checkpoint(self) -> None:
        if time.perf_counter() - self.last_checkpoint >= self.config.checkpoint_minutes * 60.0:
            self.save_checkpoint()

    # -- data --------------------------------------------------------------------------------------
    def _render(self, rng: np.random.Generator, labels: list[Label]) -> np.ndarray:
        from toyworld.render import render_batch

        return render_batch(labels, self.config.num_frames, rng)

    def _sample_labels(self, rng: np.random.Generator, n: int) -> list[Label]:
        from toyworld.captions import sample_label

        return [sample_label(rng, self.config.distribution) for _ in range(n)]

    @torch.no_grad()
    def _encode_latents(self, frames: np.ndarray, generator: torch.Generator) -> torch.Tensor:
        """uint8 clips ``(N, F, H, W, 3)`` to scaled latents ``(N, C, F, h, w)``."""
        n, f = frames.shape[:2]
        pixels = _to_unit_range(frames).to(self.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            posterior = self.vae.encode(pixels).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator).to(self.device)
        latents = (posterior.mean + posterior.std * noise).float()
        latents = latents * float(self.vae.config.scaling_factor)
        return latents.reshape(n, f, *latents.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()

    def _prompt_encoder_instance(self):
        if self._prompt_encoder is None:
            from generation.text_encoders import MiniLMPromptEncoder
            from reelgraph.resolve import resolve_text_model

            self._prompt_encoder = MiniLMPromptEncoder(
                resolve_text_model(TEXT_MODEL), max_length=architecture.TEXT_TOKENS
            )
        return self._prompt_encoder

    def _build_caption_bank(self) -> None:
        """Encode ``caption_bank`` captions of training labels once (cached in the checkpoint folder)."""
        from toyworld.captions import describe, sample_label

        rng = np.random.default_rng([self.seed, 2])
        labels = [sample_label(rng, self.config.distribution) for _ in range(self.config.caption_bank)]
        captions = [describe(label, rng).text for label in labels]
        cache = self.ckpt / "caption_bank.safetensors"
        meta_path = self.ckpt / "caption_bank.json"
        if cache.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()) == captions:
            tensors = _load_tensors(cache)
        else:
            encoder = self._prompt_encoder_instance()
            chunks = []
            for start in self._progress_range(0, len(captions), 64, "encoding captions"):
                chunks.append(encoder.encode(captions[start : start + 64]).embeds.cpu())
            tensors = {
                "bank": torch.cat(chunks).to(torch.float16),
                "uncond": encoder.encode([""]).embeds.cpu().to(torch.float16),
            }
            self.ckpt.mkdir(parents=True, exist_ok=True)
            _save_tensors(cache, tensors)
            write_json(meta_path, captions)
        self.bank = tensors["bank"]
        self.uncond = tensors["uncond"]
        self.bank_labels = labels

    # -- progress ----------------------------------------------------------------------------------
    def _progress_range(self, start: int, stop: int, step: int, what: str) -> Iterator[int]:
        if not self.progress:
            yield from range(start, stop, step)
            return
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(what, total=stop - start)
            for i in range(start, stop, step):
                yield i
                bar.update(task, advance=min(step, stop - i))

    def _phase_bar(self, phase: str):
        if not self.progress:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("step {task.fields[step]}  loss {task.fields[loss]}"),
            TimeElapsedColumn(),
        )
        steps = self.config.vae_steps if phase == "vae" else self.config.unet_steps
        if steps is not None:
            total, done = steps, self.state.vae_step if phase == "vae" else self.state.unet_step
        else:
            end = self.config.vae_share * self.budget_s if phase == "vae" else self.budget_s
            total, done = end, self.elapsed
        task = bar.add_task(phase, total=total, completed=done, step=0, loss="-")
        bar.start()
        return bar, task, steps is not None

    def _bar_update(self, handle, step: int, loss: float) -> None:
        if handle is None:
            return
        bar, task, by_steps = handle
        bar.update(
            task, completed=step if by_steps else self.elapsed, step=step, loss=f"{loss:.4f}", refresh=False
        )

    # -- phases ------------------------------------------------------------------------------------
    def _vae_progress(self) -> float:
        if self.config.vae_steps is not None:
            return self.state.vae_step / max(1, self.config.vae_steps)
        return self.elapsed / max(1e-9, self.config.vae_share * self.budget_s)

    def _vae_lr(self) -> float:
        """Linear warmup, constant, then linear decay to 0 over the last ``vae_cooldown`` of the phase."""
        cfg = self.config
        warm = min(1.0, (self.state.vae_step + 1) / max(1, cfg.vae_warmup_steps))
        cool = min(1.0, (1.0 - self._vae_progress()) / cfg.vae_cooldown) if cfg.vae_cooldown > 0 else 1.0
        return cfg.vae_lr * warm * max(cool, 0.0)

    def _vae_step(self) -> float:
        cfg = self.config
        # One random frame from each of vae_batch_frames clips: frames of one clip share objects and
        # background, so distinct clips give the VAE far more to learn from per step.
        labels = self._sample_labels(self.vae_rng, cfg.vae_batch_frames)
        clips = self._render(self.vae_rng, labels)
        picks = self.vae_rng.integers(0, clips.shape[1], size=len(labels))
        frames = clips[np.arange(len(labels)), picks][:, None]
        pixels = _to_unit_range(frames).to(self.device)
        weight = 1.0 + cfg.object_weight * _object_mask(frames, labels).to(self.device)
        for group in self.vae_opt.param_groups:
            group["lr"] = self._vae_lr()
        self.vae.train()
        scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        latent_shape = (
            pixels.shape[0],
            self.vae.config.latent_channels,
            *(d // scale for d in pixels.shape[-2:]),
        )
        noise = torch.randn(latent_shape, generator=self.vae_gen).to(self.device)
        # Per-frame strength uniform in [0, vae_decoder_noise]: clean latents must still decode sharply.
        strength = torch.rand(latent_shape[0], 1, 1, 1, generator=self.vae_gen) * cfg.vae_decoder_noise
        decoder_noise = (strength * torch.randn(latent_shape, generator=self.vae_gen)).to(self.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            loss, mse = vae_loss(self.vae, pixels, weight, noise, cfg.kl_weight, decoder_noise)
        self.vae_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.vae.parameters(), cfg.vae_grad_clip)
        self.vae_opt.step()
        return mse.item()

    def run_vae(self) -> None:
        handle = self._phase_bar("vae")
        try:
            while not self._vae_finished():
                loss = self._vae_step()
                self.state.vae_step += 1
                self.state.vae_losses.append(loss)
                self._bar_update(handle, self.state.vae_step, loss)
                self._maybe_checkpoint()
        finally:
            if handle is not None:
                handle[0].stop()
        self.state.vae_elapsed_s = self.elapsed
        self.state.phase = "calibrate"

    @torch.no_grad()
    def _stat_latents(self) -> torch.Tensor:
        """Unscaled latents ``(N, C, F, h, w)`` of ``latent_stat_clips`` fixed clips."""
        rng = np.random.default_rng([self.seed, 4])
        gen = torch.Generator().manual_seed(self.seed * 1000 + 17)
        labels = self._sample_labels(rng, self.config.latent_stat_clips)
        return torch.cat(
            [
                self._encode_latents(self._render(rng, labels[i : i + 32]), gen)
                for i in range(0, len(labels), 32)
            ]
        )

    @torch.no_grad()
    def calibrate(self) -> None:
        """Standardise the latent channels inside the VAE, then set ``scaling_factor`` = 1 / latent std.

        The channels come out of VAE training with means of several stds and unequal spreads; the
        sampler only divides by ``scaling_factor`` (no shift), so the per-channel shift and relative
        scale are folded into the VAE's 1x1 ``quant_conv`` / ``post_quant_conv``
        (:func:`standardize_latent_channels`, exact). The global scale is what
        Stable Diffusion's 0.18215 is: 1 / std of the latents.
        """
        self.vae.eval()
        self.vae.register_to_config(scaling_factor=1.0)
        raw = self._stat_latents()
        dims = (0, 2, 3, 4)
        self.state.latent_mean = [float(v) for v in raw.mean(dim=dims)]
        self.state.latent_channel_std = [float(v) for v in raw.std(dim=dims)]
        standardize_latent_channels(self.vae, raw.mean(dim=dims), raw.std(dim=dims))
        std = float(self._stat_latents().std())
        self.state.latent_std = std
        self.state.scaling_factor = 1.0 / std
        self.vae.register_to_config(scaling_factor=self.state.scaling_factor)
        self.state.phase = "unet"

    def _unet_progress(self) -> float:
        if self.config.unet_steps is not None:
            return self.state.unet_step / max(1, self.config.unet_steps)
        start = self.state.vae_elapsed_s
        return (self.elapsed - start) / max(1e-9, self.budget_s - start)

    def _lr(self) -> float:
        """Linear warmup, constant, then linear decay to 0 over the last ``unet_cooldown`` of the phase."""
        cfg = self.config
        warm = min(1.0, (self.state.unet_step + 1) / max(1, cfg.warmup_steps))
        cool = min(1.0, (1.0 - self._unet_progress()) / cfg.unet_cooldown) if cfg.unet_cooldown > 0 else 1.0
        return cfg.unet_lr * warm * max(cool, 0.0)

    def _fresh_clips(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` newly rendered clips of random bank captions: latents ``(N, C, F, h, w)``, bank indices."""
        captions = torch.randint(len(self.bank_labels), (count,), generator=self.unet_gen)
        labels = [self.bank_labels[int(i)] for i in captions]
        latents = torch.cat(
            [
                self._encode_latents(self._render(self.unet_rng, labels[i : i + 64]), self.unet_gen).cpu()
                for i in range(0, count, 64)
            ]
        )
        return latents, captions

    def _fill_pool(self) -> None:
        """The replay pool of encoded clips. Encoding costs a third of a UNet step per clip, so each
        clip serves about ``unet_batch / pool_refresh`` steps before a fresh one replaces it."""
        if self.pool_latents is not None:
            return
        chunks, captions = [], []
        for _ in self._progress_range(0, self.config.latent_pool, 256, "encoding clips"):
            latents, caption_ids = self._fresh_clips(min(256, self.config.latent_pool - len(captions) * 256))
            chunks.append(latents)
            captions.append(caption_ids)
        self.pool_latents = torch.cat(chunks)
        self.pool_captions = torch.cat(captions)

    def _unet_step(self) -> float:
        cfg = self.config
        assert self.bank is not None and self.uncond is not None
        assert self.pool_latents is not None and self.pool_captions is not None
        picks = torch.randint(len(self.pool_latents), (cfg.unet_batch,), generator=self.unet_gen)
        latents = self.pool_latents[picks].to(self.device)
        context = self.bank[self.pool_captions[picks]].float()
        drop = torch.rand(cfg.unet_batch, generator=self.unet_gen) < cfg.caption_dropout
        context[drop] = self.uncond.float()
        timesteps = torch.randint(
            self.scheduler.config.num_train_timesteps, (cfg.unet_batch,), generator=self.unet_gen
        )
        noise = torch.randn(latents.shape, generator=self.unet_gen).to(self.device)
        timesteps = timesteps.to(self.device)
        self.unet.train()
        for group in self.unet_opt.param_groups:
            group["lr"] = self._lr()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            loss, per_clip = diffusion_loss(
                self.unet,
                self.alphas_cumprod,
                latents,
                context.to(self.device),
                timesteps,
                noise,
                cfg.min_snr_gamma,
            )
        self.unet_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), cfg.grad_clip)
        self.unet_opt.step()
        self._update_ema()
        if cfg.pool_refresh > 0:
            slots = torch.randint(len(self.pool_latents), (cfg.pool_refresh,), generator=self.unet_gen)
            fresh, caption_ids = self._fresh_clips(cfg.pool_refresh)
            self.pool_latents[slots] = fresh
            self.pool_captions[slots] = caption_ids
        return per_clip.detach().mean().item()

    @torch.no_grad()
    def _update_ema(self) -> None:
        step = self.state.unet_step
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.ema, [p.detach() for p in self.unet.parameters()], 1.0 - decay)

    def run_unet(self) -> None:
        self._build_caption_bank()
        self.vae.eval().requires_grad_(False)
        self._fill_pool()
        handle = self._phase_bar("unet")
        try:
            while not self._unet_finished():
                loss = self._unet_step()
                self.state.unet_step += 1
                self.state.unet_losses.append(loss)
                self._bar_update(handle, self.state.unet_step, loss)
                self._maybe_checkpoint()
        finally:
            if handle is not None:
                handle[0].stop()
        self.state.phase = "done"

    # -- output --------------------------------------------------------------------------------------
    def saved_unet(self) -> torch.nn.Module:
        """A fresh UNet holding the weights the folder gets (``saved_weights``): the raw ones or their EMA."""
        state = {k: v.detach().cpu() for k, v in self.unet.state_dict().items()}
        if self.config.saved_weights == "ema":
            names = [name for name, _ in self.unet.named_parameters()]
            state.update({name: value.detach().cpu() for name, value in zip(names, self.ema, strict=True)})
        unet = architecture.build_unet(self.config.unet_config)
        unet.load_state_dict(state)
        return unet.eval()

    def write_model(self) -> Path:
        vae = architecture.build_vae({**self.config.vae_config, "scaling_factor": self.state.scaling_factor})
        vae.load_state_dict({k: v.cpu() for k, v in self.vae.state_dict().items()})
        save_model_folder(
            self.out,
            self.saved_unet(),
            vae,
            self.config.scheduler_config,
            num_frames=self.config.num_frames,
            guidance_scale=self.config.guidance_scale,
        )
        plot_losses(self.state.vae_losses, self.state.unet_losses, self.out / "loss_curve.png")
        write_text(self.out / "MODEL_CARD.md", model_card(self.config, self.state, self.seed, vae, self.unet))
        return self.out


# -- reporting ------------------------------------------------------------------------------------------


def _smooth(values: list[float], window: int) -> np.ndarray:
    if len(values) < 2:
        return np.asarray(values, dtype=np.float64)
    window = max(1, min(window, len(values) // 4 or 1))
    kernel = np.ones(window) / window
    return np.convolve(np.asarray(values, dtype=np.float64), kernel, mode="valid")


def plot_losses(vae_losses: list[float], unet_losses: list[float], path: Path) -> Path:
    """Two panels (VAE reconstruction, UNet ε-MSE), raw and smoothed, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, losses, title in (
        (axes[0], vae_losses, "VAE: weighted reconstruction MSE"),
        (axes[1], unet_losses, "UNet: ε-prediction MSE"),
    ):
        if losses:
            ax.plot(np.arange(1, len(losses) + 1), losses, alpha=0.25, lw=0.6, color="tab:blue")
            smooth = _smooth(losses, 50)
            ax.plot(np.arange(len(losses) - len(smooth) + 1, len(losses) + 1), smooth, color="tab:blue")
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def model_card(
    config: TrainConfig, state: RunState, seed: int, vae: torch.nn.Module, unet: torch.nn.Module
) -> str:
    """The training facts of a run as markdown; evaluation figures are appended by whoever evaluates it."""
    unet_params = architecture.parameter_count(unet)
    vae_params = architecture.parameter_count(vae)
    vae_minutes = state.vae_elapsed_s / 60.0
    total_minutes = state.elapsed_s / 60.0
    last = np.mean(state.unet_losses[-100:]) if state.unet_losses else float("nan")
    return f"""# reelgraph toy text-to-video model

A small text-to-video diffusion model trained from scratch by `toyworld/train.py` on the procedural
toy world (`toyworld/`): 32x32 RGB, {config.num_frames} frames, {FPS} fps.

## Components
- UNet: diffusers `UNet3DConditionModel`, {unet_params / 1e6:.2f} M parameters, block widths
  {list(config.unet_config["block_out_channels"])}, cross-attention on all-MiniLM-L6-v2 token states
  (32 tokens x 384, padding included).
- VAE: diffusers `AutoencoderKL`, {vae_params / 1e6:.2f} M parameters, 32x32x3 -> 8x8x4 latents,
  scaling_factor {state.scaling_factor} (1 / measured latent std {state.latent_std}).
- Scheduler: `DDIMScheduler`, {config.scheduler_config["num_train_timesteps"]} training steps,
  beta schedule `{config.scheduler_config["beta_schedule"]}`, prediction type
  `{config.scheduler_config["prediction_type"]}`, timestep spacing
  `{config.scheduler_config["timestep_spacing"]}`, steps_offset {config.scheduler_config["steps_offset"]}.
- Text encoder: all-MiniLM-L6-v2, frozen, not stored here (resolved offline).

## Training
- Data: clips rendered on the fly from the `{config.distribution}` label distribution (zigzag <= 1 %),
  captions from a bank of {config.caption_bank} template captions; {config.caption_dropout:.0%} of
  captions replaced by "" (classifier-free guidance).
- VAE: {state.vae_step} steps of {config.vae_batch_frames} frames (one per clip), lr {config.vae_lr}
  (warmup {config.vae_warmup_steps}, linear decay over the last {config.vae_cooldown:.0%}),
  object pixels weighted x{1 + config.object_weight:g}, KL weight {config.kl_weight:g}, decoder input noise
  up to {config.vae_decoder_noise:g} latent std; {vae_minutes:.1f} min.
- UNet: {state.unet_step} steps of {config.unet_batch} clips, AdamW lr {config.unet_lr}
  (warmup {config.warmup_steps}, linear decay over the last {config.unet_cooldown:.0%}),
  min-SNR-γ {config.min_snr_gamma:g}, EMA {config.ema_decay} (the {config.saved_weights} weights are saved);
  final ε-MSE (mean of last 100 steps) {last:.4f}.
- Wall time {total_minutes:.1f} min on `{state.device}`, seed {seed}. Loss curves: `loss_curve.png`.
- Recommended guidance: {config.guidance_scale:g} (in `reelgraph.json`).

## Retrain
```
python cli.py toy train --out DIR --minutes {config.minutes:g} --device {state.device}
```
"""


def _stop_on_sigterm():
    """Make SIGTERM (``kill PID``, a job scheduler) stop like Ctrl-C: checkpoint, then exit."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


# -- entry point --------------------------------------------------------------------------------------------


def train_toy_model(
    out_dir: str | Path,
    minutes: float = 85.0,
    device: str = "auto",
    resume: bool = True,
    progress: bool = True,
    seed: int = 0,
    config: TrainConfig | None = None,
    prompt_encoder: Any = None,
    **overrides: Any,
) -> Path:
    """Train VAE then UNet into ``out_dir`` within ``minutes`` of wall time; returns the model folder.

    Args:
        out_dir: the model folder to write (resume state goes to ``out_dir/.checkpoint``).
        minutes: total wall-time budget, counted across resumed calls; ``vae_share`` of it goes to the VAE.
        device: ``auto`` (CUDA with bf16 autocast when present, else CPU fp32), ``cpu`` or ``cuda``.
        resume: continue from ``out_dir/.checkpoint`` when it exists (a larger budget extends a run).
        config: a :class:`TrainConfig`; ``overrides`` replace its fields (``unet_steps=...``).
        prompt_encoder: an already loaded MiniLM encoder (``encode(prompts) -> EncodedPrompts``).
    """
    from generation.devices import resolve_device

    config = dataclasses.replace(config or TrainConfig(), minutes=minutes, **overrides)
    if config.saved_weights not in ("raw", "ema"):
        raise ReelgraphError(
            f"saved_weights is {config.saved_weights!r}, which names no UNet weights.",
            fix="pass 'raw' or 'ema'.",
        )
    if config.minutes <= 0 and (config.vae_steps is None or config.unet_steps is None):
        raise ReelgraphError(
            f"A training budget of {config.minutes} minutes is empty.", fix="pass minutes > 0."
        )
    out = Path(out_dir)
    trainer = _Trainer(out, config, seed, resolve_device(device), prompt_encoder, progress)
    if resume:
        trainer.load_checkpoint()
    elif (out / CHECKPOINT_DIR).exists():
        import shutil

        shutil.rmtree(out / CHECKPOINT_DIR)
    previous = _stop_on_sigterm()
    try:
        if trainer.state.phase == "vae":
            trainer.run_vae()
            trainer.save_checkpoint()
        if trainer.state.phase == "calibrate":
            trainer.calibrate()
            trainer.save_checkpoint()
        if trainer.state.phase in ("unet", "done"):
            trainer.state.phase = "unet"
            trainer.run_unet()
    except KeyboardInterrupt:
        trainer.save_checkpoint()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    trainer.save_checkpoint()
    return trainer.write_model()


__all__ = ["TrainConfig", "min_snr_weights", "plot_losses", "train_toy_model"]
