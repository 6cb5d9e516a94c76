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


def test_noise_augmented_given_frames_get_the_timestep_of_their_noise_level():
    """ART-V §3.3 through Wan 2.2's per-token timesteps: the tokens of given frames (frame, row,
    column order) carry 1000 x their noise level, the others the clip's timestep."""
    from generation.toy_transformer import token_timesteps

    mask = torch.zeros(2, 1, 3, 4, 4)
    mask[:, :, :1] = 1.0
    mask[1, :, 1] = 1.0
    per_token = token_timesteps(torch.tensor([700.0, 400.0]), mask, torch.tensor([0.1, 0.3]), (1, 2, 2))
    assert per_token.shape == (2, 3 * 2 * 2)
    assert torch.allclose(per_token[0], torch.tensor([100.0] * 4 + [700.0] * 8))
    assert torch.allclose(per_token[1], torch.tensor([300.0] * 8 + [400.0] * 4))

    gen = torch.Generator().manual_seed(4)
    latents, given = torch.randn(2, 1, 4, 3, 4, 4, generator=gen)
    context, t = torch.randn(1, 6, architecture.TEXT_DIM, generator=gen), torch.tensor([600.0])
    outputs = {}
    for noise in (True, False):
        model = _micro_transformer(condition_noise=noise)
        with torch.no_grad():
            outputs[noise] = [
                model(latents, t, context, return_dict=False, given_latents=given, given_mask=mask[:1],
                      given_sigma=sigma)[0]
                for sigma in (0.0, 0.3)
            ]  # fmt: skip
    assert not torch.allclose(*outputs[True])  # the level reaches the network that was built for it
    assert torch.equal(*outputs[False])  # and nothing else


def test_the_anchor_frame_enters_as_cross_attention_tokens_and_none_means_zeros():
    """ART-V §3.4: the anchor is extra context tokens; a network built with an anchor and called
    without one sees a zero anchor, as it was trained for "no anchor"."""
    gen = torch.Generator().manual_seed(5)
    latents = torch.randn(1, 4, 3, 4, 4, generator=gen)
    anchor = torch.randn(1, 4, 4, 4, generator=gen)
    context, t = torch.randn(1, 6, architecture.TEXT_DIM, generator=gen), torch.tensor([800.0])
    model = _micro_transformer(anchor_frame=True, condition_noise=True, anchor_tokens=4)
    with torch.no_grad():
        anchored = model(latents, t, context, return_dict=False, anchor_latents=anchor)[0]
        none = model(latents, t, context, return_dict=False)[0]
        zero = model(latents, t, context, return_dict=False, anchor_latents=torch.zeros_like(anchor))[0]
    assert not torch.allclose(anchored, none)
    assert torch.equal(none, zero)
    with pytest.raises(ValueError, match="anchor of 16 patches"):
        model(latents, t, context, anchor_latents=torch.randn(1, 4, 8, 8, generator=gen))
    with pytest.raises(ValueError, match="build on pooled_text"):
        _micro_transformer(anchor_frame=True, pooled_text=False)


def test_flow_loss_learns_a_fixed_batch():
    from generation.toy_transformer import GivenFrames
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
        loss, per_clip = flow_loss(model, latents, context, sigmas, noise, GivenFrames(latents, mask))
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


