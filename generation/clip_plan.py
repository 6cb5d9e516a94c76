"""Which clips a long scene needs, where each starts and which of its frames the video keeps.

Plain data and arithmetic (no torch), so the agent can plan, print and
record it. The sampling itself is :mod:`generation.extension`.

A scene of ``F`` frames is made of clips of ``N`` frames, the model's clip
length. With VidRD (§4.3), clip ``i >= 1`` takes its first ``M`` frames, the
*prompt frames*, from the last ``M`` frames of clip ``i - 1``: in forward time
(``mode="vidrd"``, frame ``j`` continues frame ``N-M+j``) or reversed as eq. 6-8
are printed (``mode="vidrd-literal"``, frame ``j`` mirrors frame ``N-1-j``).
Two joins are offered:

* ``keep="all"``: every clip contributes all ``N`` frames, as VidRD's own
  implementation concatenates clips; the prompt frames are new frames that
  staged guidance ties to the end of the previous clip (eq. 8 is there "to
  avoid the duplication of video frames").
* ``keep="new"``: an extension clip contributes only frames ``M .. N-1``;
  its prompt frames are treated as the overlap with the previous clip and
  are not shown twice.

``mode="independent"`` is the baseline: every clip from its own Gaussian
noise, all ``N`` frames kept, joined end to end. ``mode="artv"`` is ART-V's
masked diffusion (§3.1): a network that takes given frames with a mask (the
toy flow model's conditioning channels) gets the previous clip's last ``M``
frames and generates the rest; other models refuse it (:func:`artv_refusal`).
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reelgraph.errors import ReelgraphError

ClipStartKind = Literal["noise", "previous_clip", "previous_scene", "image"]
"""``noise``: Gaussian (eq. 5); ``previous_clip`` / ``previous_scene``: VidRD
extension from the last clip of this scene or of the scene before (a change
of prompt); ``image``: prompt frames encoded from the user's image."""


ExtensionMode = Literal["vidrd", "vidrd-literal", "artv", "independent"]

EXTENSION_MODES: dict[str, str] = {
    "vidrd": "VidRD keeping direction: the prompt frames continue the previous clip's last frames "
    "in forward time",
    "vidrd-literal": "VidRD as eq. 6-8 are printed: the prompt frames mirror the previous clip's last "
    "frames (reversed order)",
    "artv": "ART-V masked diffusion: the model takes the previous clip's last frames as given frames "
    "(with a mask) and generates the rest",
    "independent": "independent clips joined end to end (no extension)",
}
"""Every ``extension_mode`` (the ``--extension`` flag, the storyboard's ``extension:`` key) and what it does."""


def artv_refusal(
    conditioning_frames: bool, flow: bool, anchor: bool = False, anchor_frame: bool = False
) -> str | None:
    """Why ``extension_mode="artv"`` cannot run on a model, or None when it can: a flow model whose
    network takes given frames with a mask (ART-V §3.1's masked diffusion; the toy flow model), and
    for ``anchor`` one trained with an anchor frame (§3.4)."""
    if not conditioning_frames:
        return (
            "the model has no continuation network: ART-V's masked diffusion needs a model trained to take "
            'conditioning frames with a mask (its reelgraph.json declares "conditioning_frames": true)'
        )
    if not flow:
        return "ART-V's masked continuation runs on the flow-matching path only (no DDIM model takes given frames)"
    if anchor and not anchor_frame:
        return (
            "the anchor was asked for, but the model's continuation network was not trained with an anchor "
            'frame (its reelgraph.json lacks "anchor_frame": true); run without --anchor'
        )
    return None


