"""The embedded flow model on micro configs: its transformer, objective, batches, training and folder.

A micro ``ToyWanTransformer`` (one block of width 24) trains a few steps in a temp folder; the folder
it writes must load through the generation service's flow path like any Wan checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from toyworld import architecture
from toyworld.training import export_checkpoint, train_toy_model
from toyworld.training.network import MICRO_TOY_WAN_CONFIG

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MICRO = {
    "network": "wan",
    "unet_config": MICRO_TOY_WAN_CONFIG,
    "vae_config": architecture.MICRO_VAE_CONFIG,
    "caption_bank": 6,
    "latent_pool": 8,
    "pool_refresh": 2,
    "unet_batch": 4,
    "vae_batch_frames": 4,
    "latent_stat_clips": 4,
    "warmup_steps": 2,
    "condition_share": 0.5,
}


@pytest.fixture(scope="module")
def prompt_encoder():
    from generation.text_encoders import MiniLMPromptEncoder
    from reelgraph.resolve import resolve_text_model

    return MiniLMPromptEncoder(resolve_text_model(), max_length=architecture.TEXT_TOKENS, zero_padding=True)


def _micro_transformer(**overrides):
    from generation.toy_transformer import ToyWanTransformer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ToyWanTransformer(**{**MICRO_TOY_WAN_CONFIG, **overrides}).eval()


def _train(out: Path, encoder, unet_steps: int, **overrides) -> Path:
    return train_toy_model(
        out,
        minutes=60,
        device="cpu",
        progress=False,
        seed=5,
        prompt_encoder=encoder,
        vae_steps=2,
        unet_steps=unet_steps,
        **{**MICRO, **overrides},
    )


def _state(out: Path) -> dict:
    return json.loads((out / ".checkpoint" / "state.json").read_text())["state"]


def test_pooled_text_ignores_zeroed_padding():
    from generation.toy_transformer import pooled_text

    gen = torch.Generator().manual_seed(0)
    states = torch.randn(2, 5, 8, generator=gen)
    padded = torch.cat([states, torch.zeros(2, 3, 8)], dim=1)
    assert torch.allclose(pooled_text(padded), states.mean(dim=1), atol=1e-6)


def test_the_caption_reaches_the_adaptive_norms_only_with_the_pooled_path():
    """With cross-attention zeroed out, only the pooled-text path can carry the caption."""
    gen = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 4, 2, 4, 4, generator=gen)
    a, b = torch.randn(2, 1, 6, architecture.TEXT_DIM, generator=gen)
    t = torch.tensor([500.0])
    for pooled, differs in ((True, True), (False, False)):
        model = _micro_transformer(pooled_text=pooled)
        for block in model.blocks:
            torch.nn.init.zeros_(block.attn2.to_out[0].weight)
            torch.nn.init.zeros_(block.attn2.to_out[0].bias)
        with torch.no_grad():
            out_a = model(latents, t, a, return_dict=False)[0]
            out_b = model(latents, t, b, return_dict=False)[0]
        assert (not torch.allclose(out_a, out_b)) is differs


def test_given_frames_reach_the_network_through_the_conditioning_channels():
    from generation.toy_transformer import conditioned_input

    gen = torch.Generator().manual_seed(2)
    latents, given = torch.randn(2, 1, 4, 3, 4, 4, generator=gen)
    mask = torch.zeros(1, 1, 3, 4, 4)
    mask[:, :, 0] = 1.0
    hidden = conditioned_input(latents, given, mask)
    assert hidden.shape == (1, 9, 3, 4, 4)
    assert torch.equal(hidden[:, 5:, 0], given[:, :, 0]) and not hidden[:, 5:, 1:].any()
    assert not conditioned_input(latents)[:, 4:].any()  # text-to-video: zeros
    model = _micro_transformer()
    t, context = torch.tensor([300.0]), torch.randn(1, 6, architecture.TEXT_DIM, generator=gen)
    with torch.no_grad():
        plain = model(latents, t, context, return_dict=False)[0]
        conditioned = model(latents, t, context, return_dict=False, given_latents=given, given_mask=mask)[0]
        explicit = model(hidden, t, context, return_dict=False)[0]
    assert not torch.allclose(plain, conditioned)
    assert torch.equal(conditioned, explicit)


def test_flow_loss_learns_a_fixed_batch():
    from toyworld.training.losses import flow_loss

    gen = torch.Generator().manual_seed(3)
    model = _micro_transformer().train()
    latents = torch.randn(2, 4, 2, 4, 4, generator=gen)
    context = torch.randn(2, 6, architecture.TEXT_DIM, generator=gen)
    noise = torch.randn(latents.shape, generator=gen)
    sigmas = torch.tensor([0.3, 0.8])
    mask = torch.zeros(2, 1, 2, 4, 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss, per_clip = flow_loss(model, latents, context, sigmas, noise, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert per_clip.shape == (2,)
    assert losses[-1] < 0.7 * losses[0]


def test_flow_batches_give_the_first_frames_of_a_share_of_clips():
    import numpy as np

    from toyworld.training.config import TrainConfig
    from toyworld.training.data import CaptionBank, LatentPool, flow_batch

    config = TrainConfig(**{**MICRO, "unet_batch": 400, "condition_share": 0.25}).resolved()
    pool = LatentPool(lambda frames, gen: None, 8)
    pool.latents = torch.randn(10, 4, 8, 2, 2)
    pool.captions = torch.zeros(10, dtype=torch.long)
    bank = CaptionBank(
        torch.ones(1, 3, 8, dtype=torch.float16), torch.zeros(1, 3, 8, dtype=torch.float16), []
    )
    batch = flow_batch(pool, bank, config, torch.Generator().manual_seed(0), torch.device("cpu"))
    given = batch.given_mask[:, 0, :, 0, 0]  # (B, F)
    counts = given.sum(dim=1)
    assert 0.15 < (counts > 0).float().mean() < 0.35
    assert counts.max() <= config.condition_max_frames
    # Always a prefix: frame j given implies every frame before it given.
    assert torch.equal(given, torch.cummin(given, dim=1).values)
    assert ((batch.sigmas > 0) & (batch.sigmas < 1)).all()
    assert np.median(batch.sigmas.numpy()) > 0.5  # logit_mean 0.5 tilts training toward high noise


def test_a_flow_run_resumes_exactly_reuses_a_vae_and_its_folder_samples(tmp_path, prompt_encoder):
    from generation.families import TOY_FLOW, family_of
    from generation.model_info import read_model_info
    from generation.wan_backend import load_wan_model

    donor = _train(tmp_path / "donor", prompt_encoder, unet_steps=1)
    straight = _train(tmp_path / "straight", prompt_encoder, unet_steps=3, vae_from=str(donor))
    split = tmp_path / "split"
    _train(split, prompt_encoder, unet_steps=1, vae_from=str(donor))
    _train(split, prompt_encoder, unet_steps=3, vae_from=str(donor))
    assert _state(split)["unet_losses"] == _state(straight)["unet_losses"]
    assert _state(straight)["vae_step"] == 0  # the donor's VAE, no VAE phase
    assert _state(straight)["scaling_factor"] == _state(donor)["scaling_factor"]

    assert family_of(straight) is TOY_FLOW
    info = read_model_info(str(straight))
    assert (info.family, info.latent_channels, info.max_prompt_tokens) == (TOY_FLOW.name, 4, 32)
    assert info.text_encoder == "sentence-transformers/all-MiniLM-L6-v2"
    model = load_wan_model(straight, torch.device("cpu"), torch.float32)
    model.info = info
    embeds = model.encode_prompt(["a red ball rolls to the right", ""], info.max_prompt_tokens)
    assert embeds.shape == (2, 32, architecture.TEXT_DIM) and not embeds[:, -1].any()  # padding zeroed
    latents = torch.randn(model.latent_shape(1, 8, 32, 32), generator=torch.Generator().manual_seed(0))
    assert latents.shape == (1, 4, 8, 8, 8)
    clean = model.sample(embeds[:1], embeds[1:], latents, num_inference_steps=2, guidance_scale=5.0)
    video = model.decode_latents(clean)
    assert video.shape == (1, 3, 8, 32, 32) and torch.isfinite(video).all()

    exported = export_checkpoint(split, tmp_path / "exported", prompt_encoder=prompt_encoder)
    from safetensors.torch import load_file

    a = load_file(str(exported / "transformer" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(straight / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_training_inputs_are_refused_before_any_work(tmp_path):
    from reelgraph.errors import ReelgraphError

    with pytest.raises(ReelgraphError, match="network"):
        train_toy_model(tmp_path / "a", minutes=1, device="cpu", progress=False, network="dit")
    with pytest.raises(ReelgraphError, match="distribution"):
        train_toy_model(tmp_path / "b", minutes=1, device="cpu", progress=False, distribution="uniform")
    with pytest.raises(ReelgraphError, match="no trained VAE"):
        train_toy_model(tmp_path / "c", minutes=1, device="cpu", progress=False, vae_from=str(tmp_path))
    assert not any((tmp_path / name).exists() for name in "abc")


@pytest.fixture(scope="module")
def micro_flow_folder(tmp_path_factory):
    """A micro toy flow model folder (random weights) as the trainer writes it."""
    from toyworld.training.model_folder import save_model_folder
    from toyworld.training.network import NETWORKS

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = architecture.build_vae(architecture.MICRO_VAE_CONFIG)
    return save_model_folder(
        tmp_path_factory.mktemp("micro-flow"),
        _micro_transformer(),
        vae,
        {},
        network=NETWORKS["wan"],
        distribution="flow_train",
        guidance_scale=3.0,
    )


def test_artv_continues_each_clip_from_the_previous_clips_last_latent_frames(
    tmp_path, monkeypatch, micro_flow_folder
):
    """ART-V masked diffusion (ART-V §3.1): every transformer call of an extension clip gets the
    previous clip's last m clean latent frames as given frames 0 .. m-1 with a mask; the first clip
    gets none; the output keeps the given frames exactly."""
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    import cli
    from generation.toy_transformer import ToyWanTransformer

    calls = []
    forward = ToyWanTransformer.forward

    def recording(self, *args, given_latents=None, given_mask=None, **kwargs):
        calls.append((given_latents, given_mask))
        return forward(self, *args, given_latents=given_latents, given_mask=given_mask, **kwargs)

    monkeypatch.setattr(ToyWanTransformer, "forward", recording)
    out = tmp_path / "run"
    args = ["--home", str(tmp_path / "home"), "generate", "a red ball rolls to the right", "--model",
            str(micro_flow_folder), "--frames", "12", "--steps", "2", "--extension", "artv", "--out", str(out),
            "--json"]  # fmt: skip
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["long_video"]["method"] == "artv"
    assert [c["kept"] for c in manifest["long_video"]["clips"]] == [[0, 8], [4, 8]]
    per_clip = 2 * 2  # steps x (conditional, unconditional)
    assert len(calls) == 2 * per_clip
    assert all(given is None for given, _ in calls[:per_clip])
    m = 4  # M = N / 2 prompt frames, one latent frame each (no temporal compression)
    # The clip cache: the first clip left a hand-off, the second (the last) did not.
    folders = [p.parent for p in (tmp_path / "home" / "cache" / "clips").glob("*/*/latents.safetensors")]
    (first_dir,) = [f for f in folders if (f / "handoff.safetensors").is_file()]
    (second_dir,) = [f for f in folders if f != first_dir]
    first = load_file(str(first_dir / "latents.safetensors"))["latents"]
    second = load_file(str(second_dir / "latents.safetensors"))["latents"]
    for given, mask in calls[per_clip:]:
        assert torch.equal(mask[0, 0, :, 0, 0], torch.tensor([1.0] * m + [0.0] * (8 - m)))
        assert torch.allclose(given[:, :, :m], first[:, :, -m:])
    assert torch.allclose(second[:, :, :m], first[:, :, -m:])  # kept exactly in the output


def test_artv_is_refused_on_a_model_without_given_frames(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    import cli

    args = ["--home", str(tmp_path / "home"), "plan", "a red ball rolls to the right", "--model",
            str(tiny_model_dir), "--frames", "24", "--extension", "artv"]  # fmt: skip
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 1 and "no continuation network" in result.output
