"""The generation service: what the agent's GPU nodes call.

It owns the video model (loaded once, on first use), turns
:class:`~reelgraph.contracts.clips.ClipRequest` objects into clip latents saved as
safetensors, and turns saved latents into the run's viewing files. The agent
never sees a tensor: only requests, paths and numbers.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from pathlib import Path

from generation.clip_files import save_clip
from generation.clip_plan import ClipStartSpec
from generation.model_info import ModelInfo, locate_model, read_model_info
from reelgraph.contracts.clips import ClipRequest, ClipResult
from reelgraph.errors import ReelgraphError
from reelgraph.settings import Settings

ProgressHook = Callable[[str, int, int], None]
"""``progress(label, completed, total)``: called after each denoising step."""


class GenerationService:
    def __init__(self, settings: Settings, progress: ProgressHook | None = None):
        self.settings = settings
        self.progress = progress

    # -- describing the model (no torch) -------------------------------------------------
    @functools.cached_property
    def model_info(self) -> ModelInfo:
        folder, model_id = locate_model(self.settings.model)
        return read_model_info(
            folder, model_id=model_id, hash_memo=self.settings.cache_dir / "weights-hashes.json"
        )

    def default_guidance(self) -> float:
        if self.settings.guidance_scale is not None:
            return self.settings.guidance_scale
        return self.model_info.guidance_scale

    def check_clip(self, request: ClipRequest) -> None:
        """Refuse what the model cannot do, before any weights load."""
        info = self.model_info
        if request.num_frames < 2 or request.num_frames > info.num_frames:
            raise ReelgraphError(
                f"{request.num_frames} frames cannot be made in one clip by {info.model_id!r}.",
                why=f"this model makes clips of 2 to {info.num_frames} frames.",
                fix=f"ask for --frames 2 or more (longer than {info.num_frames}: the video is extended "
                "clip by clip).",
            )
        if not request.prompt.strip():
            raise ReelgraphError(
                "The prompt is empty.", fix="describe the video, e.g. 'a red ball rolls to the right'."
            )
        if self.is_flow:
            from generation.families import family_named
            from generation.flow_clip import check_flow_frames

            check_flow_frames(family_named(info.family), request.num_frames)

    # -- the model (torch from here on) ---------------------------------------------------
    @property
    def is_flow(self) -> bool:
        """Whether the model is a flow-matching family (Wan), sampled by :mod:`generation.flow_clip`."""
        from generation.families import family_named

        return family_named(self.model_info.family).sampler == "flow"

    @functools.cached_property
    def model(self):
        from generation.loaders import load_video_model

        if self.is_flow:
            from generation.flow_loaders import load_flow_model

            return load_flow_model(self.settings, self.model_info)
        return load_video_model(
            self.settings.model,
            device=self.settings.device,
            dtype=self.settings.dtype,
            cpu_offload=self.settings.cpu_offload,
            vae_slice_frames=self.settings.vae_slice_frames,
            hash_memo=self.settings.cache_dir / "weights-hashes.json",
        )

    def scheduler_config(self) -> dict:
        return dict(self.model.scheduler_config)

    def sample_clip(
        self,
        request: ClipRequest,
        latents_path: Path,
        label: str = "sampling",
        extension: ClipStartSpec | None = None,
    ) -> ClipResult:
        """Denoise one clip and save its latents ``(1, C, F, h, w)``.

        From Gaussian noise; or, with ``extension``, as a clip of a long video
        (VidRD §4.3: from the previous clip's prompt frames or an image, see
        :mod:`generation.long_video`), leaving what the next clip needs.
        """
        import torch

        from generation.adapters import applied_lora
        from generation.pos import initial_noise, text_conditioning
        from generation.sampling import StepInfo, sample_ddim

        self.check_clip(request)
        if self.is_flow:
            return self._sample_flow_clip(request, latents_path, label, extension)
        model = self.model
        started = time.perf_counter()
        prompt = model.encode_prompt([request.prompt])
        negative = model.encode_prompt([request.negative_prompt])
        warnings = []
        if prompt.truncated[0]:
            warnings.append(
                f"The prompt is longer than the text encoder's {model.info.max_prompt_tokens} tokens; "
                "the end was cut off."
            )
        generator = torch.Generator("cpu").manual_seed(request.seed)
        # POS: ε_mix (eq. 4-5) for ONA / NPNet, the seed's Gaussian otherwise; eq. 8's step-wise text.
        latents, noise_details = initial_noise(
            model, request, generator, prompt.embeds, self.inversions, self.npnet
        )
        conditioning, text_details, text_warnings = text_conditioning(model, request, prompt.embeds)
        warnings.extend(text_warnings)

        setup = None
        if extension is not None:
            from generation.long_video import ClipSetup

            setup = ClipSetup.create(
                model, extension, request.num_inference_steps, prompt.embeds, latents, generator
            )
            latents = setup.initial_latents(latents)

        def on_step(info: StepInfo) -> None:
            if self.progress is not None:
                self.progress(label, info.step + 1, info.num_steps)

        # The LoRA goes in first (outside inference mode: its weights are parameters) and out last.
        lora = applied_lora(model.unet, request.lora_path, request.lora_scale)
        with (
            lora,
            torch.inference_mode(),
            model.denoising(),
            setup.installed() if setup else contextlib.nullcontext(),
        ):
            latents = sample_ddim(
                setup.denoiser if setup else model,
                model.make_scheduler(),
                latents,
                conditioning,
                negative.embeds,
                num_inference_steps=request.num_inference_steps,
                guidance_scale=request.guidance_scale,
                eta=request.eta,
                generator=generator,
                latents_hook=setup.hook if setup else None,
                callback=on_step,
            )
            if setup is not None:
                latents = setup.finish(latents)
        details = {"noise": noise_details, **text_details}
        return save_clip(latents, latents_path, request, started, details, extension, warnings)

    def _sample_flow_clip(self, request, latents_path, label, extension) -> ClipResult:
        from generation.flow_clip import sample_flow_clip

        def on_step(info) -> None:
            if self.progress is not None:
                self.progress(label, info.step + 1, info.num_steps)

        info = self.model_info
        return sample_flow_clip(
            self.model,
            request,
            latents_path,
            info.height,
            info.width,
            info.max_prompt_tokens,
            extension,
            on_step,
            inversions=self.inversions,
            load_npnet=self.npnet,
        )

    # -- POS's stores ------------------------------------------------------------------------
    @functools.cached_property
    def inversions(self):
        from generation.inversion_cache import InversionCache

        return InversionCache(self.settings.cache_dir)

    @functools.cache  # noqa: B019 - one service per run; NPNets are few and small
    def npnet(self, path: str):
        from generation.npnet import load_npnet

        return load_npnet(path, self.model.device)

    def decode_clip(self, latents_path: Path, kept: tuple[int, int] | None = None):
        """Saved latents to ``(F, H, W, 3)`` uint8 frames; only frames ``[kept[0], kept[1])`` when given."""
        import torch
        from safetensors.torch import load_file

        from generation.backend import frames_to_uint8

        latents = load_file(str(latents_path))["latents"]
        if kept is not None and not self.is_flow:
            latents = latents[:, :, kept[0] : kept[1]]
        latents = latents.to(self.model.device, self.model.dtype)
        with torch.inference_mode():
            frames = frames_to_uint8(self.model.decode_latents(latents))[0]
        # A causal VAE (Wan) decodes the whole clip; ``kept`` counts its video frames, not latent ones.
        return frames[kept[0] : kept[1]] if kept is not None and self.is_flow else frames

    def write_outputs(
        self,
        latents_paths: list[Path],
        run_dir: Path,
        caption: str,
        kept: list[tuple[int, int] | None] | None = None,
    ) -> dict:
        """Decode clip by clip (only each clip's ``kept`` frames) and stream them into the viewing files."""
        from generation.outputs import write_outputs

        kept = kept or [None] * len(latents_paths)
        files = write_outputs(
            (self.decode_clip(path, window) for path, window in zip(latents_paths, kept, strict=True)),
            run_dir,
            caption,
            fps=self.model_info.fps,
            view_scale=self.settings.view_scale,
        )
        return {**files, "fps": self.model_info.fps}
