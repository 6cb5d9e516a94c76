"""VidRD clip extension (§4.3, eq. 6-7) on the flow path, over *latent* frames.

Frame arithmetic. Wan's causal VAE compresses time ``r = 4`` times after the
first frame: a clip of ``N = r(n − 1) + 1`` video frames has ``n`` latent
frames (13 frames = 4 latent frames, 81 = 21). Latent frame 0 decodes to one
video frame, every later latent frame to ``r``. The prompt frames are whole
latent frames: the last ``m`` latent frames of clip ``i − 1`` become the first
``m`` of clip ``i``, and there decode to ``M = r(m − 1) + 1`` video frames
(:meth:`generation.clip_plan.ExtensionParams.resolved` rounds the default
``N // 2`` down to that form; for ``N = 13``: ``M = 5``, ``m = 2``). With
``keep="new"`` an extension clip then adds ``N − M`` video frames (8 for
``N = 13``): a 25-frame scene is clips of 13, +8 and +4 kept frames.

What runs, in latent frames ``j`` of ``n`` (the UNet path's equations,
generation.extension, with latent frames for frames):

* the initial noise: FNR, eq. 6' in forward time (``mode="vidrd"``:
  ``z_1^{i,j} = z_1^{i-1,(j+n-m) mod n}``) or eq. 6 as printed
  (``vidrd-literal``: ``z_1^{i-1,n-j-1}``), with PNS eq. 7' / 7 (``α``) for
  ``j >= m``;
* staged guidance (DSG, eq. 8' / 8) over latent frames: the previous clip's
  latent frame ``n-1-d`` (the ``d``-th from the join) replaces latent frame
  ``m-1-d`` (forward) or ``d`` (literal) at entries ``1 .. g_d``, with
  ``g_d = guided_step_count(d, m, β, S)``, entry ``S`` being the clean
  latents. In forward time the prompt latent frames are the overlap that
  ``keep="new"`` drops, so the video shows clip ``i-1``'s last frame and then
  clip ``i``'s frame ``M``, which the model made next to a copy of it.

Image to video (``--image``): latent frame 0 is the image's Wan VAE latents
``z_img`` (:func:`generation.long_video.encode_image`), held at every entry on
the flow's own path ``x_σ = (1 − σ) z_img + σ ε`` (ε: the clip's own frame-0
noise), and exactly ``z_img`` at the end (σ = 0); it decodes to the first
video frame. The other latent frames are sampled freely around it.

A hand-off (:class:`generation.extension.PromptFrames`) is clip ``i − 1``'s
initial noise and its last ``m`` latent frames at entries ``0 .. S``:
``(S + 1, B, C, m, h, w)``.

Before issue 18 this path held the prompt latent frames in forward order at
every entry (no ``β``) on reversed noise for the new frames; ``β = 1`` now
holds the latent frame next to the join to the end, the others less.
"""

from __future__ import annotations

from pathlib import Path

import torch

from generation.clip_plan import ClipStartSpec
from generation.extension import PromptFrames, guidance_schedule, staged_guidance, vidrd_initial
from generation.families import Family
from generation.toy_transformer import GivenFrames
from reelgraph.errors import ReelgraphError


def prompt_latent_frames(family: Family, prompt_frames: int) -> int:
    """``m``: the latent frames that ``M = r(m − 1) + 1`` prompt video frames are."""
    return family.latent_frames(prompt_frames)


def _declares(model, capability: str) -> bool:
    """Whether the model's ``reelgraph.json`` declares a continuation-network capability:
    ``conditioning_frames`` (given frames with a mask: the toy flow model's conditioning channels),
    ``condition_noise`` (trained with noise-augmented given frames), ``anchor_frame``."""
    return bool(getattr(getattr(model, "info", None), capability, False))


