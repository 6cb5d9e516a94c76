"""Ray runs equal in-process runs: eval ablations, batch files, ingest and inversion, a killed worker.

One local cluster for the module (``ray.init`` costs seconds), two CPUs, no dashboard; shut down with
``ray.shutdown()``. Every comparison runs the same inputs and seeds twice, in separate data
directories (so no cache is shared), once in process and once on Ray.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from toyworld.captions import prompt_set, write_prompt_file

invoker = CliRunner()


@pytest.fixture(scope="module")
def cluster():
    import ray

    from reelgraph.work_runner import local_cluster_options

    ray.init(**local_cluster_options(num_cpus=2))
    yield ray
    ray.shutdown()


def _invoke(*args: str) -> str:
    result = invoker.invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _videos(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("video.mp4"))}


def test_eval_ablation_on_ray_equals_in_process(cluster, tmp_path, tiny_model_dir):
    prompts = write_prompt_file(tmp_path / "prompts.jsonl", prompt_set(2, seed=4))
    ablation = tmp_path / "ablation.yaml"
    ablation.write_text("configs:\n  two: {num_inference_steps: 2}\n  three: {num_inference_steps: 3}\n")
    common = ["--prompts", str(prompts), "--frames", "4", "--samples", "1", "--ablation", str(ablation)]
    model = ["--model", str(tiny_model_dir)]
    _invoke("--home", str(tmp_path / "home-a"), "eval", *common, "--out", str(tmp_path / "a"), *model)
    _invoke(
        "--home", str(tmp_path / "home-b"), "--ray", "eval", *common, "--out", str(tmp_path / "b"), *model
    )
    for name in ("two", "three"):
        a, b = (tmp_path / side / name / "metrics.json" for side in ("a", "b"))
        assert a.read_bytes() == b.read_bytes()  # number for number
    assert (tmp_path / "a" / "ablation.json").read_bytes() == (tmp_path / "b" / "ablation.json").read_bytes()
    videos = _videos(tmp_path / "a")
    assert len(videos) == 4 and videos == _videos(tmp_path / "b")  # byte for byte
