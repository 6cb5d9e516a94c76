"""The web UI without a browser: who may reach it, what it serves, uploads, the plan table, and
chat sessions shared with the terminal (the browser flows are in test_webui_browser.py)."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import cli
from agent.chat import open_session
from reelgraph.errors import ReelgraphError
from reelgraph.settings import load_settings
from tests.test_agent_chat import FakeChat
from webui import safety
from webui.views import plan_rows, plan_summary, settings_rows

pytest.importorskip("gradio", reason="the ui extra is not installed")


def _status(url: str, opener=None) -> int:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_another_host_without_auth_is_refused_before_anything_loads(tmp_path):
    result = CliRunner().invoke(cli.app, ["--home", str(tmp_path), "ui", "--host", "0.0.0.0"])
    assert result.exit_code == 1, result.output
    assert "Refusing to serve the UI on '0.0.0.0' without a password" in result.output
    assert "--auth USER:PASSWORD" in result.output and "Traceback" not in result.output
    bad = CliRunner().invoke(
        cli.app, ["--home", str(tmp_path), "ui", "--host", "0.0.0.0", "--auth", "nocolon"]
    )
    assert bad.exit_code == 1 and "needs a user name and a password" in bad.output


def test_read_auth_takes_user_password_or_a_file(tmp_path):
    assert safety.read_auth("ann:s3cr:et") == ("ann", "s3cr:et")
    secret = tmp_path / "auth.txt"
    secret.write_text("bob:hunter2\n")
    assert safety.read_auth(str(secret)) == ("bob", "hunter2")
    for bad in ("ann:", ":pw", "plain"):
        with pytest.raises(ReelgraphError, match="user name and a password"):
            safety.read_auth(bad)
    safety.check_exposure("127.0.0.1", None)
    safety.check_exposure("0.0.0.0", ("a", "b"))


@pytest.mark.slow
def test_with_auth_an_unauthenticated_request_is_refused_and_only_runs_and_uploads_are_served(tmp_path):
    from tests.ui_server import ui_server

    (tmp_path / "config.toml").write_text('negative_prompt = "blurry"\n')
    runs = tmp_path / "runs"
    (runs / "r1").mkdir(parents=True)
    (runs / "r1" / "manifest.json").write_text("{}")
    args = ["--host", "0.0.0.0", "--auth", "ann:pw1", "--share-dir", str(runs)]
    with ui_server(tmp_path, *args) as url:
        assert _status(url + "/config") == 401  # the app's description, before any login
        assert _status(url + "/gradio_api/info") == 401
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        wrong = urllib.parse.urlencode({"username": "ann", "password": "nope"}).encode()
        assert _status_post(opener, url + "/login", wrong) == 400
        right = urllib.parse.urlencode({"username": "ann", "password": "pw1"}).encode()
        assert _status_post(opener, url + "/login", right) == 200
        assert _status(url + "/config", opener) == 200
        served = url + "/gradio_api/file="
        assert _status(served + str(runs / "r1" / "manifest.json"), opener) == 200
        for refused in ("/etc/passwd", str(tmp_path / "config.toml"), str(tmp_path / "ui.log")):
            assert _status(served + refused, opener) == 403, refused


def _status_post(opener, url: str, body: bytes) -> int:
    try:
        with opener.open(urllib.request.Request(url, data=body, method="POST"), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_uploads_are_type_and_size_checked_and_kept_by_content(tmp_path, monkeypatch):
    uploads = tmp_path / "uploads"
    good = tmp_path / "first.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(good)
    kept = safety.check_image_upload(good, uploads)
    assert kept.parent == uploads and kept.read_bytes() == good.read_bytes()
    assert safety.check_image_upload(good, uploads) == kept  # the same image again: the same file
    script = tmp_path / "run.sh"
    script.write_text("echo hi")
    with pytest.raises(ReelgraphError, match="is not an image file"):
        safety.check_image_upload(script, uploads)
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not a png at all")
    with pytest.raises(ReelgraphError, match="cannot be read as an image"):
        safety.check_image_upload(fake, uploads)
    monkeypatch.setattr(safety, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(ReelgraphError, match="images are limited to"):
        safety.check_image_upload(good, uploads)
    monkeypatch.setattr(safety, "MAX_UPLOAD_BYTES", 2**20)
    monkeypatch.setattr(safety, "MAX_UPLOAD_PIXELS", 63)
    with pytest.raises(ReelgraphError, match="8x8 pixels"):
        safety.check_image_upload(good, uploads)


def test_the_plan_table_shows_each_tool_with_its_references_noise_and_estimates():
    view = {
        "scenes": [
            {
                "prompt": "a red ball rolls",
                "references": {
                    "status": "done",
                    "reason": "3 references",
                    "references": [{"caption": "a red ball rolls left", "similarity": 0.91}],
                },
                "noise": {
                    "status": "done",
                    "reason": "ONA",
                    "source": "ona",
                    "caption": "a ball",
                    "similarity": 0.85,
                },
                "sampling": {"status": "planned", "reason": "DDIM", "seed": 3, "estimated_seconds": 2.5},
                "tuning": {"status": "skipped", "reason": "not rare", "rule": "kept off: not rare"},
            }
        ],
        "estimates": {"seconds": 2.5, "peak_memory_gb": 0.2, "device": "cpu"},
    }
    rows = {row[1]: row for row in plan_rows(view)}
    assert rows["references"][5] == "'a red ball rolls left' (0.91)"
    assert rows["noise"][5] == "source ona, video 'a ball' (0.85)"
    assert rows["sampling"][2:4] == ["planned", "DDIM"] and "estimated seconds 2.5" in rows["sampling"][5]
    assert rows["tuning"][4] == "kept off: not rare"
    summary = plan_summary(view)
    assert "**Scene 1:** a red ball rolls" in summary and "2.5 s, peak memory 0.2 GB on cpu" in summary


def test_the_settings_panel_shows_value_default_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("REELGRAPH_NUM_INFERENCE_STEPS", "7")
    loaded = load_settings({"seed": 5}, home=tmp_path)
    defaults = {name: field.default for name, field in type(loaded.settings).model_fields.items()}
    rows = {row[0]: row for row in settings_rows(loaded.settings.model_dump(), defaults, loaded.sources)}
    assert rows["num_inference_steps"] == ["num_inference_steps", "7", "25", "env"]
    assert rows["seed"] == ["seed", "5", "null", "cli"]
    assert rows["model"][1:] == ['"toy"', '"toy"', "default"]


def test_a_plan_waits_in_the_session_store_for_the_answer_from_another_process(tmp_path):
    """propose / answer: the UI's Generate button answers a plan the store keeps, as the terminal would."""
    fake = FakeChat(tmp_path)
    with open_session(tmp_path / "home", "s", fake.services()) as chat:
        reply = chat.propose("a red ball rolls to the right")
        assert reply.asked and chat.waiting() and fake.generated == []
    with open_session(tmp_path / "home", "s", fake.services()) as chat:  # a new process, the same store
        assert chat.waiting()
        done = chat.answer(True)
        assert done.state.outputs is not None and len(fake.generated) == 1 and not chat.waiting()
        with pytest.raises(ReelgraphError, match="No plan waits"):
            chat.answer(True)
        chat.propose("a green cube spins")  # planned, never generated ...
        edited = chat.propose("now the cube is yellow")  # ... and the next message edits it
        assert edited.asked and edited.state.turn.number == 3
        assert chat.answer(True).state.plan["scenes"][0]["prompt"] == "a yellow cube spins"


