"""The command line through Typer's CliRunner: outputs, JSON shapes and every error case."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli

runner = CliRunner()
PROMPT = "a red ball rolls to the right"


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("REELGRAPH_HOME", str(home))
    return home


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


def generate_args(model_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "generate",
        PROMPT,
        "--model",
        str(model_dir),
        "--out",
        str(out),
        "--steps",
        "3",
        "--frames",
        "4",
        *extra,
    ]


def test_generate_writes_four_files_and_json(home, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    result = invoke(*generate_args(tiny_model_dir, out, "--seed", "11", "--json"))
    assert result.exit_code == 0, result.output
    paths = json.loads(result.stdout)
    assert set(paths) == {"video", "gif", "sheet", "manifest"}
    for path in paths.values():
        assert Path(path).is_file() and Path(path).stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "sheet.png", "video.gif", "video.mp4"]

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["prompt"] == PROMPT
    assert manifest["seeds"]["base"] == 11
    assert manifest["sampling"]["num_inference_steps"] == 3
    assert manifest["sampling"]["num_frames"] == 4
    assert manifest["model"]["weights_hash"]
    assert manifest["scheduler"]["_class_name"] == "DDIMScheduler"
    assert manifest["versions"]["torch"]
    assert {"understand_request", "sample", "finalize"} <= set(manifest["timings"])
    assert manifest["plan"]["scenes"][0]["sampling"]["status"] == "done"


def test_same_seed_same_video(home, tiny_model_dir, tmp_path):
    from reelgraph.media import read_video

    for name in ("a", "b"):
        assert invoke(*generate_args(tiny_model_dir, tmp_path / name, "--seed", "3")).exit_code == 0
    assert (read_video(tmp_path / "a" / "video.mp4") == read_video(tmp_path / "b" / "video.mp4")).all()


def test_existing_run_folder_is_not_overwritten(home, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    assert invoke(*generate_args(tiny_model_dir, out, "--seed", "1")).exit_code == 0
    before = (out / "manifest.json").read_bytes()
    result = invoke(*generate_args(tiny_model_dir, out, "--seed", "2"))
    assert result.exit_code == 1
    assert "already holds files" in result.stderr and "--overwrite" in result.stderr
    assert (out / "manifest.json").read_bytes() == before
    assert invoke(*generate_args(tiny_model_dir, out, "--seed", "2", "--overwrite")).exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["seeds"]["base"] == 2


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt(home, tiny_model_dir, tmp_path, prompt):
    result = invoke("generate", prompt, "--model", str(tiny_model_dir), "--out", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert "prompt is empty" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_long_prompt_is_truncated_with_a_warning(home, tiny_model_dir, tmp_path):
    long_prompt = "a red ball rolls to the right " * 5
    result = invoke(
        "generate",
        long_prompt,
        "--model",
        str(tiny_model_dir),
        "--out",
        str(tmp_path / "r"),
        "--steps",
        "2",
        "--frames",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert "longer than the text encoder's 16 tokens" in result.stderr
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert any("cut off" in warning for warning in manifest["warnings"])


@pytest.mark.parametrize(
    ("model", "message"),
    [("no/such-model", "was not found"), ("./missing-folder", "neither a folder nor a hub id")],
)
def test_unknown_model(home, tmp_path, model, message):
    result = invoke("generate", PROMPT, "--model", model, "--out", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_folder_that_is_not_a_model(home, tmp_path):
    (tmp_path / "notamodel").mkdir()
    result = invoke("plan", PROMPT, "--model", str(tmp_path / "notamodel"))
    assert result.exit_code == 1
    assert "model_index.json" in result.stderr


@pytest.mark.parametrize("frames", ["1"])  # more than a clip is a long video (tests/test_long_video.py)
def test_frame_count_the_model_cannot_do(home, tiny_model_dir, tmp_path, frames):
    result = invoke(
        "generate", PROMPT, "--model", str(tiny_model_dir), "--frames", frames, "--out", str(tmp_path / "r")
    )
    assert result.exit_code == 1
    assert "cannot be made in one clip" in result.stderr and "2 or more" in result.stderr
    assert not (tmp_path / "r").exists()


def test_unwritable_output_folder(home, tiny_model_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke(*generate_args(tiny_model_dir, blocker / "run"))
    assert result.exit_code == 1
    assert "not writable" in result.stderr
    assert "Traceback" not in result.output


def test_interrupt_during_sampling_leaves_nothing(home, tiny_model_dir, tmp_path, monkeypatch):
    def interrupt(self, label, completed, total):
        if completed == 2:
            raise KeyboardInterrupt

    from reelgraph.commands.progress import ProgressBars

    monkeypatch.setattr(ProgressBars, "update", interrupt)
    out = tmp_path / "run"
    result = invoke(*generate_args(tiny_model_dir, out))
    assert result.exit_code == 130
    assert "Interrupted" in result.stderr
    assert not out.exists()


def test_interrupt_while_writing_keeps_an_earlier_run_intact(home, tiny_model_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert invoke(*generate_args(tiny_model_dir, out, "--seed", "1")).exit_code == 0
    (out / "notes.txt").write_text("mine")

    from generation.service import GenerationService

    real_write = GenerationService.write_outputs

    def write_then_interrupt(self, paths, run_dir, caption):
        real_write(self, paths, run_dir, caption)
        raise KeyboardInterrupt

    monkeypatch.setattr(GenerationService, "write_outputs", write_then_interrupt)
    result = invoke(*generate_args(tiny_model_dir, out, "--seed", "2", "--overwrite"))
    assert result.exit_code == 130
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert not list(out.rglob("*.tmp*"))


def test_debug_shows_the_traceback(home, tmp_path):
    result = runner.invoke(cli.app, ["--debug", "plan", PROMPT, "--model", "no/such-model"])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "ReelgraphError"


def test_usage_errors_exit_2(home):
    assert invoke("generate").exit_code == 2
    assert invoke("generate", PROMPT, "--steps", "0").exit_code == 2
    assert invoke("no-such-command").exit_code == 2


def test_plan_json_shape(home, tiny_model_dir):
    result = invoke("plan", PROMPT, "--model", str(tiny_model_dir), "--json", "--seed", "5")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert set(plan) == {"scenes", "estimates", "policy"}
    assert {"seconds", "peak_memory_gb"} <= set(plan["estimates"])
    (scene,) = plan["scenes"]
    assert set(scene) == {
        "prompt",
        "units",
        "references",
        "rewrite",
        "noise",
        "tuning",
        "sampling",
        "extension",
    }
    for tool in ("units", "references", "rewrite", "noise", "tuning", "sampling", "extension"):
        assert scene[tool]["status"] in {"done", "planned", "skipped"}
        assert scene[tool]["reason"]
    assert scene["sampling"]["status"] == "planned" and scene["sampling"]["seed"] == 5


def test_plan_loads_no_diffusion_model(tiny_model_dir, tmp_path):
    """In a fresh process: after `plan`, no diffusers code (let alone weights) has been imported.

    torch itself may load: spaCy's thinc imports it, and MiniLM runs on it."""
    code = (
        "import sys, cli\n"
        "from typer.testing import CliRunner\n"
        f"r = CliRunner().invoke(cli.app, ['--home', {str(tmp_path)!r}, 'plan', 'a ball', '--model', {str(tiny_model_dir)!r}, '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('diffusers', 'generation.loaders', 'generation.backend') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(cli.__file__).parent
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_doctor_reports_each_check(home, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("REELGRAPH_MODEL", str(tiny_model_dir))
    result = invoke("doctor", "--json")
    assert result.exit_code == 0, result.output
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert {"packages", "device", "model", "data dir", "chroma"} <= set(checks)
    assert checks["model"]["status"] == "ok" and "UNet3DConditionModel" in checks["model"]["detail"]
    assert checks["data dir"]["status"] == "ok"
    families = checks["model families"]["detail"]
    assert "Wan 2.1 (flow)" in families and "UNet3D text-to-video (ddim)" in families
    assert families.index("recognised, not sampled") < families.index("LTX-Video")


def test_doctor_reports_a_bad_model_as_a_row(home, monkeypatch):
    monkeypatch.setenv("REELGRAPH_MODEL", "no/such-model")
    result = invoke("doctor", "--json")
    assert result.exit_code == 0
    checks = {check["name"]: check for check in json.loads(result.stdout)}
    assert checks["model"]["status"] == "fail" and "not found" in checks["model"]["detail"]


def test_config_show_reports_sources(home, tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('num_inference_steps = 40\nmodel = "from-file"\n')
    monkeypatch.setenv("REELGRAPH_MODEL", "from-env")
    result = runner.invoke(cli.app, ["--config", str(config), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["num_inference_steps"] == {"value": 40, "source": "config"}
    assert shown["model"] == {"value": "from-env", "source": "env"}
    assert shown["eta"]["source"] == "default"
    assert shown["home"] == {"value": str(home), "source": "env"}


def test_toy_render_then_probe(tmp_path):
    from toyworld.dataset import read_pool

    pool = tmp_path / "pool"
    result = invoke("toy", "render", "--n", "2", "--out", str(pool), "--seed", "3")
    assert result.exit_code == 0, result.output
    rows = read_pool(pool)
    assert len(rows) == 2
    for row in rows:
        probed = invoke("probe", str(row["path"]), "--json")
        assert probed.exit_code == 0, probed.output
        seen, expected = json.loads(probed.stdout)["label"], row["label"]
        assert (seen["motion"], seen["actor"]["color"]) == (expected.motion, expected.actor.color)


def test_probe_of_a_missing_file(tmp_path):
    result = invoke("probe", str(tmp_path / "nope.mp4"))
    assert result.exit_code == 1 and "does not exist" in result.stderr
