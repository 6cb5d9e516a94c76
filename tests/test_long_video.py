"""Long videos on a tiny model (clips of 4 frames): exact frame counts, joins, images, anchors, storyboards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import cli
from generation.clip_plan import ClipStartSpec, ExtensionParams
from reelgraph.contracts.clips import ClipRequest
from reelgraph.media import read_video

runner = CliRunner()
CLIP = 4


@pytest.fixture(scope="module")
def short_model(short_clip_model_dir):
    return short_clip_model_dir


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REELGRAPH_DEVICE", "cpu")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def service(short_model, tmp_path_factory):
    from generation.service import GenerationService
    from reelgraph.settings import load_settings

    home = tmp_path_factory.mktemp("svc-home")
    settings = load_settings({"model": str(short_model), "device": "cpu"}, home=home, environ={}).settings
    return GenerationService(settings)


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


def test_generate_frames_beyond_one_clip(home, short_model, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "generate", "a red ball", "--model", str(short_model), "--out", str(out), "--steps", "2",
        "--frames", "10", "--seed", "5", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(read_video(out / "video.mp4")) == 10
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sampling"]["num_frames"] == 10
    section = manifest["long_video"]
    assert section["method"] == "FNR+PNS+DSG" and section["clip_frames"] == CLIP
    assert (
        section["params"] | {"prompt_frames": 2, "alpha": 4.0, "beta": 0.4, "keep": "new"}
        == section["params"]
    )
    # 4 + 2 + 2 + 2: the two prompt frames of each extension clip are not repeated.
    assert [c["kept"] for c in section["clips"]] == [[0, 4], [2, 4], [2, 4], [2, 4]]
    assert [c["start"] for c in section["clips"]] == [
        "noise",
        "previous_clip",
        "previous_clip",
        "previous_clip",
    ]
    assert next(c["seed"] for c in section["clips"]) == 5 == manifest["seeds"]["clips"][0]
    assert not (out / "work").exists()


def test_keep_all_and_independent_joins(home, short_model, tmp_path, monkeypatch):
    monkeypatch.setenv("REELGRAPH_EXTENSION_KEEP", "all")
    args = [
        "generate",
        "a ball",
        "--model",
        str(short_model),
        "--steps",
        "2",
        "--frames",
        "10",
        "--seed",
        "1",
    ]
    assert invoke(*args, "--out", str(tmp_path / "all")).exit_code == 0
    clips = json.loads((tmp_path / "all" / "manifest.json").read_text())["long_video"]["clips"]
    assert [c["kept"] for c in clips] == [[0, 4], [0, 4], [0, 2]]
    monkeypatch.setenv("REELGRAPH_EXTENSION_MODE", "independent")
    assert invoke(*args, "--out", str(tmp_path / "ind")).exit_code == 0
    manifest = json.loads((tmp_path / "ind" / "manifest.json").read_text())
    assert manifest["long_video"]["method"] == "independent"
    assert {c["start"] for c in manifest["long_video"]["clips"]} == {"noise"}
    assert len(read_video(tmp_path / "ind" / "video.mp4")) == 10


def test_extension_is_deterministic_and_reads_the_previous_clip(service, tmp_path):
    params = ExtensionParams()
    request = ClipRequest(prompt="a ball", num_frames=CLIP, num_inference_steps=3, guidance_scale=5.0, seed=3)

    def two_clips(folder: Path, second_seed: int):
        first = service.sample_clip(
            request,
            folder / "c0.safetensors",
            extension=ClipStartSpec(params=params, handoff_path=str(folder / "h0.safetensors")),
        )
        second = service.sample_clip(
            request.model_copy(update={"seed": second_seed}),
            folder / "c1.safetensors",
            extension=ClipStartSpec(params=params, start="previous_clip", previous_path=first.handoff_path),
        )
        return service.decode_clip(Path(first.latents_path)), service.decode_clip(Path(second.latents_path))

    a0, a1 = two_clips(tmp_path / "a", 9)
    b0, b1 = two_clips(tmp_path / "b", 9)
    assert np.array_equal(a0, b0) and np.array_equal(a1, b1)
    _, c1 = two_clips(tmp_path / "c", 10)
    assert not np.array_equal(a1, c1)  # the new noise of eq. 7 comes from the clip's own seed
    kept = service.decode_clip(tmp_path / "a" / "c1.safetensors", (2, 4))
    assert np.array_equal(kept, a1[2:4])


def test_image_start_keeps_the_image_as_first_frame(service, tmp_path):
    from PIL import Image

    from generation.backend import frames_to_uint8, uint8_to_frames

    pixels = np.zeros((16, 16, 3), dtype=np.uint8)
    pixels[:] = (10, 10, 20)
    pixels[5:11, 4:10] = (220, 40, 40)
    Image.fromarray(pixels).save(tmp_path / "start.png")
    request = ClipRequest(
        prompt="a red ball", num_frames=CLIP, num_inference_steps=3, guidance_scale=5.0, seed=4
    )
    spec = ClipStartSpec(
        params=ExtensionParams(beta=1.0), start="image", image_path=str(tmp_path / "start.png")
    )
    result = service.sample_clip(request, tmp_path / "clip.safetensors", extension=spec)
    frames = service.decode_clip(Path(result.latents_path))
    model = service.model
    with torch.inference_mode():
        roundtrip = frames_to_uint8(model.decode_latents(model.encode_video(uint8_to_frames(pixels[None]))))[
            0, 0
        ]
    # β = 1 holds frame 0 on the image's trajectory to the end: it decodes to the image's VAE reconstruction.
    assert np.array_equal(frames[0], roundtrip)
    assert not np.array_equal(frames[-1], roundtrip)


def test_anchor_attention_changes_the_clip_and_restores_the_unet(service, tmp_path):
    from generation.anchor import ReferenceAttnProcessor
    from tests.anchor_helpers import anchored_second_clips

    request = ClipRequest(prompt="a ball", num_frames=CLIP, num_inference_steps=2, guidance_scale=5.0, seed=8)
    clips = anchored_second_clips(service, request, tmp_path)
    outputs = {role: service.decode_clip(Path(result.latents_path)) for role, result in clips.items()}
    assert not np.array_equal(outputs["apply"], outputs["none"])
    processors = service.model.unet.attn_processors.values()
    assert not any(isinstance(p, ReferenceAttnProcessor) for p in processors)


def test_reference_attention_off_is_plain_attention(service):
    from generation.anchor import ReferenceAttnProcessor, _Store, spatial_self_attention_names

    unet = service.model.unet
    names = spatial_self_attention_names(unet)
    assert names and all(".attentions." in n and "temp" not in n for n in names)
    latents = torch.randn(1, 4, CLIP, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        plain = service.model.predict_noise(latents, 500, context)
        original = dict(unet.attn_processors)
        store = _Store()
        unet.set_attn_processor({**original, **{n: ReferenceAttnProcessor(n, store) for n in names}})
        try:
            off = service.model.predict_noise(latents, 500, context)
        finally:
            unet.set_attn_processor(original)
    assert torch.allclose(plain, off, atol=1e-5)


def test_storyboard_command_continues_scenes(home, short_model, tmp_path):
    story = tmp_path / "story.yaml"
    story.write_text(
        "scenes:\n  - {prompt: a red ball rolls to the right, frames: 4}\n  - {prompt: the red ball bounces, frames: 3}\n"
    )
    out = tmp_path / "run"
    result = invoke(
        "storyboard",
        str(story),
        "--out",
        str(out),
        "--seed",
        "2",
        "--model",
        str(short_model),
        "--steps",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert (out / "sheet.png").is_file() and len(read_video(out / "video.mp4")) == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["prompt"] == "a red ball rolls to the right | the red ball bounces"
    section = manifest["long_video"]
    assert [s["start"] for s in section["scenes"]] == ["noise", "previous_scene"]
    assert [(c["scene"], c["start"], c["kept"]) for c in section["clips"]] == [
        (0, "noise", [0, 4]),
        (1, "previous_scene", [2, 4]),
        (1, "previous_clip", [2, 3]),
    ]
    assert manifest["seeds"]["scenes"] == [2, 3]


def test_storyboard_command_errors(home, short_model, tmp_path):
    story = tmp_path / "story.yaml"
    story.write_text("scenes:\n  - {prompt: a ball, frames: -1}\n")
    result = invoke("storyboard", str(story), "--model", str(short_model))
    assert result.exit_code == 1 and "Scene 1 asks for -1 frames" in result.output
    result = invoke("storyboard", str(tmp_path / "missing.txt"), "--model", str(short_model))
    assert result.exit_code == 1 and "does not exist" in result.output
    result = invoke(
        "generate", "a ball", "--model", str(short_model), "--image", str(tmp_path / "nope.png"), "--out",
        str(tmp_path / "r"),
    )  # fmt: skip
    assert result.exit_code == 1 and "nope.png' does not exist" in result.output
    assert not (tmp_path / "r").exists()