@pytest.mark.slow
def test_a_terminal_session_continues_in_the_ui_backend_and_back(tmp_path, tiny_model_dir):
    from webui.backend import UiBackend

    home, runs = tmp_path / "home", tmp_path / "runs"
    common = ["--model", str(tiny_model_dir), "--steps", "2", "--frames", "4", "--out", str(runs)]
    first = CliRunner().invoke(
        cli.app,
        [
            "--home",
            str(home),
            "chat",
            "--session",
            "s",
            "--yes",
            "-m",
            "a red ball rolls to the right",
            *common,
        ],
    )
    assert first.exit_code == 0, first.output

    loaded = load_settings(
        {"model": str(tiny_model_dir), "num_inference_steps": 2, "num_frames": 4, "output_dir": runs},
        home=home,
    )
    backend = UiBackend(loaded)
    try:
        assert [turn.message for turn in backend.chat_state("s").turns] == ["a red ball rolls to the right"]
        planned = backend.send("s", "now the ball is blue", {})
        assert planned.asked and planned.state.plan["scenes"][0]["prompt"] == "a blue ball rolls to the right"
        steps = []
        made = backend.generate_chat("s", {}, lambda label, done, total: steps.append((done, total)))
        assert made.state.outputs and steps[-1] == (2, 2)
    finally:
        backend.close()

    back = CliRunner().invoke(
        cli.app, ["--home", str(home), "chat", "--session", "s", "--yes", "-m", "same seed", *common]
    )
    assert back.exit_code == 0, back.output
    assert "2 earlier turn(s); the last: 'now the ball is blue'" in back.output
    manifests = sorted(runs.glob("*/manifest.json"))
    assert len(manifests) == 3
    assert (
        json.loads(manifests[-1].read_text())["origin"]["chat"]["earlier_messages"][-1]
        == "now the ball is blue"
    )


