"""`index invert` and `npnet train` through the CLI, on a tiny model and a rendered toy pool."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import cli
from generation.npnet import npnet_metadata

runner = CliRunner()


def test_index_invert_resumes_and_npnet_trains_on_the_cache(tiny_model_dir, tmp_path):
    home = str(tmp_path / "home")

    def invoke(*args):
        result = runner.invoke(cli.app, ["--home", home, *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    invoke("index", "toy", "--n", "4", "--json")
    model = ["--model", str(tiny_model_dir), "--steps", "3"]
    first = invoke("index", "invert", *model, "--limit", "3", "--batch", "2", "--json")
    assert first["inverted"] == 3 and first["cached"] == 0 and first["videos"] == 3
    second = invoke("index", "invert", *model, "--batch", "2", "--json")
    assert second["inverted"] == 1 and second["cached"] == 3  # resumed: only the new video
    files = list((tmp_path / "home" / "cache" / "inversions").rglob("*.safetensors"))
    assert len(files) == 4 and all("s3-f" in str(f.parent.name) for f in files)

    # plan: ONA picks the pool video whose caption is the prompt, and knows its inversion is cached.
    from memory.store import MemoryStore

    record = next(r for page, _ in MemoryStore(home).iter_all() for r in page)
    plan = invoke("plan", record.caption, *model, "--json")
    noise = plan["scenes"][0]["noise"]
    assert noise["source"] == "ona" and noise["video_id"] == record.id and noise["cache"] == "hit"
    assert noise["similarity"] > 0.99 and "ONA: nearest pool video" in noise["reason"]
    assert plan["scenes"][0]["rewrite"]["status"] in {"done", "skipped"}

    out = tmp_path / "np.safetensors"
    report = invoke("npnet", "train", *model, "--max-steps", "3", "--out", str(out), "--json")
    assert report["pairs"] == 4 and report["steps"] == 3 and out.is_file()
    meta = npnet_metadata(out)
    assert meta["num_steps"] == 3 and meta["model_hash"] and meta["report"]["val_pairs"] == 1


def test_npnet_train_without_inversions_is_a_clear_error(tiny_model_dir, tmp_path):
    result = runner.invoke(
        cli.app, ["--home", str(tmp_path), "npnet", "train", "--model", str(tiny_model_dir)]
    )
    assert result.exit_code == 1 and "no videos" in result.output.lower()
