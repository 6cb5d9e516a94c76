"""What a checkpoint folder holds, read from its JSON configs alone.

``plan`` and ``doctor`` use this to describe a model and estimate costs
without importing torch or loading weights.

Two layouts are understood, both diffusers' text-to-video folder layout
(``model_index.json`` with ``unet``, ``vae``, ``scheduler`` subfolders):

* ModelScope / Zeroscope: ``text_encoder`` (CLIPTextModel) and ``tokenizer``
  subfolders; clip length 16 frames unless ``reelgraph.json`` says otherwise.
* AnimateDiff (``AnimateDiffPipeline``): ``unet`` a ``UNetMotionModel``, or a
  ``UNet2DConditionModel`` with a ``motion_adapter`` subfolder; CLIP text
  encoder; clip length 16 frames (AnimateDiff's training length), at most the
  motion modules' ``motion_max_seq_length``; guidance 7.5 (the pipeline's).
* the embedded toy model: ``reelgraph.json`` names its text encoder
  (MiniLM, found offline by :mod:`reelgraph.resolve`), clip length, size and
  recommended guidance.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from generation.families import ANIMATEDIFF, family_of_index, require_sampleable
from reelgraph.errors import ReelgraphError
from reelgraph.hashing import folder_hash
from reelgraph.resolve import EMBEDDED_MODELS, TOY_MODEL, resolve_video_model

DEFAULT_CLIP_FRAMES = 16
DEFAULT_FPS = 8
DEFAULT_GUIDANCE = 9.0  # diffusers' TextToVideoSDPipeline default


@dataclass
class ModelInfo:
    """What a checkpoint can do, read from its configs (no weights needed)."""

    model_id: str
    path: str
    weights_hash: str
    unet_class: str
    scheduler_class: str
    num_frames: int
    height: int
    width: int
    fps: int
    guidance_scale: float
    text_encoder: str
    max_prompt_tokens: int
    unet_parameters: int
    unet_max_channels: int
    latent_channels: int
    vae_scale_factor: int
    # Set for families other than UNet3D (generation.families), so UNet3D manifests stay as they were.
    family: str | None = None
    flow_shift: float | None = None
    # The paper methods this family cannot run, each with its reason (generation.families.METHODS).
    unsupported: dict[str, str] | None = None
    # A causal 3-D VAE's time compression r: clips have k·r + 1 frames (Wan: 4). None: any count.
    temporal_compression: int | None = None
    # The denoiser takes conditioning frames with a mask (a continuation network, ART-V's masked
    # diffusion): reelgraph.json's "conditioning_frames". False is left out of to_dict().
    conditioning_frames: bool = False
    # ... trained with noise-augmented given frames (ART-V §3.3) / an anchor frame (§3.4):
    # reelgraph.json's "condition_noise" / "anchor_frame". False is left out of to_dict().
    condition_noise: bool = False
    anchor_frame: bool = False

    def frames_for(self, num_frames: int) -> int:
        """The clip length this model can make for ``num_frames``: the next ``k·r + 1`` (never fewer)."""
        r = self.temporal_compression or 1
        return num_frames if r == 1 else -(-(num_frames - 1) // r) * r + 1

    def refusal(self, method: str) -> str | None:
        """Why this model cannot run ``method``, or ``None`` where it can."""
        return (self.unsupported or {}).get(method)

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("family", "flow_shift", "unsupported", "temporal_compression"):
            if data[key] is None:
                del data[key]
        for key in ("conditioning_frames", "condition_noise", "anchor_frame"):
            if not data[key]:
                del data[key]  # the manifests of models without one stay as they were
        return data


def declares(extra: dict, key: str) -> bool:
    """A ``reelgraph.json`` capability flag (default false), refused unless a JSON boolean."""
    value = extra.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f'reelgraph.json "{key}" must be true or false, not {value!r}')
    return value


def continuation_flags(extra: dict) -> dict[str, bool]:
    """ModelInfo's continuation-network fields from ``reelgraph.json``."""
    return {key: declares(extra, key) for key in ("conditioning_frames", "condition_noise", "anchor_frame")}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ReelgraphError(
            f"{path.parent.name or path.parent}/ has no {path.name}.",
            why="a model folder must be in diffusers' text-to-video layout (model_index.json, unet/, vae/, "
            "scheduler/, text encoder).",
            fix="point --model at such a folder or a hub id, or use 'toy' for the embedded model.",
        ) from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReelgraphError(
            f"{path} is not valid JSON: {error}.", fix="repair or re-download the model."
        ) from error
    if not isinstance(data, dict):
        raise ReelgraphError(
            f"{path} holds a JSON {type(data).__name__}, not an object.",
            why="diffusers' config files are JSON objects of named settings.",
            fix="repair or re-download the model.",
        )
    return data


def safetensors_parameter_count(folder: Path) -> int:
    """Number of parameters in a folder's safetensors files, from their headers only."""
    total = 0
    from generation.weight_files import read_header

    for path in sorted(folder.glob("*.safetensors")):
        header = read_header(path, "Model weights")
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in entry["shape"]:
                count *= dim
            total += count
    return total


def read_model_info(
    path: str | Path, model_id: str | None = None, hash_memo: Path | None = None
) -> ModelInfo:
    """Describe the model folder at ``path`` from its configs.

    A config value of the wrong kind (a string where a number belongs, a missing list) is refused
    as the folder's fault, whichever value it is, never a ``TypeError`` from deep inside.
    """
    try:
        return _read_model_info(Path(path), model_id, hash_memo)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as error:
        raise ReelgraphError(
            f"The configs of model folder {str(path)!r} do not describe a model reelgraph can read "
            f"({type(error).__name__}: {error}).",
            why="a config file holds a value of the wrong kind, or lacks one reelgraph needs.",
            fix="repair or re-download the model (compare its configs with the model's original repository).",
        ) from error


