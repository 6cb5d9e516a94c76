"""AnimateDiff (UNetMotionModel + MotionAdapter, Search-T2V's backbone) on our DDIM path.

Loading through diffusers' ``from_pretrained`` (both layouts), parity of our loop with
``AnimateDiffPipeline``, the motion-module LoRA, and the family's table entry.
"""

from __future__ import annotations

import pytest
import torch

from generation.families import ANIMATEDIFF, family_of
from generation.loaders import load_video_model
from generation.model_info import read_model_info
from generation.sampling import sample_ddim


@pytest.fixture(scope="module")
def model(tiny_animatediff_dir):
    return load_video_model(str(tiny_animatediff_dir), device="cpu")


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    """The image UNet and the MotionAdapter saved apart (``unet/`` a UNet2DConditionModel)."""
    from tests.tiny_models import save_animatediff_layout, tiny_animatediff_components

    return save_animatediff_layout(
        tiny_animatediff_components(), tmp_path_factory.mktemp("tiny-animatediff-split"), join=False
    )


def _pipeline(model):
    from diffusers import AnimateDiffPipeline

    return AnimateDiffPipeline(
        vae=model.vae,
        text_encoder=model.prompt_encoder.model,
        tokenizer=model.prompt_encoder.tokenizer,
        unet=model.unet,
        motion_adapter=None,
        scheduler=model.make_scheduler(),
    )


def _ours(model, prompt, frames, steps, guidance_scale, eta, seed):
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(model.latent_shape(1, frames), generator=generator)
    return sample_ddim(
        model,
        model.make_scheduler(),
        latents,
        model.encode_prompt([prompt]).embeds,
        model.encode_prompt([""]).embeds,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        eta=eta,
        generator=generator,
    )


def test_animatediff_folder_loads_as_a_ddim_family(model, tiny_animatediff_dir):
    from diffusers import UNetMotionModel

    assert family_of(tiny_animatediff_dir) is ANIMATEDIFF and ANIMATEDIFF.sampler == "ddim"
    assert isinstance(model.unet, UNetMotionModel)
    info = model.info
    assert (info.family, info.unet_class, info.scheduler_class) == (
        "AnimateDiff",
        "UNetMotionModel",
        "DDIMScheduler",
    )
    assert (info.num_frames, info.height, info.width, info.guidance_scale) == (16, 16, 16, 7.5)
    assert info.unet_parameters == sum(t.numel() for t in model.unet.state_dict().values())  # weights + pe
    assert ANIMATEDIFF.unsupported.keys() == {"image2video"}  # no image conditioning; the rest tested
    assert info.unsupported == {}  # an image start holds the first latent frame, as on UNet3D
    assert info.to_dict()["family"] == "AnimateDiff"


@pytest.mark.parametrize(("guidance_scale", "eta"), [(7.5, 0.0), (1.0, 0.0), (4.0, 0.5)])
def test_sample_ddim_matches_animatediff_pipeline(model, guidance_scale, eta):
    prompt, steps, frames, seed = "a red ball rolls to the right", 4, 4, 1234
    expected = _pipeline(model)(
        prompt,
        num_frames=frames,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        eta=eta,
        generator=torch.Generator().manual_seed(seed),
        output_type="latent",
    ).frames
    ours = _ours(model, prompt, frames, steps, guidance_scale, eta, seed)
    assert ours.shape == expected.shape == (1, 4, frames, 8, 8)
    error = (ours - expected).abs().max().item()
    print(f"AnimateDiff parity (guidance {guidance_scale}, eta {eta}): max |ours - pipeline| = {error:.3g}")
    assert error <= 1e-5


def test_decode_matches_animatediff_pipeline(model):
    latents = torch.randn(model.latent_shape(1, 3), generator=torch.Generator().manual_seed(5))
    expected = _pipeline(model).decode_latents(latents, decode_chunk_size=2)
    assert (model.decode_latents(latents) - expected).abs().max().item() <= 1e-5


