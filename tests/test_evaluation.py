"""The eval command: metrics and files, ablations on shared seeds, resuming, and bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import cli
from reelgraph.errors import ReelgraphError
from toyworld.captions import prompt_set, write_prompt_file
from toyworld.evaluation import read_ablation, read_prompts

runner = CliRunner()
METRICS = {"color_acc", "shape_acc", "motion_acc", "all_acc", "fvd_toy", "temporal_consistency"}


@pytest.fixture
def prompts(tmp_path):
    return write_prompt_file(tmp_path / "prompts.jsonl", prompt_set(2, seed=4))


def test_eval_writes_metrics_rows_and_grid(tmp_path, prompts, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    out = tmp_path / "eval"
    args = [
        "eval",
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--samples",
        "2",
        "--steps",
        "2",
        "--frames",
        "4",
    ]
    result = runner.invoke(cli.app, [*args, "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= METRICS
    assert metrics["n_samples"] == 4
    assert all(0 <= metrics[k] <= 1 for k in ("color_acc", "shape_acc", "motion_acc", "all_acc"))
    assert metrics["fvd_toy"] > metrics["fvd_toy_reference"] >= 0  # random weights are far from the world
    assert metrics["diversity"] > 0
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [(r["index"], r["sample"], r["seed"]) for r in rows] == [
        (0, 0, 0),
        (0, 1, 1),
        (1, 0, 2),
        (1, 1, 3),
    ]
    assert (out / "grid.png").stat().st_size > 0

    # A second run reads the samples back instead of generating them again.
    import agent.runner

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(agent.runner, "generate", no_generation)
    again = runner.invoke(cli.app, [*args, "--model", str(tiny_model_dir)])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "metrics.json").read_text())["color_acc"] == metrics["color_acc"]


def test_ablation_runs_named_configurations_on_the_same_seeds(tmp_path, prompts, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("REELGRAPH_HOME", str(tmp_path / "home"))
    ablation = tmp_path / "ablation.yaml"
    ablation.write_text("configs:\n  two: {num_inference_steps: 2}\n  three: {num_inference_steps: 3}\n")
    out = tmp_path / "abl"
    args = [
        "eval",
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--frames",
        "4",
        "--ablation",
        str(ablation),
    ]
    result = runner.invoke(cli.app, [*args, "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    table = (out / "ablation.md").read_text()
    assert "| two |" in table and "| three |" in table
    data = json.loads((out / "ablation.json").read_text())
    assert set(data["results"]) == {"two", "three"}
    assert (out / "ablation.png").stat().st_size > 0
    for name, steps in (("two", 2), ("three", 3)):
        manifest = json.loads((out / name / "samples" / "0001-0" / "manifest.json").read_text())
        assert manifest["seeds"]["base"] == 1 and manifest["sampling"]["num_inference_steps"] == steps


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "has no prompts"),
        ('{"prompt": "x"}\n', "Line 1"),
        ('{"prompt": "x", "label": {"motion": "fly"}}\n', "Line 1"),
    ],
)
def test_bad_prompt_files(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(ReelgraphError, match=message):
        read_prompts(path)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"label": {}}\n', "prompt: Field required"),
        (
            '{"prompt": "x", "label": {"actor": {"shape": "circle", "color": "red"}, "motion": "stay", '
            '"background": null}}\n',
            "label.background: Input should be a valid string",
        ),
    ],
)
def test_a_bad_prompt_line_names_the_field_it_fails_on(tmp_path, content, field):
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(ReelgraphError) as caught:
        read_prompts(path)
    assert caught.value.why == field


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("configs: {}\n", "no configurations"),
        ("configs:\n  a: {warp_speed: 9}\n", "unknown settings"),
        ("[", "cannot be read"),
    ],
)
def test_bad_ablation_files(tmp_path, content, message):
    path = tmp_path / "a.yaml"
    path.write_text(content)
    with pytest.raises(ReelgraphError, match=message):
        read_ablation(path)
