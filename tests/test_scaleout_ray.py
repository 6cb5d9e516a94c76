"""Ray runs equal in-process runs: eval ablations, batch files, ingest and inversion, a killed worker.

One local cluster for the module (``ray.init`` costs seconds), two CPUs, no dashboard; shut down with
``ray.shutdown()``. Every comparison runs the same inputs and seeds twice, in separate data
directories (so no cache is shared), once in process and once on Ray.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from toyworld.captions import prompt_set, write_prompt_file

invoker = CliRunner()
pytestmark = pytest.mark.slow  # a Ray cluster and models; still part of `make test`


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


def _store_dump(home: Path) -> tuple[list, list, dict]:
    """Every record (its metadata), its sentence vector and every phrase vector, by id."""
    from memory.store import MemoryStore

    store = MemoryStore(home)
    pages = sorted(
        (
            (r.id, r.model_dump(), v.tolist())
            for records, vectors in store.iter_all()
            for r, v in zip(records, vectors, strict=True)
        ),
        key=lambda row: row[0],
    )
    phrases = sorted(
        {p for _, record, _ in pages for unit in record["units"] for p in unit.values() if isinstance(p, str)}
    )
    return (
        [r for _, r, _ in pages],
        [v for _, _, v in pages],
        {p: v.tolist() for p, v in store.phrase_vectors(phrases).items()},
    )


def test_ingest_and_invert_on_ray_equal_in_process(cluster, tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    model = ["--model", str(tiny_model_dir), "--steps", "2"]
    for side, ray in (("a", []), ("b", ["--ray"])):
        home = ["--home", str(tmp_path / side)]
        # the same rendered pool for both (the render folder is named by n and seed)
        _invoke(*home, *ray, "index", "toy", "--n", "5", "--batch", "2", "--json")
        again = json.loads(_invoke(*home, *ray, "index", "toy", "--n", "5", "--batch", "2", "--json"))
        assert again["added"] == 0  # idempotent on both engines
        inverted = json.loads(_invoke(*home, *ray, "index", "invert", *model, "--batch", "2", "--json"))
        assert (inverted["inverted"], inverted["failed"]) == (5, 0)
    records_a, vectors_a, phrases_a = _store_dump(tmp_path / "a")
    records_b, vectors_b, phrases_b = _store_dump(tmp_path / "b")
    for record in records_a + records_b:
        record["video"] = Path(record["video"]).name  # each home renders its own copy of the pool
    assert len(records_a) == 5 and records_a == records_b
    assert vectors_a == vectors_b and phrases_a == phrases_b and phrases_a  # number for number
    files = {side: sorted((tmp_path / side / "cache" / "inversions").rglob("*.safetensors")) for side in "ab"}
    assert len(files["a"]) == 5 and [f.name for f in files["a"]] == [f.name for f in files["b"]]
    for a, b in zip(files["a"], files["b"], strict=True):
        ta, tb = load_file(a), load_file(b)
        assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def test_batch_on_ray_with_a_killed_worker_equals_in_process(cluster, tmp_path, tiny_model_dir):
    from agent.batch import read_batch, run_batch
    from reelgraph.settings import load_settings
    from reelgraph.work_runner import RayRunner
    from tests.ray_helpers import FaultyRunner

    (tmp_path / "story.yaml").write_text(
        "scenes:\n  - {prompt: a red ball rolls, frames: 4}\n  - {prompt: the red ball bounces, frames: 4}\n"
    )
    requests = [
        {"prompt": "a red ball rolls to the right", "seed": 3},
        {"storyboard": "story.yaml", "seed": 4, "name": "story"},
        {"prompt": "a blue square jumps", "overrides": {"num_inference_steps": 3}},
        {"prompt": "a green circle", "overrides": {"max_video_frames": 2}, "name": "too-long"},  # asks for 4
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(r) + "\n" for r in requests))
    flags = {"model": str(tiny_model_dir), "num_inference_steps": 2, "num_frames": 4, "seed": 10}

    def run(side: str, runner=None) -> dict:
        settings = load_settings(flags, home=tmp_path / f"home-{side}").settings
        jobs = read_batch(batch, settings, tmp_path / side)
        return run_batch(jobs, settings, tmp_path / side, runner=runner)

    in_process = run("a")
    marker = tmp_path / "killed.pid"
    on_ray = run("b", FaultyRunner(RayRunner(workers=2, retries=2), victim="story", marker=marker))
    # The worker that took "story" killed itself (by its own pid); the item was retried on a new one.
    pid = int(marker.read_text())
    assert pid != os.getpid() and not Path(f"/proc/{pid}").exists()
    for summary in (in_process, on_ray):
        assert (summary["done"], summary["skipped"], summary["failed"]) == (3, 0, 1)
        failed = next(e for e in summary["items"] if e["status"] == "failed")
        assert (
            failed["name"] == "too-long" and failed["attempts"] == 1 and "the limit is 2" in failed["reason"]
        )
        assert [e["seed"] for e in summary["items"]] == [3, 4, 12, 13]  # explicit, or base seed + index
    story = {e["name"]: e for e in on_ray["items"]}["story"]
    assert story["attempts"] == 2 and story["status"] == "done"
    videos = _videos(tmp_path / "a")
    assert set(videos) == {"0000/video.mp4", "story/video.mp4", "0002/video.mp4"}
    assert videos == _videos(tmp_path / "b")  # byte for byte, the retried storyboard included
    # A rerun skips what is done and tries the failed request again.
    rerun = run("b", RayRunner(workers=2, retries=2))
    assert (rerun["done"], rerun["skipped"], rerun["failed"]) == (0, 3, 1)
    assert json.loads((tmp_path / "b" / "summary.json").read_text()) == rerun


def test_ray_address_joins_a_running_cluster(cluster, tmp_path):
    """``--ray-address`` in another process joins the module's cluster (by its GCS address) and ingests there."""
    import subprocess
    import sys

    address = cluster.get_runtime_context().gcs_address
    command = [sys.executable, "cli.py", "--home", str(tmp_path), "--ray-address", address]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [*command, "index", "toy", "--n", "3", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["added"] == 3
    doctor = subprocess.run(
        [*command, "doctor", "--json"], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    check = next(c for c in json.loads(doctor.stdout) if c["name"] == "work runner")
    assert check["status"] == "ok" and f"Ray at {address}" in check["detail"]
