"""The motion tuner service: decide, plan and run motion-prior tuning for a prompt (Search-T2V §4.3).

What the agent's ``tune_motion`` node and ``reelgraph tune`` call:

* :meth:`MotionTuner.decide`: the policy. Tune when asked (``motion_tuning =
  always``), never when told not to, and otherwise (``auto``) when the
  prompt's motion is one the model rarely saw in training: the
  ``rare_motions`` setting, else the model folder's ``reelgraph.json``
  (``"rare_motions": [...]``), else, for the embedded toy model, the toy
  world's rare motion (zigzag: 3 % of the flow model's training captions, 0.8 % of toy-unet's).
* :meth:`MotionTuner.plan`: find the motion-prior video (the retrieve node's
  top motion hit, a given id or path, or a search of the pool), match its
  units to the prompt's, cut the keyframes, and describe the job: video,
  span, crop, training prompt, config, cache key, whether the cache already
  holds it and the estimated time. No diffusion model is loaded.
* :meth:`MotionTuner.run`: reuse the cached LoRA, or encode the keyframes,
  distil the motion (:func:`motion_prior.tuning.distill_motion`) and store it.

Everything it returns is plain data (pydantic models, ``model_dump`` for the
agent's state).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from motion_prior.detectors import Detector, make_detector
from motion_prior.keyframes import KeyframeConfig, KeyframeInfo, extract_keyframes
from motion_prior.tuning import (
    LoraCache,
    LossHook,
    TuningConfig,
    distill_motion,
    estimate_tuning_seconds,
    keyframes_to_tensor,
    lora_cache_key,
    lora_settings,
    loss_summary,
)
from reelgraph.errors import ReelgraphError
from reelgraph.hashing import PLANNING_HINTS, file_sha256
from reelgraph.settings import TuningSettings
from reelgraph.text.units import ParsedPrompt, Unit


class TuningDecision(BaseModel):
    wanted: bool
    reason: str
    rare_motion: str | None = None


class MotionVideo(BaseModel):
    """The video whose motion is distilled, and how it was chosen."""

    id: str
    path: str
    caption: str | None = None
    units: list[Unit] = Field(default_factory=list)
    core: int | None = None
    source: Literal["retrieved", "given"] = "retrieved"
    score: float | None = Field(None, description="Search-T2V eq. 6 score when retrieved")


class TuningJob(BaseModel):
    """A planned tuning run: what the plan shows and what :meth:`MotionTuner.run` executes."""

    prompt: str
    training_prompt: str
    video: MotionVideo
    video_sha256: str
    keyframes: KeyframeInfo
    config: TuningConfig
    weights_hash: str
    key: str
    cache_path: str
    cached: bool
    estimated_seconds: float


class TuningOutcome(BaseModel):
    key: str
    lora_path: str
    cache_hit: bool
    seconds: float = Field(description="keyframes, encoding and distillation (the model was loaded before)")
    train_seconds: float = Field(0.0, description="the distillation loop alone")
    steps: int
    loss: dict[str, float] = Field(default_factory=dict, description="mean of the first and last tenth")


# --- words ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+")


def third_person(verb: str) -> str:
    """ "zigzag" -> "zigzags", "push" -> "pushes", "fly" -> "flies"."""
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(verb) > 1 and verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def article(noun: str) -> str:
    """ "an" before a vowel letter, else "a" (good enough for toy and most stock-footage nouns)."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def training_prompt(parsed: ParsedPrompt) -> str:
    """The appearance-free unit phrase of the prompt's core unit: "a ball zigzags to the right".

    Colours, sizes, adjectives and the scene are left out (units carry none),
    so the LoRA is asked for the motion alone (VMC's appearance-free prompt).
    Falls back to the prompt when it has no unit with a motion and an actor.
    """
    unit = parsed.core_unit
    if unit is None or not unit.motion_phrase or not unit.actor_phrase:
        return parsed.text
    verb, _, rest = unit.motion_phrase.partition(" ")
    words = [article(unit.actor_phrase), unit.actor_phrase, third_person(verb)]
    if unit.recipient_phrase:
        words += [article(unit.recipient_phrase), unit.recipient_phrase]
    if rest:
        words.append(rest)
    return " ".join(words)


def detection_queries(parsed: ParsedPrompt, video: MotionVideo) -> list[str]:
    """The objects to look for (Search-T2V §4.3): the actors and recipients of the video's units that match the prompt's.

    A video unit matches when it shares its motion or one of its objects with
    a prompt unit; the video's core unit always counts. Without units on the
    video, the prompt's own core objects are used.
    """
    prompt_words = {
        value for u in parsed.units for value in (u.motion, u.actor, u.recipient) if value is not None
    }
    matched = [
        u
        for i, u in enumerate(video.units)
        if i == video.core or prompt_words & {u.motion, u.actor, u.recipient}
    ]
    if not matched and parsed.core_unit is not None:
        matched = [parsed.core_unit]
    queries = [p for u in matched for p in (u.actor_phrase, u.recipient_phrase) if p]
    return list(dict.fromkeys(queries))


