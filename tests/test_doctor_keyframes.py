"""doctor says which keyframe detector motion tuning would use for the configured model."""

from __future__ import annotations

import shutil

from reelgraph.commands.doctor import run_checks
from reelgraph.settings import Settings


def _row(settings):
    return next(c for c in run_checks(settings) if c.name == "keyframes")


def test_doctor_names_the_models_detector(tmp_path, tiny_model_dir):
    assert _row(Settings(home=tmp_path, model="toy")).detail.startswith("toy probe detector")
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")  # no planning.json: a real-image model
    row = _row(Settings(home=tmp_path, model=str(folder)))
    assert row.status == "warn" and "GroundingDINO" in row.detail and "REELGRAPH_DETECTOR_MODEL" in row.detail
    row = _row(Settings(home=tmp_path, model=str(folder), detector_model=str(tmp_path / "gdino")))
    assert row.status == "ok" and "gdino" in row.detail
