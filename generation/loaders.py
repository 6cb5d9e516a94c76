"""Load a text-to-video checkpoint into a :class:`~generation.backend.VideoModel`.

A model is a folder in diffusers' text-to-video layout, or a hub id whose
snapshot is in the local Hugging Face cache (or downloadable when the hub is
online). Loaders are chosen by the UNet class named in ``model_index.json``:

* ``UNet3DConditionModel``: ModelScope, Zeroscope and our toy model.
* ``UNetMotionModel``: AnimateDiff (``AnimateDiffPipeline`` layout, Search-T2V's
  backbone); or ``UNet2DConditionModel`` plus ``motion_adapter/``
  (``MotionAdapter``), joined with ``UNetMotionModel.from_unet2d`` as
  ``AnimateDiffPipeline.__init__`` joins them.
* other families (:mod:`generation.families`) are recognised first and
  refused by name; Wan folders load through :mod:`generation.wan_backend`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from generation.backend import VideoModel
from generation.devices import resolve_device, resolve_dtype
from generation.families import family_of, require_sampleable
from generation.model_info import ModelInfo, locate_model, read_model_info
from generation.text_encoders import CLIPPromptEncoder, MiniLMPromptEncoder
from generation.weight_files import check_model_folder
from reelgraph.errors import ReelgraphError
from reelgraph.resolve import resolve_text_model

_FLOW_MATCHING_SCHEDULERS = {"FlowMatchEulerDiscreteScheduler", "FlowMatchHeunDiscreteScheduler"}


def _load_unet3d(folder: Path, dtype: torch.dtype) -> torch.nn.Module:
    from diffusers import UNet3DConditionModel

    return UNet3DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)


def _load_unet_motion(folder: Path, dtype: torch.dtype) -> torch.nn.Module:
    from diffusers import UNetMotionModel

    return UNetMotionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)


def _load_unet2d_with_motion_adapter(folder: Path, dtype: torch.dtype) -> torch.nn.Module:
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel

    # read_model_info has refused a folder without motion_adapter/ already, by name.
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)
    adapter = MotionAdapter.from_pretrained(folder, subfolder="motion_adapter", torch_dtype=dtype)
    joined = UNetMotionModel.from_unet2d(unet, adapter)  # what AnimateDiffPipeline.__init__ does
    return joined if joined.dtype == dtype else joined.to(dtype)


_UNET_LOADERS = {
    "UNet3DConditionModel": _load_unet3d,
    "UNetMotionModel": _load_unet_motion,
    "UNet2DConditionModel": _load_unet2d_with_motion_adapter,
}


def _quiet_libraries() -> None:
    """Our own progress bars and warnings speak to the user; the libraries' loading chatter does not."""
    import diffusers
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    diffusers.logging.set_verbosity_error()
    diffusers.logging.disable_progress_bar()


def _prompt_encoder(folder: Path, info: ModelInfo):
    if (folder / "reelgraph.json").is_file() and not (folder / "text_encoder" / "config.json").is_file():
        return MiniLMPromptEncoder(resolve_text_model(info.text_encoder), max_length=info.max_prompt_tokens)
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(folder, subfolder="text_encoder")
    return CLIPPromptEncoder(tokenizer, text_encoder)


def load_video_model(
    name_or_path: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    cpu_offload: bool = False,
    vae_slice_frames: int = 8,
    hash_memo: Path | None = None,
) -> VideoModel:
    """Load a model by id or folder onto ``device`` in ``dtype`` (``auto``: see :mod:`generation.devices`)."""
    from diffusers import AutoencoderKL, DDIMScheduler

    _quiet_libraries()
    folder, model_id = locate_model(name_or_path)
    check_model_folder(folder)  # safetensors only, headers checked, before any library opens a file
    # The family comes first, so a transformer-layout folder is refused by name, not for lacking unet/.
    require_sampleable(family_of(folder), model_id, sampler="ddim")
    info = read_model_info(folder, model_id=model_id, hash_memo=hash_memo)
    if info.scheduler_class in _FLOW_MATCHING_SCHEDULERS:
        raise ReelgraphError(
            f"Model {model_id!r} is a flow-matching model ({info.scheduler_class}).",
            why="reelgraph's sampler is DDIM; flow-matching samplers are not implemented yet.",
            fix="use a DDPM/DDIM-trained model such as ModelScope or Zeroscope.",
        )
    loader = _UNET_LOADERS.get(info.unet_class)
    if loader is None:
        raise ReelgraphError(
            f"Model {model_id!r} uses a {info.unet_class}, which reelgraph cannot sample yet.",
            why=f"supported UNets: {', '.join(sorted(_UNET_LOADERS))}.",
            fix="use a ModelScope / Zeroscope or AnimateDiff layout model, or 'toy'.",
        )
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    home_device = torch.device("cpu") if cpu_offload else torch_device

    unet = loader(folder, torch_dtype).to(home_device).eval().requires_grad_(False)
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch_dtype).to(home_device)
    vae.eval().requires_grad_(False)
    prompt_encoder = _prompt_encoder(folder, info).to(home_device, torch_dtype)
    scheduler_config = dict(DDIMScheduler.load_config(folder, subfolder="scheduler"))
    return VideoModel(
        info=info,
        unet=unet,
        vae=vae,
        prompt_encoder=prompt_encoder,
        scheduler_config=scheduler_config,
        device=torch_device,
        dtype=torch_dtype,
        cpu_offload=cpu_offload,
        vae_slice_frames=vae_slice_frames,
    )
