"""Storyboards: a list of scenes, each a prompt with a length (and optionally a starting image).

Three formats, chosen by the file's suffix:

* YAML (``.yaml``, ``.yml``) or JSON (``.json``)::

      scenes:
        - prompt: a red ball rolls to the right
          frames: 16
        - prompt: the red ball bounces
          frames: 16
          image: start.png        # optional, relative to the storyboard's folder

  A scene may also be a bare string (the prompt); ``frames`` defaults to one
  clip. A top-level ``extension:`` (``vidrd``, ``vidrd-literal``, ``artv``,
  ``independent``) picks how clips and scenes continue, as ``--extension``
  does (the flag wins over the file, the file over environment and config).
* anything else is plain text: one scene per line, default length; blank
  lines and lines starting with ``#`` are skipped.

Every problem is a :class:`~reelgraph.errors.ReelgraphError` naming the
scene. The LLM storyboard splitter (agent issue) produces the same
:class:`~agent.state.SceneRequest` list.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.state import SceneRequest
from reelgraph.errors import ReelgraphError

SCENE_KEYS = {"prompt", "frames", "image"}
STORYBOARD_KEYS = {"scenes", "extension"}
EXAMPLE = "scenes: [{prompt: 'a red ball rolls to the right', frames: 16}, {prompt: 'the red ball bounces'}]"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ReelgraphError(f"Storyboard {str(path)!r} does not exist.", fix="check the path.") from error
    except (OSError, UnicodeDecodeError) as error:
        raise ReelgraphError(
            f"Storyboard {str(path)!r} cannot be read: {error}.",
            fix="give a UTF-8 text, YAML or JSON file.",
        ) from error


def _parse_structured(path: Path, text: str) -> Any:
    from agent.yaml_safe import AliasError

    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        from agent.yaml_safe import load_without_aliases

        return load_without_aliases(text)
    except AliasError as error:
        raise ReelgraphError(
            f"Storyboard {str(path)!r} uses a YAML alias ({error}).",
            why="an alias can expand to any size (a 'billion laughs'), so storyboards may not use them.",
            fix="write each scene out in full.",
        ) from error
    except RecursionError as error:
        raise ReelgraphError(
            f"Storyboard {str(path)!r} is nested too deeply to read.", fix=f"write it like {EXAMPLE}."
        ) from error
    except (json.JSONDecodeError, ValueError) as error:
        raise ReelgraphError(
            f"Storyboard {str(path)!r} is not valid JSON: {error}.", fix=f"write it like {EXAMPLE}."
        ) from error
    except Exception as error:  # yaml.YAMLError and its subclasses
        if type(error).__module__.startswith("yaml"):
            raise ReelgraphError(
                f"Storyboard {str(path)!r} is not valid YAML: {error}.", fix=f"write it like {EXAMPLE}."
            ) from error
        raise


def _scene(number: int, entry: Any, folder: Path) -> SceneRequest:
    if isinstance(entry, str):
        entry = {"prompt": entry}
    if not isinstance(entry, dict):
        raise ReelgraphError(
            f"Scene {number} is not a scene: {entry!r}.",
            fix="give each scene a prompt, e.g. {prompt: ..., frames: 16}.",
        )
    unknown = sorted(set(entry) - SCENE_KEYS)
    if unknown:
        raise ReelgraphError(
            f"Scene {number} has unknown keys: {', '.join(map(str, unknown))}.",
            fix=f"a scene has {', '.join(sorted(SCENE_KEYS))}.",
        )
    prompt = entry.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ReelgraphError(
            f"Scene {number} is empty: it has no prompt.",
            fix="describe the scene, e.g. prompt: 'the red ball bounces'.",
        )
    frames = entry.get("frames")
    if frames is not None:
        if isinstance(frames, bool) or not isinstance(frames, int):
            raise ReelgraphError(
                f"Scene {number} has frames: {frames!r}, which is not a whole number.",
                fix="write e.g. frames: 16.",
            )
        if frames <= 0:
            raise ReelgraphError(
                f"Scene {number} asks for {frames} frames.", fix="give each scene at least one frame."
            )
    image = entry.get("image")
    if image is not None:
        if not isinstance(image, str) or not image.strip():
            raise ReelgraphError(f"Scene {number} has an image that is not a path: {image!r}.")
        image_path = Path(image).expanduser()
        if not image_path.is_absolute():
            image_path = folder / image_path
        if not image_path.is_file():
            raise ReelgraphError(
                f"Scene {number}'s image {image!r} does not exist.",
                why=f"looked for {image_path}.",
                fix="paths are relative to the storyboard's folder.",
            )
        image = str(image_path.resolve())
    return SceneRequest(prompt=" ".join(prompt.split()), num_frames=frames, image=image)


def parse_storyboard(path: str | Path, max_frames: int | None = None) -> list[SceneRequest]:
    """Read a storyboard file into scenes; refuse empty scenes, bad lengths and videos over ``max_frames``."""
    return read_storyboard(path, max_frames)[0]


def _extension(path: Path, data: Any) -> str | None:
    from reelgraph.settings import EXTENSION_MODES

    value = data.get("extension") if isinstance(data, dict) else None
    if value is not None and value not in EXTENSION_MODES:
        raise ReelgraphError(
            f"Storyboard {str(path)!r} has extension: {value!r}, which is not a method.",
            fix=f"write extension: one of {', '.join(EXTENSION_MODES)} (or leave it out for the settings').",
        )
    return value


def read_storyboard(path: str | Path, max_frames: int | None = None) -> tuple[list[SceneRequest], str | None]:
    """The storyboard's scenes (:func:`parse_storyboard`) and its ``extension:`` (``None`` when not given)."""
    path = Path(path)
    text = _read_text(path)
    extension = None
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        data = _parse_structured(path, text)
        entries = data.get("scenes") if isinstance(data, dict) else data
        if isinstance(data, dict) and set(data) - STORYBOARD_KEYS:
            raise ReelgraphError(
                f"Storyboard {str(path)!r} has unknown keys: "
                f"{', '.join(sorted(map(str, set(data) - STORYBOARD_KEYS)))}.",
                fix=f"write it like {EXAMPLE}.",
            )
        extension = _extension(path, data)
        if not isinstance(entries, list):
            raise ReelgraphError(
                f"Storyboard {str(path)!r} has no list of scenes.", fix=f"write it like {EXAMPLE}."
            )
    else:
        entries = [
            line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
        ]
    return parse_storyboard_data(entries, f"Storyboard {str(path)!r}", path.parent, max_frames), extension


def parse_storyboard_data(
    entries: list[Any], where: str, folder: Path, max_frames: int | None = None
) -> list[SceneRequest]:
    """Scenes from already-read entries (a batch file's inline ``scenes``); ``where`` names them in errors,
    image paths are relative to ``folder``."""
    if not entries:
        raise ReelgraphError(f"{where} has no scenes.", fix=f"write it like {EXAMPLE}.")
    scenes = [_scene(number, entry, folder) for number, entry in enumerate(entries, start=1)]
    total = sum(scene.num_frames or 0 for scene in scenes)
    if max_frames is not None and total > max_frames:
        raise ReelgraphError(
            f"{where} asks for {total} frames; the limit is {max_frames}.",
            fix="shorten its scenes, or raise max_video_frames (config or REELGRAPH_MAX_VIDEO_FRAMES).",
        )
    return scenes
