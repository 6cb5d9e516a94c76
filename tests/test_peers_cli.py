"""The peers from the CLI without real servers: the global --chroma-url, doctor's pings, routing."""

from __future__ import annotations

import json
import socket

from typer.testing import CliRunner

import cli


def _dead_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _doctor(*args: str) -> dict[str, dict]:
    result = CliRunner().invoke(cli.app, [*args, "doctor", "--json"])
    return {check["name"]: check for check in json.loads(result.stdout)}


def test_global_chroma_url_reaches_config_and_the_pool_commands(tmp_path):
    url = _dead_url()
    home = ["--home", str(tmp_path / "home"), "--chroma-url", url]
    shown = CliRunner().invoke(cli.app, [*home, "config", "show", "--json"])
    assert shown.exit_code == 0 and url in shown.stdout
    for command in (["search", "a dog"], ["index", "stats"]):
        result = CliRunner().invoke(cli.app, [*home, *command])
        assert result.exit_code == 1 and f"The Chroma server at {url} is unreachable" in result.stderr
        assert "Traceback" not in result.output


def test_plan_with_a_downed_chroma_server_plans_without_references(tmp_path, tiny_model_dir):
    url = _dead_url()
    args = ["--home", str(tmp_path / "home"), "--chroma-url", url, "plan", "a red ball rolls to the right"]
    result = CliRunner().invoke(cli.app, [*args, "--model", str(tiny_model_dir), "--json"])
    assert result.exit_code == 0, result.output
    (scene,) = json.loads(result.stdout)["scenes"]
    assert scene["references"]["status"] == "skipped"
    assert scene["references"]["reason"].startswith(
        f"the reference pool is unavailable: The Chroma server at {url}"
    )
    assert "planned without references" in scene["references"]["reason"]


def test_doctor_reports_a_downed_chroma_server_and_llm_endpoint(tmp_path, monkeypatch):
    chroma, llm = _dead_url(), _dead_url()
    monkeypatch.setenv("REELGRAPH_LLM_MODEL", "m")
    monkeypatch.setenv("REELGRAPH_LLM_BASE_URL", f"{llm}/v1")
    checks = _doctor("--home", str(tmp_path), "--chroma-url", chroma)
    assert checks["chroma"]["status"] == "fail" and chroma in checks["chroma"]["detail"]
    assert checks["llm"]["status"] == "warn" and f"{llm}/v1" in checks["llm"]["detail"]
    embedded = _doctor("--home", str(tmp_path))
    assert embedded["chroma"]["status"] == "ok" and "(embedded)" in embedded["chroma"]["detail"]


def test_doctor_without_an_llm_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("REELGRAPH_LLM_MODEL", raising=False)
    assert _doctor("--home", str(tmp_path))["llm"]["status"] == "info"


def test_generate_with_a_downed_chroma_server_makes_the_video_and_says_why(tmp_path, tiny_model_dir):
    url = _dead_url()
    args = [
        "--home",
        str(tmp_path / "home"),
        "--chroma-url",
        url,
        "generate",
        "a red ball rolls to the right",
    ]
    args += ["--model", str(tiny_model_dir), "--steps", "2", "--frames", "4", "--seed", "1"]
    result = CliRunner().invoke(cli.app, [*args, "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    assert f"the reference pool is unavailable: The Chroma server at {url} is unreachable" in manifest