def mentions(prompt: str, motion: str) -> bool:
    """Whether a prompt speaks of a motion word ("zigzag" in "zig-zags", "zigzagging")."""
    words = _WORD.findall(prompt.lower().replace("-", ""))
    stem = motion.lower().replace("-", "").replace("_", "")
    return any(word.startswith(stem) for word in words)


# --- the service -----------------------------------------------------------------------------


class MotionTuner:
    """Motion-prior tuning for one model (the generation service's), with its cache in ``<home>/cache/lora``.

    Args:
        settings: the tuning section (knobs, detector, keyframes, home for the cache).
        generator: the :class:`~generation.service.GenerationService` whose model is tuned.
        retriever: motion-prior search: a :class:`~motion_prior.search.Retriever`, or the
            :class:`~motion_prior.service.PoolRetrieval` around the run's pool; ``None`` where
            the videos come only from the plan's retrieval hits.
        parser: the run's unit parser (:attr:`reelgraph.text.models.TextModels.parser`).
        detector: default from the settings.
        progress: ``progress(label, step, steps)`` after each tuning step.
    """

    def __init__(
        self,
        settings: TuningSettings,
        generator,
        retriever,
        parser,
        detector: Detector | None = None,
        progress=None,
    ):
        self.settings = settings
        self.generator = generator
        self._retriever = retriever
        self._detector = detector
        self.parser = parser
        self.progress = progress
        self.cache = LoraCache(settings.cache_dir / "lora")

    # -- collaborators, made on first use -----------------------------------------------------
    @property
    def retriever(self):
        """The pool search; a :class:`PoolRetrieval` is unwrapped only once its pool holds videos."""
        from motion_prior.service import PoolRetrieval

        if self._retriever is None:
            raise ReelgraphError(
                "No video pool was given to search for a motion-prior video.",
                fix="pass --video (a pool id or a video file), or index a pool (reelgraph index toy --n 500).",
            )
        if isinstance(self._retriever, PoolRetrieval):
            if self._retriever.pool_size() == 0:  # never create an empty store just to search it
                raise ReelgraphError(
                    f"The video pool at {self._retriever.location} is empty.",
                    fix="index one (reelgraph index toy --n 500), or pass --video.",
                )
            return self._retriever.retriever
        return self._retriever

    @functools.cached_property
    def planning_hints(self) -> dict[str, Any]:
        """The model folder's ``planning.json`` (rare motions, keyframe detector), or ``{}``."""
        path = Path(self.generator.model_info.path) / PLANNING_HINTS
        if not path.is_file():
            return {}
        try:
            hints = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ReelgraphError(
                f"The model's planning hints {path} are unreadable: {error}.",
                fix="repair or remove the file (it holds rare_motions and detector).",
            ) from None
        return hints if isinstance(hints, dict) else {}

    @property
    def detector_name(self) -> str:
        """The keyframe detector: the setting, else the model's planning hints, else GroundingDINO."""
        return self.settings.detector or str(self.planning_hints.get("detector") or "grounding-dino")

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            from generation.estimate import device_kind

            device = "cuda" if device_kind(self.settings.device) == "cuda" else "cpu"
            self._detector = make_detector(self.detector_name, self.settings.detector_model, device=device)
        return self._detector

    def config(self, steps: int | None = None) -> TuningConfig:
        s = self.settings
        return TuningConfig(
            steps=steps or s.tune_steps,
            rank=s.tune_rank,
            learning_rate=s.tune_learning_rate,
            include_transformer_in=s.tune_transformer_in,
            gradient_checkpointing=s.tune_gradient_checkpointing,
        )

    # -- policy -----------------------------------------------------------------------------------
    @functools.cached_property
    def rare_motions(self) -> tuple[list[str], str]:
        """The model's rare motions and where that list comes from."""
        if self.settings.rare_motions is not None:
            words = [w.strip() for w in self.settings.rare_motions.split(",") if w.strip()]
            return words, "the rare_motions setting"
        info = self.generator.model_info
        hints = self.planning_hints
        if "rare_motions" in hints:
            source = hints.get("rare_motions_source") or f"{info.model_id}'s {PLANNING_HINTS}"
            return [str(w) for w in hints["rare_motions"]], source
        return [], f"{info.model_id} declares no rare motions"

    def decide(self, prompt: str, parsed: ParsedPrompt | None = None) -> TuningDecision:
        mode = self.settings.motion_tuning
        if mode == "never":
            return TuningDecision(wanted=False, reason="motion tuning is off (motion_tuning=never)")
        rare, source = self.rare_motions
        hit = next((m for m in rare if mentions(prompt, m)), None)
        if hit is None and parsed is not None:
            lemmas = {u.motion for u in parsed.units if u.motion}
            hit = next((m for m in rare if m in lemmas), None)
        if mode == "always":
            return TuningDecision(wanted=True, reason="asked for (motion_tuning=always)", rare_motion=hit)
        if hit is not None:
            return TuningDecision(
                wanted=True, reason=f"'{hit}' is a rare motion for this model ({source})", rare_motion=hit
            )
        known = ", ".join(rare) if rare else "none"
        return TuningDecision(
            wanted=False, reason=f"the prompt's motion is not rare for this model (rare: {known}; {source})"
        )

    # -- the motion-prior video -----------------------------------------------------------------
    def video_from_hit(self, hit: dict[str, Any]) -> MotionVideo:
        score = hit.get("score")
        return MotionVideo(
            id=hit.get("id") or hit.get("videoid") or Path(hit["video"]).stem,
            path=hit["video"],
            caption=hit.get("caption"),
            units=[Unit.model_validate(u) for u in hit.get("units", [])],
            core=hit.get("core"),
            source="retrieved",
            score=score.get("total") if isinstance(score, dict) else score,
        )

    def find_video(
        self, prompt: str, video: str | None = None, hits: list[dict[str, Any]] | None = None
    ) -> MotionVideo:
        """A given path or pool id, else the top motion hit given, else the pool's best match (eq. 9)."""
        if video:
            path = Path(video).expanduser()
            if path.is_file():
                return MotionVideo(id=path.stem, path=str(path), source="given")
            store = self.retriever.store
            ids = [video] if ":" in video else [f"{pool}:{video}" for pool in store.pools()]
            records = store.get(ids)
            if not records:
                raise ReelgraphError(
                    f"No video {video!r} in the pool and no such file.",
                    fix="pass a video file, or an id from `reelgraph search` (pool:videoid or videoid).",
                )
            record = records[0]
            return MotionVideo(
                id=record.id,
                path=record.video,
                caption=record.caption,
                units=record.units,
                core=record.core,
                source="given",
            )
        if not hits:
            hits = [h.model_dump(mode="json") for h in self.retriever.search(prompt, k=1)]
        if not hits:
            raise ReelgraphError(
                "No motion-prior video was found for the prompt.",
                why="the pool is empty or nothing in it matches.",
                fix="index a pool (reelgraph index toy --n 500), or pass --video.",
            )
        return self.video_from_hit(hits[0])

    # -- planning -----------------------------------------------------------------------------------
    def keyframe_config(self, video_path: str | None = None) -> KeyframeConfig:
        """Keyframes at the model's size, ``stride`` frames apart so they play at the model's frame rate."""
        info = self.generator.model_info
        stride = 1
        if video_path is not None:
            from memory.ingest import probe_video

            try:
                _, fps, _ = probe_video(Path(video_path))
            except ValueError:
                fps = None  # reading the frames will say what is wrong with the file
            if fps:
                stride = max(1, round(fps / info.fps))
        return KeyframeConfig(
            num_frames=info.num_frames,
            height=info.height,
            width=info.width,
            stride=stride,
            margin=self.settings.keyframe_margin,
            min_crop=self.settings.keyframe_min_crop,
        )

    def plan(
        self,
        prompt: str,
        video: str | None = None,
        hits: list[dict[str, Any]] | None = None,
        parsed: ParsedPrompt | None = None,
        steps: int | None = None,
    ) -> TuningJob:
        """Describe the tuning run for ``prompt`` (keyframes are cut here; no diffusion model loads)."""
        parsed = parsed or self.parser.parse(prompt)
        chosen = self.find_video(prompt, video=video, hits=hits)
        keyframes = extract_keyframes(
            chosen.path,
            detection_queries(parsed, chosen),
            self.detector,
            self.keyframe_config(chosen.path),
            chosen.id,
        )
        config = self.config(steps)
        info = self.generator.model_info
        text = training_prompt(parsed)
        video_hash = file_sha256(Path(chosen.path))
        key = lora_cache_key(info.weights_hash, chosen.id, video_hash, keyframes.info.key(), text, config)
        return TuningJob(
            prompt=prompt,
            training_prompt=text,
            video=chosen,
            video_sha256=video_hash,
            keyframes=keyframes.info,
            config=config,
            weights_hash=info.weights_hash,
            key=key,
            cache_path=str(self.cache.path(key)),
            cached=self.cache.has(key),
            estimated_seconds=0.0
            if self.cache.has(key)
            else round(estimate_tuning_seconds(info, config, info.num_frames, self.settings.device), 2),
        )

    # -- running ----------------------------------------------------------------------------------------
    def run(self, job: TuningJob | dict[str, Any], progress: LossHook | None = None) -> TuningOutcome:
        """The job's LoRA: from the cache, or tuned now and stored."""
        import time

        job = TuningJob.model_validate(job)
        if self.cache.has(job.key):
            return TuningOutcome(
                key=job.key,
                lora_path=str(self.cache.path(job.key)),
                cache_hit=True,
                seconds=0.0,
                steps=job.config.steps,
                loss=(self.cache.record(job.key) or {}).get("loss", {}),
            )
        model = self.generator.model  # loaded before the clock starts: sampling needs it anyway
        started = time.perf_counter()
        keyframes = extract_keyframes(
            job.video.path,
            job.keyframes.queries,
            self.detector,
            self.keyframe_config(job.video.path),
            job.video.id,
        )
        if keyframes.info.key() != job.keyframes.key():
            raise ReelgraphError(
                f"The keyframes of {job.video.id} changed since the plan was made.",
                why="the video file or the keyframe settings differ.",
                fix="plan again.",
            )
        if model.info.weights_hash != job.weights_hash:
            raise ReelgraphError("The model changed since the plan was made.", fix="plan again.")
        from generation.adapters import tuning_target

        target = tuning_target(model, keyframes_to_tensor(keyframes.frames), job.training_prompt)
        hook = progress
        if hook is None and self.progress is not None:

            def hook(step: int, steps: int, loss: float) -> None:
                self.progress("tuning", step, steps)

        with target.scope:
            state, result = distill_motion(
                target.network,
                target.scheduler,
                target.latents,
                target.context,
                job.config,
                progress=hook,
                pattern=target.pattern,
            )
        seconds = time.perf_counter() - started
        record = {
            "job": job.model_dump(mode="json", exclude={"cached", "estimated_seconds", "cache_path"}),
            "loss": loss_summary(result.losses),
            "losses": [round(v, 5) for v in result.losses],
            "seconds": round(seconds, 3),
            "train_seconds": round(result.seconds, 3),
            "modules": len(result.modules),
            "trainable_parameters": result.trainable_parameters,
        }
        path = self.cache.store(job.key, state, lora_settings(job.config, target.pattern), record)
        return TuningOutcome(
            key=job.key,
            lora_path=str(path),
            cache_hit=False,
            seconds=round(seconds, 3),
            train_seconds=round(result.seconds, 3),
            steps=job.config.steps,
            loss=record["loss"],
        )

    # -- what the agent calls ---------------------------------------------------------------------
    def plan_scene(
        self,
        prompt: str,
        parsed: ParsedPrompt | None,
        hits: list[dict[str, Any]] | None,
        no_hits_reason: str = "no pool search ran",
    ) -> dict[str, Any]:
        """The scene's tuning decision: ``{"status", "reason", **job}``.

        ``parsed`` is the prompt's unit parse when one was made (else parsed
        here if needed); ``hits`` are the motion-prior hits (:class:`MotionHit`
        as JSON, best first), the top one is the video; ``no_hits_reason`` says
        why there are none.
        """
        decision = self.decide(prompt, parsed)
        if (
            not decision.wanted
            and parsed is None
            and self.settings.motion_tuning == "auto"
            and self.rare_motions[0]
        ):
            parsed = self.parser.parse(prompt)  # a rare verb the words alone did not show
            decision = self.decide(prompt, parsed)
        if not decision.wanted:
            return {"status": "skipped", "reason": decision.reason}
        parsed = parsed or self.parser.parse(prompt)
        if not hits:
            why = no_hits_reason
            return {"status": "skipped", "reason": f"{decision.reason}, but no motion-prior video: {why}"}
        try:
            job = self.plan(prompt, hits=hits, parsed=parsed)
        except ReelgraphError as error:
            return {"status": "skipped", "reason": f"{decision.reason}, but {error.what}"}
        span = job.keyframes.span
        reason = (
            f"{decision.reason}: distil {job.video.id} frames {span[0]}-{span[1]}, {job.config.steps} steps"
            + (" (cached)" if job.cached else "")
        )
        return {
            "status": "planned",
            "reason": reason,
            **job.model_dump(mode="json"),
            "lora_scale": self.settings.lora_scale,
        }

    def tune(self, job: dict[str, Any]) -> dict[str, Any]:
        return self.run(job).model_dump(mode="json")
