"""Temporal LoRA adapters on a video UNet: inject, train, save, apply for sampling, remove.

Motion distillation (VMC, Search-T2V §4.3) adapts only the temporal attention
of a video UNet. diffusers' ``UNet3DConditionModel`` has no PEFT mixin, so
LoRA layers are injected with peft directly (``inject_adapter_in_model``) and
taken out again by putting each wrapped layer's ``base_layer`` back in its
place. The base weights are never touched (no merge), so a UNet that had a
LoRA applied and removed is bit-for-bit the UNet it was.

Where the temporal attention lives:

* ``UNet3DConditionModel`` (ModelScope, Zeroscope, the toy model):
  ``*.temp_attentions.N.transformer_blocks.M.attn{1,2}.to_{q,k,v}``, and the
  temporal transformer over the input, ``transformer_in`` (optional);
* ``UNetMotionModel`` (AnimateDiff): ``*.motion_modules.N.transformer_blocks.M.attn{1,2}.to_{q,k,v}``.

Both temporal blocks use two self-attentions (``attn2`` has no text), so
``attn1`` and ``attn2`` are both motion.

A video transformer (``WanTransformer3DModel``) has no separate temporal
layers: each block's self-attention ``blocks.N.attn1`` attends over the
tokens of all latent frames at once, so it is the only place where frames
exchange information, and motion is learnt there
(:func:`transformer_target_pattern`: ``attn1.to_q / to_k / to_v / to_out.0``;
``to_out`` too, because the joint attention's output projection is the
path every frame-to-frame mix leaves by). ``attn2`` is cross-attention to
the text: adapting it would learn the prompt's appearance, not motion.

A LoRA file is safetensors: the peft state dict (keys without the adapter
name) and, in the metadata, the peft settings needed to inject it again.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from reelgraph.errors import ReelgraphError

ADAPTER_NAME = "motion"
TEMPORAL_CONTAINERS: tuple[str, ...] = ("temp_attentions", "motion_modules")
DEFAULT_PROJECTIONS: tuple[str, ...] = (
    "attn1.to_q",
    "attn1.to_k",
    "attn1.to_v",
    "attn2.to_q",
    "attn2.to_k",
    "attn2.to_v",
)
TRANSFORMER_SELF_ATTENTION: tuple[str, ...] = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0")
LORA_FORMAT = "reelgraph-temporal-lora/1"


def transformer_target_pattern(projections: Sequence[str] = TRANSFORMER_SELF_ATTENTION) -> str:
    """A regex for the self-attention projections of a video transformer's blocks (``blocks.N.attn1.*``)."""
    if not projections:
        raise ReelgraphError(
            "No LoRA target projections were given.", fix="name at least one, e.g. attn1.to_q."
        )
    return rf"blocks\.\d+\.(?:{'|'.join(re.escape(p) for p in projections)})"


def temporal_target_pattern(
    projections: Sequence[str] = DEFAULT_PROJECTIONS,
    containers: Sequence[str] = TEMPORAL_CONTAINERS,
    include_transformer_in: bool = False,
) -> str:
    """A regex (peft matches it against whole module names) for the temporal projections.

    ``projections`` are module paths inside a temporal transformer block
    (``attn1.to_q``); ``containers`` the attribute names of the temporal
    transformers in the UNet's blocks.
    """
    if not projections:
        raise ReelgraphError(
            "No LoRA target projections were given.", fix="name at least one, e.g. attn1.to_q."
        )
    proj = "|".join(re.escape(p) for p in projections)
    scopes = [rf"(.*\.)?(?:{'|'.join(re.escape(c) for c in containers)})\.\d+"]
    if include_transformer_in:
        scopes.append("transformer_in")
    return rf"(?:{'|'.join(scopes)})\.transformer_blocks\.\d+\.(?:{proj})"


def matching_modules(unet: torch.nn.Module, pattern: str) -> list[str]:
    """Names of the ``nn.Linear`` modules whose full name matches ``pattern`` (as peft matches it)."""
    compiled = re.compile(pattern)
    return [
        name
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear) and compiled.fullmatch(name)
    ]


