"""`reelgraph generate` on a tiny Wan folder: the four files, a manifest naming family, scheduler, flow shift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from tests.tiny_wan import save_tiny_wan

PROMPT = "a red ball rolls to the right"


@pytest.fixture(scope="module")
def tiny_wan_dir(tmp_path_factory):
    return save_tiny_wan(tmp_path_factory.mktemp("tiny-wan") / "wan")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))


def _generate(model: Path, out: Path, frames: str):
    args = ["generate", PROMPT, "--model", str(model), "--out", str(out), "--steps", "4", "--frames", frames]
    return CliRunner().invoke(cli.app, [*args, "--seed", "5", "--json"])


def test_generate_on_wan_writes_files_and_manifest(home, tiny_wan_dir, tmp_path):
    out = tmp_path / "run"
    result = _generate(tiny_wan_dir, out, "9")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "sheet.png", "video.gif", "video.mp4"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["family"] == "Wan 2.1"
    assert manifest["model"]["flow_shift"] == 7.0
    assert manifest["scheduler"]["_class_name"] == "FlowMatchEulerDiscreteScheduler"
    assert manifest["sampling"]["num_frames"] == 9
    assert (manifest["sampling"]["height"], manifest["sampling"]["width"]) == (16, 16)


def test_frames_not_4k_plus_1_are_rounded_up_and_the_plan_says_why(home, tiny_wan_dir, tmp_path):
    out = tmp_path / "run"
    args = ["generate", PROMPT, "--model", str(tiny_wan_dir), "--out", str(out), "--steps", "2"]
    result = CliRunner().invoke(cli.app, [*args, "--frames", "10", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "10 frames rounded up to 13" in " ".join(result.stderr.split())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sampling"]["num_frames"] == 13
    sampling = manifest["plan"]["scenes"][0]["sampling"]
    assert "10 frames asked, rounded up to 13" in sampling["reason"] and "4k + 1" in sampling["reason"]


def test_the_service_refuses_a_clip_that_is_not_4k_plus_1(tiny_wan_dir, tmp_path):
    from generation.service import GenerationService
    from reelgraph.contracts.clips import ClipRequest
    from reelgraph.errors import ReelgraphError
    from reelgraph.settings import Settings

    service = GenerationService(Settings(home=tmp_path, model=str(tiny_wan_dir)).model_section)
    with pytest.raises(ReelgraphError) as refused:
        service.check_clip(ClipRequest(prompt=PROMPT, num_frames=10, seed=0, num_inference_steps=2,
                                       guidance_scale=5.0))  # fmt: skip
    assert "4k + 1" in " ".join(str(refused.value).split())


@pytest.mark.parametrize(
    ("pipeline", "name"), [("LTXPipeline", "LTX-Video"), ("CogVideoXPipeline", "CogVideoX")]
)
def test_generate_on_unsampled_family_names_it(home, tmp_path, pipeline, name):
    """A transformer-layout folder is refused by family, never for lacking unet/."""
    folder = tmp_path / "model"
    (folder / "transformer").mkdir(parents=True)
    (folder / "transformer" / "config.json").write_text(json.dumps({"_class_name": "X"}))
    index = {"_class_name": pipeline, "transformer": ["diffusers", "X"], "vae": ["diffusers", "Y"]}
    (folder / "model_index.json").write_text(json.dumps(index))
    result = _generate(folder, tmp_path / "run", "9")
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert name in text and "unet/" not in text


def test_plan_on_wan_names_the_flow_sampler_and_shift(home, tiny_wan_dir):
    args = ["plan", PROMPT, "--model", str(tiny_wan_dir), "--steps", "4", "--frames", "9", "--json"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    sampling = json.loads(result.output)["scenes"][0]["sampling"]
    assert sampling["family"] == "Wan 2.1" and sampling["flow_shift"] == 7.0
    assert sampling["reason"].startswith("Wan 2.1 flow matching (FlowMatchEulerDiscreteScheduler, shift 7)")


def test_index_invert_then_generate_with_ona_on_wan(tiny_wan_dir, tmp_path):
    """ONA on the flow path: `index invert` caches flow-ODE inversions keyed per model, `generate` mixes one."""
    from memory.store import MemoryStore

    home = str(tmp_path / "home")

    def invoke(*args):
        result = CliRunner().invoke(cli.app, ["--home", home, *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    invoke("index", "toy", "--n", "2", "--json")
    model = ["--model", str(tiny_wan_dir), "--steps", "3"]
    first = invoke("index", "invert", *model, "--json")
    assert first["inverted"] == 2 and first["failed"] == 0
    again = invoke("index", "invert", *model, "--json")
    assert again["inverted"] == 0 and again["cached"] == 2  # off the request path, once
    files = list((tmp_path / "home" / "cache" / "inversions").rglob("*.safetensors"))
    assert len(files) == 2 and all(f.parent.name == "s3-f13-16x16" for f in files)

    from safetensors.torch import load_file

    eps_inv = load_file(str(files[0]))["eps_inv"]
    assert eps_inv.shape == (1, 16, 4, 2, 2)  # 13 frames -> (13 - 1) / 4 + 1 latent frames
    assert eps_inv.isfinite().all()

    record = next(r for page, _ in MemoryStore(home).iter_all() for r in page)
    out = tmp_path / "run"
    invoke("generate", record.caption, *model, "--out", str(out), "--seed", "1", "--json")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["family"] == "Wan 2.1"
    scene = manifest["plan"]["scenes"][0]
    assert scene["noise"]["source"] == "ona" and scene["noise"]["cache"] == "hit"  # the planner's pick
    noise = scene["sampling"]["noise"]  # what the sampler did
    assert noise["source"] == "ona" and noise["cache"] == "hit" and noise["video_id"] == record.id
    assert noise["inversion"] == "flow" and noise["eps_inv_std"] > 0


def test_index_invert_then_npnet_train_then_generate_with_npnet_on_wan(tiny_wan_dir, tmp_path, monkeypatch):
    """NPNet on the flow path: trained on (caption, cached flow inversion) pairs, then sampled from."""
    home = str(tmp_path / "home")

    def invoke(*args):
        result = CliRunner().invoke(cli.app, ["--home", home, *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    invoke("index", "toy", "--n", "4", "--json")
    model = ["--model", str(tiny_wan_dir), "--steps", "3"]
    assert invoke("index", "invert", *model, "--json")["inverted"] == 4
    report = invoke("npnet", "train", *model, "--max-steps", "20", "--json")
    assert report["train_pairs"] >= 1 and report["steps"] == 20
    from generation.npnet import load_npnet

    net = load_npnet(report["path"])
    assert (net.config.latent_channels, net.config.num_frames) == (16, 4)  # 13 frames = 4 latent frames
    monkeypatch.setenv("REELGRAPH_NOISE_SOURCE", "npnet")
    out = tmp_path / "run"
    invoke("generate", PROMPT, *model, "--out", str(out), "--seed", "1", "--json")
    manifest = json.loads((out / "manifest.json").read_text())
    noise = manifest["plan"]["scenes"][0]["sampling"]["noise"]
    assert noise["source"] == "npnet" and noise["npnet"] == report["path"] and noise["eta"] > 0


def test_generate_on_wan_from_an_image(home, tiny_wan_dir, tmp_path):
    from PIL import Image

    image = tmp_path / "start.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(image)
    out = tmp_path / "run"
    args = ["generate", PROMPT, "--model", str(tiny_wan_dir), "--out", str(out), "--steps", "4"]
    result = CliRunner().invoke(cli.app, [*args, "--image", str(image), "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["start"] for c in manifest["long_video"]["clips"]] == ["image"]
    assert manifest["plan"]["scenes"][0]["sampling"]["extension"]["held_latent_frames"] == 1
    with Image.open(out / "video.gif") as gif:
        assert gif.n_frames == 13


def test_generate_25_frames_on_a_13_frame_wan_runs_extension_clips(home, tiny_wan_dir, tmp_path):
    """VidRD on latent frames: M = 5 prompt frames = 2 latent frames, so clips add 13, 8 and 4 frames."""
    from PIL import Image

    out = tmp_path / "run"
    result = _generate(tiny_wan_dir, out, "25")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    long_video = manifest["long_video"]
    assert long_video["params"]["prompt_frames"] == 5  # 13 // 2 = 6 rounded down to 4k + 1
    # issue 18: DSG's staged release runs over latent frames on Wan, in forward time, and says so
    assert long_video["method"] == "FNR+PNS+DSG" and long_video["params"]["dsg"] is True
    assert long_video["params"]["mode"] == "vidrd"
    assert manifest["plan"]["scenes"][0]["extension"]["method"] == "FNR+PNS+DSG"
    clips = long_video["clips"]
    assert [c["start"] for c in clips] == ["noise", "previous_clip", "previous_clip"]
    assert [c["kept"] for c in clips] == [[0, 13], [5, 13], [5, 9]]
    assert sum(k[1] - k[0] for k in (c["kept"] for c in clips)) == 25
    extension = manifest["plan"]["scenes"][0]["sampling"]["extension"]
    assert extension["prompt_latent_frames"] == 2
    with Image.open(out / "video.gif") as gif:
        assert gif.n_frames == 25


def test_generate_on_wan_with_a_motion_lora_through_the_graph(tiny_wan_dir, tmp_path, monkeypatch):
    """`generate --tune` on a Wan folder: the plan tunes a LoRA on the pool's video and samples with it."""
    import shutil

    model = Path(shutil.copytree(tiny_wan_dir, tmp_path / "wan"))
    (model / "planning.json").write_text(json.dumps({"detector": "toy", "rare_motions": ["zigzag"]}))
    monkeypatch.setenv("REELGRAPH_TUNE_STEPS", "2")
    home = ["--home", str(tmp_path / "home")]
    assert CliRunner().invoke(cli.app, [*home, "index", "toy", "--n", "2", "--json"]).exit_code == 0
    out = tmp_path / "run"
    args = ["generate", "a red ball zigzags to the right", "--model", str(model), "--steps", "2"]
    result = CliRunner().invoke(cli.app, [*home, *args, "--frames", "9", "--tune", "--out", str(out)])
    assert result.exit_code == 0, result.output
    tuning = json.loads((out / "manifest.json").read_text())["plan"]["scenes"][0]["tuning"]
    assert tuning["status"] == "done" and tuning["lora_path"].endswith(".safetensors")
    assert Path(tuning["lora_path"]).is_file()
