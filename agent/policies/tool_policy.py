"""The rule-checked tool policy: an LLM may propose, the rules validate and have the last word.

After the planning nodes have made their own decisions (noise: POS's ONA →
NPNet → random cascade; rewrite: the guarded rewriter; tuning: the motion
tuner's rare-motion policy; extension: the clip plan), :func:`review_scenes`

1. reads an optional proposal (from an LLM: :class:`ToolProposals`) and
   checks every proposed change against what is available: turning a tool
   off is always allowed; turning one on, or switching the noise source, only
   when its prerequisites hold (a pool video similar enough for ONA, NPNet
   weights, a rewrite that passed the guard, a planned motion-prior job).
   Extension is never proposable: its clips are what the asked-for length
   needs;
2. applies the time budget (``--budget-seconds``): over budget, planned
   tuning goes first (costliest scene first), then ONA inversions that are
   not cached yet (one inversion costs about half a sampling pass); if the
   plan is still over budget it says so;
3. writes, into every tool's step, a ``rule`` field: the verdict and its
   reason, in words a person can check.

Pure functions over plain data (dicts of the plan's tool steps); no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NoiseChoice = Literal["ona", "npnet", "random"]
INVERSION_SHARE = 0.5  # an uncached ONA inversion: T UNet passes without guidance ≈ half a sampling pass


class Availability(BaseModel):
    """What this run can use."""

    pool_videos: int | None = Field(None, description="videos in the reference pool; None: no pool")
    llm: str | None = Field(None, description="the LLM's name, when one is configured")
    gpu: bool = False
    device: str = "cpu"
    budget_seconds: float | None = None

    def describe(self) -> str:
        pool = "no pool" if not self.pool_videos else f"a pool of {self.pool_videos} videos"
        llm = f"LLM {self.llm}" if self.llm else "no LLM"
        budget = f"a budget of {self.budget_seconds:g} s" if self.budget_seconds else "no time budget"
        return f"{pool}, {llm}, {'a GPU' if self.gpu else 'no GPU'} ({self.device}), {budget}"


class ToolProposal(BaseModel):
    """An LLM's proposal for one scene (``None``: no opinion)."""

    model_config = ConfigDict(extra="forbid")

    scene: int = Field(ge=1, description="the scene's number, from 1")
    noise: NoiseChoice | None = Field(None, description="initial noise: ona, npnet or random")
    rewrite: bool | None = Field(None, description="use the reference-guided rewrite")
    tuning: bool | None = Field(None, description="tune a motion LoRA")
    why: str = Field("", description="one short reason")


class ToolProposals(BaseModel):
    """The LLM's structured-output schema for tool proposals."""

    model_config = ConfigDict(extra="forbid")

    scenes: list[ToolProposal] = Field(default_factory=list)


class ProposalSource(BaseModel):
    """Where the proposals came from: an engine, or why there were none."""

    engine: str | None = None
    note: str


NoiseAlternative = Callable[[int, NoiseChoice], dict[str, Any]]
"""``alternative(scene_index, source)``: the noise step that source would give (POS's cascade with
``noise_source`` forced), so a proposal can be checked against what is really available."""


def _step(step: dict[str, Any], **update: Any) -> dict[str, Any]:
    return {**step, **update}


def _rule(step: dict[str, Any], text: str) -> dict[str, Any]:
    return _step(step, rule=text)


def _noise(step, proposal, index, alternative) -> tuple[dict[str, Any], str | None]:
    current = step.get("source", "random")
    if proposal is None or proposal.noise is None:
        return _rule(step, f"kept: {current} is the first available source of POS's cascade"), None
    wanted = proposal.noise
    why = f" ({proposal.why})" if proposal.why else ""
    if wanted == current:
        return _rule(step, f"kept: the LLM also proposed {wanted}{why}"), None
    candidate = alternative(index, wanted)
    if wanted == "random":  # the cascade's own wording would say "by configuration"
        candidate = _step(candidate, reason=f"Gaussian noise from the seed, as the LLM proposed{why}")
    if candidate.get("source") == wanted:
        return _rule(candidate, f"changed to {wanted} as the LLM proposed{why}: it is available"), (
            f"scene {index + 1}: noise {current} → {wanted} (LLM proposal accepted)"
        )
    refusal = candidate.get("reason", "not available")
    return _rule(step, f"kept {current}: the LLM proposed {wanted}{why}, refused: {refusal}"), (
        f"scene {index + 1}: LLM's noise {wanted} refused"
    )


def _switch(step, proposal_value, name, index, why, off_step):
    on = step.get("status") in ("done", "planned") and (name != "rewrite" or bool(step.get("text")))
    if proposal_value is None or proposal_value == on:
        agreed = " (the LLM agreed)" if proposal_value is not None else ""
        return _rule(step, f"kept {'on' if on else 'off'}: {step.get('reason', '')}{agreed}"), None
    if not proposal_value:
        return _rule(off_step(step), f"turned off as the LLM proposed{why}"), (
            f"scene {index + 1}: {name} off (LLM proposal accepted)"
        )
    # Turning a tool on needs what its node found missing (a pool, a guarded rewrite, a motion video).
    return _rule(step, f"kept off: the LLM proposed {name}{why}, refused: {step.get('reason', '')}"), (
        f"scene {index + 1}: LLM's {name} refused"
    )


