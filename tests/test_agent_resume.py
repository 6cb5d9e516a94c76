"""Resumable runs: a run killed after clip 2 of 3 resumes with `generate --resume` and equals an
uninterrupted run with the same seed, without making the finished clips again.

Two kills: a crash inside the process (fast, every run of the suite) and a real SIGKILL of a
subprocess (slow: a fresh interpreter imports torch and diffusers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from agent import runner
from agent.composition import build_services
from agent.state import SceneRequest
from reelgraph.settings import load_settings

SCENES = ["a red ball rolls to the right", "the red ball bounces", "a blue square falls"]
# No clip cache: the uninterrupted run must compute every clip, not reuse the killed run's.
FLAGS = {"seed": 21, "num_inference_steps": 2, "num_frames": 4, "rewrite": False, "clip_cache": False}


class Killed(BaseException):
    """Stands in for the process dying: not an Exception, so nothing on the way catches it."""


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from agent import runner
    from agent.composition import build_services
    from agent.state import SceneRequest
    from reelgraph.settings import load_settings

    home, model, run_dir, flags, prompts = sys.argv[1:6]
    settings = load_settings({"model": model, **eval(flags)}, home=home, environ={}).settings
    services = build_services(settings)
    real, made = services.generator.sample_clip, []

    def sample_or_die(request, path, label="sampling", **extra):
        if len(made) == 2:  # clip 2 is made and checkpointed: the process dies as clip 3 starts
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no except, nothing
        made.append(path)
        return real(request, path, label=label, **extra)

    services.generator.sample_clip = sample_or_die
    scenes = [SceneRequest(prompt=p, num_frames=settings.num_frames) for p in eval(prompts)]
    runner.generate_scenes(settings, scenes, run_dir, services=services)
    """
)


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same arithmetic as the killed subprocess
    yield
    torch.set_num_threads(threads)


def _settings(home, model):
    return load_settings({"model": str(model), **FLAGS}, home=home, environ={}).settings


def _scenes():
    return [SceneRequest(prompt=p, num_frames=FLAGS["num_frames"]) for p in SCENES]


def _resume_and_compare(tmp_path, home, killed, model, monkeypatch):
    assert (killed / ".resume" / "checkpoints.sqlite").is_file()
    assert len(list((killed / "work").rglob("clip-000.safetensors"))) == 2
    assert not (killed / "manifest.json").exists()

    from generation.service import GenerationService

    calls = []
    real_sample = GenerationService.sample_clip

    def counting(self, request, path, label="sampling", **extra):
        calls.append(request.prompt)
        return real_sample(self, request, path, label=label, **extra)

    monkeypatch.setattr(GenerationService, "sample_clip", counting)
    result = CliRunner().invoke(cli.app, ["--home", str(home), "generate", "--resume", str(killed), "--json"])
    assert result.exit_code == 0, result.output
    assert calls == [SCENES[2]]  # clips 1 and 2 were not made again
    assert sorted(p.name for p in killed.iterdir()) == [
        "manifest.json",
        "sheet.png",
        "video.gif",
        "video.mp4",
    ]

    whole = tmp_path / "whole"
    runner.generate_scenes(_settings(home, model), _scenes(), whole)
    assert (killed / "video.gif").read_bytes() == (whole / "video.gif").read_bytes()
    resumed, uninterrupted = (json.loads((d / "manifest.json").read_text()) for d in (killed, whole))
    assert resumed["seeds"] == uninterrupted["seeds"]
    assert resumed["seeds"]["scenes"] == [21, 22, 23]
    assert [s["prompt"] for s in resumed["plan"]["scenes"]] == SCENES
    assert resumed["long_video"]["clips"] == uninterrupted["long_video"]["clips"]


def test_crashed_run_resumes_and_equals_an_uninterrupted_run(
    tmp_path, tiny_model_dir, monkeypatch, one_thread
):
    home, killed = tmp_path / "home", tmp_path / "killed"
    settings = _settings(home, tiny_model_dir)
    services = build_services(settings)
    real, made = services.generator.sample_clip, []

    def sample_or_crash(request, path, label="sampling", **extra):
        if len(made) == 2:
            raise Killed
        made.append(path)
        return real(request, path, label=label, **extra)

    services.generator.sample_clip = sample_or_crash
    with pytest.raises(Killed):
        runner.generate_scenes(settings, _scenes(), killed, services=services)
    _resume_and_compare(tmp_path, home, killed, tiny_model_dir, monkeypatch)


@pytest.mark.slow
def test_sigkilled_run_resumes_and_equals_an_uninterrupted_run(
    tmp_path, tiny_model_dir, monkeypatch, one_thread
):
    home, killed = tmp_path / "home", tmp_path / "killed"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_RUN,
            str(home),
            str(tiny_model_dir),
            str(killed),
            repr(FLAGS),
            repr(SCENES),
        ],
        capture_output=True,
        text=True,
        cwd=Path(cli.__file__).parent,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == -9, done.stderr  # SIGKILL
    _resume_and_compare(tmp_path, home, killed, tiny_model_dir, monkeypatch)


