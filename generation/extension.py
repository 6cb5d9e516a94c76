"""VidRD clip extension (§4.3, eq. 5-8, Algorithm 1): the next clip from the previous one's prompt frames.

Notation of the paper: ``z^{i,j}`` is frame ``j`` of clip ``i``; clips have
``N`` frames; the last ``M`` frames of clip ``i - 1`` prompt clip ``i``. Our
DDIM loop (:func:`generation.sampling.sample_ddim`) runs ``S`` steps; the
paper's ``t`` counts them down, ``t = S, S-1, ..., 1``, and step ``t`` turns
``z_t`` into ``z_{t-1}``. We index the latents along the way by *entry*
``k = S - t``: entry ``k`` is the input of loop step ``k`` (entry 0 is the
initial noise ``z_T``, entry ``S`` is ``z_0``), which is what
``latents_hook(step=k, ...)`` sees.

Two readings (``ExtensionParams.mode``; docs/long-videos.md says why):

* ``vidrd-literal``, the equations as printed (and as VidRD's code runs them):

  * Frame-level Noise Reversion, eq. 6: ``z_T^{i,j} = z_T^{i-1,N-j-1}``.
  * Past-dependent Noise Sampling, eq. 7: prompt frames ``j < M`` as in eq. 6;
    the others ``α/√(1+α²) z_T^{i-1,N-j-1} + ε^{i,j}``, ``ε ~ N(0, I/(1+α²))``.
  * Denoising with Staged Guidance, eq. 8: the output ``z_{t-1}^{i,j}`` of step
    ``t`` is replaced by clip ``i - 1``'s ``z_{t-1}^{i-1,N-j-1}`` while
    ``t > (1-β)S + βSj/M``. In entries: frame ``j`` takes the previous clip's
    entry ``k`` for ``1 <= k <= guided_step_count(j)``.

  Frame ``j`` of clip ``i`` mirrors frame ``N-1-j`` of clip ``i-1``: after the
  join the video plays the previous clip's end backwards.

* ``vidrd`` (keeping direction): the same reuse in forward time. Source frame
  ``s(j) = N-M+j`` replaces ``N-j-1`` everywhere: the noise is the previous
  clip's noise rotated by ``M`` frames (``z_T^{i,j} = z_T^{i-1,(j+N-M) mod N}``,
  eq. 6'), PNS mixes that with ``α`` (eq. 7'), and DSG copies frame ``N-M+j``
  into frame ``j``. Staged guidance keeps its order *by distance from the
  join*: the previous clip's frame ``N-1-d`` is guided for
  ``guided_step_count(d)`` steps in both readings; it lands in frame ``d``
  (literal) or ``M-1-d`` (forward), so the prompt frame next to the new
  frames is held longest (eq. 8').

VidRD's released code applies the replacement to the *input* of step ``t``
under the same inequality, one step later than eq. 8 as printed; we follow
the equation (docs/long-videos.md).

What one clip hands to the next (:class:`PromptFrames`) is small: its initial
noise and its last ``M`` frames at the first ``K + 1`` entries, ``K`` being
the number of guided steps of frame 0. Nothing else of a finished clip is
kept, so memory does not grow with the number of clips.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch

from generation.clip_plan import ExtensionParams

LatentsHook = Callable[[int, int, torch.Tensor], torch.Tensor]


# --- the three equations ------------------------------------------------------------------------


def reverted_noise(previous_initial: torch.Tensor) -> torch.Tensor:
    """Frame-level Noise Reversion, VidRD eq. 6: ``z_T^{i,j} = z_T^{i-1,N-j-1}``.

    Args:
        previous_initial: ``z_T^{i-1}``, ``(B, C, N, h, w)``.

    Returns:
        ``z_T^i``, ``(B, C, N, h, w)``: the previous clip's initial noise in reversed frame order.
    """
    return previous_initial.flip(2)


def rotated_noise(previous_initial: torch.Tensor, num_prompt_frames: int) -> torch.Tensor:
    """FNR keeping direction (eq. 6'): ``z_T^{i,j} = z_T^{i-1,(j+N-M) mod N}``.

    The prompt frames ``j < M`` get the noise of the frames they continue
    (``N-M .. N-1``, in order); the new frames ``j >= M`` reuse the rest of the
    previous clip's noise, also in order. Every frame's noise is reused once,
    as in eq. 6.

    Args:
        previous_initial: ``z_T^{i-1}``, ``(B, C, N, h, w)``.
        num_prompt_frames: ``M``.
    """
    return previous_initial.roll(shifts=num_prompt_frames, dims=2)


def reused_noise(previous_initial: torch.Tensor, num_prompt_frames: int, forward: bool) -> torch.Tensor:
    """The previous clip's noise in this clip's frame order: eq. 6' (``forward``) or eq. 6."""
    if forward:
        return rotated_noise(previous_initial, num_prompt_frames)
    return reverted_noise(previous_initial)


def past_dependent_noise(
    previous_initial: torch.Tensor,
    fresh: torch.Tensor,
    num_prompt_frames: int,
    alpha: float,
    forward: bool = False,
) -> torch.Tensor:
    """Past-dependent Noise Sampling, VidRD eq. 7 (``forward``: eq. 7', on the rotated noise).

    ``z_T^{i,j} = z_T^{i-1,N-j-1}`` for the prompt frames ``j < M``, and
    ``α/√(1+α²) · z_T^{i-1,N-j-1} + ε^{i,j}`` for ``j >= M``, with
    ``ε^{i,j} = fresh^{j} / √(1+α²) ~ N(0, I/(1+α²))``; every frame stays
    ``N(0, I)``. ``α = 0`` gives new noise for ``j >= M``; a large ``α``
    approaches eq. 6.

    Args:
        previous_initial: ``z_T^{i-1}``, ``(B, C, N, h, w)``.
        fresh: standard normal noise ``(B, C, N, h, w)`` (its first ``M`` frames are not used).
        num_prompt_frames: ``M``.
        alpha: ``α >= 0``.
        forward: mix the rotated noise (:func:`rotated_noise`) instead of the reversed one.
    """
    reverted = reused_noise(previous_initial, num_prompt_frames, forward)
    norm = math.sqrt(1.0 + alpha * alpha)
    mixed = (alpha / norm) * reverted + fresh.to(reverted.dtype) / norm
    m = num_prompt_frames
    return torch.cat([reverted[:, :, :m], mixed[:, :, m:]], dim=2)


def _fraction(value: float) -> Fraction:
    # β = 0.4 is not exact in binary; the thresholds of eq. 8 must not fall on the wrong side of an integer.
    return Fraction(value).limit_denominator(10**6)


def guided_step_count(frame: int, num_prompt_frames: int, beta: float, num_steps: int) -> int:
    """Denoising with Staged Guidance, VidRD eq. 8: how many of the ``S`` steps of frame ``j`` are guided.

    Step ``t`` (counting down ``S .. 1``) is guided when ``t > (1-β)S + βSj/M``,
    which holds for the first ``S - floor((1-β)S + βSj/M)`` steps (clipped to
    ``0 .. S``). Frames ``j >= M`` are never guided; ``β = 0`` guides nothing;
    ``β = 1`` guides frame 0 to the end.
    """
    if frame >= num_prompt_frames or frame < 0:
        return 0
    s = num_steps
    beta_f = _fraction(beta)
    threshold = (1 - beta_f) * s + beta_f * s * Fraction(frame, num_prompt_frames)
    return max(0, min(s, s - math.floor(threshold)))


def guidance_schedule(num_prompt_frames: int, beta: float, num_steps: int) -> list[int]:
    """``guided_step_count`` for every prompt frame ``j = 0 .. M-1`` (non-increasing in ``j``)."""
    return [guided_step_count(j, num_prompt_frames, beta, num_steps) for j in range(num_prompt_frames)]


def guided_frames(entry: int, schedule: list[int], forward: bool = False) -> list[tuple[int, int]]:
    """``(frame j of this clip, index into the previous clip's last M frames)`` replaced at ``entry`` ``k``.

    ``schedule[d]`` counts the guided steps of the previous clip's frame
    ``N-1-d`` (index ``M-1-d`` of its tail), the ``d``-th from the join. It
    lands in frame ``d`` (eq. 8, reversed) or frame ``M-1-d`` (eq. 8',
    ``forward``: frame ``j`` takes the previous frame ``N-M+j``).
    """
    m = len(schedule)
    pairs = []
    for d, count in enumerate(schedule):
        if 1 <= entry <= count:
            source = m - 1 - d
            pairs.append((source if forward else d, source))
    return sorted(pairs)


def staged_guidance(
    latents: torch.Tensor,
    previous_tail: torch.Tensor,
    entry: int,
    schedule: list[int],
    forward: bool = False,
) -> torch.Tensor:
    """Apply VidRD eq. 8 at ``entry`` ``k``: frame ``j`` takes ``z^{i-1,N-j-1}`` when ``1 <= k <= schedule[j]``.

    With ``forward`` (eq. 8'), frame ``j`` takes ``z^{i-1,N-M+j}`` when
    ``1 <= k <= schedule[M-1-j]`` (:func:`guided_frames`).

    Args:
        latents: this clip's entry ``k``, ``(B, C, N, h, w)``.
        previous_tail: the previous clip's last ``M`` frames at entry ``k``,
            ``(B, C, M, h, w)`` in their own order (frame ``N-M .. N-1``).
        schedule: :func:`guidance_schedule`.

    Returns:
        The latents with the guided frames replaced (a new tensor when any is).
    """
    pairs = guided_frames(entry, schedule, forward)
    if not pairs:
        return latents
    out = latents.clone()
    for j, source in pairs:
        out[:, :, j] = previous_tail[:, :, source].to(latents.dtype)
    return out


# --- what one clip hands to the next -------------------------------------------------------------


@dataclass
class PromptFrames:
    """What clip ``i - 1`` (or an image) leaves for clip ``i``.

    Attributes:
        initial: ``z_T^{i-1}``, ``(B, C, N, h, w)``, for eq. 6-7.
        tail: the last ``M`` frames at entries ``0 .. K``, ``(K + 1, B, C, M, h, w)``, for eq. 8.
    """

    initial: torch.Tensor
    tail: torch.Tensor

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        from reelgraph.atomic import atomic_path

        tensors = {
            "initial": self.initial.float().cpu().contiguous(),
            "tail": self.tail.float().cpu().contiguous(),
        }
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp))

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        return cls(
            initial=tensors["initial"].to(device, dtype),
            tail=tensors["tail"].to(device, dtype),
        )

    @classmethod
    def from_image(
        cls,
        image_latents: torch.Tensor,
        fresh: torch.Tensor,
        num_prompt_frames: int,
        timesteps: list[int],
        add_noise: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        entries: int,
    ) -> PromptFrames:
        """A virtual previous clip whose last ``M`` frames were the image all along.

        Its trajectory is the image re-noised to each entry's timestep with the
        frame's own initial noise, ``z_t = √ᾱ_t z_img + √(1-ᾱ_t) ε`` (the forward
        process); entry ``S`` is the image itself. Staged guidance then holds
        the first prompt frames on this trajectory and releases them frame by
        frame (eq. 8), so the clip starts at the image and moves on.

        Args:
            image_latents: ``(B, C, 1, h, w)`` VAE latents of the image.
            fresh: standard normal ``(B, C, N, h, w)``: the virtual clip's noise.
            timesteps: the scheduler's ``S`` timesteps (entry ``k`` has noise level ``timesteps[k]``).
            add_noise: the scheduler's forward process ``(z_0, ε, t) -> z_t``.
            entries: ``K + 1``, how many entries to build.
        """
        m = num_prompt_frames
        n = fresh.shape[2]
        image = image_latents.expand(-1, -1, m, -1, -1).to(fresh.dtype)
        noise = fresh[:, :, n - m :]
        tail = []
        for k in range(entries):
            if k >= len(timesteps):
                tail.append(image)
                continue
            t = torch.full((image.shape[0],), int(timesteps[k]), dtype=torch.long)
            tail.append(add_noise(image, noise, t))
        initial = torch.cat([fresh[:, :, : n - m], tail[0]], dim=2)
        return cls(initial=initial, tail=torch.stack(tail))


