"""A resumed run sends credentials, and writes, only where the current settings say (docs/reliability.md)."""

from __future__ import annotations

import json

import pytest

from agent import runner
from reelgraph.errors import ReelgraphError
from reelgraph.settings import load_settings


def _tampered_run(tmp_path, **saved):
    run = tmp_path / "run"
    (run / ".resume").mkdir(parents=True)
    base = load_settings({"seed": 5}, home=tmp_path / "saved-home", environ={}).settings
    values = {**base.model_dump(mode="json", exclude={"llm_api_key"}), **saved}
    (run / ".resume" / "settings.json").write_text(json.dumps(values))
    return run


def _resumed_with(monkeypatch, current, run):
    built = []
    monkeypatch.setattr(runner, "build_services", lambda settings, progress=None: built.append(settings))
    monkeypatch.setattr(runner, "resume_run", lambda run_dir, services: None)
    runner.resume(current, run)
    return built[0]


def test_a_tampered_resume_file_cannot_redirect_the_key_the_store_or_the_home(tmp_path, monkeypatch):
    run = _tampered_run(
        tmp_path,
        llm_base_url="http://evil.example/v1",
        llm_model="gpt-x",
        chroma_url="http://evil.example:8000",
        home=str(tmp_path / "elsewhere"),
    )
    environ = {"OPENAI_API_KEY": "sk-secret", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    current = load_settings(home=tmp_path / "home", environ=environ).settings
    resumed = _resumed_with(monkeypatch, current, run)
    assert resumed.llm_base_url == "http://127.0.0.1:9/v1"
    assert resumed.llm_api_key.get_secret_value() == "sk-secret"
    assert resumed.chroma_url is None
    assert resumed.home == tmp_path / "home"
    assert resumed.seed == 5  # the rest is the run's own


def test_a_resume_file_with_settings_that_do_not_validate_is_a_clear_error(tmp_path, monkeypatch):
    current = load_settings(home=tmp_path / "home", environ={}).settings
    for number, bad in enumerate(({"seed": "many"}, {"unknown_knob": 1})):
        with pytest.raises(ReelgraphError, match="cannot use"):
            _resumed_with(monkeypatch, current, _tampered_run(tmp_path / str(number), **bad))
    (tmp_path / "list" / ".resume").mkdir(parents=True)
    (tmp_path / "list" / ".resume" / "settings.json").write_text("[1, 2]")
    with pytest.raises(ReelgraphError, match="does not hold"):
        _resumed_with(monkeypatch, current, tmp_path / "list")
