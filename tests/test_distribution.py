"""The installed import names: what pyproject installs, and the clash check doctor runs."""

from __future__ import annotations

from pathlib import Path

import tomllib

from reelgraph.commands.doctor import run_checks
from reelgraph.distribution import TOP_LEVEL_NAMES, import_name_clashes
from reelgraph.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_checked_names_are_what_pyproject_installs():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {pattern.rstrip("*") for pattern in setup["packages"]["find"]["include"]}
    assert packages | set(setup["py-modules"]) == set(TOP_LEVEL_NAMES)
    on_disk = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} | {"cli"}
    assert on_disk - {"tests", "bench"} == set(TOP_LEVEL_NAMES)  # no package left out of the install


def test_a_second_distribution_with_one_of_our_names_is_named():
    provided = {"agent": ["reelgraph", "agent-sdk"], "memory": ["reelgraph"], "numpy": ["numpy"]}
    assert import_name_clashes(provided) == {"agent": ["agent-sdk"]}
    assert import_name_clashes({"cli": ["Reelgraph"]}) == {}


def test_this_environment_has_no_clash_and_doctor_says_so(tmp_path):
    assert import_name_clashes() == {}
    check = next(c for c in run_checks(Settings(home=tmp_path)) if c.name == "import names")
    assert check.status == "ok" and "agent" in check.detail


def test_doctor_fails_the_check_on_a_clash(tmp_path, monkeypatch):
    import importlib.metadata

    real = importlib.metadata.packages_distributions
    monkeypatch.setattr(
        importlib.metadata, "packages_distributions", lambda: {**real(), "generation": ["reelgraph", "gen"]}
    )
    check = next(c for c in run_checks(Settings(home=tmp_path)) if c.name == "import names")
    assert check.status == "fail" and "generation also from gen" in check.detail
