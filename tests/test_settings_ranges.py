"""Every float setting is finite and every int setting fits 64 bits, however it is given (issue 19)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

import cli
from reelgraph.atomic import write_json
from reelgraph.errors import ReelgraphError
from reelgraph.settings import Settings, load_settings

FLOAT_SETTINGS = sorted(
    name for name, field in Settings.model_fields.items() if "float" in str(field.annotation)
)
INT_SETTINGS = sorted(
    name
    for name, field in Settings.model_fields.items()
    if str(field.annotation) in ("<class 'int'>", "int | None")
    and not any(hasattr(m, "le") for m in field.metadata)  # those with a bound of their own say so
)


def test_the_lists_cover_the_settings():
    assert {"guidance_scale", "eta", "llm_timeout", "budget_seconds"} <= set(FLOAT_SETTINGS)
    assert {"seed", "max_video_frames", "num_frames", "tune_steps"} <= set(INT_SETTINGS)


@pytest.mark.parametrize("name", FLOAT_SETTINGS)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_a_non_finite_float_is_refused_from_cli_env_and_config(tmp_path, name, value):
    with pytest.raises(ReelgraphError, match=name):
        load_settings({name: float(value)}, home=tmp_path, environ={})
    with pytest.raises(ReelgraphError, match=name):
        load_settings(home=tmp_path, environ={f"REELGRAPH_{name.upper()}": value})
    config = tmp_path / "config.toml"
    config.write_text(f"{name} = {value}\n")
    with pytest.raises(ReelgraphError, match=name):
        load_settings(home=tmp_path, environ={})


@pytest.mark.parametrize("name", INT_SETTINGS)
@pytest.mark.parametrize("value", [2**63, 2**64, 10**30])
def test_an_int_setting_beyond_64_bits_is_refused_with_the_range(tmp_path, name, value):
    with pytest.raises(ReelgraphError, match=rf"{name}.*between .* and 9223372036854775807"):
        load_settings({name: value}, home=tmp_path, environ={})
    with pytest.raises(ReelgraphError, match=rf"{name}.*between .* and 9223372036854775807"):
        load_settings(home=tmp_path, environ={f"REELGRAPH_{name.upper()}": str(value)})


def test_the_largest_seed_is_accepted(tmp_path):
    assert load_settings({"seed": 2**63 - 1}, home=tmp_path, environ={}).settings.seed == 2**63 - 1


@pytest.mark.parametrize("flags", [["--guidance", "inf"], ["--guidance", "nan"], ["--seed", str(2**64)]])
def test_the_cli_refuses_them_with_a_clear_message(tmp_path, flags):
    done = CliRunner().invoke(cli.app, ["--home", str(tmp_path), "plan", "a red ball", *flags])
    assert done.exit_code in (1, 2), done.output  # 2: typer's usage error for a flag it checks itself
    assert "Invalid" in done.stderr and "Traceback" not in done.output


def test_written_json_is_always_strict_json(tmp_path):
    path = write_json(tmp_path / "m.json", {"a": math.inf, "b": [math.nan, 1.5], "c": {"d": -math.inf}})

    def refuse(constant):
        raise ValueError(constant)

    assert json.loads(path.read_text(), parse_constant=refuse) == {
        "a": None,
        "b": [None, 1.5],
        "c": {"d": None},
    }


def test_a_seed_from_a_chat_message_or_the_llm_is_range_checked_too(tmp_path, short_clip_model_dir):
    from agent import runner
    from agent.state import SceneRequest

    settings = load_settings({"model": str(short_clip_model_dir)}, home=tmp_path, environ={}).settings
    named = settings.model_copy(update={"seed": 2**70})  # how the chat applies "seed N" (no validation)
    with pytest.raises(ReelgraphError, match="between 0 and 9223372036854775807"):
        runner.plan_scenes(named, [SceneRequest(prompt="a red ball")])
