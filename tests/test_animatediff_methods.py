"""The paper methods on AnimateDiff (our DDIM loop): hybrid semantics (POS eq. 8), ONA (POS eq. 3-5),
NPNet noise (POS §4.2), clip extension (VidRD FNR+PNS+DSG) with anchor attention.

Each is the UNet3D code path run on a UNetMotionModel; these tests are why the family's table says yes.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import cli
from reelgraph.contracts.clips import ClipRequest, NoiseSpec


@pytest.fixture(scope="module")
def short_dir(tiny_animatediff_dir, tmp_path_factory):
    """The tiny AnimateDiff with 4-frame clips, so a long video takes several clips."""
    folder = tmp_path_factory.mktemp("tiny-animatediff-4") / "model"
    shutil.copytree(tiny_animatediff_dir, folder)
    (folder / "reelgraph.json").write_text(json.dumps({"num_frames": 4, "fps": 8}))
    return folder


@pytest.fixture(scope="module")
def service(short_dir, tmp_path_factory):
    from generation.service import GenerationService
    from reelgraph.settings import Settings

    torch.set_num_threads(1)
    return GenerationService(Settings(home=tmp_path_factory.mktemp("adiff-home"), model=str(short_dir)))


@pytest.fixture
def pool_video(tmp_path):
    from reelgraph.media import write_mp4

    frames = np.zeros((8, 16, 16, 3), np.uint8)
    for i in range(8):  # a square moving right
        frames[i, 4:10, 1 + i : 7 + i] = (220, 40, 40)
    return write_mp4(frames, tmp_path / "v.mp4", fps=8, lossless=True)


def _latents(result) -> torch.Tensor:
    return load_file(result.latents_path)["latents"]


BASE = ClipRequest(
    prompt="a red box slides right", num_frames=4, num_inference_steps=3, guidance_scale=3.0, seed=3
)


def test_hybrid_semantics_on_animatediff(service, tmp_path):
    runs = {
        name: _latents(service.sample_clip(BASE.model_copy(update=update), tmp_path / f"{name}.safetensors"))
        for name, update in {
            "plain": {},
            "gamma0": {"rewritten_prompt": "a shiny red box", "gamma": 0.0},
            "gamma05": {"rewritten_prompt": "a shiny red box", "gamma": 0.5},
        }.items()
    }
    assert torch.equal(runs["gamma0"], runs["plain"]) and not torch.equal(runs["gamma05"], runs["plain"])


def test_ona_noise_on_animatediff(service, pool_video, tmp_path):
    plain = service.sample_clip(BASE, tmp_path / "plain.safetensors")
    spec = NoiseSpec(source="ona", eta=0.5, video_id="toy:v", video=str(pool_video))
    first = service.sample_clip(BASE.model_copy(update={"noise": spec}), tmp_path / "ona1.safetensors")
    second = service.sample_clip(BASE.model_copy(update={"noise": spec}), tmp_path / "ona2.safetensors")
    assert first.details["noise"]["cache"] == "miss" and second.details["noise"]["cache"] == "hit"
    assert torch.equal(_latents(first), _latents(second))
    assert not torch.allclose(_latents(first), _latents(plain))


def test_npnet_noise_on_animatediff(service, tmp_path):
    from generation.npnet import NPNet, NPNetConfig, save_npnet

    model = service.model
    _, c, f, h, w = model.latent_shape(1, 4)
    dim = model.encode_prompt(["a"]).embeds.shape[-1]
    config = NPNetConfig(context_dim=dim, latent_channels=c, num_frames=f, latent_height=h, latent_width=w)
    path = save_npnet(NPNet(config.model_copy(update={"residual_std": 0.8})), tmp_path / "np.safetensors", {})
    plain = service.sample_clip(BASE, tmp_path / "plain.safetensors")
    spec = NoiseSpec(source="npnet", eta=0.5, npnet=str(path))
    result = service.sample_clip(BASE.model_copy(update={"noise": spec}), tmp_path / "np.safetensors.out")
    assert result.details["noise"]["source"] == "npnet"
    assert _latents(result).isfinite().all() and not torch.allclose(_latents(result), _latents(plain))


def test_long_video_extension_on_animatediff(short_dir, tmp_path, monkeypatch):
    from reelgraph.media import read_video

    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    args = ["generate", "a red ball", "--model", str(short_dir), "--out", str(out), "--steps", "2"]
    result = CliRunner().invoke(cli.app, [*args, "--frames", "10", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert len(read_video(out / "video.mp4")) == 10
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["family"] == "AnimateDiff"
    section = manifest["long_video"]
    assert section["method"] == "FNR+PNS+DSG" and section["clip_frames"] == 4
    assert [c["start"] for c in section["clips"]][1:] == ["previous_clip"] * 3


def test_anchor_attention_on_animatediff(service, tmp_path):
    from generation.anchor import ReferenceAttnProcessor
    from tests.anchor_helpers import anchored_second_clips

    request = BASE.model_copy(update={"num_inference_steps": 2, "seed": 8})
    outputs = {role: _latents(r) for role, r in anchored_second_clips(service, request, tmp_path).items()}
    assert not torch.equal(outputs["apply"], outputs["none"])
    assert not any(isinstance(p, ReferenceAttnProcessor) for p in service.model.unet.attn_processors.values())


def test_image_start_holds_the_image_as_first_frame_on_animatediff(service, tmp_path):
    """No image conditioning (the table's image2video is no), but the held first latent frame runs as on UNet3D."""
    from PIL import Image

    from generation.backend import frames_to_uint8, uint8_to_frames
    from generation.clip_plan import ClipStartSpec, ExtensionParams

    pixels = np.full((16, 16, 3), (10, 10, 20), dtype=np.uint8)
    pixels[5:11, 4:10] = (220, 40, 40)
    Image.fromarray(pixels).save(tmp_path / "start.png")
    spec = ClipStartSpec(
        params=ExtensionParams(beta=1.0), start="image", image_path=str(tmp_path / "start.png")
    )
    result = service.sample_clip(BASE, tmp_path / "clip.safetensors", extension=spec)
    frames = service.decode_clip(result.latents_path)
    model = service.model
    with torch.inference_mode():
        image = uint8_to_frames(pixels[None])
        roundtrip = frames_to_uint8(model.decode_latents(model.encode_video(image)))[0, 0]
    assert np.array_equal(frames[0], roundtrip) and not np.array_equal(frames[-1], roundtrip)
    assert service.model_info.refusal("image2video") is None  # the plan lets --image run, as on UNet3D
