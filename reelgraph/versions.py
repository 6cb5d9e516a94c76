"""Installed versions of the packages a result depends on (for manifests and ``doctor``)."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = (
    "reelgraph",
    "torch",
    "diffusers",
    "transformers",
    "peft",
    "langgraph",
    "langchain-openai",
    "chromadb",
    "sentence-transformers",
    "spacy",
    "numpy",
    "av",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
