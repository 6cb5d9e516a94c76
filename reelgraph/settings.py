"""One settings object for a run, and where each value came from.

Precedence, highest first: a CLI flag, the environment (``REELGRAPH_<FIELD>``),
the config file (TOML), the default. ``reelgraph config show`` prints the
effective values with their sources.

The data directory (``home``) holds everything reelgraph keeps: Chroma,
caches, sessions and the config file. It is chosen before the config file
is read (``--home``, then ``REELGRAPH_HOME``, then a per-user data folder),
so the config file cannot move it. The config file is ``--config FILE``,
``REELGRAPH_CONFIG``, or ``<home>/config.toml`` when that exists.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from reelgraph.errors import ReelgraphError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_PREFIX = "REELGRAPH_"
# Every int setting fits a signed 64-bit integer: what torch seeds, msgpack checkpoints and JSON readers hold.
INT_MAX = 2**63 - 1
# Settings that read a well-known variable when neither their REELGRAPH_ variable nor the config sets them.
ENV_FALLBACKS = {"llm_base_url": "OPENAI_BASE_URL", "llm_api_key": "OPENAI_API_KEY"}
Source = Literal["default", "config", "env", "cli"]


EXTENSION_MODES = ("vidrd", "vidrd-literal", "artv", "independent")
"""``extension_mode`` values (``--extension``; ``generation.clip_plan.EXTENSION_MODES`` says what each does)."""


class Settings(BaseModel):
    """Every knob of a run. Field descriptions are shown by ``config show``."""

    # allow_inf_nan=False: inf and nan are refused for every float setting, however given.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    home: Path = Field(description="data directory: Chroma, caches, sessions, config")
    # -- the video model ---------------------------------------------------------------
    model: str = Field(
        "toy", description="video model: 'toy' (or 'toy-unet'), a diffusers folder or a hub id"
    )
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    dtype: str = Field("auto", description="auto (bf16/fp16 on GPU, fp32 on CPU), fp32, fp16 or bf16")
    cpu_offload: bool = Field(
        False, description="keep components on the CPU, move each to the GPU while it runs"
    )
    vae_slice_frames: int = Field(8, ge=1, description="frames per VAE decode/encode slice")
    # -- sampling -------------------------------------------------------------------------
    num_inference_steps: int = Field(25, ge=1, le=1000, description="DDIM steps")
    guidance_scale: float | None = Field(
        None, ge=0, description="classifier-free guidance; unset: the model's recommended value"
    )
    eta: float = Field(0.0, ge=0, le=1, description="DDIM eta (0: deterministic steps)")
    num_frames: int | None = Field(None, ge=1, description="frames to generate; unset: one clip")
    negative_prompt: str = Field("", description="text to steer away from (the unconditional context)")
    seed: int | None = Field(None, ge=0, description="base seed; unset: drawn at random and recorded")
    # -- long videos (VidRD §4.3; docs/long-videos.md) ------------------------------------
    extension_mode: Literal[EXTENSION_MODES] = Field(
        "vidrd",
        description="clips after the first (--extension): vidrd (VidRD keeping direction), vidrd-literal "
        "(eq. 6-8 as printed, reversed prompt frames), artv (needs a continuation network), independent",
    )
    extension_pns: bool = Field(True, description="VidRD past-dependent noise sampling (eq. 7) on top of FNR")
    extension_dsg: bool = Field(True, description="VidRD denoising with staged guidance (eq. 8)")
    extension_prompt_frames: int | None = Field(
        None, ge=1, description="M, frames a clip takes from the previous one; unset: half a clip"
    )
    extension_alpha: float = Field(
        4.0, ge=0, description="VidRD α: share of the previous clip's noise (eq. 7)"
    )
    extension_beta: float = Field(0.4, ge=0, le=1, description="VidRD β: extent of staged guidance (eq. 8)")
    extension_keep: Literal["all", "new"] = Field(
        "new",
        description="frames of an extension clip in the video: all, or new (prompt frames not repeated)",
    )
    scene_continuation: bool = Field(
        True, description="each storyboard scene starts from the previous scene's last frames"
    )
    anchor_first_clip: bool = Field(
        False,
        description="every clip also attends to the video's first frame (ART-V anchor: training-free in the "
        "UNet's attention, or a continuation network's anchor tokens with --extension artv)",
    )
    extension_given_noise: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="ART-V noise level of the given frames (§3.3 t_test), for a network trained with it",
    )
    max_video_frames: int = Field(1024, ge=1, description="longest video (all scenes) a request may ask for")
    # -- output -----------------------------------------------------------------------------
    output_dir: Path = Field(Path("outputs"), description="parent folder of run folders")
    view_scale: int = Field(8, ge=1, le=32, description="enlargement of small videos in mp4/gif/sheet")
    # -- services ---------------------------------------------------------------------------
    chroma_url: str | None = Field(None, description="Chroma server URL; unset: embedded store in home")
    text_model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2", description="sentence embedding model for retrieval"
    )
    spacy_model: str = Field("en_core_web_sm", description="spaCy pipeline for atomized units")
    text_encoder: Literal["torch", "onnx"] = Field(
        "torch",
        description="MiniLM runtime: torch (fp32 eager) or onnx (the same weights exported locally to "
        "<home>/cache/text, run by ONNX Runtime; faster per query)",
    )
    # -- prompt optimisation (POS) ----------------------------------------------------------------
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible LLM endpoint (falls back to $OPENAI_BASE_URL)"
    )
    llm_model: str | None = Field(None, description="LLM model name; unset: no LLM (offline rewriter)")
    llm_api_key: SecretStr | None = Field(
        None, description="LLM API key (falls back to $OPENAI_API_KEY); never printed"
    )
    llm_timeout: float = Field(
        30.0, gt=0, description="seconds per LLM try (at most what the deadline leaves)"
    )
    llm_deadline: float = Field(
        30.0, gt=0, description="seconds per LLM request, all tries together; then the fallback"
    )
    llm_max_tokens_rewrite: int = Field(
        160, ge=16, le=32768, description="longest LLM prompt rewrite, tokens"
    )
    llm_max_tokens_understanding: int = Field(
        512, ge=16, le=32768, description="longest LLM request-understanding answer (JSON), tokens"
    )
    llm_max_tokens_tools: int = Field(
        384, ge=16, le=32768, description="longest LLM tool-proposal answer or tool call, tokens"
    )
    llm_max_retries: int = Field(2, ge=0, le=10, description="LLM retries on timeouts, 429 and 5xx")
    rewrite: bool = Field(True, description="rewrite prompts guided by pool references (POS §4.3)")
    rewrite_max_words: int = Field(20, ge=3, le=100, description="longest rewrite accepted, in words")
    rewrite_references: int = Field(5, ge=0, le=20, description="reference captions per rewrite (POS k)")
    rewrite_min_similarity: float = Field(
        0.70, ge=0, le=1, description="semantic guard: least MiniLM similarity of rewrite to original"
    )
    gamma: float = Field(
        0.5, ge=0, le=1, description="share of DDIM steps conditioned on the rewrite (POS eq. 8)"
    )
    noise_source: Literal["auto", "ona", "npnet", "random"] = Field(
        "auto", description="initial noise: auto (ONA, else NPNet, else random), ona, npnet or random"
    )
    ona_eta: float = Field(0.5, ge=0, description="weight of the inverted noise in POS eq. 4")
    ona_min_similarity: float = Field(
        0.8, ge=-1, le=1, description="ONA: least caption similarity of the nearest pool video"
    )
    ona_pick: Literal["caption", "motion"] = Field(
        "caption",
        description="ONA's video: caption (POS eq. 3: nearest caption) or motion (top motion-prior hit)",
    )
    npnet: str | None = Field(None, description="NPNet weights; unset: the model's own, when it has one")
    npnet_min_skill: float = Field(
        0.1,
        ge=0,
        le=1,
        description="auto uses NPNet only when it explains at least this share of held-out inversion "
        "variance (1 - val MSE / zero MSE); an explicit noise_source = npnet always uses it",
    )
    # -- motion priors (Search-T2V §4.3) ---------------------------------------------------------
    motion_tuning: Literal["auto", "always", "never"] = Field(
        "auto", description="temporal-LoRA motion tuning: auto (rare motions only), always or never"
    )
    rare_motions: str | None = Field(
        None, description="comma-separated motions to tune for; unset: the model's reelgraph.json"
    )
    tune_steps: int = Field(150, ge=1, description="motion tuning: optimiser steps")
    tune_rank: int = Field(8, ge=1, description="motion tuning: LoRA rank")
    tune_learning_rate: float = Field(2e-3, gt=0, description="motion tuning: AdamW learning rate")
    tune_transformer_in: bool = Field(False, description="motion tuning: also adapt transformer_in")
    tune_gradient_checkpointing: bool = Field(False, description="motion tuning: save memory on large UNets")
    lora_scale: float = Field(1.0, ge=0, description="strength of a motion LoRA while sampling")
    detector: str | None = Field(
        None, description="keyframe detector: toy or grounding-dino (default: the model's planning.json)"
    )
    detector_model: str | None = Field(None, description="GroundingDINO folder or hub id")
    keyframe_margin: float = Field(0.25, ge=0, description="keyframe crop: context around the objects")
    keyframe_min_crop: float = Field(
        0.75, ge=0, le=1, description="keyframe crop: shortest side as a fraction of the frame's"
    )

    # -- the agent (chat, tool policy, caches) -----------------------------------------------------
    budget_seconds: float | None = Field(
        None, gt=0, description="time budget of a run; over it the rules drop optional tools"
    )
    llm_tool_proposals: bool = Field(
        True, description="with an LLM, let it propose tools per scene (the rules decide)"
    )
    clip_cache: bool = Field(
        True, description="reuse a clip made before with the same model, seed and request"
    )
    # -- scale-out (docs/scale-out.md) ------------------------------------------------------------
    ray: bool = Field(
        False, description="run indexing and batch work items on Ray (a local cluster unless ray_address)"
    )
    ray_address: str | None = Field(
        None, description="join the Ray cluster at host:port (implies ray); unset: start a local one"
    )
    ray_workers: int | None = Field(
        None, ge=1, description="Ray workers per job; unset: one per CPU (per GPU for GPU work)"
    )
    work_threads: int | None = Field(
        None,
        ge=1,
        description="torch CPU threads per work item, in process and on every Ray worker; "
        "unset: this process's count (equal results need equal counts)",
    )
    work_retries: int = Field(
        2, ge=0, le=10, description="tries after the first for a failed work item (both engines)"
    )

    @field_validator("*", mode="after")
    @classmethod
    def _fits_64_bits(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not -INT_MAX - 1 <= value <= INT_MAX:
            low = next(
                (m.ge for m in cls.model_fields[info.field_name].metadata if hasattr(m, "ge")), -INT_MAX - 1
            )
            raise ValueError(f"{value} is out of range: give a whole number between {low} and {INT_MAX}")
        return value

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    # -- sections: the part of the settings each service depends on ---------------------------
    # The file format and the environment names stay flat (documented); a service's constructor
    # takes the section it needs, so its signature says what it depends on.
    def section(self, kind: type[_S]) -> _S:
        """The fields of ``kind`` (a :class:`Section`), read from these settings."""
        return kind.model_validate({name: getattr(self, name) for name in kind.model_fields})

    @property
    def model_section(self) -> ModelSettings:
        return self.section(ModelSettings)

    @property
    def memory(self) -> MemorySettings:
        return self.section(MemorySettings)

    @property
    def text(self) -> TextSettings:
        return self.section(TextSettings)

    @property
    def llm(self) -> LLMSettings:
        return self.section(LLMSettings)

    @property
    def rewriting(self) -> RewriteSettings:
        return self.section(RewriteSettings)

    @property
    def pos(self) -> PosSettings:
        return self.section(PosSettings)

    @property
    def long_video(self) -> LongVideoSettings:
        return self.section(LongVideoSettings)

    @property
    def tuning(self) -> TuningSettings:
        return self.section(TuningSettings)

    @property
    def agent(self) -> AgentSettings:
        return self.section(AgentSettings)


class Section(BaseModel):
    """A read-only slice of :class:`Settings`: the same field names, a subset of the fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"  # type: ignore[attr-defined]  # sections with ``home`` only


