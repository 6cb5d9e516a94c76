"""Wan 2.1 / 2.2 through our flow-matching loop equals diffusers' WanPipeline; families are recognised."""

from __future__ import annotations

import json
import re

import pytest
import torch

from generation.families import COGVIDEOX, LTX, UNET3D, WAN21, WAN22, family_of, family_of_index
from generation.loaders import load_video_model
from generation.wan_backend import load_wan_model
from reelgraph.errors import ReelgraphError
from tests.tiny_wan import save_tiny_wan

PROMPT = "a red ball rolls to the right"
MAX_TOKENS = 16


def _ours(folder, steps: int, seed: int, guidance_scale: float, guidance_scale_2: float | None = None):
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    embeds = model.encode_prompt([PROMPT], MAX_TOKENS)
    negative = model.encode_prompt([""], MAX_TOKENS)
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(model.latent_shape(1, 9, 16, 16), generator=generator)
    latents = model.sample(embeds, negative, latents, steps, guidance_scale, guidance_scale_2)
    return model.decode_latents(latents)


def _diffusers(folder, steps: int, seed: int, guidance_scale: float, guidance_scale_2: float | None = None):
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    kwargs = {"guidance_scale_2": guidance_scale_2} if guidance_scale_2 is not None else {}
    return pipe(
        PROMPT,
        num_frames=9,
        height=16,
        width=16,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        generator=torch.Generator().manual_seed(seed),
        output_type="latent",
        max_sequence_length=MAX_TOKENS,
        **kwargs,
    ).frames


@pytest.mark.parametrize("two_experts", [False, True], ids=["wan2.1", "wan2.2"])
def test_flow_loop_equals_wan_pipeline(tmp_path, two_experts):
    folder = save_tiny_wan(tmp_path / "wan", two_experts=two_experts)
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    assert model.family is (WAN22 if two_experts else WAN21)
    scale_2 = 2.0 if two_experts else None
    ours_video = _ours(folder, 4, 3, 5.0, scale_2)
    theirs_latents = _diffusers(folder, 4, 3, 5.0, scale_2)
    theirs_video = model.decode_latents(theirs_latents)
    assert ours_video.shape == (1, 3, 9, 16, 16)
    assert (ours_video - theirs_video).abs().max().item() <= 1e-5


def test_decode_matches_pipeline_postprocess(tmp_path):
    """Our latents_mean / latents_std un-normalisation is the pipeline's (its 'pt' output in [0, 1])."""
    from diffusers import WanPipeline

    folder = save_tiny_wan(tmp_path / "wan")
    pipe = WanPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(
        PROMPT,
        num_frames=9,
        height=16,
        width=16,
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(1),
        output_type="pt",
        max_sequence_length=MAX_TOKENS,
    ).frames
    ours = _ours(folder, 2, 1, 5.0)
    ours_01 = (ours / 2 + 0.5).clamp(0, 1).permute(0, 2, 1, 3, 4)
    assert (ours_01 - frames).abs().max().item() <= 1e-5


def test_two_experts_switch_at_boundary(tmp_path):
    """Wan 2.2: the low-noise expert takes over below boundary_ratio · num_train_timesteps."""
    folder = save_tiny_wan(tmp_path / "wan", two_experts=True)
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    calls = []
    for name, module in (("high", model.transformer), ("low", model.transformer_2)):
        module.register_forward_hook(lambda _m, _i, _o, name=name: calls.append(name))
    embeds = model.encode_prompt([PROMPT], MAX_TOKENS)
    latents = torch.randn(model.latent_shape(1, 5, 16, 16), generator=torch.Generator().manual_seed(0))
    model.sample(embeds, None, latents, 6, guidance_scale=1.0)
    scheduler = model.make_scheduler()
    scheduler.set_timesteps(6)
    boundary = 0.875 * scheduler.config.num_train_timesteps
    assert calls == ["high" if t >= boundary else "low" for t in scheduler.timesteps]
    assert "high" in calls and "low" in calls


def test_frames_round_to_4k_plus_1():
    assert [WAN21.frames_for(n) for n in (9, 10, 11, 12, 13, 1)] == [9, 9, 13, 13, 13, 1]
    assert WAN21.latent_frames(9) == 3 and UNET3D.frames_for(10) == 10


def _write_layout(folder, pipeline: str, components: dict) -> None:
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": pipeline, **components}))