def lora_modules(unet: torch.nn.Module) -> list[str]:
    """Names of the modules that currently carry a peft adapter layer."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [name for name, module in unet.named_modules() if isinstance(module, BaseTunerLayer)]


def inject_lora(
    unet: torch.nn.Module, rank: int, alpha: float, pattern: str, adapter_name: str = ADAPTER_NAME
) -> list[str]:
    """Wrap every module matching ``pattern`` in a LoRA layer (``B`` zero-initialised: no change yet).

    Returns the wrapped module names. Raises when nothing matches (a UNet
    without temporal attention cannot learn motion this way).
    """
    from peft import LoraConfig, inject_adapter_in_model

    targets = matching_modules(unet, pattern)
    if not targets:
        raise ReelgraphError(
            f"No temporal attention projections found in the {type(unet).__name__}.",
            why=f"no linear layer matches {pattern!r}.",
            fix="motion tuning needs a video UNet with temporal attention (UNet3DConditionModel or "
            "UNetMotionModel); check the LoRA target modules.",
        )
    if lora_modules(unet):
        raise ReelgraphError(
            "The UNet already carries a LoRA adapter.",
            why="adapters are applied one at a time and removed after use.",
            fix="remove the previous adapter first (this is a bug if you did not add one yourself).",
        )
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=pattern, bias="none")
    inject_adapter_in_model(config, unet, adapter_name=adapter_name)
    return lora_modules(unet)


def remove_lora(unet: torch.nn.Module) -> int:
    """Put every LoRA-wrapped layer's original module back; returns how many were removed."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    wrapped = [(name, module) for name, module in unet.named_modules() if isinstance(module, BaseTunerLayer)]
    for name, module in wrapped:
        parent_name, _, child = name.rpartition(".")
        parent = unet.get_submodule(parent_name) if parent_name else unet
        setattr(parent, child, module.get_base_layer())
    if "peft_config" in vars(unet):
        del unet.peft_config  # peft records its config on the model; the plain UNet had none
    return len(wrapped)


