"""POS's planning decisions: what the rewrite and choose_noise nodes decide, as plain functions.

* :class:`PosPolicy`: the knobs (from settings): rewriting on/off, γ, the noise
  source, η and ONA's similarity threshold.
* :func:`choose_noise_for_scene`: ONA (POS eq. 3-5), NPNet (§4.2) or random,
  with the reason. ``auto`` tries ONA, then NPNet (when it has the skill:
  ``npnet_min_skill``), then random; ``ona``
  yields to random (an explicit choice is not swapped for another method);
  ``npnet`` uses NPNet or random.
* :func:`references_of` / :func:`nearest_of`: what the retrieve step found,
  read from its plan entry (``references``: captions by sentence similarity,
  POS eq. 6; ``nearest``: the top caption's video, POS eq. 3; or, with
  ``ona_pick = motion``, the top motion-prior hit, which also matches the
  prompt's core motion and actor units).

Nothing here imports torch: the planner only reads headers and checks files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from agent.steps import ReferencesStep
from generation.hybrid import rewrite_steps

NoiseSource = Literal["auto", "ona", "npnet", "random"]
OnaPick = Literal["caption", "motion"]


@dataclass(frozen=True)
class PosPolicy:
    rewrite: bool = True
    references: int = 5
    gamma: float = 0.5
    noise_source: NoiseSource = "auto"
    eta: float = 0.5
    ona_min_similarity: float = 0.8
    ona_pick: OnaPick = "caption"
    npnet_min_skill: float = 0.0

    @classmethod
    def from_settings(cls, settings) -> PosPolicy:
        return cls(
            rewrite=settings.rewrite,
            references=settings.rewrite_references,
            gamma=settings.gamma,
            noise_source=settings.noise_source,
            eta=settings.ona_eta,
            ona_min_similarity=settings.ona_min_similarity,
            ona_pick=settings.ona_pick,
            npnet_min_skill=settings.npnet_min_skill,
        )


class NoiseSupport(Protocol):
    """What the planner may ask about POS noise (``generation.noise_support`` implements it)."""

    def inversion_cached(self, video_id: str, num_steps: int, num_frames: int) -> bool: ...

    def npnet(self) -> tuple[str | None, str]: ...

    def npnet_skill(self, path: str) -> float | None: ...


def _as_dict(item: Any) -> dict[str, Any]:
    return item.model_dump() if hasattr(item, "model_dump") else dict(item)


def references_of(step: ReferencesStep) -> list[dict[str, Any]]:
    """The reference captions the retrieve step recorded, best first (``[]`` when it was skipped)."""
    refs = step.references if step.status == "done" else None
    return [_as_dict(r) for r in refs or [] if _as_dict(r).get("caption")]


def nearest_of(step: ReferencesStep, pick: OnaPick = "caption") -> dict[str, Any] | None:
    """The pool video ONA inverts, from what the retrieve step recorded, or ``None``.

    ``caption``: POS eq. 3, the video whose caption is most similar to the prompt.
    ``motion``: the top motion-prior hit (Search-T2V eq. 6-9: sentence similarity plus the
    core motion and actor units), whose ``similarity`` is its caption similarity.
    """
    if step.status != "done":
        return None
    if pick == "motion":
        hits = [_as_dict(h) for h in step.motion_hits or []]
        if not hits:
            return None
        top = hits[0]
        score = top.get("score") or {}
        return {**top, "similarity": score.get("sentence", top.get("similarity"))}
    nearest = step.nearest
    return _as_dict(nearest) if nearest else None


def rewrite_step_fields(gamma: float, num_steps: int) -> dict[str, Any]:
    return {"gamma": gamma, "rewrite_steps": rewrite_steps(num_steps, gamma), "num_steps": num_steps}


def choose_noise_for_scene(
    policy: PosPolicy,
    support: NoiseSupport | None,
    nearest: dict[str, Any] | None,
    num_steps: int,
    num_frames: int,
    refusals: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The noise decision for one scene: ToolStep fields (``status``, ``reason``, ``source``, ``spec``, ...).

    ``refusals``: the model's methods it cannot run (``ModelInfo.unsupported``), each with its reason;
    a refused source is never chosen, and the reason says why.
    """
    refusals = refusals or {}
    source = policy.noise_source
    if source == "random":
        return _random("random noise by configuration (noise_source = random)")
    if policy.eta == 0:
        return _random("η = 0: the mixture of POS eq. 4 is the Gaussian alone")
    if support is None:
        return _random("no inversion cache or NPNet is available to this run")
    why_not: list[str] = []
    for method, name in (("ona", "ONA"), ("npnet", "NPNet")):
        if method in refusals and source in ("auto", method):
            why_not.append(f"{name} is not available for this model ({refusals[method]})")
    if source in ("auto", "ona") and "ona" not in refusals:
        ona = _try_ona(policy, support, nearest, num_steps, num_frames, why_not)
        if ona is not None:
            return ona
    if source in ("auto", "npnet") and "npnet" not in refusals:
        path, reason = support.npnet()
        skill = support.npnet_skill(path) if path is not None else None
        if source == "auto" and skill is not None and skill < policy.npnet_min_skill:
            # An NPNet that explains almost none of the inversion only re-draws the Gaussian (on the
            # toy model it lowered colour accuracy: docs/pos.md); auto leaves it out, npnet still asks.
            path, reason = (
                None,
                (
                    f"it explains {skill:.0%} of held-out inversion variance (< {policy.npnet_min_skill:.0%}); "
                    "ask for it with noise_source = npnet"
                ),
            )
        if path is not None:
            prefix = f"ONA not used ({'; '.join(why_not)}); " if why_not else ""
            return {
                "status": "done",
                "reason": f"{prefix}NPNet predicts the inverted noise from the prompt, η = {policy.eta:g}",
                "source": "npnet",
                "eta": policy.eta,
                "npnet": path,
                "spec": {"source": "npnet", "eta": policy.eta, "npnet": path},
                **({"ona_skipped": "; ".join(why_not)} if why_not else {}),
            }
        why_not.append(f"NPNet: {reason}")
    return _random("; ".join(why_not) or "no noise source applies")


