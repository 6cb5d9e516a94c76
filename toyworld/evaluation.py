"""The eval command: generate samples of labelled prompts, read them back with the probe, score them.

Every sample goes through the product path (the agent graph with the given
settings), so an ablation measures exactly what ``generate`` does. Sample
``k`` of prompt ``i`` uses seed ``seed + i·K + k`` in every configuration, so
configurations are compared on the same noise draws.

Per configuration, the metrics are:

* ``color_acc``, ``shape_acc``, ``motion_acc`` (and ``motion_acc_single`` /
  ``motion_acc_pair`` over one- and two-object prompts), ``all_acc`` (colour,
  shape, motion and recipient all right): the probe against the prompt's label;
* ``fvd_toy``: the Fréchet distance between features of the generated clips
  and of freshly rendered clips of the same labels (our FVD analogue, features
  in :func:`toyworld.metrics.video_features`), beside ``fvd_toy_reference``:
  rendered against independently rendered clips (the floor);
* ``temporal_consistency``: mean frame-to-frame stability of object identity
  and size (:func:`toyworld.metrics.temporal_consistency`);
* ``diversity`` (K >= 2): the mean RMS pixel distance between a prompt's
  samples, in [0, 1].

Outputs: ``rows.jsonl`` (one row per sample), ``metrics.json``, ``grid.png``;
with an ablation, one folder per configuration plus ``ablation.md``,
``ablation.json`` and ``ablation.png`` side by side. Samples that already
exist are read back instead of generated again, so an interrupted eval
resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from reelgraph.atomic import write_json, write_text
from reelgraph.errors import ReelgraphError, validation_problems
from reelgraph.settings import Settings
from toyworld.spec import Label

SAMPLE_DIR = "samples"
Progress = Callable[[int, int], None]


class PromptRow(BaseModel):
    prompt: str
    label: dict[str, Any]


def _first_problem(error: Exception, prefix: str = "") -> str:
    """The first field a validation error names, with its message (``label.background: Input should
    be a valid string``); a plain ``ValueError``'s own text."""
    if isinstance(error, ValidationError) and error.errors():
        return validation_problems(error, prefix, whole="the line")[0]
    return str(error).splitlines()[0]


def read_prompts(path: str | os.PathLike[str]) -> list[PromptRow]:
    """Read a JSONL prompt file: ``{"prompt": str, "label": {...}}`` per line (``size`` may be null)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ReelgraphError(
            f"Prompt file {str(path)!r} cannot be read: {error}.", fix="check the path."
        ) from error
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        prefix = ""  # where the failing model sits in the line
        try:
            row = PromptRow.model_validate_json(line)
            prefix = "label."
            Label.model_validate(row.label)
        except (ValidationError, ValueError) as error:
            raise ReelgraphError(
                f"Line {number} of {str(path)!r} is not a labelled prompt.",
                why=_first_problem(error, prefix),
                fix='each line must be {"prompt": "...", "label": {"actor": {...}, "motion": ..., '
                '"recipient": ... or null, "background": ...}}.',
            ) from error
        rows.append(row)
    if not rows:
        raise ReelgraphError(
            f"Prompt file {str(path)!r} has no prompts.", fix="add one JSON object per line."
        )
    return rows


def read_ablation(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read ``configs: {name: {<setting>: value, ...}}`` from YAML; each config is a set of settings overrides."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ReelgraphError(
            f"Ablation file {str(path)!r} cannot be read: {error}.", fix="check the YAML."
        ) from error
    configs = data.get("configs") if isinstance(data, dict) else None
    if not isinstance(configs, dict) or not configs:
        raise ReelgraphError(
            f"Ablation file {str(path)!r} has no configurations.",
            fix="write `configs:` mapping names to settings overrides, e.g. `baseline: {}`.",
        )
    known = set(Settings.model_fields) - {"home"}
    for name, overrides in configs.items():
        overrides = overrides or {}
        if not isinstance(overrides, dict) or set(overrides) - known:
            unknown = sorted(set(overrides) - known) if isinstance(overrides, dict) else overrides
            raise ReelgraphError(
                f"Configuration {name!r} in {str(path)!r} sets unknown settings: {unknown}.",
                fix=f"known settings: {', '.join(sorted(known))}.",
            )
        configs[name] = overrides
    return {str(name): overrides for name, overrides in configs.items()}


def _config_settings(base: Settings, overrides: dict[str, Any]) -> Settings:
    try:
        return Settings.model_validate({**base.model_dump(), **overrides})
    except ValidationError as error:
        raise ReelgraphError(
            f"Invalid ablation settings {overrides}: {error}.", fix="correct the values."
        ) from error


def _concrete_label(label: dict[str, Any], rng: np.random.Generator) -> Label:
    """Fill sizes left open (``null``) with a random size, so the label can be rendered."""
    from toyworld.spec import SIZES

    data = json.loads(json.dumps(label))
    for role in ("actor", "recipient"):
        if data.get(role) and data[role].get("size") is None:
            data[role]["size"] = str(rng.choice(sorted(SIZES)))
    return Label.model_validate(data)


def _reference_clip(label: dict[str, Any], num_frames: int, seed: tuple[int, ...]) -> np.ndarray:
    from toyworld.render import render_video

    rng = np.random.default_rng(seed)
    return render_video(_concrete_label(label, rng), num_frames=num_frames, rng=rng)


def _read_sample(run_dir: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames ``(F, 32, 32, 3)`` and manifest of one generated sample."""
    from reelgraph.media import read_video
    from toyworld.probe import area_resize

    manifest = json.loads((run_dir / "manifest.json").read_text())
    frames = area_resize(read_video(run_dir / "video.mp4"))  # the viewing video is enlarged; back to 32x32
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), manifest