def lora_state_dict(unet: torch.nn.Module, adapter_name: str = ADAPTER_NAME) -> dict[str, torch.Tensor]:
    """The adapter's weights (``lora_A`` / ``lora_B`` per wrapped layer), float32, on the CPU."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(unet, adapter_name=adapter_name)
    return {key: value.detach().float().cpu().contiguous() for key, value in state.items()}


def save_lora(path: Path, state: dict[str, torch.Tensor], settings: dict[str, Any]) -> Path:
    """Write a LoRA file: tensors plus ``settings`` (rank, alpha, pattern, provenance) as metadata."""
    from safetensors.torch import save_file

    from reelgraph.atomic import atomic_path

    metadata = {"format": LORA_FORMAT, "settings": json.dumps(settings, sort_keys=True, default=str)}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return Path(path)


def load_lora(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a LoRA file written by :func:`save_lora`: ``(state, settings)``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ReelgraphError(f"LoRA file {str(path)!r} does not exist.", fix="tune again, or check the path.")
    from generation.weight_files import read_header

    read_header(path, "LoRA file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for damaged files
        raise ReelgraphError(
            f"LoRA file {str(path)!r} cannot be read: {error}.", fix="delete it and tune again."
        ) from error
    if metadata.get("format") != LORA_FORMAT:
        raise ReelgraphError(
            f"{str(path)!r} is not a reelgraph temporal LoRA.",
            why=f"its metadata format is {metadata.get('format')!r}, expected {LORA_FORMAT!r}.",
            fix="use a file written by `reelgraph tune`.",
        )
    return state, json.loads(metadata["settings"])


def load_lora_weights(
    unet: torch.nn.Module, state: dict[str, torch.Tensor], adapter_name: str = ADAPTER_NAME
) -> None:
    """Copy saved adapter weights into an injected adapter; refuse a file that does not fit."""
    from peft import set_peft_model_state_dict

    expected = set(lora_state_dict(unet, adapter_name))
    if expected != set(state):
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ReelgraphError(
            "The LoRA file does not fit this model's UNet.",
            why=f"{len(missing)} adapter weights missing, {len(extra)} unexpected "
            f"(e.g. {(missing or extra)[0]}).",
            fix="tune again for this model.",
        )
    device = next(unet.parameters()).device
    set_peft_model_state_dict(unet, {k: v.to(device) for k, v in state.items()}, adapter_name=adapter_name)


@contextlib.contextmanager
def applied_lora(unet: torch.nn.Module, path: str | Path | None, scale: float = 1.0) -> Iterator[list[str]]:
    """Apply the LoRA at ``path`` for the ``with`` block, then remove it; ``None`` applies nothing.

    ``scale`` multiplies the LoRA's ``alpha / r`` (1: as trained). Yields the
    wrapped module names.
    """
    if path is None:
        yield []
        return
    state, settings = load_lora(path)
    try:
        wrapped = inject_lora(unet, int(settings["rank"]), float(settings["alpha"]), settings["pattern"])
        load_lora_weights(unet, state)
        if scale != 1.0:
            from peft.tuners.lora import LoraLayer

            for module in unet.modules():
                if isinstance(module, LoraLayer):
                    module.set_scale(ADAPTER_NAME, scale)
        yield wrapped
    finally:
        remove_lora(unet)


def unet_noise(
    unet: torch.nn.Module, latents: torch.Tensor, t: torch.Tensor, context: torch.Tensor
) -> torch.Tensor:
    """``ε_θ(z_t, t, c)`` of a video UNet on ``(B, C, F, h, w)`` latents and ``(B, L, D)`` context.

    A flow transformer (``WanTransformer3DModel``) returns its velocity
    ``v = ε − x₀`` instead, at ``t = σ · num_train_timesteps``.
    ``UNetMotionModel`` runs its spatial layers per frame and wants one
    context per frame ``(B·F, L, D)``; ``UNet3DConditionModel`` repeats the
    context itself.
    """
    from diffusers import WanTransformer3DModel

    if isinstance(unet, WanTransformer3DModel):  # Wan 2.x and the toy flow model's subclass
        return unet(
            hidden_states=latents.to(unet.dtype), timestep=t, encoder_hidden_states=context, return_dict=False
        )[0]
    if type(unet).__name__ == "UNetMotionModel":
        context = context.repeat_interleave(latents.shape[2], dim=0)
    return unet(latents, t, encoder_hidden_states=context, return_dict=False)[0]


@dataclass
class TuningTarget:
    """What motion distillation trains on, for one model: network, schedule, latents, context, LoRA targets."""

    network: torch.nn.Module  # a video UNet, or a flow transformer
    scheduler: Any
    latents: torch.Tensor  # (1, C, F, h, w) clean latents of the keyframes
    context: torch.Tensor  # (1, L, D) the training prompt's text states
    pattern: str | None  # LoRA targets; None: the tuning config's temporal-attention pattern
    scope: contextlib.AbstractContextManager


def tuning_target(model, video: torch.Tensor, prompt: str) -> TuningTarget:
    """The :class:`TuningTarget` of keyframes ``(1, 3, F, H, W)`` in [-1, 1] for ``model``.

    A UNet model trains its temporal attention under :meth:`denoising` (the
    config's pattern): a UNet3D's ``temp_attentions``; AnimateDiff's
    ``motion_modules`` (``attn1`` / ``attn2`` ``to_q / to_k / to_v`` of each
    temporal transformer block; both are self-attention over frames, and they
    are the only layers where AnimateDiff's frames meet, its spatial SD 1.5
    layers run frame by frame); a Wan
    model (Search-T2V §4.3 carried to a transformer) its blocks' self-attention
    over latent frames, with the flow-matching scheduler; Wan 2.2 is refused
    (two experts, one LoRA).
    """
    from generation.wan_backend import WanModel

    if isinstance(model, WanModel):
        model.family.refuse("motion_lora")
        with torch.no_grad():
            latents = model.encode_video(video)
        tokens = model.info.max_prompt_tokens if model.info is not None else 512
        context = model.encode_prompt([prompt], tokens)
        return TuningTarget(
            model.transformer,
            model.make_scheduler(),
            latents,
            context,
            transformer_target_pattern(),
            contextlib.nullcontext(),
        )
    video = video.to(model.device, model.dtype)
    return TuningTarget(
        model.unet,
        model.make_scheduler(),
        model.encode_video(video),
        model.encode_prompt([prompt]).embeds,
        None,
        model.denoising(),
    )