def _fields(*names: str) -> dict[str, Any]:
    """Annotations and defaults of ``names``, copied from :class:`Settings`."""
    return {name: (Settings.model_fields[name].annotation, Settings.model_fields[name]) for name in names}


def _section(name: str, doc: str, *fields: str) -> type[Section]:
    from pydantic import create_model

    model = create_model(name, __base__=Section, __doc__=doc, **_fields(*fields))
    model.__module__ = __name__
    return model


ModelSettings = _section(
    "ModelSettings",
    "The video model and how it runs (generation.service).",
    "home",
    "model",
    "device",
    "dtype",
    "cpu_offload",
    "vae_slice_frames",
    "guidance_scale",
    "view_scale",
)
MemorySettings = _section(
    "MemorySettings",
    "The reference pool's store (memory, motion_prior.search).",
    "home",
    "chroma_url",
    "text_model",
    "spacy_model",
)
TextSettings = _section(
    "TextSettings",
    "The text models: spaCy units parser, MiniLM embedder.",
    "home",
    "text_model",
    "spacy_model",
    "text_encoder",
)
LLMSettings = _section(
    "LLMSettings",
    "The OpenAI-compatible endpoint (agent.llm).",
    "home",
    "llm_base_url",
    "llm_model",
    "llm_api_key",
    "llm_timeout",
    "llm_max_retries",
    "llm_deadline",
    "llm_max_tokens_rewrite",
    "llm_max_tokens_understanding",
    "llm_max_tokens_tools",
)
RewriteSettings = _section(
    "RewriteSettings",
    "Reference-guided rewriting behind the semantic guard (POS §4.3).",
    "rewrite",
    "rewrite_max_words",
    "rewrite_references",
    "rewrite_min_similarity",
)
PosSettings = _section(
    "PosSettings",
    "POS's choices: rewrite, hybrid semantics, noise source (agent.policies.pos_policy).",
    "home",
    "rewrite",
    "rewrite_references",
    "gamma",
    "noise_source",
    "ona_eta",
    "ona_min_similarity",
    "ona_pick",
    "npnet",
    "npnet_min_skill",
)
LongVideoSettings = _section(
    "LongVideoSettings",
    "Clip extension and scene continuation (VidRD §4.3, ART-V anchor).",
    "extension_mode",
    "extension_pns",
    "extension_dsg",
    "extension_prompt_frames",
    "extension_alpha",
    "extension_beta",
    "extension_keep",
    "scene_continuation",
    "anchor_first_clip",
    "extension_given_noise",
    "max_video_frames",
)
TuningSettings = _section(
    "TuningSettings",
    "Motion-prior tuning (Search-T2V §4.3, VMC) and its keyframes.",
    "home",
    "device",
    "spacy_model",
    "motion_tuning",
    "rare_motions",
    "tune_steps",
    "tune_rank",
    "tune_learning_rate",
    "tune_transformer_in",
    "tune_gradient_checkpointing",
    "lora_scale",
    "detector",
    "detector_model",
    "keyframe_margin",
    "keyframe_min_crop",
)
AgentSettings = _section(
    "AgentSettings", "The agent's own switches.", "budget_seconds", "llm_tool_proposals", "clip_cache"
)
_S = TypeVar("_S", bound=Section)


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("reelgraph", appauthor=False))