def _random(reason: str) -> dict[str, Any]:
    return {
        "status": "done",
        "reason": f"Gaussian noise from the seed: {reason}",
        "source": "random",
        "spec": {"source": "random"},
    }


def _try_ona(
    policy: PosPolicy,
    support: NoiseSupport,
    nearest: dict[str, Any] | None,
    num_steps: int,
    num_frames: int,
    why_not: list[str],
) -> dict[str, Any] | None:
    if nearest is None:
        why_not.append("no pool video was retrieved (no reference pool)")
        return None
    video_id, caption = str(nearest.get("id", "")), str(nearest.get("caption", ""))
    similarity = float(nearest.get("similarity", float("nan")))
    video = str(nearest.get("video") or "")
    if not similarity >= policy.ona_min_similarity:
        why_not.append(
            f"the nearest pool video {caption!r} has similarity {similarity:.2f} < {policy.ona_min_similarity:.2f}"
        )
        return None
    cached = support.inversion_cached(video_id, num_steps, num_frames)
    if not cached and not (video and Path(video).is_file()):
        why_not.append(
            f"the nearest pool video {video_id!r} is not inverted and its file {video!r} is missing"
        )
        return None
    cache_note = "inversion cached" if cached else "not inverted yet: inverted once at sampling, then cached"
    return {
        "status": "done",
        "reason": (
            f"ONA: nearest pool video {caption!r} ({video_id}), similarity {similarity:.2f} >= "
            f"{policy.ona_min_similarity:.2f}, η = {policy.eta:g}; {cache_note}"
        ),
        "source": "ona",
        "video_id": video_id,
        "caption": caption,
        "similarity": round(similarity, 4),
        "eta": policy.eta,
        "cache": "hit" if cached else "miss",
        "spec": {"source": "ona", "eta": policy.eta, "video_id": video_id, "video": video},
    }
