"""Glue between the generation service and VidRD: one clip's setup from a :class:`ClipStartSpec`.

Files in, files out: the previous clip's hand-off (or the user's image), the
anchor, and this clip's own hand-off for the next clip. The service calls
:meth:`ClipSetup.create`, draws its usual fresh noise, then
``initial_latents`` -> ``sample_ddim(setup.denoiser, latents_hook=setup.hook)``
-> ``finish``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from generation.anchor import AnchoredDenoiser, AnchorRecorder
from generation.clip_plan import ClipStartSpec
from generation.extension import ClipConditioning, PromptFrames, compose_hooks, guidance_schedule
from generation.images import load_image


def encode_image(model: Any, path: str | Path) -> torch.Tensor:
    """The image's VAE latents ``(1, C, 1, h, w)`` (posterior mean, scaled)."""
    from generation.backend import uint8_to_frames

    frames = load_image(path, model.info.height, model.info.width)[None]  # (1, H, W, 3)
    video = uint8_to_frames(frames).to(model.device, model.dtype)  # (1, 3, 1, H, W)
    return model.encode_video(video)


class ClipSetup:
    """One clip of a long video: its conditioning (VidRD), optional anchor, and what it records."""

    def __init__(
        self,
        model: Any,
        spec: ClipStartSpec,
        conditioning: ClipConditioning,
        anchor_denoiser: AnchoredDenoiser | None,
        anchor_recorder: AnchorRecorder | None,
        prompt_embeds: torch.Tensor,
    ):
        self.model = model
        self.spec = spec
        self.conditioning = conditioning
        self.anchor_denoiser = anchor_denoiser
        self.anchor_recorder = anchor_recorder
        self.prompt_embeds = prompt_embeds

    @classmethod
    def create(
        cls,
        model: Any,
        spec: ClipStartSpec,
        num_steps: int,
        prompt_embeds: torch.Tensor,
        fresh: torch.Tensor,
        generator: torch.Generator,
    ) -> ClipSetup:
        """Read what the clip starts from. ``fresh`` is the clip's standard normal draw ``(1, C, N, h, w)``."""
        params = spec.params.resolved(fresh.shape[2])
        if spec.start == "image":
            # An image always prompts, even for the baseline. A still image has no direction to keep:
            # frame 0 is the image and is held longest (eq. 8's order), in either VidRD reading.
            params = params.model_copy(update={"mode": "vidrd-literal"})
        previous = None
        if spec.start in ("previous_clip", "previous_scene"):
            if spec.previous_path is None:
                raise ValueError(
                    f"a clip starting from the {spec.start.replace('_', ' ')} needs its hand-off"
                )
            previous = PromptFrames.load(Path(spec.previous_path), model.device, model.dtype)
        elif spec.start == "image":
            if spec.image_path is None:
                raise ValueError("an image start needs the image")
            scheduler = model.make_scheduler()
            scheduler.set_timesteps(num_steps)
            with torch.inference_mode():
                image = encode_image(model, spec.image_path)
            virtual = torch.randn(fresh.shape, generator=generator).to(fresh.device, fresh.dtype)
            schedule = guidance_schedule(params.prompt_frames, params.beta, num_steps) if params.dsg else [0]
            previous = PromptFrames.from_image(
                image,
                virtual,
                params.prompt_frames,
                [int(t) for t in scheduler.timesteps],
                scheduler.add_noise,
                entries=schedule[0] + 1,
            )
        conditioning = ClipConditioning(
            params, num_steps, previous=previous, record=spec.handoff_path is not None
        )
        anchor_denoiser = None
        anchor_recorder = None
        if spec.anchor_role == "apply" and spec.anchor_path is not None:
            anchor_denoiser = AnchoredDenoiser.load(model, Path(spec.anchor_path))
        elif spec.anchor_role == "record" and spec.anchor_path is not None:
            anchor_recorder = AnchorRecorder()
        return cls(model, spec, conditioning, anchor_denoiser, anchor_recorder, prompt_embeds)

    def initial_latents(self, fresh: torch.Tensor) -> torch.Tensor:
        return self.conditioning.initial_latents(fresh)

    @property
    def denoiser(self) -> Any:
        return self.anchor_denoiser if self.anchor_denoiser is not None else self.model

    @property
    def hook(self):
        return compose_hooks(self.conditioning.hook, self.anchor_recorder)

    @contextlib.contextmanager
    def installed(self) -> Iterator[ClipSetup]:
        if self.anchor_denoiser is None:
            yield self
            return
        with self.anchor_denoiser.installed():
            yield self

    def finish(self, latents: torch.Tensor) -> torch.Tensor:
        """Eq. 8's last entry, then save the hand-off and the anchor where the spec asks."""
        latents = self.conditioning.finish(latents)
        if self.spec.handoff_path is not None:
            self.conditioning.handoff().save(Path(self.spec.handoff_path))
        if self.anchor_recorder is not None and self.spec.anchor_path is not None:
            self.anchor_recorder.save(Path(self.spec.anchor_path), self.prompt_embeds)
        return latents
