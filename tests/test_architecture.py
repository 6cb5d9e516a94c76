"""The import direction of docs/architecture.md, enforced by parsing every module's imports.

Layers, top to bottom (a module may import its own layer and those its layer lists):

    entry     cli.py, reelgraph.commands, webui/, toyworld.evaluation   (compose; the harness)
    agent     agent/                                           (plans; never torch)
    services  generation/, motion_prior/, memory/, toyworld.training, toyworld.samples
    shared    reelgraph.contracts, reelgraph.text              (plain contracts, text models)
    world     toyworld (spec, render, captions, probe, metrics, dataset, ...)
    core      reelgraph (errors, settings, atomic, hashing, media, runs, ...)

Inside the services layer the folders form a DAG too: ``motion_prior`` may use ``generation``
and ``memory``; ``toyworld.training`` and ``toyworld.samples`` may use ``generation``;
``generation`` and ``memory`` use neither of their peers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The longest matching prefix decides a module's layer (``toyworld.evaluation`` is entry,
# ``toyworld.spec`` is world).
LAYER_OF_PREFIX = {
    "cli": "entry",
    "reelgraph.commands": "entry",
    "webui": "entry",
    "toyworld.evaluation": "entry",
    "agent": "agent",
    "generation": "services",
    "motion_prior": "services",
    "memory": "services",
    "toyworld.training": "services",
    "toyworld.samples": "services",
    "toyworld.architecture": "services",
    "reelgraph.contracts": "shared",
    "reelgraph.text": "shared",
    "toyworld": "world",
    "reelgraph": "core",
}

MAY_IMPORT = {
    "entry": {"entry", "agent", "services", "shared", "world", "core"},
    "agent": {"agent", "services", "shared", "core"},
    "services": {"services", "shared", "world", "core"},
    "shared": {"shared", "core"},
    "world": {"world", "core"},
    "core": {"core"},
}

# Peers inside the services layer: which service folders each may import besides itself.
SERVICE_PEERS = {
    "generation": set(),
    "memory": set(),
    "motion_prior": {"generation", "memory"},
    "toyworld.training": {"generation", "toyworld.architecture"},
    "toyworld.samples": {"generation"},
    "toyworld.architecture": set(),
}

PACKAGES = ("agent", "generation", "motion_prior", "memory", "reelgraph", "toyworld", "webui")


def _prefix(module: str, table) -> str | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in table:
            return candidate
    return None


def layer_of(module: str) -> str | None:
    prefix = _prefix(module, LAYER_OF_PREFIX)
    return LAYER_OF_PREFIX[prefix] if prefix else None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in the file, lazy ones inside functions included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from pkg import mod`` imports the submodule pkg.mod when there is one
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def violations(root: Path) -> list[str]:
    """Every import edge against the layers, as ``file:line: a -> b (why)``."""
    files = [root / "cli.py"] if (root / "cli.py").exists() else []
    for package in PACKAGES:
        if (root / package).is_dir():
            files += sorted((root / package).rglob("*.py"))
    known = {module_name(p, root) for p in files}
    out = []
    for path in files:
        module = module_name(path, root)
        source_layer = layer_of(module)
        for line, target in imported_modules(path, module):
            if target.split(".")[0] == "torch" and source_layer == "agent":
                out.append(
                    f"{path.relative_to(root)}:{line}: {module} -> {target} (agent/ never imports torch)"
                )
                continue
            if target not in known and not any(k.startswith(target + ".") for k in known):
                continue  # a third-party module, or a name that is not a module
            target_layer = layer_of(target)
            if target_layer is None or source_layer is None:
                continue
            if target_layer not in MAY_IMPORT[source_layer]:
                out.append(
                    f"{path.relative_to(root)}:{line}: {module} -> {target} "
                    f"({source_layer} may not import {target_layer})"
                )
            elif source_layer == target_layer == "services":
                src, dst = _prefix(module, SERVICE_PEERS), _prefix(target, SERVICE_PEERS)
                if src != dst and dst not in SERVICE_PEERS[src]:
                    out.append(
                        f"{path.relative_to(root)}:{line}: {module} -> {target} ({src} may not use {dst})"
                    )
    return out


def test_imports_run_one_way():
    found = violations(ROOT)
    assert not found, "imports against docs/architecture.md:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("memory/bad.py", "from agent.state import RunState\n", "services may not import agent"),
        ("reelgraph/bad.py", "import generation.service\n", "core may not import services"),
        ("toyworld/bad.py", "from reelgraph.text import units\n", "world may not import shared"),
        ("generation/bad.py", "from memory.store import MemoryStore\n", "generation may not use memory"),
        ("agent/bad.py", "def f():\n    import torch\n", "agent/ never imports torch"),
        ("reelgraph/text/bad.py", "from . import sibling\nfrom ..media import x\n", None),
    ],
)
def test_a_back_edge_is_caught(tmp_path, path, source, expected):
    """The checker itself: a deliberate back edge in a copy of the layout fails it."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for module in ("agent/state.py", "generation/service.py", "memory/store.py", "reelgraph/media.py"):
        (tmp_path / module).write_text("")
    (tmp_path / "reelgraph/text").mkdir()
    (tmp_path / "reelgraph/text/__init__.py").write_text("")
    (tmp_path / "reelgraph/text/units.py").write_text("")
    (tmp_path / "reelgraph/text/sibling.py").write_text("")
    (tmp_path / path).write_text(source)
    found = violations(tmp_path)
    if expected is None:
        assert found == []
    else:
        assert found and all(expected in line for line in found), found


def test_planning_loads_no_torch():
    """The graph, its nodes and policies import without torch (only GPU services load it)."""
    code = (
        "import sys, agent.graph, agent.state, agent.nodes, agent.chat, agent.policies.pos_policy, "
        "agent.policies.tool_policy, agent.storyboard; print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