@pytest.mark.parametrize(
    ("pipeline", "family"),
    [("LTXPipeline", LTX), ("CogVideoXPipeline", COGVIDEOX)],  # AnimateDiff is sampled: test_animatediff.py
)
def test_unsampled_families_are_refused_by_name(tmp_path, pipeline, family):
    folder = tmp_path / pipeline
    _write_layout(folder, pipeline, {"transformer": ["diffusers", "X"], "vae": ["diffusers", "Y"]})
    assert family_of(folder) is family
    with pytest.raises(ReelgraphError) as caught:
        load_video_model(str(folder), device="cpu")
    message = str(caught.value)
    assert family.name in message and "unet/" not in message


def test_wan_folder_on_ddim_loader_names_the_family(tmp_path):
    folder = save_tiny_wan(tmp_path / "wan")
    with pytest.raises(ReelgraphError, match=r"Wan 2\.1"):
        load_video_model(str(folder), device="cpu")


def test_unknown_pipeline_is_a_domain_error():
    with pytest.raises(ReelgraphError, match="HunyuanVideoPipeline"):
        family_of_index({"_class_name": "HunyuanVideoPipeline"})
    assert (
        family_of_index({"_class_name": "ReelgraphToyT2V", "unet": ["diffusers", "UNet3DConditionModel"]})
        is UNET3D
    )


def test_methods_not_ported_are_refused_with_reason():
    with pytest.raises(ReelgraphError, match="each need their own"):
        WAN22.refuse("motion_lora")
    WAN21.refuse("image2video")  # every method is ported to the flow loop
    WAN21.refuse("hybrid")  # ported to the flow loop: no error
    UNET3D.refuse("hybrid")


def _request(**extra):
    from reelgraph.contracts.clips import ClipRequest

    return ClipRequest(
        prompt=PROMPT, num_frames=5, num_inference_steps=4, guidance_scale=5.0, seed=2, **extra
    )


def test_hybrid_semantics_on_the_flow_loop(tmp_path):
    """POS eq. 8: γ = 0.5 of 4 steps conditions steps 0-1 on the rewrite, 2-3 on the original."""
    from safetensors.torch import load_file

    from generation.flow_clip import sample_flow_clip

    folder = save_tiny_wan(tmp_path / "wan")
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    seen = []
    original_forward = model.transformer.forward

    def spy(*args, **kwargs):
        seen.append(kwargs["encoder_hidden_states"].clone())
        return original_forward(*args, **kwargs)

    model.transformer.forward = spy
    rewrite = "the red ball moves to the right"
    result = sample_flow_clip(
        model, _request(rewritten_prompt=rewrite, gamma=0.5), tmp_path / "a.safetensors", 16, 16, MAX_TOKENS
    )
    assert result.details["rewrite_steps"] == 2
    rewritten, original = (
        model.encode_prompt([rewrite], MAX_TOKENS),
        model.encode_prompt([PROMPT], MAX_TOKENS),
    )
    conditional = seen[0::2]  # cond, uncond per step
    assert [torch.equal(c, rewritten) for c in conditional] == [True, True, False, False]
    assert [torch.equal(c, original) for c in conditional] == [False, False, True, True]
    plain = sample_flow_clip(model, _request(), tmp_path / "b.safetensors", 16, 16, MAX_TOKENS)
    assert plain.details["rewrite_steps"] == 0
    hybrid_latents = load_file(result.latents_path)["latents"]
    assert not torch.equal(hybrid_latents, load_file(plain.latents_path)["latents"])


@pytest.mark.parametrize(
    ("extra", "method", "family"),
    [
        ({"lora_path": "x.safetensors"}, "motion_lora", "Wan 2.2"),
    ],
)
def test_unported_methods_are_refused_on_the_flow_path(tmp_path, extra, method, family):
    from generation.flow_clip import sample_flow_clip

    folder = save_tiny_wan(tmp_path / "wan", two_experts=family == "Wan 2.2")
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    with pytest.raises(ReelgraphError, match=f"{method} is not available for {re.escape(family)}"):
        sample_flow_clip(model, _request(**extra), tmp_path / "a.safetensors", 16, 16, MAX_TOKENS)


