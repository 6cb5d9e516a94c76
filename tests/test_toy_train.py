"""Toy-model training on micro configs: the losses learn, resume is exact, the folder loads back.

These never train the real model: a few steps of micro UNet / VAE configs in a temp folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from toyworld import architecture
from toyworld.training import (
    MODEL_INDEX,
    diffusion_loss,
    min_snr_weights,
    train_toy_model,
    vae_loss,
)

MICRO = {
    "network": "unet3d",
    "unet_config": architecture.MICRO_UNET_CONFIG,
    "vae_config": architecture.MICRO_VAE_CONFIG,
    "caption_bank": 6,
    "latent_pool": 8,
    "pool_refresh": 2,
    "unet_batch": 2,
    "vae_batch_frames": 4,
    "latent_stat_clips": 4,
    "warmup_steps": 2,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def prompt_encoder():
    from generation.text_encoders import MiniLMPromptEncoder
    from reelgraph.resolve import resolve_text_model

    return MiniLMPromptEncoder(resolve_text_model(), max_length=architecture.TEXT_TOKENS)


def _train(out: Path, encoder, vae_steps: int, unet_steps: int, **overrides) -> Path:
    return train_toy_model(
        out,
        minutes=60,
        device="cpu",
        progress=False,
        seed=3,
        prompt_encoder=encoder,
        vae_steps=vae_steps,
        unet_steps=unet_steps,
        **{**MICRO, **overrides},
    )


def _state(out: Path) -> dict:
    return json.loads((out / ".checkpoint" / "state.json").read_text())["state"]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_diffusion_loss_decreases_on_a_fixed_batch():
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = architecture.build_unet(architecture.MICRO_UNET_CONFIG)
    scheduler = architecture.build_scheduler()
    latents = torch.randn(2, 4, 8, 8, 8, generator=gen)
    context = torch.randn(2, architecture.TEXT_TOKENS, architecture.TEXT_DIM, generator=gen)
    timesteps = torch.tensor([100, 600])
    noise = torch.randn(latents.shape, generator=gen)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        loss, _ = diffusion_loss(unet, scheduler.alphas_cumprod, latents, context, timesteps, noise, 5.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_vae_loss_decreases_on_a_fixed_batch():
    import numpy as np

    from toyworld.dataset import sample_batch

    gen = torch.Generator().manual_seed(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = architecture.build_vae(architecture.MICRO_VAE_CONFIG)
    frames, _, _ = sample_batch(4, np.random.default_rng(0), num_frames=1)
    pixels = torch.from_numpy(frames[:, 0]).float().div(127.5).sub(1).permute(0, 3, 1, 2)
    weight = torch.ones(4, 1, 32, 32)
    noise = torch.randn(4, 4, 8, 8, generator=gen)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss, mse = vae_loss(vae, pixels, weight, noise, 1e-6)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(mse.item())
    assert losses[-1] < 0.7 * losses[0]


def test_min_snr_weights_clip_high_snr_only():
    alphas = torch.tensor([0.99, 0.5, 0.01])  # SNR 99, 1, ~0.0101
    weights = min_snr_weights(alphas, torch.tensor([0, 1, 2]), gamma=5.0)
    assert torch.allclose(weights, torch.tensor([5.0 / 99.0, 1.0, 1.0]))


def test_resume_equals_an_uninterrupted_run_and_the_folder_loads(tmp_path, prompt_encoder):
    straight = _train(tmp_path / "straight", prompt_encoder, vae_steps=3, unet_steps=4)
    split = tmp_path / "split"
    _train(split, prompt_encoder, vae_steps=3, unet_steps=2, saved_weights="ema")
    assert _state(split)["unet_step"] == 2
    _train(split, prompt_encoder, vae_steps=3, unet_steps=4, saved_weights="ema")

    assert _state(split)["unet_step"] == _state(straight)["unet_step"] == 4
    assert _state(split)["vae_step"] == 3
    assert _state(split)["unet_losses"] == _state(straight)["unet_losses"]
    for name in ("unet.safetensors", "unet_ema.safetensors", "vae.safetensors", "unet_optimizer.safetensors"):
        a = _tensors(straight / ".checkpoint" / name)
        b = _tensors(split / ".checkpoint" / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    # Checkpoints hold only safetensors and JSON (no pickle).
    assert {p.suffix for p in (split / ".checkpoint").iterdir()} <= {".safetensors", ".json"}

    # The model folder: fixed layout, the chosen UNet weights, measured scaling factor, loadable by diffusers.
    from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel

    assert json.loads((split / "model_index.json").read_text()) == MODEL_INDEX
    extra = json.loads((split / "reelgraph.json").read_text())
    assert extra["num_frames"] == 8 and extra["height"] == extra["width"] == 32
    assert extra["text_encoder"] == {"model": "sentence-transformers/all-MiniLM-L6-v2", "max_length": 32}
    for path in ("MODEL_CARD.md", "loss_curve.png", "unet/diffusion_pytorch_model.safetensors"):
        assert (split / path).is_file(), path
    unet = UNet3DConditionModel.from_pretrained(split / "unet")
    ema = _tensors(split / ".checkpoint" / "unet_ema.safetensors")
    assert all(torch.equal(p, ema[n]) for n, p in unet.named_parameters())
    raw = _tensors(split / ".checkpoint" / "unet.safetensors")
    assert not all(torch.equal(p, raw[n]) for n, p in unet.named_parameters())
    # The straight run kept the default saved_weights="raw".
    straight_unet = UNet3DConditionModel.from_pretrained(straight / "unet")
    assert all(torch.equal(p, raw[n]) for n, p in straight_unet.named_parameters())
    assert "the raw weights are saved" in (straight / "MODEL_CARD.md").read_text()
    vae = AutoencoderKL.from_pretrained(split / "vae")
    assert vae.config.scaling_factor == pytest.approx(_state(split)["scaling_factor"])
    assert vae.config.scaling_factor != 1.0
    scheduler = DDIMScheduler.from_pretrained(split / "scheduler")
    assert scheduler.config.prediction_type == "epsilon"
    assert scheduler.config.beta_schedule == architecture.SCHEDULER_CONFIG["beta_schedule"]


def test_a_finished_run_extends_with_a_larger_budget(tmp_path, prompt_encoder):
    """Calling a finished run again does nothing; with more steps it trains the UNet on."""
    out = _train(tmp_path / "run", prompt_encoder, vae_steps=2, unet_steps=1)
    first = _state(out)
    again = _train(out, prompt_encoder, vae_steps=2, unet_steps=1)
    assert _state(again)["unet_step"] == first["unet_step"] == 1  # nothing left to do
    more = _train(out, prompt_encoder, vae_steps=5, unet_steps=3)
    assert _state(more)["vae_step"] == 2  # the VAE is frozen once the UNet has started
    assert _state(more)["unet_step"] == 3


def test_an_unknown_choice_of_saved_weights_is_refused(tmp_path):
    from reelgraph.errors import ReelgraphError

    with pytest.raises(ReelgraphError, match="'best'"):
        train_toy_model(tmp_path / "run", minutes=1, device="cpu", progress=False, saved_weights="best")
    assert not (tmp_path / "run").exists()


def test_latent_channel_standardisation_is_exact():
    from toyworld.training import standardize_latent_channels

    gen = torch.Generator().manual_seed(2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = architecture.build_vae(architecture.MICRO_VAE_CONFIG).eval()
    pixels = torch.rand(3, 3, 32, 32, generator=gen) * 2 - 1
    with torch.no_grad():
        before = vae.encode(pixels).latent_dist
        recon_before = vae.decode(before.mean).sample
        mean = before.mean.mean(dim=(0, 2, 3))
        std = before.mean.std(dim=(0, 2, 3))
        standardize_latent_channels(vae, mean, std)
        after = vae.encode(pixels).latent_dist
        recon_after = vae.decode(after.mean).sample
    gain = std.pow(2).mean().sqrt() / std
    expected = (before.mean - mean.view(1, -1, 1, 1)) * gain.view(1, -1, 1, 1)
    assert torch.allclose(after.mean, expected, atol=1e-5)
    assert torch.allclose(after.std, before.std * gain.view(1, -1, 1, 1), rtol=1e-4)
    assert torch.allclose(after.mean.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(recon_after, recon_before, atol=1e-5)


# Losses of this 2 + 2 step micro run, computed by the single-file trainer (toyworld/train.py at
# f3e4fc8) before it was split into toyworld/training/: the split must not change a draw.
PINNED_VAE_LOSSES = [0.7538734078407288, 0.8478221297264099]
PINNED_UNET_LOSSES = [1.156797170639038, 1.0789531469345093]
PINNED_SCALING_FACTOR = 0.7327900934798726

# The checkpoint format runs written before the split rely on (state.json keys, file names).
CHECKPOINT_FILES = {
    "caption_bank.json",
    "caption_bank.safetensors",
    "generators.safetensors",
    "latent_pool.safetensors",
    "state.json",
    "unet.safetensors",
    "unet_ema.safetensors",
    "unet_optimizer.safetensors",
    "vae.safetensors",
    "vae_optimizer.safetensors",
}
STATE_KEYS = {
    "device", "elapsed_s", "latent_channel_std", "latent_mean", "latent_std", "numpy_rngs", "phase",
    "scaling_factor", "unet_losses", "unet_step", "vae_elapsed_s", "vae_losses", "vae_step",
}  # fmt: skip
CONFIG_KEYS = {
    "caption_bank", "caption_dropout", "checkpoint_minutes", "distribution", "ema_decay", "grad_clip",
    "guidance_scale", "kl_weight", "latent_pool", "network", "vae_from", "logit_mean", "logit_std",
    "condition_share", "condition_max_frames", "condition_noise_max", "anchor_share", "init_from", "flow_shift",
    "latent_stat_clips", "min_snr_gamma", "minutes",
    "num_frames", "object_weight", "pool_refresh", "saved_weights", "scheduler_config", "unet_batch",
    "unet_config", "unet_cooldown", "unet_lr", "unet_steps", "vae_batch_frames", "vae_config",
    "vae_cooldown", "vae_decoder_noise", "vae_grad_clip", "vae_logvar_init", "vae_lr", "vae_share",
    "vae_steps", "vae_warmup_steps", "warmup_steps", "weight_decay",
}  # fmt: skip


def test_a_tiny_run_keeps_its_pinned_losses_and_checkpoint_format(tmp_path, prompt_encoder):
    out = _train(tmp_path / "run", prompt_encoder, vae_steps=2, unet_steps=2)
    state = _state(out)
    assert state["vae_losses"] == pytest.approx(PINNED_VAE_LOSSES, rel=1e-5)
    assert state["unet_losses"] == pytest.approx(PINNED_UNET_LOSSES, rel=1e-5)
    assert state["scaling_factor"] == pytest.approx(PINNED_SCALING_FACTOR, rel=1e-5)
    assert {p.name for p in (out / ".checkpoint").iterdir()} == CHECKPOINT_FILES
    saved = json.loads((out / ".checkpoint" / "state.json").read_text())
    assert set(saved) == {"seed", "config", "state", "optimizers"}
    assert set(saved["state"]) == STATE_KEYS
    assert set(saved["config"]) == CONFIG_KEYS
    assert set(saved["optimizers"]) == {"vae", "unet"}
    generators = _tensors(out / ".checkpoint" / "generators.safetensors")
    assert set(generators) == {"vae", "unet"}


def test_one_phase_loop_honours_step_budget_schedule_and_records_losses():
    from toyworld.training.phase import Phase, run_phase
    from toyworld.training.state import TrainingClock, TrainingProgress

    gen = torch.Generator().manual_seed(0)
    module = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.0)
    inputs = torch.randn(16, 3, generator=gen)
    targets = inputs @ torch.tensor([[1.0], [-2.0], [0.5]])
    lrs, after = [], []

    def loss(batch):
        lrs.append(optimizer.param_groups[0]["lr"])
        err = (module(batch[0]) - batch[1]).pow(2).mean()
        return err, err.detach()

    phase = Phase(
        name="unet",
        module=module,
        optimizer=optimizer,
        base_lr=0.1,
        warmup_steps=2,
        cooldown=0.5,
        grad_clip=10.0,
        step_budget=4,
        time_start_s=0.0,
        time_end_s=1e9,
        draw_batch=lambda: (inputs, targets),
        loss=loss,
        after_step=lambda: after.append(progress.unet_step),
    )
    progress = TrainingProgress(unet_step=1)  # resumes at step 1
    run_phase(phase, progress, TrainingClock(), False, lambda: None, show_bar=False)
    assert progress.unet_step == 4 and len(progress.unet_losses) == 3 and progress.vae_step == 0
    assert after == [1, 2, 3]  # after_step runs before the step counts (the EMA reads it)
    # warmup reaches 1 at step 1; cooldown over the last half: fractions 1/4, 2/4, 3/4
    assert lrs == pytest.approx([0.1, 0.1, 0.05])
    assert progress.unet_losses[-1] < progress.unet_losses[0]


def test_only_the_network_module_knows_the_denoiser_class():
    """Swapping the denoiser (UNet3D -> a Wan-style transformer) must be a change of one module."""
    package = Path(__file__).resolve().parents[1] / "toyworld" / "training"
    knows = sorted(
        path.name
        for path in package.glob("*.py")
        if any(
            word in path.read_text()
            for word in ("UNet3DConditionModel", "build_unet", "encoder_hidden_states")
        )
    )
    assert knows == ["network.py"]
