"""Rewrite each scene's prompt, guided by references, keeping its meaning (POS §4.3)."""

from __future__ import annotations

from typing import Any

from agent.policies.pos_policy import references_of, rewrite_step_fields
from agent.services import Services
from agent.state import RunState
from agent.steps import RewriteStep


def rewrite(state: RunState, services: Services) -> dict[str, Any]:
    """Reference-guided rewriting (POS eq. 6-7) behind the semantic guard; the decision goes in the plan.

    The accepted rewrite conditions the first ``m = ⌊T·γ⌋`` denoising steps
    (POS eq. 8, recorded here as ``gamma`` and ``rewrite_steps``).
    """
    if not services.pos.rewrite:
        return {
            "scenes": state.with_all_scenes(
                rewrite=RewriteStep.skipped("prompt rewriting (POS §4.3) is off: rewrite = false")
            )
        }
    if services.rewriter is None:
        return {
            "scenes": state.with_all_scenes(
                rewrite=RewriteStep.skipped("no prompt rewriter (POS §4.3) is available")
            )
        }
    scenes = list(state.scenes)
    num_steps = state.request.num_inference_steps
    for scene in state.scenes:
        references = references_of(scene.references)[: services.pos.references]
        if not references and services.rewriter.needs_references():
            step = RewriteStep.skipped(
                "no reference captions to borrow from (POS eq. 6 needs a pool), and no LLM is configured"
            )
            scenes = _replace(scenes, scene.index, step)
            continue
        outcome = services.rewriter.rewrite(scene.prompt, [r["caption"] for r in references])
        fields = rewrite_step_fields(services.pos.gamma, num_steps) if outcome.text else {}
        step = RewriteStep(
            status="done",
            reason=outcome.reason,
            text=outcome.text,
            original=scene.prompt,
            decision=outcome.decision,
            engine=outcome.engine,
            references=[{k: r.get(k) for k in ("id", "caption", "similarity") if k in r} for r in references],
            guard=outcome.attempts[-1].guard.model_dump()
            if outcome.attempts and outcome.attempts[-1].guard
            else None,
            attempts=[a.model_dump(exclude_none=True) for a in outcome.attempts],
            notes=outcome.notes,
            **fields,
        )
        scenes = _replace(scenes, scene.index, step)
    return {"scenes": scenes}


def _replace(scenes, index: int, step: RewriteStep):
    scenes = list(scenes)
    scenes[index] = scenes[index].model_copy(update={"rewrite": step})
    return scenes
