"""`index`, `units` and `search` through the CLI: JSON shapes, repeat runs, errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import cli
from tests.memory_helpers import CAPTIONS, write_csv

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


def test_units_json():
    result = invoke("units", "a blue box is pushed by a red ball", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["core"] == 0
    assert data["units"][0] == {
        "motion": "push",
        "actor": "ball",
        "recipient": "box",
        "motion_phrase": "push",
        "actor_phrase": "ball",
        "recipient_phrase": "box",
    }


def test_index_search_stats_remove(tmp_path):
    home = str(tmp_path / "home")
    csv = write_csv(tmp_path / "c.csv", [{"videoid": f"v{i}", "name": c} for i, c in enumerate(CAPTIONS)])
    added = invoke("--home", home, "index", "add", "--csv", str(csv), "--pool", "web", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["added"] == len(CAPTIONS)
    again = json.loads(
        invoke("--home", home, "index", "add", "--csv", str(csv), "--pool", "web", "--json").stdout
    )
    assert again["added"] == 0 and again["total_in_pool"] == len(CAPTIONS)

    found = invoke("--home", home, "search", "a puppy runs across a field", "--k", "3", "--json")
    assert found.exit_code == 0, found.output
    data = json.loads(found.stdout)
    assert (
        len(data["motion_hits"]) == 3 and data["motion_hits"][0]["caption"] == "a dog runs across the field"
    )
    assert set(data["motion_hits"][0]["score"]) == {
        "total",
        "sentence",
        "motion",
        "actor",
        "recipient",
        "units",
    }
    assert len(data["references"]) == 5 and data["nearest"]["caption"]

    table = invoke("--home", home, "search", "a puppy runs across a field")
    assert table.exit_code == 0 and "motion-prior hits" in table.stdout

    stats = json.loads(invoke("--home", home, "index", "stats", "--json").stdout)
    assert stats["pools"] == {"web": len(CAPTIONS)} and stats["captions"] == len(CAPTIONS)
    removed = json.loads(invoke("--home", home, "index", "remove", "--pool", "web", "--json").stdout)
    assert removed == {"pool": "web", "removed": len(CAPTIONS), "remaining": 0}


def test_errors_are_messages(tmp_path):
    result = invoke("--home", str(tmp_path / "home"), "index", "add", "--csv", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1 and "does not exist" in result.output and "Traceback" not in result.output
    result = invoke("--home", str(tmp_path / "home"), "search", "a dog", "--chroma-url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "unreachable" in result.output
    (tmp_path / "file").write_text("x")
    result = invoke("--home", str(tmp_path / "file"), "index", "stats")
    assert result.exit_code == 1 and "not writable" in result.output


def test_plan_with_a_toy_pool_shows_units_references_and_motion_hits(tmp_path, tiny_model_dir):
    home = tmp_path / "home"
    indexed = runner.invoke(cli.app, ["--home", str(home), "index", "toy", "--n", "12", "--seed", "2"])
    assert indexed.exit_code == 0, indexed.output
    result = runner.invoke(
        cli.app,
        [
            "--home",
            str(home),
            "plan",
            "a red ball rolls to the right",
            "--model",
            str(tiny_model_dir),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    scene = json.loads(result.stdout)["scenes"][0]
    core = scene["units"]["items"][scene["units"]["core"]]
    assert (core["motion"], core["actor"]) == ("roll", "ball")
    references = scene["references"]
    assert references["status"] == "done" and "pool of 12 videos" in references["reason"]
    assert 1 <= len(references["references"]) <= 5
    assert references["motion_hits"] and references["motion_hits"][0]["video"].endswith(".mp4")
    assert references["nearest"]["caption"]
