"""Plans, settings and run folders as the rows of the UI's tables (plain data, no Gradio).

The plan table has one row per scene and tool, the columns ``plan --json`` documents (status,
reason, rule) plus the details a person decides on: references with caption and similarity,
the noise source, the tuning job, the extension, the estimated seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.resume import RESUME_DIR

PLAN_COLUMNS = ["scene", "tool", "status", "reason", "rule", "details"]
SETTINGS_COLUMNS = ["setting", "value", "default", "source"]
# What the settings panel shows (the model, sampling, the method switches), in this order.
PANEL_SETTINGS = (
    "model",
    "device",
    "seed",
    "num_inference_steps",
    "guidance_scale",
    "num_frames",
    "rewrite",
    "noise_source",
    "motion_tuning",
    "extension_mode",
    "budget_seconds",
    "output_dir",
)


def _similarity(entry: dict[str, Any]) -> str:
    for key in ("similarity", "score", "total"):
        value = entry.get(key)
        if isinstance(value, int | float):
            return f" ({value:.2f})"
    return ""


def _references(step: dict[str, Any]) -> str:
    references = step.get("references") or []
    lines = [f"{ref.get('caption', ref.get('id', '?'))!r}{_similarity(ref)}" for ref in references[:3]]
    if len(references) > 3:
        lines.append(f"{len(references) - 3} more")
    nearest = step.get("nearest")
    if nearest:
        lines.append(f"nearest video {nearest.get('id', '?')}{_similarity(nearest)}")
    return "; ".join(lines)


def _details(tool: str, step: dict[str, Any]) -> str:
    """The few fields of a tool step that a person reads before pressing Generate."""
    if tool == "references":
        return _references(step)
    parts: list[str] = []
    if tool == "rewrite" and step.get("text"):
        parts.append(f"text {step['text']!r}")
    if tool == "noise":
        parts += [f"source {step.get('source') or '?'}"]
        if step.get("caption"):
            parts.append(f"video {step['caption']!r}{_similarity(step)}")
    if tool == "tuning" and step.get("training_prompt"):
        parts.append(f"trains on {step['training_prompt']!r}")
    if tool == "extension" and step.get("num_clips"):
        parts.append(f"{step['num_clips']} clip(s), {step.get('method') or 'one clip'}")
    if tool == "sampling":
        for key in ("num_frames", "num_inference_steps", "guidance_scale", "seed"):
            if step.get(key) is not None:
                parts.append(f"{key} {step[key]}")
    for key in ("estimated_seconds", "seconds"):
        if step.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {step[key]}")
    return ", ".join(parts)


def plan_rows(view: dict[str, Any] | None) -> list[list[str]]:
    """``plan_view()`` as rows of :data:`PLAN_COLUMNS` (scenes by number: :func:`plan_summary` names them)."""
    rows = []
    for number, scene in enumerate((view or {}).get("scenes", []), start=1):
        for tool, step in scene.items():
            if tool == "prompt" or not isinstance(step, dict):
                continue
            rows.append(
                [
                    str(number),
                    tool,
                    step.get("status", ""),
                    step.get("reason", ""),
                    step.get("rule") or "",
                    _details(tool, step),
                ]
            )
    return rows


def plan_summary(view: dict[str, Any] | None) -> str:
    """The estimates and the rule review in one paragraph (markdown)."""
    if not view:
        return ""
    est = view.get("estimates") or {}
    scenes = [
        f"**Scene {n}:** {scene.get('prompt', '')}" for n, scene in enumerate(view.get("scenes", []), 1)
    ]
    lines = [
        *scenes,
        f"**Estimated:** {est.get('seconds')} s, peak memory {est.get('peak_memory_gb')} GB "
        f"on {est.get('device', '?')}.",
    ]
    if view.get("understanding"):
        lines.append(f"Understood by the {view['understanding'].get('reason', '?')}.")
    policy = view.get("policy")
    if policy:
        lines.append(f"Available: {policy.get('available')}. LLM proposals: {policy.get('proposals')}.")
    return "\n\n".join(lines)


def settings_rows(
    values: dict[str, Any], defaults: dict[str, Any], sources: dict[str, str]
) -> list[list[str]]:
    """The panel's settings: value, the setting's own default, and where the value came from."""
    return [
        [
            name,
            json.dumps(values.get(name), default=str),
            json.dumps(defaults.get(name), default=str),
            sources[name],
        ]
        for name in PANEL_SETTINGS
    ]


@dataclass(frozen=True)
class RunEntry:
    """A run folder in the outputs: finished (a manifest) or interrupted (resumable)."""

    path: Path
    status: str  # "finished" or "interrupted"
    prompt: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sheet(self) -> Path | None:
        sheet = self.path / "sheet.png"
        return sheet if sheet.is_file() else None

    @property
    def label(self) -> str:
        return f"{self.name} [{self.status}]"


def _prompt_of(manifest: dict[str, Any]) -> str:
    scenes = (manifest.get("plan") or {}).get("scenes") or []
    return " / ".join(str(scene.get("prompt", "")) for scene in scenes) or str(manifest.get("prompt", ""))


def read_manifest(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def list_runs(runs_dir: Path) -> list[RunEntry]:
    """Run folders in ``runs_dir``, newest first; folders that are neither kind are left out."""
    if not runs_dir.is_dir():
        return []
    entries = []
    for folder in runs_dir.iterdir():
        if not folder.is_dir():
            continue
        if (folder / "manifest.json").is_file():
            entries.append(RunEntry(folder, "finished", _prompt_of(read_manifest(folder))))
        elif (folder / RESUME_DIR / "settings.json").is_file():
            entries.append(RunEntry(folder, "interrupted", "(interrupted: resume it to finish)"))
    return sorted(entries, key=lambda entry: entry.path.stat().st_mtime, reverse=True)
