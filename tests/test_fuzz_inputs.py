"""A bounded fuzz pass over the input parsers: prompts, storyboards, CSV rows, config files, model_index.json.

Each parser either returns or raises :class:`ReelgraphError` (a message for the user); any other
exception is a crash. Hypothesis runs derandomized, so the suite tries the same cases every time
(``max_examples`` bounds the time); findings are listed in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import json
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reelgraph.errors import ReelgraphError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _held(call) -> None:
    with contextlib.suppress(ReelgraphError):  # refused with a message: what bad input gets
        call()


@FUZZ
@given(TEXT)
def test_prompts_parse_into_units(text):
    from reelgraph.text.units import get_parser

    parsed = get_parser().parse(text)
    assert parsed.core is None or 0 <= parsed.core < len(parsed.units)


@FUZZ
@given(
    st.sampled_from([".txt", ".yaml", ".json"]),
    TEXT | JSONISH.map(json.dumps) | st.builds(lambda s: f"scenes:\n  - prompt: {s}\n    frames: 8\n", TEXT),
)
def test_storyboards_parse_or_are_refused(suffix, content):
    from agent.storyboard import parse_storyboard

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"story{suffix}"
        path.write_text(content, encoding="utf-8")
        _held(lambda: parse_storyboard(path, max_frames=1024))


CSV_CELL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@FUZZ
@given(st.lists(st.tuples(CSV_CELL, CSV_CELL, CSV_CELL, CSV_CELL), max_size=6), st.booleans())
def test_csv_rows_are_ingested_or_counted_never_fatal(rows, with_videos):
    import csv

    from memory.ingest import IngestStats, _read_rows, _record_from_row, _Tally

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "captions.csv"
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["videoid", "name", "duration", "page_dir"])
            writer.writerows(rows)
        videos = Path(folder) / "videos" if with_videos else None
        if videos:
            videos.mkdir()
        tally = _Tally(IngestStats(pool="fuzz", source=str(path)))
        for line, row in _read_rows(path, tally):
            record = _record_from_row(row, line, "fuzz", videos, tally)
            if record is not None and videos is not None and record.video:
                assert Path(record.video).resolve().is_relative_to(videos.resolve())


TOML_KEYS = st.sampled_from(["guidance_scale", "seed", "num_frames", "model", "gamma", "ona_eta", "nonsense"])
TOML_VALUES = st.sampled_from(
    ["1", "-1", "inf", "nan", '"x"', "1e308", "99999999999999999999", "[1]", "true", "{"]
)


@FUZZ
@given(st.lists(st.tuples(TOML_KEYS, TOML_VALUES), max_size=4) | TEXT.map(lambda t: [(None, t)]))
def test_config_files_load_or_are_refused(pairs):
    from reelgraph.settings import load_settings

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        text = "\n".join(value if key is None else f"{key} = {value}" for key, value in pairs)
        path.write_text(text, encoding="utf-8")
        _held(lambda: load_settings({}, home=folder, config=path, environ={}))


@FUZZ
@given(JSONISH, st.sampled_from(["", "unet", "transformer"]))
def test_model_index_json_is_read_or_refused(index, subfolder):
    from generation.model_info import read_model_info

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "model_index.json").write_text(json.dumps(index))
        if subfolder:
            (Path(folder) / subfolder).mkdir()
            (Path(folder) / subfolder / "config.json").write_text(json.dumps(index))
        _held(lambda: read_model_info(folder))


@pytest.mark.parametrize("garbage", ["", "{", "[]", '"text"', "null", string.printable])
def test_model_index_json_that_is_not_an_object_is_refused(tmp_path, garbage):
    from generation.model_info import read_model_info

    (tmp_path / "model_index.json").write_text(garbage)
    with pytest.raises(ReelgraphError):
        read_model_info(tmp_path)


CONFIGS = st.dictionaries(
    st.sampled_from(
        ["block_out_channels", "in_channels", "sample_size", "num_attention_heads", "flow_shift", "shift",
         "patch_size", "latent_channels", "num_train_timesteps", "_class_name", "cross_attention_dim"]
    ),
    JSONISH,
    max_size=6,
)  # fmt: skip


@settings(FUZZ, max_examples=100)
@given(
    st.sampled_from(["TextToVideoSDPipeline", "WanPipeline", "AnimateDiffPipeline", "LTXPipeline"]),
    st.dictionaries(
        st.sampled_from(
            [
                "unet/config.json",
                "vae/config.json",
                "scheduler/scheduler_config.json",
                "transformer/config.json",
                "text_encoder/config.json",
                "reelgraph.json",
            ]
        ),
        CONFIGS,
        max_size=6,
    ),
)
def test_model_folders_with_hostile_configs_are_read_or_refused(pipeline, files):
    from generation.model_info import read_model_info

    with tempfile.TemporaryDirectory() as folder:
        index = {"_class_name": pipeline, "unet": ["diffusers", "UNet3DConditionModel"]}
        if pipeline != "TextToVideoSDPipeline":
            index = {"_class_name": pipeline, "transformer": ["diffusers", "WanTransformer3DModel"]}
        (Path(folder) / "model_index.json").write_text(json.dumps(index))
        for name, config in files.items():
            (Path(folder) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(folder) / name).write_text(json.dumps(config))
        _held(lambda: read_model_info(folder))
