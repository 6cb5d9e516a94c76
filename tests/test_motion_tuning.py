"""Temporal LoRA motion distillation (Search-T2V eq. 10): targets, loss, training, removal, AnimateDiff."""

from __future__ import annotations

import re

import pytest
import torch

from generation.adapters import (
    applied_lora,
    inject_lora,
    load_lora,
    lora_modules,
    remove_lora,
    save_lora,
    unet_noise,
)
from motion_prior.tuning import TuningConfig, distill_motion, lora_settings, vmc_loss
from reelgraph.errors import ReelgraphError
from tests.motion_helpers import moving_blob_latents, tiny_motion_unet
from tests.tiny_models import tiny_components

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    return tiny_components()


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(module: torch.nn.Module, snapshot: dict[str, torch.Tensor]) -> bool:
    state = module.state_dict()
    return state.keys() == snapshot.keys() and all(torch.equal(state[k], snapshot[k]) for k in snapshot)


def _eval_loss(unet, scheduler, latents, context, draws: int = 4) -> float:
    """Eq. 10 on a fixed set of (t, ε) draws, independent of the training draws."""
    generator = torch.Generator().manual_seed(1234)
    total = 0.0
    with torch.no_grad():
        for _ in range(draws):
            t = torch.randint(100, 900, (1,), generator=generator)
            noise = torch.randn(latents.shape, generator=generator)
            noisy = scheduler.add_noise(latents, noise, t)
            total += float(vmc_loss(unet_noise(unet, noisy, t, context), noise))
    return total / draws


def test_lora_targets_exactly_the_temporal_attention_projections(tiny):
    unet = tiny["unet"]
    expected = {
        name
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear)
        and re.search(r"temp_attentions\.\d+\..*attn[12]\.to_[qkv]$", name)
    }
    assert len(expected) == 24  # 4 temporal transformers x 2 attentions x q, k, v
    wrapped = inject_lora(unet, rank=2, alpha=2, pattern=TuningConfig().target_pattern())
    try:
        assert set(wrapped) == expected
        trainable = {n for n, p in unet.named_parameters() if p.requires_grad}
        assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    finally:
        assert remove_lora(unet) == 24
    assert lora_modules(unet) == []

    with_input = TuningConfig(include_transformer_in=True, projections=["attn1.to_q"]).target_pattern()
    wrapped = inject_lora(unet, rank=2, alpha=2, pattern=with_input)
    remove_lora(unet)
    assert "transformer_in.transformer_blocks.0.attn1.to_q" in wrapped
    assert len(wrapped) == 5 and all(n.endswith("attn1.to_q") for n in wrapped)
    assert not any(".attentions." in n for n in wrapped)  # never the spatial (text) attention

    with pytest.raises(ReelgraphError, match="No temporal attention"):
        inject_lora(torch.nn.Sequential(torch.nn.Linear(2, 2)), rank=2, alpha=2, pattern=with_input)


def test_vmc_loss_compares_frame_residuals_only():
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 4, 5, 6, 6, generator=generator)
    per_frame_offset = torch.randn(2, 4, 1, 6, 6, generator=generator)
    # Identical frame-to-frame residuals: a per-pixel offset shared by all frames, and a positive scale, cost nothing.
    assert float(vmc_loss(noise + per_frame_offset, noise)) == pytest.approx(0.0, abs=1e-6)
    assert float(vmc_loss(3.0 * noise, noise)) == pytest.approx(0.0, abs=1e-6)
    assert float(vmc_loss(-noise, noise)) == pytest.approx(2.0, abs=1e-6)
    unrelated = torch.randn(2, 4, 5, 6, 6, generator=generator)
    assert 0.8 < float(vmc_loss(unrelated, noise)) < 1.2
    with pytest.raises(ValueError):
        vmc_loss(noise[:, :, :1], noise[:, :, :1])


def test_distillation_lowers_the_loss_and_leaves_the_unet_unchanged(tiny, tmp_path):
    unet, scheduler = tiny["unet"], tiny["scheduler"]
    latents = moving_blob_latents(frames=6)
    context = torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(3))
    before = _snapshot(unet)
    base_loss = _eval_loss(unet, scheduler, latents, context)

    config = TuningConfig(steps=12, rank=4, learning_rate=3e-2, timestep_range=(0.1, 0.9), seed=5)
    state, result = distill_motion(unet, scheduler, latents, context, config)
    assert len(result.losses) == 12 and len(result.modules) == 24
    assert _same(unet, before) and lora_modules(unet) == []
    assert any(float(v.abs().max()) > 0 for k, v in state.items() if "lora_B" in k)

    path = save_lora(tmp_path / "motion.safetensors", state, lora_settings(config))
    loaded, settings = load_lora(path)
    assert settings["rank"] == 4 and loaded.keys() == state.keys()
    with applied_lora(unet, path) as wrapped:
        assert len(wrapped) == 24
        tuned_loss = _eval_loss(unet, scheduler, latents, context)
    assert tuned_loss < base_loss - 0.05, (base_loss, tuned_loss)
    assert _same(unet, before) and lora_modules(unet) == []

    # Same seed, same LoRA: the timestep and noise draws come from the config's generator alone.
    torch.manual_seed(999)
    again, _ = distill_motion(unet, scheduler, latents, context, config.model_copy(update={"steps": 2}))
    torch.manual_seed(1)
    third, _ = distill_motion(unet, scheduler, latents, context, config.model_copy(update={"steps": 2}))
    assert all(torch.equal(again[k], third[k]) for k in again)


def test_lora_is_removed_even_when_sampling_fails(tiny, tmp_path):
    unet = tiny["unet"]
    config = TuningConfig(steps=1, rank=2)
    state, _ = distill_motion(unet, tiny["scheduler"], moving_blob_latents(4), torch.zeros(1, 5, 32), config)
    path = save_lora(tmp_path / "m.safetensors", state, lora_settings(config))
    before = _snapshot(unet)
    with pytest.raises(RuntimeError, match="boom"), applied_lora(unet, path):
        raise RuntimeError("boom")
    assert _same(unet, before) and lora_modules(unet) == []


def test_animatediff_motion_modules_tune_the_same_way(tiny, tmp_path):
    unet = tiny_motion_unet()
    expected = {
        name
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear)
        and re.search(r"motion_modules\.\d+\..*attn[12]\.to_[qkv]$", name)
    }
    assert len(expected) == 42  # 7 motion modules (down 2, mid 1, up 4) x 2 attentions x q, k, v
    latents = moving_blob_latents(frames=6)
    context = torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(3))
    before = _snapshot(unet)
    base_loss = _eval_loss(unet, tiny["scheduler"], latents, context)

    config = TuningConfig(steps=12, rank=4, learning_rate=3e-2, timestep_range=(0.1, 0.9), seed=5)
    state, result = distill_motion(unet, tiny["scheduler"], latents, context, config)
    assert set(result.modules) == expected
    assert _same(unet, before)
    path = save_lora(tmp_path / "animatediff.safetensors", state, lora_settings(config))
    with applied_lora(unet, path):
        tuned_loss = _eval_loss(unet, tiny["scheduler"], latents, context)
    assert tuned_loss < base_loss - 0.05, (base_loss, tuned_loss)
    assert _same(unet, before)

    # A LoRA made for one UNet does not fit another, and says so.
    with pytest.raises(ReelgraphError, match="does not fit"), applied_lora(tiny["unet"], path):
        pass
    assert lora_modules(tiny["unet"]) == []
