"""The video model our sampler drives: prompts in, noise predictions and frames out.

:class:`VideoModel` wraps diffusers components (a video UNet, an
``AutoencoderKL``, a text encoder and a scheduler config) behind the few
operations that every method of the papers needs:

* ``encode_prompt``: prompts to the cross-attention context ``(B, L, D)``;
* ``predict_noise``: the denoiser ``ε_θ(z_t, t, c)`` on latents ``(B, C, F, h, w)``;
* ``encode_video`` / ``decode_latents``: pixels ``(B, 3, F, H, W)`` in [-1, 1]
  to scaled latents and back, in slices of frames so long videos fit;
* ``make_scheduler`` / ``make_inverse_scheduler``: fresh DDIM schedulers from
  the checkpoint's scheduler config (schedulers are stateful, so each
  sampling run gets its own).

Loading lives in :mod:`generation.loaders`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from diffusers import DDIMInverseScheduler, DDIMScheduler

from generation.model_info import ModelInfo
from generation.text_encoders import EncodedPrompts


@dataclass
class VideoModel:
    """A loaded text-to-video model on one device.

    ``cpu_offload`` keeps every component on the CPU and moves each one to the
    accelerator only while it runs (text encoder, then UNet, then VAE), which
    trades speed for peak GPU memory.
    """

    info: ModelInfo
    unet: torch.nn.Module
    vae: torch.nn.Module
    prompt_encoder: Any
    scheduler_config: dict
    device: torch.device
    dtype: torch.dtype
    cpu_offload: bool = False
    vae_slice_frames: int = 8
    _resident: set = field(default_factory=set, repr=False)

    # -- shapes ---------------------------------------------------------------
    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return self.unet.config.in_channels

    @property
    def per_frame_context(self) -> bool:
        """Whether the UNet wants one text context per frame ``(B·F, L, D)``.

        AnimateDiff's ``UNetMotionModel`` runs its spatial (SD 1.5) layers on
        frames as a batch and leaves the repeat to ``AnimateDiffPipeline``;
        ``UNet3DConditionModel`` repeats the ``(B, L, D)`` context itself.
        """
        return type(self.unet).__name__ == "UNetMotionModel"

    @property
    def frames_as_batch(self) -> bool:
        """Whether the scheduler steps ``(B·F, C, h, w)`` (``TextToVideoSDPipeline``) or the 5-D latents.

        ``AnimateDiffPipeline`` steps ``(B, C, F, h, w)`` as they are; the two
        differ only in how DDIM's η noise is laid out (see :func:`generation.sampling.sample_ddim`).
        """
        return not self.per_frame_context

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    def latent_shape(self, batch_size: int, num_frames: int) -> tuple[int, int, int, int, int]:
        """``(B, C, F, H / s, W / s)`` for ``s`` the VAE's downsampling factor."""
        s = self.vae_scale_factor
        return (batch_size, self.latent_channels, num_frames, self.info.height // s, self.info.width // s)

    # -- schedulers -----------------------------------------------------------
    def make_scheduler(self) -> DDIMScheduler:
        return DDIMScheduler.from_config(self.scheduler_config)

    def make_inverse_scheduler(self) -> DDIMInverseScheduler:
        """DDIM inversion over the same noise levels as :meth:`make_scheduler` visits.

        ``from_config`` carries ``steps_offset``, ``timestep_spacing`` and
        ``set_alpha_to_one`` over, so inversion starts where denoising ends.
        """
        return DDIMInverseScheduler.from_config(self.scheduler_config)

    # -- placement ------------------------------------------------------------
    @contextlib.contextmanager
    def _on_device(self, module: torch.nn.Module) -> Iterator[None]:
        if not self.cpu_offload or self.device.type == "cpu":
            yield
            return
        module.to(self.device)
        try:
            yield
        finally:
            module.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    @contextlib.contextmanager
    def denoising(self) -> Iterator[None]:
        """Keep the UNet on the accelerator for a whole sampling loop."""
        with self._on_device(self.unet):
            yield

    # -- operations -------------------------------------------------------------
    def encode_prompt(self, prompts: list[str]) -> EncodedPrompts:
        """Prompts to ``(B, L, D)`` context on the model's device and dtype."""
        module = getattr(self.prompt_encoder, "model", None)  # CLIP moves; MiniLM stays on the CPU
        with self._on_device(module) if isinstance(module, torch.nn.Module) else contextlib.nullcontext():
            encoded = self.prompt_encoder.encode(list(prompts))
        return EncodedPrompts(encoded.embeds.to(self.device, self.dtype), encoded.truncated)

    def predict_noise(
        self, latents: torch.Tensor, t: torch.Tensor | int, encoder_hidden_states: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        """``ε_θ(z_t, t, c)``: ``(B, C, F, h, w)`` latents and ``(B, L, D)`` context to ``noise_pred``."""
        if self.per_frame_context:  # AnimateDiffPipeline: context.repeat_interleave(num_frames, dim=0)
            encoder_hidden_states = encoder_hidden_states.repeat_interleave(latents.shape[2], dim=0)
        return self.unet(
            latents, t, encoder_hidden_states=encoder_hidden_states, return_dict=False, **kwargs
        )[0]

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B, C, F, h, w)`` to float32 frames ``(B, 3, F, H, W)`` in [-1, 1]."""
        b, c, f, h, w = latents.shape
        flat = (latents / self.scaling_factor).permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        with self._on_device(self.vae):
            images = torch.cat(
                [
                    self.vae.decode(chunk.to(self.device, self.vae.dtype)).sample.float().cpu()
                    for chunk in flat.split(self.vae_slice_frames)
                ]
            )
        return images.reshape(b, f, *images.shape[1:]).permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, 3, F, H, W)`` in [-1, 1] to scaled latents ``(B, C, F, h, w)``.

        Uses the posterior mean, so the same video always gives the same
        latents (inversion caches rely on it).
        """
        b, _, f, h, w = video.shape
        flat = video.permute(0, 2, 1, 3, 4).reshape(b * f, 3, h, w)
        with self._on_device(self.vae):
            latents = torch.cat(
                [
                    self.vae.encode(chunk.to(self.device, self.vae.dtype)).latent_dist.mode()
                    for chunk in flat.split(self.vae_slice_frames)
                ]
            )
        latents = latents.to(self.dtype) * self.scaling_factor
        return latents.reshape(b, f, *latents.shape[1:]).permute(0, 2, 1, 3, 4)


def frames_to_uint8(video: torch.Tensor) -> np.ndarray:
    """``(B, 3, F, H, W)`` floats in [-1, 1] to ``(B, F, H, W, 3)`` uint8."""
    video = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return video.permute(0, 2, 3, 4, 1).cpu().numpy()


def uint8_to_frames(frames: np.ndarray) -> torch.Tensor:
    """``(F, H, W, 3)`` or ``(B, F, H, W, 3)`` uint8 to ``(B, 3, F, H, W)`` floats in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float() / 127.5 - 1.0
    if tensor.ndim == 4:
        tensor = tensor[None]
    return tensor.permute(0, 4, 1, 2, 3)
