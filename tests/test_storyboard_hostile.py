"""Hostile storyboards: alias bombs and over-long videos are refused fast, before --out is touched."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

import agent.resume
import cli
from agent.storyboard import parse_storyboard
from reelgraph.errors import ReelgraphError


def _billion_laughs(levels: int = 9) -> str:
    """Nine lists of nine references to the list before: 9**9 strings once expanded, under frames:."""
    lists = ["&l0 [" + ", ".join(['"lol"'] * 9) + "]"]
    lists += [f"&l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "scenes:\n  - prompt: a ball\n    frames: [" + ", ".join(lists) + "]\n"


ALIASES = {
    "bomb": _billion_laughs(),
    "one_alias": "scenes:\n  - &s {prompt: a red ball, frames: 4}\n  - *s\n",
    "merge_key": "scenes:\n  - &b {frames: 4, prompt: a cat}\n  - {<<: *b, prompt: a ball}\n",
}


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_any_yaml_alias_is_refused_fast(tmp_path, name):
    story = tmp_path / "story.yaml"
    story.write_text(ALIASES[name])
    started = time.monotonic()
    with pytest.raises(ReelgraphError, match="uses a YAML alias"):
        parse_storyboard(story)
    assert time.monotonic() - started < 2


def test_deeply_nested_storyboards_are_a_clear_error(tmp_path):
    for suffix, text in ((".json", "[" * 100_000 + "]" * 100_000), (".yaml", "[" * 100_000 + "]" * 100_000)):
        story = tmp_path / f"deep{suffix}"
        story.write_text(text)
        with pytest.raises(ReelgraphError, match=r"nested too deeply|not valid"):
            parse_storyboard(story)


@pytest.fixture
def no_run_folder(monkeypatch):
    """Fails the test if a run folder is prepared (the first thing written into --out)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the run folder was prepared: the length check came too late")

    monkeypatch.setattr(agent.resume, "prepare_run_dir", refuse)


@pytest.mark.parametrize(
    "suffix, text",
    [
        (".txt", "".join(f"scene {n}: a red ball rolls\n" for n in range(300))),  # 300 x the 4-frame clip
        (".yaml", "scenes:\n" + "".join(f"  - a ball number {n}\n" for n in range(300))),
        (".yaml", "scenes:\n  - {prompt: a ball, frames: 1000}\n" + "  - the ball stops\n" * 7),
    ],
)
def test_a_storyboard_over_the_frame_limit_is_refused_before_out_is_written(
    tmp_path, short_clip_model_dir, no_run_folder, suffix, text
):
    story = tmp_path / f"story{suffix}"
    story.write_text(text)
    out = tmp_path / "out"
    done = CliRunner().invoke(
        cli.app,
        [
            "--home",
            str(tmp_path / "h"),
            "storyboard",
            str(story),
            "--out",
            str(out),
            "--model",
            str(short_clip_model_dir),
        ],
    )
    assert done.exit_code == 1, done.output
    assert "the limit is 1024" in done.stderr and "Traceback" not in done.output
    assert not out.exists()


def test_plan_counts_the_default_clip_length_too(tmp_path, short_clip_model_dir, no_run_folder):
    done = CliRunner().invoke(
        cli.app,
        ["--home", str(tmp_path), "plan", "a ball. then it stops. then it rolls.", "--story",
         "--model", str(short_clip_model_dir)],
        env={"REELGRAPH_MAX_VIDEO_FRAMES": "5"},
    )  # fmt: skip
    assert done.exit_code == 1 and "the limit is 5" in done.stderr, done.output