def _rewrite_off(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "skipped",
        "reason": f"the original prompt is used (the rewrite {step.get('text')!r} is not)",
        "original": step.get("original"),
        "declined_rewrite": step.get("text"),
    }


def _tuning_off(step: dict[str, Any]) -> dict[str, Any]:
    return {"status": "skipped", "reason": "no motion LoRA", "declined_job": step.get("reason")}


def review_scenes(
    scenes: list[dict[str, dict[str, Any]]],
    availability: Availability,
    proposals: ToolProposals | None,
    alternative: NoiseAlternative,
    sampling_seconds: list[float],
) -> tuple[list[dict[str, dict[str, Any]]], list[str], float]:
    """The reviewed tool steps per scene, the changes made (for people), and the new time estimate.

    ``scenes``: per scene ``{tool: step dict}`` for noise, rewrite, tuning, extension, sampling.
    ``sampling_seconds``: each scene's estimated sampling time (first clip and extension clips).
    """
    by_scene = {p.scene - 1: p for p in (proposals.scenes if proposals else [])}
    changes: list[str] = []
    reviewed = []
    for index, tools in enumerate(scenes):
        proposal = by_scene.get(index)
        why = f" ({proposal.why})" if proposal and proposal.why else ""
        tools = dict(tools)
        tools["noise"], change = _noise(tools["noise"], proposal, index, alternative)
        changes += [change] if change else []
        tools["rewrite"], change = _switch(
            tools["rewrite"], proposal.rewrite if proposal else None, "rewrite", index, why, _rewrite_off
        )
        changes += [change] if change else []
        tools["tuning"], change = _switch(
            tools["tuning"], proposal.tuning if proposal else None, "tuning", index, why, _tuning_off
        )
        changes += [change] if change else []
        tools["extension"] = _rule(tools["extension"], _extension_verdict(tools["extension"]))
        reviewed.append(tools)
    total = _total(reviewed, sampling_seconds)
    budget = availability.budget_seconds
    if budget is not None and total > budget:
        reviewed, total = _fit_budget(reviewed, sampling_seconds, budget, total, changes, alternative)
    elif budget is not None:
        changes.append(f"estimated {total:.1f} s fits the budget of {budget:g} s")
    return reviewed, changes, round(total, 2)


def _extension_verdict(step: dict[str, Any]) -> str:
    clips = int(step.get("num_clips") or len(step.get("clips") or []) or 1)
    if step.get("status") != "planned":
        return "not needed: the scene fits one clip and no later scene continues from it"
    if clips > 1:
        return f"required: the asked-for length needs {clips} clips (extension is not optional)"
    return "required: the next scene continues from this clip's last frames"


def _cost(tools: dict[str, dict[str, Any]], sampling: float) -> float:
    cost = sampling + float(tools["extension"].get("estimated_seconds") or 0.0)
    if tools["tuning"].get("status") == "planned":
        cost += float(tools["tuning"].get("estimated_seconds") or 0.0)
    if tools["noise"].get("source") == "ona" and tools["noise"].get("cache") == "miss":
        cost += INVERSION_SHARE * sampling
    return cost


def _total(scenes, sampling_seconds) -> float:
    return sum(_cost(tools, seconds) for tools, seconds in zip(scenes, sampling_seconds, strict=True))


def _fit_budget(scenes, sampling_seconds, budget, total, changes, alternative):
    scenes = [dict(tools) for tools in scenes]
    tuned = sorted(
        (i for i, t in enumerate(scenes) if t["tuning"].get("status") == "planned"),
        key=lambda i: -float(scenes[i]["tuning"].get("estimated_seconds") or 0.0),
    )
    for i in tuned:
        if total <= budget:
            break
        saved = float(scenes[i]["tuning"].get("estimated_seconds") or 0.0)
        scenes[i]["tuning"] = _rule(
            _tuning_off(scenes[i]["tuning"]),
            f"dropped for the budget: tuning would take {saved:.1f} s; the plan was {total:.1f} s "
            f"of {budget:g} s",
        )
        total -= saved
        changes.append(f"scene {i + 1}: tuning dropped to fit the budget")
    for i, tools in enumerate(scenes):
        if total <= budget:
            break
        if tools["noise"].get("source") == "ona" and tools["noise"].get("cache") == "miss":
            saved = INVERSION_SHARE * sampling_seconds[i]
            fallback = _step(
                alternative(i, "random"),
                reason=f"Gaussian noise from the seed: ONA with {tools['noise'].get('video_id')!r} "
                "was dropped to fit the time budget",
            )
            scenes[i]["noise"] = _rule(
                fallback,
                f"random instead of ONA for the budget: inverting {tools['noise'].get('video_id')!r} "
                f"first would take about {saved:.1f} s",
            )
            total -= saved
            changes.append(f"scene {i + 1}: ONA (uncached) replaced by random noise to fit the budget")
    if total > budget:
        changes.append(
            f"over budget: the cheapest plan takes about {total:.1f} s of {budget:g} s "
            "(shorten the video, use fewer steps, or raise --budget-seconds)"
        )
    else:
        changes.append(f"estimated {total:.1f} s now fits the budget of {budget:g} s")
    return scenes, total