class ClipConditioning:
    """One clip's share of VidRD: its initial noise, the eq. 8 hook, and what it leaves for the next clip.

    Use: ``z_T = initial_latents(fresh)``; pass :meth:`hook` as
    ``sample_ddim(latents_hook=...)``; then ``z_0 = finish(z_0)`` and
    :meth:`handoff` for the next clip. With ``previous=None`` the clip starts
    from ``fresh`` unchanged (eq. 5) and only records.
    """

    def __init__(
        self,
        params: ExtensionParams,
        num_steps: int,
        previous: PromptFrames | None = None,
        record: bool = True,
    ):
        if params.prompt_frames is None:
            raise ValueError("resolve the extension parameters for the clip length first")
        if params.mode == "artv":
            raise ValueError(
                "extension_mode 'artv' has no sampler here; the plan refuses it (clip_plan.artv_refusal)"
            )
        self.params = params
        self.num_steps = num_steps
        self.previous = previous if params.reuses_clips else None
        self.forward = params.forward
        self.schedule = guidance_schedule(params.prompt_frames, params.beta, num_steps) if params.dsg else []
        # Entries the next clip's DSG will read: 0 .. K, K = guided steps of frame 0.
        self.entries_needed = (self.schedule[0] if self.schedule else 0) + 1
        self.record = record
        self._initial: torch.Tensor | None = None
        self._tail: list[torch.Tensor] = []

    @property
    def m(self) -> int:
        return int(self.params.prompt_frames)

    def initial_latents(self, fresh: torch.Tensor) -> torch.Tensor:
        """``z_T`` of this clip: eq. 5 (``fresh``) without a previous clip, else eq. 6 or eq. 7."""
        self._initial = vidrd_initial(self.previous, fresh, self.m, self.params)
        return self._initial

    def _guide(self, entry: int, latents: torch.Tensor) -> torch.Tensor:
        if self.previous is None or not self.schedule or entry == 0:
            return latents  # entry 0 is z_T, already set by eq. 6/7
        if entry >= self.previous.tail.shape[0]:
            if any(entry <= count for count in self.schedule):
                raise ValueError(f"the previous clip recorded no entry {entry} for staged guidance")
            return latents
        return staged_guidance(latents, self.previous.tail[entry], entry, self.schedule, self.forward)

    def _record(self, entry: int, latents: torch.Tensor) -> None:
        if self.record and entry < self.entries_needed:
            self._tail.append(latents[:, :, -self.m :].detach().clone())

    def hook(self, step: int, t: int, latents: torch.Tensor) -> torch.Tensor:
        """``latents_hook`` for :func:`~generation.sampling.sample_ddim`: eq. 8 at entry ``step``, then record."""
        latents = self._guide(step, latents)
        self._record(step, latents)
        return latents

    def finish(self, latents: torch.Tensor) -> torch.Tensor:
        """Entry ``S`` (``z_0``): the last replacement of eq. 8 (only when ``β`` guides to the end)."""
        latents = self._guide(self.num_steps, latents)
        self._record(self.num_steps, latents)
        return latents

    def handoff(self) -> PromptFrames:
        """What the next clip needs: this clip's ``z_T`` and its last ``M`` frames at entries ``0 .. K``."""
        if self._initial is None or len(self._tail) != self.entries_needed:
            raise RuntimeError("handoff() before the clip was sampled")
        return PromptFrames(initial=self._initial, tail=torch.stack(self._tail))


def compose_hooks(*hooks: LatentsHook | None) -> LatentsHook | None:
    """One ``latents_hook`` that runs ``hooks`` in order (``None`` entries skipped)."""
    active = [hook for hook in hooks if hook is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]

    def run(step: int, t: int, latents: torch.Tensor) -> torch.Tensor:
        for hook in active:
            latents = hook(step, t, latents)
        return latents

    return run


def vidrd_initial(previous, fresh: torch.Tensor, m: int, params) -> torch.Tensor:
    """A clip's initial latents ``(B, C, F, h, w)``: ``fresh`` (eq. 5) without a previous clip, else
    past-dependent noise (PNS, eq. 7 / 7') or the previous clip's reused noise (FNR, eq. 6 / 6');
    the primed equations when ``params.forward``."""
    if previous is None:
        return fresh
    if params.pns:
        return past_dependent_noise(previous.initial, fresh, m, params.alpha, params.forward)
    return reused_noise(previous.initial, m, params.forward).to(fresh.dtype)
