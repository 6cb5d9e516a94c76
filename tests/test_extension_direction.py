"""Issue 18: VidRD keeping direction on the flow path, the one option that picks the method, ART-V refused.

The flow test runs :class:`~generation.flow_extension.FlowClipExtension` through our flow loop with an
instrumented expert that records the latents every latent frame received at every step, so the index
arithmetic of eq. 6'-8' over latent frames is checked against the equations written out here.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from fractions import Fraction
from types import SimpleNamespace

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from typer.testing import CliRunner

import cli
from agent.graph import build_graph
from agent.services import Services
from agent.state import RunRequest, RunState, SceneRequest
from generation.clip_plan import ClipStartSpec, ExtensionParams
from generation.extension import PromptFrames, guidance_schedule
from generation.families import WAN21
from generation.flow_extension import FlowClipExtension
from generation.flow_sampling import flow_sample
from generation.model_info import read_model_info
from reelgraph.errors import ReelgraphError
from tests.test_graph import INFO, FakeGenerator

N_VIDEO, N_LATENT, M_LATENT, S = 13, 4, 2, 6  # 13 frames = 4 latent frames; M = 5 video = 2 latent
SHAPE = (1, 2, N_LATENT, 2, 2)


class RecordingExpert:
    """A flow expert whose velocity is a fixed function of its input; it remembers every input."""

    guidance_scale = 1.0

    def __init__(self):
        self.inputs: list[torch.Tensor] = []

    def velocity(self, latents, timestep, prompt_embeds):
        self.inputs.append(latents.clone())
        return 0.2 * latents + 0.01


def _tiny_flow_model():
    return SimpleNamespace(
        family=WAN21,
        device=torch.device("cpu"),
        dtype=torch.float32,
        make_scheduler=FlowMatchEulerDiscreteScheduler,
    )


def _previous_handoff(path) -> PromptFrames:
    """A previous clip whose recorded last m latent frames carry a distinct value per (entry, frame)."""
    initial = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    tail = torch.zeros(S + 1, 1, 2, M_LATENT, 2, 2)
    for k in range(S + 1):
        for f in range(M_LATENT):
            tail[k, :, :, f] = 1000.0 + 10.0 * k + f  # latent frame n-m+f of the previous clip, entry k
    tail[0] = initial[:, :, N_LATENT - M_LATENT :]
    frames = PromptFrames(initial=initial, tail=tail)
    frames.save(path)
    return frames


@pytest.mark.parametrize("mode", ["vidrd", "vidrd-literal"])
@pytest.mark.parametrize("beta", [0.4, 1.0])
def test_flow_staged_guidance_over_latent_frames_in_forward_time(tmp_path, mode, beta):
    previous = _previous_handoff(tmp_path / "h.safetensors")
    params = ExtensionParams(mode=mode, beta=beta)
    spec = ClipStartSpec(params=params, start="previous_clip", previous_path=str(tmp_path / "h.safetensors"))
    setup = FlowClipExtension(_tiny_flow_model(), spec, N_VIDEO, S)
    assert setup.m == M_LATENT and setup.forward == (mode == "vidrd")
    expert = RecordingExpert()
    fresh = torch.randn(SHAPE, generator=torch.Generator().manual_seed(4))
    z0 = flow_sample(
        (expert,),
        FlowMatchEulerDiscreteScheduler(),
        setup.initial_latents(fresh),
        torch.zeros(1, 3, 4),
        None,
        S,
        latents_hook=setup.hook,
    )
    z0 = setup.finish(z0)
    assert len(expert.inputs) == S
    n, m = N_LATENT, M_LATENT
    for j in range(m):  # entry 0: eq. 6' (frame n-m+j) or eq. 6 (frame n-1-j) of the previous noise
        source = n - m + j if mode == "vidrd" else n - 1 - j
        assert torch.equal(expert.inputs[0][:, :, j], previous.initial[:, :, source])
    b = Fraction(beta).limit_denominator(10**6)
    for k in range(1, S + 1):
        latents = expert.inputs[k] if k < S else z0
        t = S - k + 1
        for j in range(n):
            d = (m - 1 - j) if mode == "vidrd" else j  # distance from the join
            replaced = j < m and t > (1 - b) * S + b * S * Fraction(d, m)
            tail_index = j if mode == "vidrd" else m - 1 - j  # frame n-m+j forward, n-1-j literal
            assert bool(torch.all(latents[:, :, j] == 1000.0 + 10.0 * k + tail_index)) == replaced, (k, j)
    assert guidance_schedule(m, beta, S)[0] >= 1
    assert ("forward" in setup.details()["held"]) == (mode == "vidrd")


# --- one option picks the method ------------------------------------------------------------------


def _plan(extension: dict, info=INFO, frames: int = 20):
    generator = FakeGenerator()
    generator.model_info = info
    request = RunRequest(
        scenes=[SceneRequest(prompt="a yellow triangle moves to the left", num_frames=frames)],
        seed=11,
        num_inference_steps=5,
        guidance_scale=7.0,
        extension=ExtensionParams(**extension),
        max_frames=200,
    )
    state = RunState(mode="plan", request=request)
    return RunState.model_validate(build_graph(Services(generator)).invoke(state))


def test_plan_shows_which_extension_and_why():
    forward = _plan({"mode": "vidrd"}).scenes[0].extension
    literal = _plan({"mode": "vidrd-literal"}).scenes[0].extension
    independent = _plan({"mode": "independent"}).scenes[0].extension
    assert forward.mode == "vidrd" and "in forward time" in forward.reason
    assert forward.method == "FNR+PNS+DSG"
    assert literal.mode == "vidrd-literal" and "reversed as eq. 6-8 are printed" in literal.reason
    assert literal.method == "FNR+PNS+DSG, literal"
    assert independent.mode == "independent" and "independent clips" in independent.reason


def test_artv_is_refused_for_a_model_without_a_continuation_network():
    with pytest.raises(ReelgraphError) as refused:
        _plan({"mode": "artv"})
    assert "--extension artv" in str(refused.value) and "no continuation network" in refused.value.why
    declared = dataclasses.replace(
        INFO, conditioning_frames=True
    )  # but a DDIM model (INFO has no flow shift)
    with pytest.raises(ReelgraphError) as refused:
        _plan({"mode": "artv"}, info=declared)
    assert "flow-matching path only" in refused.value.why
    flow = dataclasses.replace(declared, flow_shift=1.0, family="reelgraph toy flow")
    assert _plan({"mode": "artv"}, info=flow).scenes[0].extension.mode == "artv"  # the toy flow model runs it
    assert _plan({"mode": "artv"}, frames=8).scenes[0].extension.status == "skipped"  # one clip: no join


def test_conditioning_frames_is_read_from_reelgraph_json(tiny_model_dir, tmp_path):
    plain = read_model_info(tiny_model_dir)
    assert plain.conditioning_frames is False and "conditioning_frames" not in plain.to_dict()
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    extra_path = folder / "reelgraph.json"
    extra = json.loads(extra_path.read_text()) if extra_path.is_file() else {}
    extra_path.write_text(json.dumps({**extra, "conditioning_frames": True}))
    declared = read_model_info(folder)
    assert declared.conditioning_frames is True and declared.to_dict()["conditioning_frames"] is True
    extra_path.write_text(json.dumps({**extra, "conditioning_frames": "yes"}))
    with pytest.raises(ReelgraphError, match="conditioning_frames"):
        read_model_info(folder)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REELGRAPH_DEVICE", "cpu")
    torch.set_num_threads(1)


def _invoke(*args: str):
    return CliRunner().invoke(cli.app, list(args))


def test_extension_flag_beats_env_and_artv_is_refused_on_the_command_line(
    home, short_clip_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("REELGRAPH_EXTENSION_MODE", "independent")
    model = str(short_clip_model_dir)
    plan = _invoke("plan", "a red ball", "--model", model, "--frames", "10", "--json")
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.output)["scenes"][0]["extension"]["mode"] == "independent"  # env > default
    plan = _invoke(
        "plan", "a red ball", "--model", model, "--frames", "10", "--extension", "vidrd-literal", "--json"
    )
    assert json.loads(plan.output)["scenes"][0]["extension"]["mode"] == "vidrd-literal"  # flag > env
    out = tmp_path / "run"
    refused = _invoke(
        "generate", "a red ball", "--model", model, "--frames", "10", "--extension", "artv", "--out", str(out)
    )
    assert refused.exit_code == 1 and "no continuation network" in refused.output
    assert "Traceback" not in refused.output and not out.exists()
    bad = _invoke("plan", "a red ball", "--model", model, "--extension", "sideways")
    assert bad.exit_code == 2


def test_storyboard_extension_key(home, short_clip_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("REELGRAPH_EXTENSION_MODE", "independent")
    story = tmp_path / "story.yaml"
    story.write_text(
        "extension: vidrd-literal\nscenes:\n  - {prompt: a red ball rolls to the right, frames: 4}\n"
        "  - {prompt: the red ball bounces, frames: 3}\n"
    )
    out = tmp_path / "run"
    args = ["storyboard", str(story), "--model", str(short_clip_model_dir), "--steps", "2", "--seed", "2"]
    result = _invoke(*args, "--out", str(out))
    assert result.exit_code == 0, result.output
    section = json.loads((out / "manifest.json").read_text())["long_video"]
    assert section["params"]["mode"] == "vidrd-literal"  # the file's key beats the environment
    assert [s["start"] for s in section["scenes"]] == ["noise", "previous_scene"]  # same mechanism
    flagged = _invoke(*args, "--extension", "independent", "--out", str(tmp_path / "run2"))
    assert flagged.exit_code == 0, flagged.output
    manifest = json.loads((tmp_path / "run2" / "manifest.json").read_text())
    assert manifest["long_video"]["params"]["mode"] == "independent"  # the flag beats the file
    story.write_text("extension: sideways\nscenes: [a red ball]\n")
    refused = _invoke(*args, "--out", str(tmp_path / "run3"))
    assert refused.exit_code == 1 and "not a method" in refused.output


def test_artv_is_refused_for_a_storyboard_that_continues_scenes():
    generator = FakeGenerator()
    request = RunRequest(
        scenes=[
            SceneRequest(prompt="a red ball rolls", num_frames=8),
            SceneRequest(prompt="it bounces", num_frames=8),
        ],
        seed=1,
        num_inference_steps=5,
        guidance_scale=7.0,
        extension=ExtensionParams(mode="artv"),
        max_frames=200,
    )
    with pytest.raises(ReelgraphError, match="Scene 2 needs a continuation"):
        build_graph(Services(generator)).invoke(RunState(mode="plan", request=request))
    separate = request.model_copy(update={"extension": ExtensionParams(mode="artv", continue_scenes=False)})
    state = RunState.model_validate(
        build_graph(Services(generator)).invoke(RunState(mode="plan", request=separate))
    )
    assert [s.extension.status for s in state.scenes] == ["skipped", "skipped"]