def resolve_home(cli_home: str | os.PathLike[str] | None, environ: dict[str, str]) -> tuple[Path, Source]:
    if cli_home:
        return Path(cli_home).expanduser(), "cli"
    if environ.get(ENV_PREFIX + "HOME"):
        return Path(environ[ENV_PREFIX + "HOME"]).expanduser(), "env"
    return default_home(), "default"


def _config_file(
    cli_config: str | os.PathLike[str] | None, home: Path, environ: dict[str, str]
) -> Path | None:
    explicit = cli_config or environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ReelgraphError(
                f"Config file {str(path)!r} does not exist.",
                fix="check the path given by --config / REELGRAPH_CONFIG.",
            )
        return path
    default = home / "config.toml"
    return default if default.is_file() else None


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ReelgraphError(
            f"Config file {str(path)!r} cannot be read: {error}.", fix="fix its TOML syntax."
        ) from error
    flat = dict(data.pop("reelgraph", {})) if isinstance(data.get("reelgraph"), dict) else {}
    flat.update(data)
    flat.pop("home", None)
    return flat


class LoadedSettings(BaseModel):
    settings: Settings
    sources: dict[str, Source]
    config_file: Path | None


def load_settings(
    cli: dict[str, Any] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> LoadedSettings:
    """Merge defaults, config file, environment and CLI flags (in rising precedence)."""
    environ = dict(os.environ if environ is None else environ)
    home_path, home_source = resolve_home(home, environ)
    config_path = _config_file(config, home_path, environ)
    fields = [name for name in Settings.model_fields if name != "home"]

    values: dict[str, Any] = {}
    sources: dict[str, Source] = {name: "default" for name in fields}
    if config_path is not None:
        file_values = _read_config(config_path)
        unknown = sorted(set(file_values) - set(fields))
        if unknown:
            raise ReelgraphError(
                f"Config file {str(config_path)!r} has unknown keys: {', '.join(unknown)}.",
                fix=f"known keys: {', '.join(fields)}.",
            )
        values.update(file_values)
        sources.update({name: "config" for name in file_values})
    for name in fields:
        key = ENV_PREFIX + name.upper()
        if environ.get(key, "") != "":
            values[name] = environ[key]
            sources[name] = "env"
    for name, key in ENV_FALLBACKS.items():  # only where no REELGRAPH_ variable or config entry set it
        if name not in values and environ.get(key, "") != "":
            values[name] = environ[key]
            sources[name] = "env"
    for name, value in (cli or {}).items():
        if value is not None:
            values[name] = value
            sources[name] = "cli"
    try:
        settings = Settings(home=home_path, **values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])} ({sources.get(str(e['loc'][0]), '?')}): {e['msg']}"
            for e in error.errors()
        )
        raise ReelgraphError(
            f"Invalid settings: {problems}.", fix="correct the flag, variable or config entry."
        ) from error
    sources["home"] = home_source
    return LoadedSettings(settings=settings, sources=sources, config_file=config_path)
