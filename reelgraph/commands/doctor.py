"""``reelgraph doctor``: what this machine and configuration can do, checked one by one.

Each check is independent and never raises: a failure is reported as a row,
so the command always shows the whole picture.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from reelgraph.settings import Settings

Status = Literal["ok", "warn", "fail", "info"]


@dataclass
class Check:
    name: str
    status: Status
    detail: str


def _versions(settings: Settings) -> Check:
    from reelgraph.versions import package_versions

    v = package_versions()
    missing = [name for name, version in v.items() if version is None]
    detail = ", ".join(f"{name} {version}" for name, version in v.items() if version)
    if missing:
        return Check("packages", "fail", f"missing: {', '.join(missing)}; {detail}")
    return Check("packages", "ok", detail)


def _device(settings: Settings) -> Check:
    import torch

    from generation.devices import resolve_device, resolve_dtype

    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        memory = torch.cuda.get_device_properties(device).total_memory / 2**30
        return Check("device", "ok", f"{device} ({name}, {memory:.0f} GiB), {dtype}")
    note = "" if torch.cuda.is_available() else " (no CUDA GPU; sampling runs on the CPU)"
    return Check(
        "device",
        "ok" if device.type != "cpu" or settings.device == "cpu" else "info",
        f"{device}, {dtype}{note}",
    )


def _model(settings: Settings) -> Check:
    from generation.model_info import locate_model, read_model_info

    folder, model_id = locate_model(settings.model)
    info = read_model_info(folder, model_id=model_id, hash_memo=settings.cache_dir / "weights-hashes.json")
    return Check(
        "model",
        "ok",
        f"{model_id}: {info.unet_class}, {info.unet_parameters / 1e6:.1f}M UNet parameters, "
        f"{info.num_frames} frames of {info.width}x{info.height}, text encoder {info.text_encoder}, "
        f"weights {info.weights_hash}",
    )


def _families(settings: Settings) -> Check:
    from generation.families import support_summary

    return Check("model families", "info", support_summary())


def _hub_cache(settings: Settings) -> Check:
    try:
        from huggingface_hub import scan_cache_dir

        repos = [repo.repo_id for repo in scan_cache_dir().repos if repo.repo_type == "model"]
    except Exception as error:  # an absent or unreadable cache is information, not a failure
        return Check("hub cache", "info", f"no Hugging Face cache ({type(error).__name__})")
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")
    mode = "offline" if offline else "online"
    return Check(
        "hub cache", "info", f"{len(repos)} cached models ({mode}): {', '.join(repos[:8]) or 'none'}"
    )


def _home(settings: Settings) -> Check:
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".doctor"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        return Check("data dir", "fail", f"{home} is not writable: {error}")
    return Check("data dir", "ok", str(home))


PING_SECONDS = 3.0


def _chroma(settings: Settings) -> Check:
    """The store: embedded in the data directory, or a server that must answer its heartbeat."""
    from importlib import metadata

    version = metadata.version("chromadb")
    if not settings.chroma_url:
        return Check("chroma", "ok", f"chromadb {version}; store: {settings.home / 'chroma'} (embedded)")
    import httpx

    url = settings.chroma_url.rstrip("/")
    try:
        response = httpx.get(f"{url}/api/v2/heartbeat", timeout=PING_SECONDS)
        response.raise_for_status()
    except (httpx.HTTPError, ValueError) as error:
        return Check(
            "chroma",
            "fail",
            f"the Chroma server at {url} does not answer ({type(error).__name__}: {error}); "
            "plan and generate run without references; start it (chroma run --path DIR --port PORT)",
        )
    return Check("chroma", "ok", f"chromadb {version}; server {url} answers")


def _llm(settings: Settings) -> Check:
    """The LLM endpoint: asked for its models (GET /models), the key sent only to the named URL."""
    if not settings.llm_model:
        return Check("llm", "info", "no LLM configured (llm_model unset): the offline rewriter and parser")
    import httpx

    url = (settings.llm_base_url or "https://api.openai.com/v1").rstrip("/")
    headers = {}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    try:
        response = httpx.get(f"{url}/models", headers=headers, timeout=PING_SECONDS)
        response.raise_for_status()
        listed = [m.get("id") for m in response.json().get("data", []) if isinstance(m, dict)]
    except (httpx.HTTPError, ValueError, AttributeError) as error:
        return Check(
            "llm",
            "warn",
            f"the LLM endpoint {url} does not answer ({type(error).__name__}: {error}); "
            "every LLM step falls back (offline rewriter, rules) and says so in the plan",
        )
    limits = (
        f"deadline {settings.llm_deadline:g} s, max_tokens rewrite {settings.llm_max_tokens_rewrite}/"
        f"understanding {settings.llm_max_tokens_understanding}/tools {settings.llm_max_tokens_tools}"
    )
    if listed and settings.llm_model not in listed:
        return Check("llm", "warn", f"{url} answers but does not list {settings.llm_model!r}; {limits}")
    return Check("llm", "ok", f"{settings.llm_model} at {url}; {limits}")


def _detector(settings: Settings) -> Check:
    """The keyframe detector motion tuning would use for this model (Search-T2V §4.3)."""
    from reelgraph.commands.common import services_for

    name = services_for(settings).tuner.detector_name
    if name == "toy":
        return Check("keyframes", "ok", "toy probe detector (the model's planning.json)")
    where = settings.detector_model
    if where:
        return Check("keyframes", "ok", f"GroundingDINO from {where}")
    return Check(
        "keyframes",
        "warn",
        "GroundingDINO, but no detector_model is set: motion tuning refuses to run rather than "
        "crop whole frames silently; set REELGRAPH_DETECTOR_MODEL to a local folder",
    )


def _import_names(settings: Settings) -> Check:
    from reelgraph.distribution import TOP_LEVEL_NAMES, import_name_clashes

    clashes = import_name_clashes()
    if clashes:
        listed = "; ".join(f"{name} also from {', '.join(dists)}" for name, dists in clashes.items())
        return Check(
            "import names",
            "fail",
            f"{listed}: one shadows the other; install reelgraph in its own environment (make install)",
        )
    return Check("import names", "ok", f"{', '.join(TOP_LEVEL_NAMES)}: provided by reelgraph only")


def _work_runner(settings: Settings) -> Check:
    from reelgraph.work_runner import describe_engine

    status, detail = describe_engine(settings)
    return Check("work runner", status, detail)


CHECKS: tuple[Callable[[Settings], Check], ...] = (
    _versions,
    _device,
    _model,
    _families,
    _hub_cache,
    _home,
    _chroma,
    _llm,
    _detector,
    _work_runner,
    _import_names,
)


def run_checks(settings: Settings) -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check(settings))
        except Exception as error:  # doctor reports every failure as a row and carries on
            name = check.__name__.strip("_").replace("_", " ")
            message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            results.append(Check(name, "fail", message.replace("\n", " ")))
    return results