def test_flow_batches_noise_the_given_frames_and_anchor_on_a_frame_of_the_same_clip():
    from toyworld.training.config import TrainConfig
    from toyworld.training.data import CaptionBank, LatentPool, flow_batch

    network = {**MICRO_TOY_WAN_CONFIG, "condition_noise": True, "anchor_frame": True}
    config = TrainConfig(
        **{**MICRO, "unet_config": network, "unet_batch": 400, "condition_share": 0.5, "anchor_share": 0.5}
    ).resolved()
    pool = LatentPool(lambda frames, gen: None, 8)
    pool.latents = torch.randn(10, 4, 8, 2, 2, generator=torch.Generator().manual_seed(1))
    pool.captions = torch.zeros(10, dtype=torch.long)
    bank = CaptionBank(
        torch.ones(1, 3, 8, dtype=torch.float16), torch.zeros(1, 3, 8, dtype=torch.float16), []
    )
    batch = flow_batch(pool, bank, config, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert ((batch.given_sigma >= 0) & (batch.given_sigma <= config.condition_noise_max)).all()
    s = batch.given_sigma.view(-1, 1, 1, 1, 1)
    reference_noise = (batch.given - (1 - s) * batch.latents) / s  # ε' where the given frames were noised
    assert 0.9 < reference_noise.std() < 1.1  # a fresh N(0, 1), not the clip's own ε
    assert not torch.allclose(reference_noise, batch.noise, atol=0.1)
    conditioned = batch.given_mask[:, 0, 0, 0, 0] > 0
    anchored = batch.anchor.flatten(1).abs().amax(dim=1) > 0
    assert not (anchored & ~conditioned).any()  # text-to-video clips get the zero anchor
    assert 0.15 < anchored.float().mean() < 0.35  # condition_share x anchor_share
    for clip in torch.nonzero(anchored).flatten().tolist():  # a clean frame of the same clip
        frames = batch.latents[clip].permute(1, 0, 2, 3)  # (F, C, h, w)
        assert any(torch.equal(batch.anchor[clip], frame) for frame in frames)


def test_a_run_starts_from_a_trained_folder_new_modules_aside(tmp_path, prompt_encoder):
    """ART-V starts from a pre-trained text-to-video model: ``init_from`` loads the folder's
    transformer, the anchor embedder keeps its init, and another architecture is refused."""
    from safetensors.torch import load_file

    from reelgraph.errors import ReelgraphError

    donor = _train(tmp_path / "donor", prompt_encoder, unet_steps=1)
    art = {**MICRO_TOY_WAN_CONFIG, "condition_noise": True, "anchor_frame": True}
    tuned = _train(tmp_path / "tuned", prompt_encoder, unet_steps=1, vae_from=str(donor),
                   init_from=str(donor), unet_config=art, warmup_steps=10**6)  # fmt: skip
    before = load_file(str(donor / "transformer" / "diffusion_pytorch_model.safetensors"))
    after = load_file(str(tuned / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert set(after) - set(before) and all(".image_embedder." in k for k in set(after) - set(before))
    # One step at the first warmup LR (1e-6 of the base) moves the weights by less than the
    # float16 they are stored in resolves.
    assert all(after[k].dtype == torch.float16 for k in after)
    assert all(torch.allclose(after[k].float(), before[k].float(), rtol=2e-3, atol=1e-4) for k in before)
    info = json.loads((tuned / "reelgraph.json").read_text())
    assert info["conditioning_frames"] and info["condition_noise"] and info["anchor_frame"]
    wider = {**MICRO_TOY_WAN_CONFIG, "ffn_dim": 48}
    with pytest.raises(ReelgraphError, match="does not fit"):
        _train(tmp_path / "wider", prompt_encoder, unet_steps=1, vae_from=str(donor),
               init_from=str(donor), unet_config=wider)  # fmt: skip
    with pytest.raises(ReelgraphError, match="pass vae_from"):
        train_toy_model(tmp_path / "d", minutes=1, device="cpu", progress=False, init_from=str(donor))


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


def _micro_folder(folder: Path, **network) -> Path:
    """A micro toy flow model folder (random weights) as the trainer writes it."""
    from toyworld.training.model_folder import save_model_folder
    from toyworld.training.network import NETWORKS

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vae = architecture.build_vae(architecture.MICRO_VAE_CONFIG)
    return save_model_folder(
        folder,
        _micro_transformer(**network),
        vae,
        {},
        network=NETWORKS["wan"],
        distribution="flow_train",
        guidance_scale=3.0,
    )


@pytest.fixture(scope="module")
def micro_flow_folder(tmp_path_factory):
    return _micro_folder(tmp_path_factory.mktemp("micro-flow"))


@pytest.fixture(scope="module")
def micro_artv_folder(tmp_path_factory):
    """A micro continuation network trained (here: built) with noise augmentation and an anchor."""
    return _micro_folder(tmp_path_factory.mktemp("micro-artv"), condition_noise=True, anchor_frame=True)


def test_artv_continues_each_clip_from_the_previous_clips_last_latent_frames(
    tmp_path, monkeypatch, micro_flow_folder
):
    """ART-V masked diffusion (ART-V §3.1): every transformer call of an extension clip gets the
    previous clip's last m clean latent frames as given frames 0 .. m-1 with a mask; the first clip
    gets none; the output keeps the given frames exactly."""
    from safetensors.torch import load_file

    from generation.toy_transformer import ToyWanTransformer

    calls = []
    forward = ToyWanTransformer.forward

    def recording(self, *args, given_latents=None, given_mask=None, **kwargs):
        calls.append((given_latents, given_mask))
        return forward(self, *args, given_latents=given_latents, given_mask=given_mask, **kwargs)

    monkeypatch.setattr(ToyWanTransformer, "forward", recording)
    out = _generate_artv(tmp_path, micro_flow_folder)
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


def test_artv_gives_noised_frames_and_the_first_frame_as_anchor(tmp_path, monkeypatch, micro_artv_folder):
    """ART-V §3.3-3.4 at sampling: the second clip's given frames are the first clip's last m latent
    frames noised to ``extension_given_noise`` with the clip's own noise, their tokens told that
    level, and every call of that clip gets the first clip's first latent frame as anchor."""

    from generation.flow_extension import FlowClipExtension
    from generation.toy_transformer import ToyWanTransformer

    calls, clips = [], []
    forward, finish = ToyWanTransformer.forward, FlowClipExtension.finish

    def recording(self, *args, **kwargs):
        calls.append(
            {k: kwargs.get(k) for k in ("given_latents", "given_mask", "given_sigma", "anchor_latents")}
        )
        return forward(self, *args, **kwargs)

    def finishing(self, latents):
        clips.append(finish(self, latents))
        return clips[-1]

    monkeypatch.setattr(ToyWanTransformer, "forward", recording)
    monkeypatch.setattr(FlowClipExtension, "finish", finishing)
    monkeypatch.setenv("REELGRAPH_ANCHOR_FIRST_CLIP", "true")
    monkeypatch.setenv("REELGRAPH_EXTENSION_GIVEN_NOISE", "0.25")
    out = _generate_artv(tmp_path, micro_artv_folder)
    plan = json.dumps(json.loads((out / "manifest.json").read_text())["plan"])
    assert "noise level 0.25" in plan and "anchored to the video's first frame" in plan
    first, second = clips
    per_clip, m = 2 * 2, 4  # steps x (conditional, unconditional); M = N / 2 latent frames
    assert len(calls) == 2 * per_clip
    assert all(c["given_latents"] is None for c in calls[:per_clip])
    noises = []
    for call in calls[per_clip:]:
        assert call["given_sigma"] == 0.25
        assert torch.allclose(call["anchor_latents"], first[:, :, 0])
        noises.append((call["given_latents"][:, :, :m] - 0.75 * first[:, :, -m:]) / 0.25)
        assert not call["given_latents"][:, :, m:].any()
    assert all(torch.allclose(n, noises[0], atol=1e-4) for n in noises)  # the clip's own noise, every call
    assert 0.6 < noises[0].std() < 1.4
    assert torch.allclose(second[:, :, :m], first[:, :, -m:])  # the clean frames kept in the output


def test_an_anchor_is_refused_for_a_continuation_network_trained_without_one(
    tmp_path, monkeypatch, micro_flow_folder
):
    from typer.testing import CliRunner

    import cli

    monkeypatch.setenv("REELGRAPH_ANCHOR_FIRST_CLIP", "true")
    args = ["--home", str(tmp_path / "home"), "plan", "a red ball rolls to the right", "--model",
            str(micro_flow_folder), "--frames", "12", "--extension", "artv"]  # fmt: skip
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 1 and "not trained with an anchor" in result.output


def test_the_continuation_recipe_trains_artv_inputs_and_its_card_says_so(tmp_path, prompt_encoder):
    """``toy train --continuation`` (the shipped model's second stage) sets both ART-V inputs; the
    card names them, the folder it started from, and the command that retrains it."""
    from toyworld.training.config import TrainConfig, continuation_finetune

    recipe = continuation_finetune()
    assert TrainConfig(**recipe).continuation and not TrainConfig().continuation
    donor = _train(tmp_path / "donor", prompt_encoder, unet_steps=1)
    art = {**MICRO_TOY_WAN_CONFIG, "condition_noise": True, "anchor_frame": True}
    tuned = _train(tmp_path / "tuned", prompt_encoder, unet_steps=1, vae_from=str(donor),
                   init_from=str(donor), unet_config=art)  # fmt: skip
    card = (tuned / "MODEL_CARD.md").read_text()
    assert (
        "ART-V §3.3" in card
        and "anchor frame" in card
        and f"Started from the transformer of `{donor}`" in card
    )
    assert f"--init-from {donor} --continuation --seed 5" in card


def _generate_artv(tmp_path: Path, folder: Path) -> Path:
    """``generate --extension artv`` of a 12-frame video (two clips) on ``folder``; its run folder."""
    from typer.testing import CliRunner

    import cli

    out = tmp_path / "run"
    args = ["--home", str(tmp_path / "home"), "generate", "a red ball rolls to the right", "--model",
            str(folder), "--frames", "12", "--steps", "2", "--extension", "artv", "--out", str(out),
            "--json"]  # fmt: skip
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    return out
