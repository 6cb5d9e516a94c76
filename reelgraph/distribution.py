"""The import names the ``reelgraph`` distribution installs, and a check that no other distribution has them.

The user fixed the repository's layout (``agent/``, ``generation/``, ``memory/``, ``motion_prior/``,
``cli.py``, ...) and its modules import each other by those names, so the distribution installs
them as top-level packages (docs/architecture.md, "Installed import names"). Such generic names
can collide with another package in the same environment; reelgraph adds no generic name of its
own (its command groups live under ``reelgraph.commands``), ``make install`` installs into a
project virtual environment, and ``reelgraph doctor`` runs :func:`import_name_clashes` so a
collision is reported by name instead of surfacing as a strange ``ImportError``.
"""

from __future__ import annotations

from collections.abc import Mapping

DISTRIBUTION = "reelgraph"

# What pyproject.toml installs (a test keeps the two equal).
TOP_LEVEL_NAMES = ("agent", "cli", "generation", "memory", "motion_prior", "reelgraph", "toyworld", "webui")


def import_name_clashes(provided_by: Mapping[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Our top-level names that another installed distribution also provides: ``{name: [dists]}``.

    Args:
        provided_by: ``{import name: [distribution names]}``; default
            :func:`importlib.metadata.packages_distributions` of this environment.
    """
    if provided_by is None:
        from importlib.metadata import packages_distributions

        provided_by = packages_distributions()
    clashes = {}
    for name in TOP_LEVEL_NAMES:
        others = sorted({d for d in provided_by.get(name, []) if d.lower() != DISTRIBUTION})
        if others:
            clashes[name] = others
    return clashes