def _backend(tmp_path, **flags):
    from webui.backend import UiBackend

    return UiBackend(load_settings({"output_dir": tmp_path / "runs", **flags}, home=tmp_path / "home"))


def test_scene_images_are_only_checked_uploads_and_runs_only_folders_of_the_outputs(tmp_path):
    backend = _backend(tmp_path)
    try:
        picture = tmp_path / "cat.png"
        Image.new("RGB", (8, 8)).save(picture)
        kept = safety.check_image_upload(picture, backend.uploads_dir)
        assert backend.upload(kept.name) == str(kept) and backend.upload("  ") is None
        for name in ("../cat.png", str(picture), "missing.png"):
            with pytest.raises(ReelgraphError, match="no uploaded image named"):
                backend.upload(name)
        (tmp_path / "runs" / "r1").mkdir(parents=True)
        (tmp_path / "runs" / "r1" / "manifest.json").write_text(
            '{"plan": {"scenes": [{"prompt": "a ball"}]}}'
        )
        assert [(run.name, run.status, run.prompt) for run in backend.runs()] == [
            ("r1", "finished", "a ball")
        ]
        assert backend.open_run("r1")["plan"]["scenes"][0]["prompt"] == "a ball"
        for name in ("..", "r1/../r1", str(tmp_path / "runs" / "r1"), "nope"):
            with pytest.raises(ReelgraphError, match="no run named"):
                backend.run_folder(name)
        with pytest.raises(ReelgraphError, match="Invalid settings: num_inference_steps"):
            backend.settings_with({"num_inference_steps": 0})
        assert backend.sources({"seed": "3", "model": "toy"})["seed"] == "ui"
        assert backend.sources({"seed": "3", "model": "toy"})["model"] == "default"
    finally:
        backend.close()


@pytest.mark.slow
def test_one_generation_at_a_time_a_second_waits_until_the_first_is_done(tmp_path, tiny_model_dir):
    """Two tabs pressing Generate: the second request does not touch its run folder before the first ends."""
    import threading

    from agent.state import SceneRequest

    backend = _backend(tmp_path, model=str(tiny_model_dir), num_inference_steps=2, num_frames=4, seed=1)
    first_started, release, results = threading.Event(), threading.Event(), {}

    def holding(label, done, total):
        first_started.set()
        assert release.wait(120)

    def run(name, prompt, progress):
        results[name] = backend.generate_scenes([SceneRequest(prompt=prompt)], {}, progress)

    try:
        first = threading.Thread(target=run, args=("first", "a red ball rolls to the right", holding))
        first.start()
        assert first_started.wait(120)
        second = threading.Thread(target=run, args=("second", "a blue square bounces", lambda *a: None))
        second.start()
        second.join(timeout=1.5)
        assert second.is_alive() and backend.gpu.locked()
        assert [p.name.split("-", 2)[2] for p in (tmp_path / "runs").iterdir()] == [
            "a-red-ball-rolls-to-the-right"
        ]
        release.set()
        first.join(120)
        second.join(120)
        assert all((Path(results[n].run_dir) / "manifest.json").is_file() for n in ("first", "second"))
    finally:
        release.set()
        backend.close()