def test_flow_inversion_round_trip_converges_with_steps(tmp_path):
    """Euler forwards in time, then our sampler back: first-order error that shrinks with the step count."""
    from generation.flow_inversion import flow_invert
    from generation.flow_sampling import Expert, flow_sample
    from generation.wan_backend import _transformer_velocity

    model = load_wan_model(save_tiny_wan(tmp_path / "wan"), torch.device("cpu"), torch.float32)
    expert = Expert(_transformer_velocity(model.transformer), guidance_scale=1.0)
    embeds = model.encode_prompt([PROMPT], MAX_TOKENS)
    noise = torch.randn(model.latent_shape(1, 5, 16, 16), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        clean = flow_sample((expert,), model.make_scheduler(), noise, embeds, None, 20)
        errors = []
        for steps in (5, 40):
            inverted = flow_invert(expert, model.make_scheduler(), clean, embeds, None, steps)
            back = flow_sample((expert,), model.make_scheduler(), inverted, embeds, None, steps)
            errors.append(((back - clean).norm() / clean.norm()).item())
    assert errors[1] < errors[0] / 3 and errors[1] < 0.05, errors


def test_motion_lora_on_the_wan_transformer(tmp_path):
    """Search-T2V §4.3 / VMC on a flow transformer: tune 2 steps on its self-attention, save, sample with it."""
    from safetensors.torch import load_file

    from generation.adapters import lora_modules, save_lora, transformer_target_pattern, tuning_target
    from generation.flow_clip import sample_flow_clip
    from generation.model_info import read_model_info
    from motion_prior.tuning import TuningConfig, distill_motion, lora_settings

    folder = save_tiny_wan(tmp_path / "wan")
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    model.info = read_model_info(folder)
    base = {k: v.clone() for k, v in model.transformer.state_dict().items()}
    video = torch.rand((1, 3, 9, 16, 16), generator=torch.Generator().manual_seed(0)) * 2 - 1
    target = tuning_target(model, video, "a ball rolls to the right")
    assert target.network is model.transformer and target.latents.shape == (1, 16, 3, 2, 2)  # 3 latent frames
    pattern = transformer_target_pattern()
    assert target.pattern == pattern
    config = TuningConfig(steps=2, rank=2, learning_rate=1e-2)
    with target.scope:
        state, result = distill_motion(
            target.network, target.scheduler, target.latents, target.context, config, pattern=target.pattern
        )
    assert len(result.losses) == 2 and all(0.0 <= v <= 2.0 for v in result.losses)
    assert sorted(result.modules) == sorted(
        f"blocks.{b}.attn1.{p}" for b in (0, 1) for p in ("to_q", "to_k", "to_v", "to_out.0")
    )
    assert not lora_modules(model.transformer)  # removed again
    after = model.transformer.state_dict()
    assert set(after) == set(base) and all(torch.equal(after[k], base[k]) for k in base)
    assert any(v.abs().sum() > 0 for k, v in state.items() if "lora_B" in k)  # it learnt something
    path = save_lora(tmp_path / "motion.safetensors", state, lora_settings(config, pattern))
    assert path.is_file()

    with_lora = sample_flow_clip(
        model, _request(lora_path=str(path)), tmp_path / "a.safetensors", 16, 16, MAX_TOKENS
    )
    plain = sample_flow_clip(model, _request(), tmp_path / "b.safetensors", 16, 16, MAX_TOKENS)
    assert "lora" not in with_lora.details  # the tuning step records the LoRA, as on the DDIM path
    a, b = load_file(with_lora.latents_path)["latents"], load_file(plain.latents_path)["latents"]
    assert a.isfinite().all() and not torch.equal(a, b)
    after = model.transformer.state_dict()
    assert set(after) == set(base) and all(torch.equal(after[k], base[k]) for k in base)


def test_motion_tuning_refuses_wan22_two_experts(tmp_path):
    from generation.adapters import tuning_target

    model = load_wan_model(
        save_tiny_wan(tmp_path / "wan", two_experts=True), torch.device("cpu"), torch.float32
    )
    with pytest.raises(ReelgraphError, match="each need"):
        tuning_target(model, torch.zeros((1, 3, 5, 16, 16)), "a ball rolls")


def test_readme_support_table_equals_the_registry():
    from pathlib import Path

    from generation.families import support_table

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start, end = "<!-- families:start -->\n", "\n<!-- families:end -->"
    assert start in readme and end in readme
    copy = readme[readme.index(start) + len(start) : readme.index(end)]
    assert copy == support_table(), "README's table is stale: paste generation.families.support_table()"


def test_wan22_ti2v_is_recognised_and_refused_by_name():
    from generation.families import WAN22_TI2V

    family = family_of_index({"_class_name": "WanPipeline", "expand_timesteps": True, "boundary_ratio": None})
    assert family is WAN22_TI2V and not family.sampleable
    with pytest.raises(ReelgraphError, match="16x16"):
        family.refuse("ona")


def test_wan22_inversion_uses_each_expert_on_its_side_of_the_boundary(tmp_path):
    """ONA on Wan 2.2: the low-noise expert inverts below boundary_ratio · 1000, the high-noise one above."""
    from generation.model_info import read_model_info

    folder = save_tiny_wan(tmp_path / "wan", two_experts=True)
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    model.info = read_model_info(folder)
    calls = []
    for name, module in (("high", model.transformer), ("low", model.transformer_2)):
        module.register_forward_hook(lambda _m, inputs, _o, name=name: calls.append(name))
    clip = torch.rand((1, 3, 5, 16, 16), generator=torch.Generator().manual_seed(0)) * 2 - 1
    eps_inv = model.invert_clips(clip, 6)
    assert eps_inv.shape == (1, 16, 2, 2, 2) and eps_inv.dtype == torch.float32
    scheduler = model.make_scheduler()
    scheduler.set_timesteps(6)
    sigmas = scheduler.sigmas.flip(0)[:-1]  # the σ each inversion step evaluates at, 0 upwards
    assert calls == ["high" if s * 1000 >= 875 else "low" for s in sigmas.tolist()]
    assert calls[0] == "low" and calls[-1] == "high"


def test_flow_extension_continues_the_previous_clips_last_latent_frames(tmp_path):
    """Clip 2's prompt latent frames continue clip 1's last m in forward time: with β = 1 the one next to
    the join ends as clip 1's last latent frame exactly; the initial noise is eq. 7' (rotated, PNS)."""
    from safetensors.torch import load_file

    from generation.clip_plan import ClipStartSpec, ExtensionParams
    from generation.extension import PromptFrames, guidance_schedule, past_dependent_noise
    from generation.flow_clip import sample_flow_clip

    folder = save_tiny_wan(tmp_path / "wan")
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    params = ExtensionParams(beta=1.0)  # M = 13 // 2 = 6, rounded down to 5 video frames = 2 latent frames
    handoff_1, handoff_2 = tmp_path / "h1.safetensors", tmp_path / "h2.safetensors"
    first = ClipStartSpec(params=params, start="noise", handoff_path=str(handoff_1))
    request = _request().model_copy(update={"num_frames": 13})
    one = sample_flow_clip(model, request, tmp_path / "1.safetensors", 16, 16, MAX_TOKENS, first)
    assert one.details["extension"]["prompt_latent_frames"] == 2
    second = ClipStartSpec(
        params=params, start="previous_clip", previous_path=str(handoff_1), handoff_path=str(handoff_2)
    )
    two = sample_flow_clip(
        model, request.model_copy(update={"seed": 9}), tmp_path / "2.safetensors", 16, 16, MAX_TOKENS, second
    )
    z1, z2 = load_file(one.latents_path)["latents"], load_file(two.latents_path)["latents"]
    assert z1.shape == z2.shape == (1, 16, 4, 2, 2)  # 13 frames = 4 latent frames
    schedule = guidance_schedule(2, 1.0, 4)
    assert schedule[0] == 4  # the latent frame next to the join is guided to the end
    assert torch.equal(z2[:, :, 1], z1[:, :, 3])  # ... so it is clip 1's last latent frame, in order
    assert not torch.allclose(z2[:, :, 2:], z1[:, :, 2:])  # the new ones are sampled
    assert "forward" in two.details["extension"]["held"]
    h1, h2 = PromptFrames.load(handoff_1), PromptFrames.load(handoff_2)
    assert h1.tail.shape == (5, 1, 16, 2, 2, 2)  # entries 0 .. S of the last 2 latent frames
    fresh = torch.randn(z2.shape, generator=torch.Generator("cpu").manual_seed(9))
    expected = past_dependent_noise(h1.initial, fresh, 2, params.alpha, forward=True)  # eq. 7'
    assert torch.allclose(h2.initial, expected)
    assert torch.equal(h2.initial[:, :, :2], h1.tail[0])  # the prompt frames' noise is clip 1's, in order


def test_flow_prompt_frames_must_be_whole_latent_frames():
    from generation.clip_plan import ExtensionParams, plan_scene_clips

    assert ExtensionParams().resolved(13, 4).prompt_frames == 5
    assert ExtensionParams().resolved(13).prompt_frames == 6  # the UNet path counts frames one by one
    with pytest.raises(ReelgraphError, match="whole latent frames") as caught:
        ExtensionParams(prompt_frames=6).resolved(13, 4)
    assert "5 or 9" in caught.value.fix
    slots = plan_scene_clips(25, 13, ExtensionParams(), 1, temporal_compression=4)
    assert [s.kept for s in slots] == [(0, 13), (5, 13), (5, 9)]


def test_flow_extension_refuses_the_unet_anchor(tmp_path):
    from generation.clip_plan import ClipStartSpec, ExtensionParams
    from generation.flow_clip import sample_flow_clip

    model = load_wan_model(save_tiny_wan(tmp_path / "wan"), torch.device("cpu"), torch.float32)
    spec = ClipStartSpec(params=ExtensionParams(anchor=True), anchor_role="record", anchor_path="a")
    request = _request().model_copy(update={"num_frames": 13})
    with pytest.raises(ReelgraphError, match="Anchoring"):
        sample_flow_clip(model, request, tmp_path / "a.safetensors", 16, 16, MAX_TOKENS, spec)


def test_image_start_holds_latent_frame_0_on_the_image(tmp_path):
    """Image to video on Wan: latent frame 0 is the image's VAE latents at the end, on its flow path before."""
    from PIL import Image
    from safetensors.torch import load_file

    from generation.clip_plan import ClipStartSpec, ExtensionParams
    from generation.flow_clip import sample_flow_clip
    from generation.flow_info import read_flow_info
    from generation.long_video import encode_image

    folder = save_tiny_wan(tmp_path / "wan")
    model = load_wan_model(folder, torch.device("cpu"), torch.float32)
    model.info = read_flow_info(folder, WAN21, None, None)  # the image is resized to the model's 16x16
    image = tmp_path / "start.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(image)
    spec = ClipStartSpec(params=ExtensionParams(), start="image", image_path=str(image))
    request = _request().model_copy(update={"num_frames": 13})
    seen = []
    result = sample_flow_clip(
        model,
        request,
        tmp_path / "a.safetensors",
        16,
        16,
        MAX_TOKENS,
        spec,
        callback=lambda info: seen.append(info.latents.clone()),
    )
    z_img = encode_image(model, image)
    latents = load_file(result.latents_path)["latents"]
    assert torch.allclose(latents[:, :, :1], z_img, atol=1e-6)
    assert not torch.allclose(seen[-1][:, :, :1], z_img, atol=1e-4)  # the last step moved it; held after
    assert result.details["extension"]["held_latent_frames"] == 1 and result.start == "image"
    plain = sample_flow_clip(model, request, tmp_path / "b.safetensors", 16, 16, MAX_TOKENS)
    assert not torch.allclose(load_file(plain.latents_path)["latents"][:, :, :1], z_img, atol=1e-3)


def test_npnet_noise_on_the_flow_path_is_pos_eq4_with_the_prompts_prediction(tmp_path):
    """The clip starts from ``ε/√(1+η²) + η ε̂_inv/√(1+η²)``, ``ε̂_inv`` drawn after ``ε`` from the seed."""
    from safetensors.torch import load_file

    from generation.flow_clip import sample_flow_clip
    from generation.npnet import NPNet, NPNetConfig
    from generation.ona import mix_noise

    model = load_wan_model(save_tiny_wan(tmp_path / "wan"), torch.device("cpu"), torch.float32)
    torch.manual_seed(0)
    config = NPNetConfig(
        context_dim=32, latent_channels=16, num_frames=2, latent_height=2, latent_width=2, dim=16
    )
    net = NPNet(config).eval()
    request = _request(noise={"source": "npnet", "eta": 0.5, "npnet": "n.safetensors"})
    result = sample_flow_clip(
        model, request, tmp_path / "a.safetensors", 16, 16, MAX_TOKENS, load_npnet=lambda path: net
    )
    assert result.details["noise"]["source"] == "npnet"
    generator = torch.Generator("cpu").manual_seed(request.seed)
    eps = torch.randn((1, 16, 2, 2, 2), generator=generator)  # 5 frames = 2 latent frames
    prompt = model.encode_prompt([PROMPT], MAX_TOKENS)
    start = mix_noise(eps, net.sample(prompt, generator, 2), 0.5)
    negative = model.encode_prompt([""], MAX_TOKENS)
    expected = model.sample(prompt, negative, start, 4, request.guidance_scale)
    assert torch.allclose(load_file(result.latents_path)["latents"], expected, atol=1e-5)
    random = sample_flow_clip(model, _request(), tmp_path / "b.safetensors", 16, 16, MAX_TOKENS)
    assert not torch.allclose(load_file(random.latents_path)["latents"], expected, atol=1e-3)