def test_image_unet_plus_motion_adapter_loads_like_the_pipeline(split_dir, model):
    """``unet/`` a UNet2DConditionModel beside ``motion_adapter/``: joined as AnimateDiffPipeline joins them."""
    from diffusers import AnimateDiffPipeline

    split = load_video_model(str(split_dir), device="cpu")
    info = read_model_info(split_dir)
    assert info.unet_class == "UNet2DConditionModel" and info.family == "AnimateDiff"
    assert info.unet_parameters == sum(t.numel() for t in split.unet.state_dict().values())
    reference = AnimateDiffPipeline.from_pretrained(split_dir)
    for (name, ours), (_, theirs) in zip(
        split.unet.state_dict().items(), reference.unet.state_dict().items(), strict=True
    ):
        assert torch.equal(ours, theirs), name
    # the same components as the joined folder, so the same video
    a = _ours(split, "a ball", 3, 2, 7.5, 0.0, 9)
    b = _ours(model, "a ball", 3, 2, 7.5, 0.0, 9)
    assert torch.allclose(a, b, atol=1e-6)


def test_image_unet_without_motion_adapter_is_refused(split_dir, tmp_path):
    import shutil

    from reelgraph.errors import ReelgraphError

    folder = tmp_path / "no-adapter"
    shutil.copytree(split_dir, folder)
    shutil.rmtree(folder / "motion_adapter")
    for load in (read_model_info, lambda f: load_video_model(str(f), device="cpu")):
        with pytest.raises(ReelgraphError, match="UNet2DConditionModel but no motion_adapter/"):
            load(folder)


def test_generate_on_animatediff_writes_four_files_and_a_manifest_naming_the_family(
    tiny_animatediff_dir, tmp_path, monkeypatch
):
    import json

    from typer.testing import CliRunner

    import cli

    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    args = ["generate", "a red ball rolls to the right", "--model", str(tiny_animatediff_dir)]
    result = CliRunner().invoke(
        cli.app, [*args, "--out", str(out), "--steps", "2", "--frames", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "sheet.png", "video.gif", "video.mp4"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["family"] == "AnimateDiff"
    assert manifest["model"]["unet_class"] == "UNetMotionModel"
    assert manifest["scheduler"]["_class_name"] == "DDIMScheduler"
    assert manifest["sampling"]["num_inference_steps"] == 2 and manifest["sampling"]["num_frames"] == 4
    assert manifest["plan"]["scenes"][0]["sampling"]["status"] == "done"


def test_motion_lora_tunes_the_motion_modules_and_changes_sampling(model, tmp_path):
    """Search-T2V §4.3 on AnimateDiff: a LoRA on the motion modules' temporal self-attention only."""
    import re

    from generation.adapters import applied_lora, lora_modules, save_lora, tuning_target
    from motion_prior.tuning import TuningConfig, distill_motion, lora_settings

    unet = model.unet
    expected = {
        name
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear)
        and re.search(r"motion_modules\.\d+\..*attn[12]\.to_[qkv]$", name)
    }
    assert len(expected) == 42  # 7 motion modules (down 2, mid 1, up 4) x 2 attentions x q, k, v
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    video = torch.rand(1, 3, 4, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    target = tuning_target(model, video, "a ball zigzags")
    assert target.latents.shape == (1, 4, 4, 8, 8) and target.pattern is None  # the config's temporal pattern
    config = TuningConfig(steps=2, rank=2, learning_rate=1e-2, seed=3)
    with target.scope:
        state, result = distill_motion(
            target.network, target.scheduler, target.latents, target.context, config, pattern=target.pattern
        )
    assert len(result.losses) == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    assert set(result.modules) == expected  # no spatial (SD 1.5) attention among them
    path = save_lora(tmp_path / "animatediff-motion.safetensors", state, lora_settings(config))
    assert path.is_file() and path.stat().st_size > 0

    base = _ours(model, "a ball", 4, 2, 7.5, 0.0, 4)
    with applied_lora(unet, path) as wrapped:
        assert set(wrapped) == expected
        tuned = _ours(model, "a ball", 4, 2, 7.5, 0.0, 4)
    assert (tuned - base).abs().max().item() > 1e-6
    assert lora_modules(unet) == []
    after = unet.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert torch.equal(_ours(model, "a ball", 4, 2, 7.5, 0.0, 4), base)


def test_clip_length_is_capped_at_the_motion_modules_sequence_length(tiny_animatediff_dir, tmp_path):
    """The motion modules' positional encoding covers ``motion_max_seq_length`` frames (16 here)."""
    import json
    import shutil

    folder = tmp_path / "long"
    shutil.copytree(tiny_animatediff_dir, folder)
    (folder / "reelgraph.json").write_text(json.dumps({"num_frames": 24}))
    assert read_model_info(folder).num_frames == 16
    (folder / "reelgraph.json").write_text(json.dumps({"num_frames": 8}))
    assert read_model_info(folder).num_frames == 8