class FlowClipExtension:
    """One flow clip's share of the extension: its initial noise, the holding hook, its hand-off."""

    def __init__(self, model, spec: ClipStartSpec, num_frames: int, num_steps: int):
        family: Family = model.family
        device, dtype = model.device, model.dtype
        self.image: torch.Tensor | None = None
        self.sigmas: list[float] = []
        if spec.start == "image":
            family.refuse("image2video")
            if spec.image_path is None:
                raise ValueError("an image start needs the image")
            from generation.long_video import encode_image

            with torch.inference_mode():
                self.image = encode_image(model, spec.image_path)  # (1, C, 1, h, w)
            scheduler = model.make_scheduler()
            scheduler.set_timesteps(num_steps)
            sigmas = [float(s) for s in scheduler.sigmas]
            self.sigmas = (sigmas + [0.0] * (num_steps + 1))[: num_steps + 1]
        artv = spec.params.mode == "artv"
        if spec.anchor_role != "none" and not (artv and _declares(model, "anchor_frame")):
            raise ReelgraphError(
                f"Anchoring to the first clip is not available here for {family.name} models.",
                why="on a flow transformer the anchor is ART-V's anchor frame (§3.4), which only a "
                "continuation network trained with one takes (--extension artv, reelgraph.json "
                '"anchor_frame": true); the training-free anchor lives in the UNet\'s attention layers.',
                fix="run without --anchor (REELGRAPH_ANCHOR_FIRST_CLIP=false), or with --extension artv "
                "on such a model.",
            )
        self.anchor: torch.Tensor | None = None  # (1, C, h, w): the video's first latent frame
        if spec.anchor_role == "apply" and spec.anchor_path is not None:
            from safetensors.torch import load_file

            self.anchor = load_file(spec.anchor_path)["anchor"].to(device, dtype)
        self.noise_level = spec.params.given_noise if _declares(model, "condition_noise") else 0.0
        self.params = spec.params.resolved(num_frames, family.temporal_compression)
        self.spec = spec
        self.num_steps = num_steps
        self.m = prompt_latent_frames(family, int(self.params.prompt_frames))
        self.forward = self.params.forward
        # DSG over latent frames: schedule[d] = guided steps of the previous clip's latent frame n-1-d.
        self.schedule = guidance_schedule(self.m, self.params.beta, num_steps) if self.params.dsg else []
        self.previous: PromptFrames | None = None
        # ART-V §3.1 masked diffusion: given frames go through the network's conditioning channels
        # (Wan's image-to-video layout) instead of being held in the latents.
        self.masked = self.params.mode == "artv" or (
            self.image is not None and _declares(model, "conditioning_frames")
        )
        if self.params.mode == "artv" and not _declares(model, "conditioning_frames"):
            raise ValueError(
                "extension_mode 'artv' needs a model that takes given frames; the plan refuses it"
            )
        if spec.start in ("previous_clip", "previous_scene") and self.params.reuses_clips:
            if spec.previous_path is None:
                raise ValueError(
                    f"a clip starting from the {spec.start.replace('_', ' ')} needs its hand-off"
                )
            self.previous = PromptFrames.load(Path(spec.previous_path), device, dtype)
            if self.previous.tail.shape[0] != num_steps + 1 or self.previous.tail.shape[3] != self.m:
                raise ReelgraphError(
                    "The previous clip's prompt frames were made for other settings.",
                    why=f"they hold {self.previous.tail.shape[3]} latent frames at "
                    f"{self.previous.tail.shape[0]} entries; this clip needs {self.m} at {num_steps + 1}.",
                    fix="sample the scene again with the same steps and prompt frames.",
                )
        self.record = spec.handoff_path is not None
        self._initial: torch.Tensor | None = None
        self._tail: list[torch.Tensor] = []

    def given(self, latents: torch.Tensor) -> GivenFrames | None:
        """ART-V's conditioning for a clip of latents ``(1, C, n, h, w)``: the previous clip's last ``m``
        latent frames (or the image) as frames ``0 .. m-1`` with their mask ``(1, 1, n, h, w)``, noised to
        ``given_noise`` on the flow's path with the clip's own noise at those frames where the network
        was trained so (§3.3), and the video's first latent frame as anchor when anchoring (§3.4; an
        image start is its own anchor). None when nothing is given through the conditioning channels."""
        if not self.masked or self.previous is None:
            return None
        known = self.image if self.image is not None else self.previous.tail[-1]  # (1, C, m, h, w), clean
        k = known.shape[2]
        given = torch.zeros_like(latents)
        given[:, :, :k] = known.to(latents)
        if self.noise_level > 0:
            assert self._initial is not None, "given() after initial_latents()"
            s = self.noise_level
            given[:, :, :k] = (1.0 - s) * given[:, :, :k] + s * self._initial[:, :, :k].to(latents)
        mask = torch.zeros_like(latents[:, :1])
        mask[:, :, :k] = 1.0
        anchor = self.anchor
        if anchor is None and self.image is not None and self.spec.anchor_role != "none":
            anchor = self.image[:, :, 0]
        return GivenFrames(given, mask, self.noise_level, None if anchor is None else anchor.to(latents))

    def initial_latents(self, fresh: torch.Tensor) -> torch.Tensor:
        """``z`` at σ = 1 ``(1, C, n, h, w)``: ``fresh`` (eq. 5), or eq. 6 / eq. 7 from the previous clip."""
        if self.masked:  # ART-V: fresh noise; the given frames enter through the mask channels
            if self.image is not None:
                self.previous = PromptFrames(initial=fresh, tail=self.image.to(fresh)[None])
            self._initial = fresh
            return fresh
        if self.image is not None:  # a virtual previous clip: the image on the flow path, entries 0 .. S
            noise = fresh[:, :, :1]
            image = self.image.to(fresh)
            tail = torch.stack([(1.0 - s) * image + s * noise for s in self.sigmas])
            self.previous = PromptFrames(initial=fresh, tail=tail)
            initial = fresh
        else:
            initial = vidrd_initial(self.previous, fresh, self.m, self.params)
        self._initial = initial
        return initial

    def _hold(self, entry: int, latents: torch.Tensor) -> torch.Tensor:
        if self.previous is None:
            return latents
        if self.masked:  # the clean given frames replace the model's copy of them in the output only
            if entry < self.num_steps:
                return latents
            known = self.image if self.image is not None else self.previous.tail[-1]
            out = latents.clone()
            out[:, :, : known.shape[2]] = known.to(latents)
            return out
        if self.image is None:  # a previous clip: staged guidance, eq. 8' (forward) or eq. 8
            return staged_guidance(latents, self.previous.tail[entry], entry, self.schedule, self.forward)
        held = self.previous.tail[entry]  # (B, C, 1, h, w): the image on the flow path, every entry
        out = latents.clone()
        out[:, :, : held.shape[2]] = held.to(latents)
        return out

    def _step(self, entry: int, latents: torch.Tensor) -> torch.Tensor:
        latents = self._hold(entry, latents)
        if entry == 0:
            self._initial = latents  # the state at σ = 1 that was sampled from, prompt frames held
        if self.record:
            self._tail.append(latents[:, :, -self.m :].detach().float().cpu().clone())
        return latents

    def hook(self, step: int, t: int, latents: torch.Tensor) -> torch.Tensor:
        """``latents_hook`` for :func:`~generation.flow_sampling.flow_sample`: hold, then record entry ``step``."""
        return self._step(step, latents)

    def finish(self, latents: torch.Tensor) -> torch.Tensor:
        """Entry ``S`` (the clean latents): hold and record, then save the hand-off where the spec asks."""
        latents = self._step(self.num_steps, latents)
        if self.spec.anchor_role == "record" and self.spec.anchor_path is not None:
            from safetensors.torch import save_file

            from reelgraph.atomic import atomic_path

            with atomic_path(Path(self.spec.anchor_path)) as tmp:
                save_file({"anchor": latents[:, :, 0].float().cpu().contiguous()}, str(tmp))
        if self.record:
            if self._initial is None or len(self._tail) != self.num_steps + 1:
                raise RuntimeError("finish() before the clip was sampled")
            PromptFrames(initial=self._initial, tail=torch.stack(self._tail)).save(
                Path(self.spec.handoff_path)
            )
        return latents

    def details(self) -> dict:
        """For the clip's manifest entry."""
        return {
            "start": self.spec.start,
            "prompt_frames": self.params.prompt_frames,
            "prompt_latent_frames": self.m,
            "held_latent_frames": 0 if self.previous is None else int(self.previous.tail.shape[3]),
            "noise": ("FNR+PNS" if self.params.pns else "FNR")
            if self.previous is not None and self.image is None and not self.masked
            else "fresh",
            "held": self._held(),
        }

    def _held(self) -> str:
        if self.previous is None:
            return "none"
        if self.masked:
            noise = f", noised to {self.noise_level:g}" if self.noise_level else ""
            anchor = ", anchored to the video's first frame" if self.spec.anchor_role == "apply" else ""
            return f"given with a mask (ART-V masked diffusion{noise}{anchor}), the clean frames kept in the output"
        if self.image is not None:
            return "every step"
        if not self.schedule:
            return "none (DSG off)"
        order = "in forward time" if self.forward else "reversed (eq. 8 as printed)"
        steps = ", ".join(str(count) for count in self.schedule)
        return f"staged, {order}: latent frames from the join guided {steps} of {self.num_steps} steps"