def _read_model_info(folder: Path, model_id: str | None, hash_memo: Path | None) -> ModelInfo:
    if not folder.is_dir():
        raise ReelgraphError(
            f"Model folder {str(folder)!r} does not exist.",
            fix="check the path, or use 'toy' for the embedded model.",
        )
    index = _read_json(folder / "model_index.json")
    family = family_of_index(index)
    if family.sampler == "flow":
        from generation.flow_info import read_flow_info

        return read_flow_info(folder, family, model_id, hash_memo)
    # A family we do not sample is refused by name here, before its missing unet/ could be.
    require_sampleable(family, model_id or str(folder))
    extra = _read_json(folder / "reelgraph.json") if (folder / "reelgraph.json").is_file() else {}
    unet_config = _read_json(folder / "unet" / "config.json")
    vae_config = _read_json(folder / "vae" / "config.json")
    scheduler_config = _read_json(folder / "scheduler" / "scheduler_config.json")
    vae_scale = 2 ** (len(vae_config.get("block_out_channels", [0])) - 1)
    sample_size = unet_config.get("sample_size", 32)
    sample_size = sample_size[0] if isinstance(sample_size, list) else sample_size

    text_encoder_spec = extra.get("text_encoder")
    if text_encoder_spec:
        text_encoder = text_encoder_spec["model"]
        max_tokens = int(text_encoder_spec.get("max_length", 32))
    else:
        tokenizer_config = folder / "tokenizer" / "tokenizer_config.json"
        max_tokens = (
            int(_read_json(tokenizer_config).get("model_max_length", 77))
            if tokenizer_config.is_file()
            else 77
        )
        text_encoder = index.get("text_encoder", ["transformers", "CLIPTextModel"])[1]

    unet_class = index.get("unet", ["diffusers", unet_config.get("_class_name", "?")])[1]
    parameters = safetensors_parameter_count(folder / "unet")
    num_frames = int(extra.get("num_frames", DEFAULT_CLIP_FRAMES))
    guidance = float(extra.get("guidance_scale", DEFAULT_GUIDANCE))
    family_fields: dict = {}
    if family is ANIMATEDIFF:
        motion_config = unet_config
        if unet_class != "UNetMotionModel":  # an image UNet beside motion_adapter/, joined by the pipeline
            if not (folder / "motion_adapter" / "config.json").is_file():
                raise ReelgraphError(
                    f"{folder} has a {unet_class} but no motion_adapter/.",
                    why="an image UNet samples video only with AnimateDiff's motion modules (a MotionAdapter).",
                    fix="save the pipeline with its motion adapter (AnimateDiffPipeline.save_pretrained).",
                )
            motion_config = _read_json(folder / "motion_adapter" / "config.json")
            parameters += safetensors_parameter_count(folder / "motion_adapter")
        # The motion modules' positional encoding covers motion_max_seq_length frames, no more.
        num_frames = min(num_frames, int(motion_config.get("motion_max_seq_length", 32)))
        guidance = float(extra.get("guidance_scale", family.default_guidance))
        # No image conditioning (the table's image2video), but an image start runs as on UNet3D: the
        # first latent frame is held on the image's trajectory (VidRD), so the plan does not refuse it.
        refused = {m: why for m, why in family.unsupported.items() if m != "image2video"}
        family_fields = {"family": family.name, "unsupported": refused}

    return ModelInfo(
        model_id=model_id or str(folder),
        path=str(folder),
        weights_hash=folder_hash(folder, memo=hash_memo),
        unet_class=unet_class,
        scheduler_class=scheduler_config.get("_class_name", "?"),
        num_frames=num_frames,
        height=int(extra.get("height", sample_size * vae_scale)),
        width=int(extra.get("width", sample_size * vae_scale)),
        fps=int(extra.get("fps", DEFAULT_FPS)),
        guidance_scale=guidance,
        text_encoder=text_encoder,
        max_prompt_tokens=max_tokens,
        unet_parameters=parameters,
        unet_max_channels=int(max(unet_config.get("block_out_channels", [320]))),
        latent_channels=int(unet_config.get("in_channels", 4)),
        vae_scale_factor=vae_scale,
        **continuation_flags(extra),
        **family_fields,
    )


def locate_model(name_or_path: str | None) -> tuple[Path, str]:
    """Folder of a model and the id to record for it (``toy``, a hub id or a path)."""
    model_id = name_or_path or TOY_MODEL
    resolved = resolve_video_model(model_id)
    folder = Path(resolved)
    if model_id in EMBEDDED_MODELS and not (folder / "model_index.json").is_file():
        raise ReelgraphError(
            f"The embedded model {model_id!r} is missing from this checkout.",
            why=f"{folder} has no model_index.json.",
            fix=f"restore toyworld/{EMBEDDED_MODELS[model_id]} from git, or train one with `reelgraph toy train`.",
        )
    if folder.is_dir():
        return folder, model_id
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
    try:
        folder = Path(snapshot_download(resolved, local_files_only=offline))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise ReelgraphError(
            f"Model {model_id!r} was not found.",
            why="it is not a local folder, and the hub "
            + (
                "is offline (HF_HUB_OFFLINE=1) and the id is not in the local cache."
                if offline
                else f"said: {error}"
            ),
            fix="download it on a machine with internet (huggingface-cli download ID) and pass the folder, "
            "or use 'toy' for the embedded model.",
        ) from error
    return folder, model_id