class ExtensionParams(BaseModel):
    """How clips after the first are made (VidRD §4.3); ``prompt_frames`` unset means ``N // 2``."""

    model_config = ConfigDict(frozen=True)

    mode: ExtensionMode = "vidrd"
    pns: bool = True
    dsg: bool = True
    prompt_frames: int | None = Field(None, ge=1)
    alpha: float = Field(4.0, ge=0)
    beta: float = Field(0.4, ge=0, le=1)
    keep: Literal["all", "new"] = "new"
    continue_scenes: bool = True
    anchor: bool = False
    # ART-V §3.3: the given frames' noise level (t_test) on a network trained with noise augmentation.
    given_noise: float = Field(0.15, ge=0, lt=1)

    def resolved(self, clip_frames: int, temporal_compression: int = 1) -> ExtensionParams:
        """These parameters with ``M`` filled in for clips of ``clip_frames`` frames, checked.

        With a causal video VAE that compresses time ``r = temporal_compression``
        times after the first frame (Wan: ``r = 4``), the prompt frames are whole
        latent frames: ``m`` latent frames at the start of a clip decode to
        ``M = r(m − 1) + 1`` video frames (the first latent frame is one frame,
        each later one ``r``). The default ``N // 2`` is rounded down to such an
        ``M``; an explicit ``M`` of another form is refused.
        """
        r = temporal_compression
        m = self.prompt_frames if self.prompt_frames is not None else max(1, clip_frames // 2)
        if r > 1 and (m - 1) % r:
            below = (m - 1) // r * r + 1
            if self.prompt_frames is not None:
                raise ReelgraphError(
                    f"{m} prompt frames are not whole latent frames of this model.",
                    why=f"its VAE compresses time {r}x after the first frame, so the prompt frames that "
                    f"one clip hands to the next are {r}k + 1 video frames.",
                    fix=f"set extension_prompt_frames to {below} or {below + r}.",
                )
            m = below
        if m >= clip_frames:
            raise ReelgraphError(
                f"{m} prompt frames do not fit in clips of {clip_frames} frames.",
                why="VidRD reuses the last M frames of a clip as the first M of the next, so M must be "
                "smaller than the clip length N.",
                fix=f"set extension_prompt_frames between 1 and {clip_frames - 1} (VidRD's default is N/2).",
            )
        return self.model_copy(update={"prompt_frames": m})

    @property
    def reuses_clips(self) -> bool:
        """Whether a clip starts from the previous clip's hand-off (the two VidRD readings and ART-V)."""
        return self.mode in ("vidrd", "vidrd-literal", "artv")

    @property
    def forward(self) -> bool:
        """Whether the prompt frames continue the previous clip in forward time (not eq. 6-8's reversal)."""
        return self.mode == "vidrd"

    def planned(self, clip_frames: int, temporal_compression: int = 1) -> ExtensionParams:
        """:meth:`resolved` for the VidRD readings; the parameters as they are otherwise."""
        return self.resolved(clip_frames, temporal_compression) if self.reuses_clips else self

    @property
    def strategies(self) -> str:
        """``FNR``, ``FNR+PNS``, ``FNR+PNS+DSG`` (``, literal`` for eq. 6-8 as printed), ``artv`` or ``independent``."""
        if not self.reuses_clips or self.mode == "artv":
            return self.mode
        joined = "+".join(["FNR", *(["PNS"] if self.pns else []), *(["DSG"] if self.dsg else [])])
        return joined if self.forward else f"{joined}, literal"

    def new_frames(self, clip_frames: int, temporal_compression: int = 1) -> int:
        """Frames an extension clip adds to the video."""
        if not self.reuses_clips or self.keep == "all":
            return clip_frames
        return clip_frames - self.resolved(clip_frames, temporal_compression).prompt_frames

    def describe(self, clip_frames: int, temporal_compression: int = 1) -> str:
        if not self.reuses_clips:
            return EXTENSION_MODES[self.mode]
        p = self.resolved(clip_frames, temporal_compression)
        if self.mode == "artv":
            anchor = "anchored to the video's first frame" if p.anchor else "no anchor frame"
            return (
                f"ART-V masked continuation: the previous clip's last M={p.prompt_frames} frames given with a "
                f"mask (noise level {p.given_noise:g} where the network was trained with noise augmentation), "
                f"the rest generated, {anchor}"
            )
        reading = "in forward time" if self.forward else "reversed as eq. 6-8 are printed"
        parts = [f"VidRD {self.strategies}", f"prompt frames {reading}", f"M={p.prompt_frames}"]
        if self.pns:
            parts.append(f"α={p.alpha:g}")
        if self.dsg:
            parts.append(f"β={p.beta:g}")
        parts.append("keeping all frames" if p.keep == "all" else "prompt frames not repeated")
        if p.anchor:
            parts.append("anchored to the first clip")
        return ", ".join(parts)


class ClipSlot(BaseModel):
    """One clip of a scene: its seed, how it starts, and the frames ``[kept[0], kept[1])`` the video shows."""

    index: int
    seed: int
    num_frames: int
    start: ClipStartKind
    kept: tuple[int, int]

    @property
    def kept_frames(self) -> int:
        return self.kept[1] - self.kept[0]


def clip_seed(scene_seed: int, clip_index: int) -> int:
    """The seed of clip ``clip_index`` of a scene: the scene's own seed for clip 0, then a stable hash.

    Clip 0 keeps the scene seed so that a one-clip video and the first clip of
    a long one are the same. Later clips hash ``(scene_seed, index)`` rather
    than adding the index, which would collide with the next scene's seed.
    """
    if clip_index == 0:
        return scene_seed
    digest = hashlib.sha256(f"reelgraph-clip:{scene_seed}:{clip_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_scene_clips(
    num_frames: int,
    clip_frames: int,
    params: ExtensionParams,
    scene_seed: int,
    *,
    first_start: ClipStartKind = "noise",
    continued: bool = False,
    temporal_compression: int = 1,
) -> list[ClipSlot]:
    """The clips that make a scene of ``num_frames`` frames.

    Args:
        clip_frames: ``N``, the model's clip length.
        first_start: how the scene's first clip starts (``previous_scene`` when
            it continues the scene before, ``image`` for a user's image).
        continued: the next scene continues from this one, so this scene's
            last clip must be a whole clip whose last frame is shown.
        temporal_compression: the VAE's ``r`` (:meth:`ExtensionParams.resolved`).

    A scene that fits in one clip, starts from noise and is not continued is
    one clip of exactly ``num_frames`` frames (no extension). Otherwise every
    clip has ``N`` frames; a clip that starts from prompt frames of a previous
    clip adds ``params.new_frames(N)``; the last clip is trimmed to the exact
    count, keeping its end when the next scene continues from it.
    """
    if num_frames < 1:
        raise ReelgraphError(f"A scene needs at least one frame, not {num_frames}.")
    if first_start == "noise" and not continued and num_frames <= clip_frames:
        return [
            ClipSlot(index=0, seed=scene_seed, num_frames=num_frames, start="noise", kept=(0, num_frames))
        ]
    params = params.planned(clip_frames, temporal_compression)
    slots: list[ClipSlot] = []
    remaining = num_frames
    while remaining > 0:
        index = len(slots)
        start: ClipStartKind = first_start if index == 0 else "previous_clip"
        if not params.reuses_clips and start in ("previous_clip", "previous_scene"):
            start = "noise"
        if start in ("previous_clip", "previous_scene") and params.keep == "new":
            first = params.prompt_frames
        else:
            first = 0  # noise starts and images keep their first frames: the video starts there
        available = clip_frames - first
        take = min(available, remaining)
        remaining -= take
        is_last = remaining == 0
        kept = (clip_frames - take, clip_frames) if (is_last and continued) else (first, first + take)
        slots.append(
            ClipSlot(
                index=index,
                seed=clip_seed(scene_seed, index),
                num_frames=clip_frames,
                start=start,
                kept=kept,
            )
        )
    return slots


class ClipStartSpec(BaseModel):
    """What :meth:`GenerationService.sample_clip` needs beyond the request to make a long video's clip.

    Paths only (the agent's state holds no tensors): the previous clip's
    hand-off file, the user's image, where to leave this clip's hand-off for
    the next clip, and the anchor file (written by the video's first clip,
    read by the others when anchoring is on).
    """

    params: ExtensionParams
    start: ClipStartKind = "noise"
    previous_path: str | None = None
    image_path: str | None = None
    handoff_path: str | None = None
    anchor_path: str | None = None
    anchor_role: Literal["none", "record", "apply"] = "none"
