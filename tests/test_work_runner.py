"""The work runner's in-process engine and the batch file: order, bounded retries, reasons, bad input.

The Ray engine runs the same :class:`_Worker`; ``tests/test_scaleout_ray.py`` holds it to equal results.
"""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

import cli
from reelgraph.errors import ReelgraphError
from reelgraph.settings import load_settings
from reelgraph.work_runner import InProcessRunner, RayRunner, runner_from_settings


def flaky(state, item):
    """Fails the first ``item["fails"]`` tries of an item (state counts tries per item)."""
    state[item["n"]] = state.get(item["n"], 0) + 1
    if item.get("bad"):
        raise ReelgraphError(f"item {item['n']} is bad input")
    if state[item["n"]] <= item.get("fails", 0):
        raise RuntimeError(f"try {state[item['n']]} of {item['n']} broke")
    return item["n"] * 10


def test_in_process_runs_in_order_retries_a_bounded_number_of_times_and_reports_the_reason():
    setups = []

    def setup():
        setups.append(1)
        return {}

    items = [{"n": 0}, {"n": 1, "fails": 2}, {"n": 2, "fails": 5}, {"n": 3, "bad": True}, {"n": 4}]
    outcomes = list(InProcessRunner(retries=2).map(flaky, items, setup=setup))
    assert setups == [1]  # one setup (a model load) for every item
    assert [o.index for o in outcomes] == [0, 1, 2, 3, 4]
    assert [(o.ok, o.value, o.attempts) for o in outcomes] == [
        (True, 0, 1),
        (True, 10, 3),  # two failures, then the third try worked
        (False, None, 3),  # still failing after 1 + 2 tries: reported, not dropped
        (False, None, 1),  # bad input is not retried
        (True, 40, 1),
    ]
    assert outcomes[2].error.startswith("RuntimeError: try 3 of 2 broke (test_work_runner.py:")
    assert outcomes[3].error == "item 3 is bad input"


def test_work_threads_hold_during_the_items_and_are_restored():
    import torch

    before = torch.get_num_threads()
    seen = list(InProcessRunner(threads=1).map(lambda state, item: torch.get_num_threads(), [0, 1]))
    assert [o.value for o in seen] == [1, 1] and torch.get_num_threads() == before


def test_the_settings_choose_the_engine_and_a_missing_ray_is_a_clear_error(tmp_path, monkeypatch):
    settings = load_settings({}, home=tmp_path).settings
    assert isinstance(runner_from_settings(settings), InProcessRunner)
    monkeypatch.setenv("REELGRAPH_RAY_ADDRESS", "127.0.0.1:1")
    assert load_settings({}, home=tmp_path).settings.ray_address == "127.0.0.1:1"
    from reelgraph.commands.doctor import run_checks

    check = next(c for c in run_checks(load_settings({}, home=tmp_path).settings) if c.name == "work runner")
    assert check.status == "ok" and "Ray at 127.0.0.1:1" in check.detail and "ray 2.60.0" in check.detail
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ReelgraphError, match=r"(?s)Ray is not installed.*reelgraph\[ray\]"):
        runner_from_settings(settings.model_copy(update={"ray": True}))
    with pytest.raises(ReelgraphError, match="Ray is not installed"):
        RayRunner()
    result = CliRunner().invoke(
        cli.app,
        ["--home", str(tmp_path), "--ray", "batch", str(tmp_path / "x.jsonl"), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 1 and "Batch file" in result.output  # the file is read before any cluster


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "has no requests"),
        (["{not json"], "Line 1 .* is not a batch request"),
        (['{"seed": 1}'], "exactly one of prompt, storyboard or scenes"),
        (['{"prompt": "a", "storyboard": "s.yaml"}'], "exactly one of"),
        (['{"prompt": "  "}'], "the prompt is empty"),
        (['{"prompt": "a", "colour": "red"}'], "Extra inputs"),
        (['{"prompt": "a", "seed": -1}'], "greater than or equal to 0"),
        (['{"prompt": "a", "name": "../up"}'], "plain folder name"),
        (['{"prompt": "a", "overrides": {"stepz": 3}}'], r"unknown settings: \['stepz'\]"),
        (['{"prompt": "a", "overrides": {"num_inference_steps": 0}}'], "invalid settings"),
        (['{"prompt": "a", "name": "x"}', '{"prompt": "b", "name": "x"}'], "repeats the name 'x'"),
        (['{"storyboard": "missing.yaml"}'], "does not exist"),
        (['{"scenes": []}'], "has no scenes"),
    ],
)
def test_bad_batch_files_are_refused_by_line(tmp_path, lines, message):
    from agent.batch import read_batch

    path = tmp_path / "batch.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(ReelgraphError, match=message):
        read_batch(path, load_settings({}, home=tmp_path).settings, tmp_path / "out")


def test_batch_seeds_names_and_scenes(tmp_path):
    from agent.batch import read_batch

    path = tmp_path / "batch.jsonl"
    lines = [
        {"prompt": "a  red ball"},
        {"scenes": ["a ball rolls", {"prompt": "it bounces", "frames": 8}], "seed": 7, "name": "two"},
        {"prompt": "c", "overrides": {"num_inference_steps": 3}},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    jobs = read_batch(path, load_settings({"seed": 100}, home=tmp_path).settings, tmp_path / "out")
    assert [(j.name, j.settings.seed, j.prompt) for j in jobs] == [
        ("0000", 100, "a red ball"),
        ("two", 7, None),
        ("0002", 102, "c"),
    ]
    assert [s.prompt for s in jobs[1].scenes] == ["a ball rolls", "it bounces"] and jobs[1].scenes[
        1
    ].num_frames == 8
    assert jobs[2].settings.num_inference_steps == 3 and jobs[0].settings.num_inference_steps == 25
    assert jobs[1].run_dir == tmp_path / "out" / "two"