def test_user_errors_and_ctrl_c_leave_nothing_to_resume(tmp_path, tiny_model_dir):
    settings = _settings(tmp_path / "home", tiny_model_dir)
    services = build_services(settings)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    services.generator.sample_clip = interrupted
    with pytest.raises(KeyboardInterrupt):
        runner.generate_scenes(settings, _scenes(), tmp_path / "run", services=services)
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_finished_or_foreign_folder(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "manifest.json").write_text("{}")
    invoke = CliRunner().invoke
    finished = invoke(
        cli.app, ["--home", str(tmp_path / "h"), "generate", "--resume", str(tmp_path / "done")]
    )
    assert finished.exit_code == 1 and "already finished" in finished.stderr
    other = invoke(cli.app, ["--home", str(tmp_path / "h"), "generate", "--resume", str(tmp_path)])
    assert other.exit_code == 1 and "not a run that can be resumed" in other.stderr
    assert invoke(cli.app, ["generate", "a ball", "--resume", str(tmp_path)]).exit_code == 2


def test_a_long_scene_resumes_after_clip_2_of_5(tmp_path):
    """Each extension clip is its own checkpoint: killed as clip 3 of 5 starts, resume makes 3, 4 and 5."""
    from agent.graph import build_graph
    from agent.resume import resume, run_checkpointed
    from agent.services import Services
    from agent.state import RunRequest, RunState
    from tests.test_graph import FakeGenerator  # clips of 8 frames

    def request():
        scenes = [SceneRequest(prompt="a red ball rolls to the right", num_frames=24)]  # 8 + 4 new per clip
        return RunRequest(scenes=scenes, seed=3, num_inference_steps=2, guidance_scale=7.0, max_frames=100)

    class Dying(FakeGenerator):
        def __init__(self, die_at=None):
            super().__init__()
            self.die_at = die_at

        def sample_clip(self, request, latents_path, label="sampling", extension=None):
            if len(self.sampled) == self.die_at:
                raise Killed
            result = super().sample_clip(request, latents_path, label)
            if extension is not None and extension.handoff_path:
                Path(extension.handoff_path).write_text("handoff")
                result = result.model_copy(update={"handoff_path": extension.handoff_path})
            return result

    settings = load_settings({}, home=tmp_path / "home", environ={}).settings
    killed = tmp_path / "killed"
    dying = Dying(die_at=2)
    state = RunState(mode="generate", request=request(), run_dir=str(killed))
    with pytest.raises(Killed):
        run_checkpointed(Services(dying), state, settings)
    assert len(dying.sampled) == 2

    again = Dying()
    resumed = resume(killed, Services(again))
    assert [r.seed for r in again.sampled] == [r.seed for r in resumed.clips][2:]
    assert len(again.sampled) == 3 and len(resumed.clips) == 5

    whole = Dying()
    state = RunState(mode="generate", request=request(), run_dir=str(tmp_path / "whole"))
    uninterrupted = RunState.model_validate(
        build_graph(Services(whole)).invoke(state, {"recursion_limit": 99})
    )
    assert [r.seed for r in dying.sampled + again.sampled] == [r.seed for r in whole.sampled]
    assert [c.kept for c in resumed.clips] == [c.kept for c in uninterrupted.clips]
    assert resumed.scenes[0].extension.status == "done"


def test_a_run_folder_that_another_process_writes_is_refused(tmp_path):
    """Two processes on one run folder would corrupt its checkpoints: the second is refused, untouched."""
    from agent.resume import resume, run_checkpointed
    from agent.services import Services
    from agent.state import RunRequest, RunState
    from reelgraph.errors import ReelgraphError
    from reelgraph.runs import run_lock
    from tests.test_graph import FakeGenerator

    settings = load_settings({}, home=tmp_path / "home", environ={}).settings
    request = RunRequest(
        scenes=[SceneRequest(prompt="a red ball rolls to the right", num_frames=8)],
        seed=3,
        num_inference_steps=2,
        guidance_scale=7.0,
        max_frames=100,
    )
    busy = tmp_path / "busy"
    (busy / ".resume").mkdir(parents=True)
    (busy / ".resume" / "settings.json").write_text("{}")
    generator = FakeGenerator()
    with run_lock(busy):  # flock conflicts between two open handles, as between two processes
        state = RunState(mode="generate", request=request, run_dir=str(busy))
        with pytest.raises(ReelgraphError, match="Another reelgraph process is writing"):
            run_checkpointed(Services(generator), state, settings, overwrite=True)
        with pytest.raises(ReelgraphError, match="Another reelgraph process is writing"):
            resume(busy, Services(generator))
    assert generator.sampled == []
    assert (busy / ".resume" / "settings.json").read_text() == "{}"

    free = RunState(mode="generate", request=request, run_dir=str(tmp_path / "free"))
    run_checkpointed(Services(generator), free, settings)  # the lock is released when a run ends
    assert (tmp_path / "free" / "manifest.json").is_file() and len(generator.sampled) == 1
    with run_lock(tmp_path / "free"):
        pass
