"""Settings precedence: CLI flag > environment > config file > default."""

from __future__ import annotations

import pytest

from reelgraph.errors import ReelgraphError
from reelgraph.settings import load_settings


def test_precedence_and_sources(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("num_inference_steps = 30\nguidance_scale = 5.0\neta = 0.2\n")
    env = {"REELGRAPH_HOME": str(home), "REELGRAPH_GUIDANCE_SCALE": "6.5", "REELGRAPH_ETA": "0.3"}
    loaded = load_settings({"eta": 0.4, "seed": None}, environ=env)
    s = loaded.settings
    assert (s.num_inference_steps, s.guidance_scale, s.eta, s.device) == (30, 6.5, 0.4, "auto")
    assert loaded.sources["num_inference_steps"] == "config"
    assert loaded.sources["guidance_scale"] == "env"
    assert loaded.sources["eta"] == "cli"
    assert loaded.sources["seed"] == "default"  # a flag left unset does not count
    assert loaded.sources["home"] == "env" and s.home == home
    assert loaded.config_file == home / "config.toml"


def test_cli_home_beats_env(tmp_path):
    loaded = load_settings(home=tmp_path / "a", environ={"REELGRAPH_HOME": str(tmp_path / "b")})
    assert loaded.settings.home == tmp_path / "a" and loaded.sources["home"] == "cli"


def test_default_home_is_a_per_user_folder(monkeypatch):
    loaded = load_settings(environ={})
    assert loaded.sources["home"] == "default"
    assert "reelgraph" in str(loaded.settings.home)


def test_config_file_sections_and_explicit_path(tmp_path):
    config = tmp_path / "custom.toml"
    config.write_text('[reelgraph]\nmodel = "some/model"\n')
    loaded = load_settings(config=config, environ={"REELGRAPH_HOME": str(tmp_path)})
    assert loaded.settings.model == "some/model" and loaded.sources["model"] == "config"


@pytest.mark.parametrize(
    ("content", "message"),
    [("nonsense = 1\n", "unknown keys: nonsense"), ("steps = [\n", "cannot be read"), ("eta = 5\n", "eta")],
)
def test_bad_config_files(tmp_path, content, message):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(ReelgraphError, match=message):
        load_settings(config=config, environ={"REELGRAPH_HOME": str(tmp_path)})


def test_bad_environment_value_names_its_source(tmp_path):
    with pytest.raises(ReelgraphError, match=r"num_inference_steps \(env\)"):
        load_settings(environ={"REELGRAPH_HOME": str(tmp_path), "REELGRAPH_NUM_INFERENCE_STEPS": "many"})


def test_missing_explicit_config(tmp_path):
    with pytest.raises(ReelgraphError, match="does not exist"):
        load_settings(config=tmp_path / "nope.toml", environ={"REELGRAPH_HOME": str(tmp_path)})