def _sample_dir(out_dir: Path, index: int, k: int) -> Path:
    return out_dir / SAMPLE_DIR / f"{index:04d}-{k}"


def sample_jobs(settings: Settings, prompts: list[PromptRow], out_dir: Path, samples: int, seed: int):
    """One generation job per (prompt i, sample k), seed ``seed + i·K + k``, into ``samples/iiii-k/``."""
    from agent.batch import GenerationJob

    return [
        GenerationJob(
            settings=settings.model_copy(update={"seed": seed + index * samples + k}),
            run_dir=_sample_dir(out_dir, index, k),
            prompt=row.prompt,
            name=f"{index:04d}-{k}",
        )
        for (index, row), k in itertools.product(enumerate(prompts), range(samples))
    ]


def generate_samples(
    jobs: list[tuple[str, Any]], base: Settings, progress: Progress | None = None, runner=None
) -> dict[str, float]:
    """Generate every ``(config name, job)`` not on disk yet, on the work runner (one item per sample).

    Returns the seconds each configuration's jobs took (summed over items, wherever they ran).
    Raises when a sample failed after its retries: a metric over missing samples would mislead.
    """
    from agent.batch import generate_job, new_services_memo
    from reelgraph.work_runner import work_runner

    seconds: dict[str, float] = {}
    failures = []
    with work_runner(base, runner) as engine:
        items = [job for _, job in jobs]
        for done, outcome in enumerate(engine.map(generate_job, items, setup=new_services_memo, gpu=True), 1):
            name = jobs[outcome.index][0]
            seconds[name] = seconds.get(name, 0.0) + outcome.seconds
            if not outcome.ok:
                failures.append(f"{outcome.item.run_dir} ({outcome.attempts} tries): {outcome.error}")
            if progress is not None:
                progress(done, len(jobs))
    if failures:
        raise ReelgraphError(
            f"{len(failures)} of {len(jobs)} samples failed.",
            why="; ".join(failures[:3]) + (" ..." if len(failures) > 3 else ""),
            fix="fix the cause and rerun: finished samples are kept and not generated again.",
        )
    return seconds


def evaluate_config(
    settings: Settings,
    prompts: list[PromptRow],
    out_dir: Path,
    samples: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
    runner=None,
) -> dict[str, Any]:
    """Generate and score ``samples`` clips per prompt under one configuration."""
    out_dir = Path(out_dir)
    seconds = generate_samples(
        [("", job) for job in sample_jobs(settings, prompts, out_dir, samples, seed)],
        settings,
        progress,
        runner,
    )
    return score_config(prompts, out_dir, samples, seed, seconds.get("", 0.0))


def score_config(
    prompts: list[PromptRow], out_dir: Path, samples: int, seed: int, generation_seconds: float = 0.0
) -> dict[str, Any]:
    """Read the generated samples back, score them with the probe and write the configuration's files.

    ``metrics.json`` holds only what the samples determine (equal for equal samples, wherever they
    were generated); the time spent is in ``timing.json`` and in the returned ``seconds``.
    """
    from toyworld import long_metrics, metrics
    from toyworld.probe import probe

    out_dir.mkdir(parents=True, exist_ok=True)
    rows, generated, references, twins, per_prompt = [], [], [], [], {}
    started = time.perf_counter()
    for (index, row), k in itertools.product(enumerate(prompts), range(samples)):
        sample_seed = seed + index * samples + k
        frames, manifest = _read_sample(_sample_dir(out_dir, index, k))
        result = probe(frames)
        scores = metrics.score(row.label, result)
        rows.append(
            {
                "index": index,
                "sample": k,
                "seed": sample_seed,
                "prompt": row.prompt,
                "label": row.label,
                "seen": result.label().model_dump() if result.label() else None,
                **scores,
                "temporal_consistency": metrics.temporal_consistency(result),
                "video": str(_sample_dir(out_dir, index, k) / "video.mp4"),
                "rewritten_prompt": manifest.get("rewritten_prompt"),
                **long_metrics.long_video_row(frames, manifest, row.label),
            }
        )
        generated.append(metrics.video_features(frames))
        references.append(
            metrics.video_features(_reference_clip(row.label, len(frames), (seed, index, k, 1)))
        )
        twins.append(metrics.video_features(_reference_clip(row.label, len(frames), (seed, index, k, 2))))
        per_prompt.setdefault(index, []).append(frames)
    seconds = generation_seconds + time.perf_counter() - started

    def mean(key: str, subset: list[dict] | None = None) -> float | None:
        values = [r[key] for r in (rows if subset is None else subset)]
        return round(float(np.mean(values)), 4) if values else None

    single = [r for r in rows if r["label"].get("recipient") is None]
    pair = [r for r in rows if r["label"].get("recipient") is not None]
    result = {
        "n_prompts": len(prompts),
        "n_samples": len(rows),
        "color_acc": mean("color_ok"),
        "shape_acc": mean("shape_ok"),
        "motion_acc": mean("motion_ok"),
        "motion_acc_single": mean("motion_ok", single),
        "motion_acc_pair": mean("motion_ok", pair),
        "all_acc": mean("all_ok"),
        "fvd_toy": round(metrics.frechet_distance(np.stack(generated), np.stack(references)), 4),
        "fvd_toy_reference": round(metrics.frechet_distance(np.stack(twins), np.stack(references)), 4),
        "temporal_consistency": mean("temporal_consistency"),
        "diversity": _diversity(per_prompt) if samples > 1 else None,
    }
    if any("clips" in r for r in rows):  # long videos (toyworld/long_metrics.py)
        result.update(long_metrics.summarize(rows))
    write_text(out_dir / "rows.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in rows))
    write_json(out_dir / "metrics.json", result)
    write_json(out_dir / "timing.json", {"seconds": round(seconds, 1)})
    write_grid(per_prompt, prompts, out_dir / "grid.png")
    return {**result, "seconds": round(seconds, 1)}


def _diversity(per_prompt: dict[int, list[np.ndarray]]) -> float:
    """Mean RMS pixel distance (in [0, 1]) between the samples of each prompt."""
    distances = []
    for clips in per_prompt.values():
        for a, b in itertools.combinations(clips, 2):
            diff = a.astype(np.float32) / 255 - b.astype(np.float32) / 255
            distances.append(float(np.sqrt(np.mean(diff**2))))
    return round(float(np.mean(distances)), 4) if distances else 0.0


def write_grid(
    per_prompt: dict[int, list[np.ndarray]], prompts: list[PromptRow], path: Path, rows: int = 12
) -> None:
    """A PNG: one row per prompt (first ``rows``), each sample as 4 frames, prompt text on the left."""
    from PIL import Image, ImageDraw, ImageFont

    from reelgraph.media import upscale, write_png

    scale, pad, text_w = 2, 3, 330
    chosen = sorted(per_prompt)[:rows]
    samples = max(len(per_prompt[i]) for i in chosen)
    tile = 32 * scale
    width = text_w + samples * (4 * tile + pad) + pad
    image = Image.new("RGB", (width, len(chosen) * (tile + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=11)
    for r, index in enumerate(chosen):
        y = pad + r * (tile + pad)
        draw.text((pad, y + tile // 3), f"{index}: {prompts[index].prompt}"[:58], fill=(0, 0, 0), font=font)
        for s, frames in enumerate(per_prompt[index]):
            picks = np.linspace(0, len(frames) - 1, 4).round().astype(int)
            strip = np.concatenate(list(upscale(frames[picks], scale)), axis=1)
            image.paste(Image.fromarray(strip), (text_w + s * (4 * tile + pad), y))
    write_png(np.asarray(image), path)


TABLE_COLUMNS = (
    "color_acc",
    "shape_acc",
    "motion_acc",
    "all_acc",
    "fvd_toy",
    "temporal_consistency",
    "diversity",
)


def ablation_table(results: dict[str, dict[str, Any]], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    header = "| config | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"

    def cell(value: Any) -> str:
        return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    body = "".join(
        f"| {name} | " + " | ".join(cell(metrics.get(c)) for c in columns) + " |\n"
        for name, metrics in results.items()
    )
    return header + body


def ablation_plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    """Grouped bars of the accuracy metrics per configuration, fvd_toy on a second panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    accuracy = ("color_acc", "shape_acc", "motion_acc", "all_acc")
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(8, 1.3 * len(names) + 4), 4.2), width_ratios=[3, 1])
    width = 0.8 / len(accuracy)
    x = np.arange(len(names))
    for j, key in enumerate(accuracy):
        left.bar(x + j * width, [results[n].get(key) or 0 for n in names], width, label=key)
    left.set_xticks(x + 0.4 - width / 2, names, rotation=30, ha="right")
    left.set_ylim(0, 1)
    left.set_ylabel("accuracy (probe vs label)")
    left.legend(fontsize=8, ncols=4, loc="upper left")
    right.bar(x, [results[n].get("fvd_toy") or 0 for n in names], color="gray")
    right.set_xticks(x, names, rotation=30, ha="right")
    right.set_ylabel("fvd_toy (lower is better)")
    fig.tight_layout()
    from reelgraph.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def run_eval(
    settings: Settings,
    prompts: list[PromptRow],
    out_dir: Path,
    samples: int = 1,
    seed: int = 0,
    configs: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
    runner=None,
) -> dict[str, Any]:
    """Evaluate one configuration (the settings) or an ablation of named overrides, all on the same seeds.

    Every sample of every configuration is one work item of ``runner`` (default: the engine the
    settings name, :mod:`reelgraph.work_runner`); scoring reads them back here, in order.
    """
    out_dir = Path(out_dir)
    if configs is None:
        return evaluate_config(settings, prompts, out_dir, samples, seed, progress, runner)
    named = {name: _config_settings(settings, overrides) for name, overrides in configs.items()}
    jobs = [
        (name, job)
        for name, config in named.items()
        for job in sample_jobs(config, prompts, out_dir / name, samples, seed)
    ]
    seconds = generate_samples(jobs, settings, progress, runner)
    results = {
        name: score_config(prompts, out_dir / name, samples, seed, seconds.get(name, 0.0)) for name in named
    }
    # ablation.json, like metrics.json, holds only what the samples determine; times are in timing.json.
    metrics_only = {name: {k: v for k, v in r.items() if k != "seconds"} for name, r in results.items()}
    write_json(out_dir / "ablation.json", {"configs": configs, "results": metrics_only})
    from toyworld.long_metrics import LONG_COLUMNS

    long_columns = tuple(c for c in LONG_COLUMNS if any(r.get(c) is not None for r in results.values()))
    write_text(out_dir / "ablation.md", ablation_table(results, TABLE_COLUMNS + long_columns))
    ablation_plot(results, out_dir / "ablation.png")
    return results
