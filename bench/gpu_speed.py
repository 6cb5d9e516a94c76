"""GPU speed: our sampling loops vs diffusers' pipelines on random-weight models of real sizes.

Two models, built from their published configs with random weights (nothing is
downloaded; speed does not depend on the weights' values):

* ModelScope text-to-video 1.7B: ``UNet3DConditionModel`` (1.4B parameters) with
  the SD ``AutoencoderKL``; 16 frames of 256x256; DDIM; context ``(B, 77, 1024)``.
* Wan 2.1 T2V 1.3B: ``WanTransformer3DModel`` with ``AutoencoderKLWan``;
  33 frames of 480x832; UniPC flow sampling (shift 3); context ``(B, 512, 4096)``.

The prompt encoders are left out (both sides get the same random context), so
the figures are the denoising loop and the VAE decode. Per model, one line per
variant, each timed after a warm-up (CUDA synchronised), with its peak memory
and the max |difference| of its final latents from diffusers' (fp32, defaults):

1. diffusers' pipeline with its defaults (``TextToVideoSDPipeline`` / ``WanPipeline``,
   fp32 weights as ``from_pretrained`` loads them, ``output_type="latent"``);
2. ours (:func:`generation.sampling.sample_ddim` / :func:`generation.flow_sampling.flow_sample`), fp32;
3. ours, bf16 weights;
4. ours, bf16, attention on the flash SDPA kernel (CUDA only);
5. ours, bf16, flash, classifier-free guidance as one batched call (Wan; the DDIM loop
   and TextToVideoSDPipeline batch it already);
6. the same with ``torch.compile`` on the denoiser (compile time reported apart).

Then the VAE decode of the clip: default vs tiled (``enable_tiling``), time and peak memory.
Target (issue 22): >= 1.3x faster than diffusers' defaults. It is sized to finish in
about 8 minutes on one H200 (``--steps``, ``--frames`` trim it); ``--tiny`` runs the same
code on tiny configs on the CPU (``tests/test_gpu_speed.py``), so it does not rot.

    python -m bench.gpu_speed [--steps 8] [--models modelscope,wan] [--out bench/results/gpu_speed.md]
    python -m bench.gpu_speed --tiny --device cpu --steps 2 --out /tmp/gpu_speed.md
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# Published configs (diffusers' config.json of each checkpoint), sizes of one clip, and tiny stand-ins.
MODELSCOPE_UNET = {
    "act_fn": "silu",
    "attention_head_dim": 64,
    "block_out_channels": [320, 640, 1280, 1280],
    "cross_attention_dim": 1024,
    "down_block_types": [
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "CrossAttnDownBlock3D",
        "DownBlock3D",
    ],
    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
    "downsample_padding": 1,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "sample_size": 32,
}
SD_VAE = {
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 256,
}
WAN_1_3B = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-06,
    "rope_max_seq_len": 1024,
}
WAN_VAE: dict = {}  # AutoencoderKLWan's defaults are Wan 2.1's VAE

TINY_UNET = {
    **MODELSCOPE_UNET,
    "block_out_channels": [32, 64],
    "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"],
    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"],
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
    "layers_per_block": 1,
    "sample_size": 8,
}
TINY_SD_VAE = {
    **SD_VAE,
    "block_out_channels": [32, 64],
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "layers_per_block": 1,
    "sample_size": 16,
}
TINY_WAN = {
    **WAN_1_3B,
    **{"num_attention_heads": 2, "attention_head_dim": 12, "text_dim": 32, "ffn_dim": 32, "num_layers": 2},
    "rope_max_seq_len": 32,
}
TINY_WAN_VAE = {"base_dim": 8, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}


@dataclass
class Clip:
    frames: int
    height: int
    width: int
    context_tokens: int
    context_dim: int
    guidance_scale: float


@dataclass
class Row:
    name: str
    seconds_per_step: float
    peak_gb: float | None
    max_abs_diff: float | None
    note: str = ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _flash(device: torch.device):
    """Attention on the flash kernel only (CUDA; a head size it cannot take fails the row and says so);
    a no-op context elsewhere."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION])


def timed(run: Callable[[int], torch.Tensor], steps: int, device: torch.device, repeats: int):
    """Warm up with 2 steps, then time ``repeats`` runs of ``steps``; (median s/step, latents, peak GB,
    warm-up seconds)."""
    started = time.perf_counter()
    with torch.inference_mode():
        run(min(2, steps))
    _sync(device)
    warmup = time.perf_counter() - started
    _reset_peak(device)
    times, latents = [], None
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        with torch.inference_mode():
            latents = run(steps)
        _sync(device)
        times.append((time.perf_counter() - started) / steps)
    times.sort()
    return times[len(times) // 2], latents.float(), _peak_gb(device), warmup


def _noise(shape, device, seed: int) -> torch.Tensor:
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(shape, generator=generator).to(device)


# ---------------------------------------------------------------------------------- ModelScope


class UNetDenoiser:
    """``predict_noise`` for :func:`generation.sampling.sample_ddim` on a diffusers UNet3D,
    inputs cast to the weights' dtype and the prediction back to fp32."""

    def __init__(self, unet: torch.nn.Module, dtype: torch.dtype):
        self.unet, self.dtype = unet, dtype

    def predict_noise(self, latents, t, encoder_hidden_states):
        out = self.unet(latents.to(self.dtype), t, encoder_hidden_states=encoder_hidden_states.to(self.dtype))
        return out.sample.float()


def bench_modelscope(args, device: torch.device) -> tuple[list[Row], list[Row], str]:
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    from generation.sampling import sample_ddim

    tiny = args.tiny
    clip = Clip(args.frames or (4 if tiny else 16), 32 if tiny else 256, 32 if tiny else 256, 8 if tiny else 77,
                32 if tiny else 1024, 9.0)  # fmt: skip
    torch.manual_seed(0)  # diffusers initialises weights from the global generator
    with torch.device(device):
        unet = UNet3DConditionModel(**(TINY_UNET if tiny else MODELSCOPE_UNET)).eval()
        vae = AutoencoderKL(**(TINY_SD_VAE if tiny else SD_VAE)).eval()
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1,
    )  # fmt: skip
    shape = (1, 4, clip.frames, clip.height // scale, clip.width // scale)
    noise = _noise(shape, device, 0)
    cond = _noise((1, clip.context_tokens, clip.context_dim), device, 1)
    uncond = _noise((1, clip.context_tokens, clip.context_dim), device, 2)
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)

    def theirs(steps: int) -> torch.Tensor:
        return pipe(
            prompt_embeds=cond, negative_prompt_embeds=uncond, num_frames=clip.frames, height=clip.height,
            width=clip.width, num_inference_steps=steps, guidance_scale=clip.guidance_scale,
            latents=noise.clone(), output_type="latent",
        ).frames  # fmt: skip

    def ours(model, dtype, attention=contextlib.nullcontext):
        denoiser = UNetDenoiser(model, dtype)

        def run(steps: int) -> torch.Tensor:
            with attention():
                return sample_ddim(
                    denoiser, copy.deepcopy(scheduler), noise.clone(), cond, uncond,
                    num_inference_steps=steps, guidance_scale=clip.guidance_scale,
                )  # fmt: skip

        return run

    rows, reference = _variants(args, device, theirs, lambda dtype: unet if dtype == torch.float32 else
                                copy.deepcopy(unet).to(dtype), ours, batched_cfg=None)  # fmt: skip
    vae_rows = _vae_rows(args, device, vae, reference, frames_as_batch=True)
    params = sum(p.numel() for p in unet.parameters())
    what = (
        f"UNet3DConditionModel {params / 1e9:.2f}B parameters{' (tiny)' if tiny else ''}, {clip.frames} frames of "
        f"{clip.width}x{clip.height}, latents {tuple(shape)}, DDIM, guidance {clip.guidance_scale}"
    )
    return rows, vae_rows, what


# ---------------------------------------------------------------------------------- Wan


def bench_wan(args, device: torch.device) -> tuple[list[Row], list[Row], str]:
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel

    from generation.flow_sampling import Expert, flow_sample

    tiny = args.tiny
    clip = Clip(args.frames or (5 if tiny else 33), 16 if tiny else 480, 16 if tiny else 832, 8 if tiny else 512,
                32 if tiny else 4096, 5.0)  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        transformer = WanTransformer3DModel(**(TINY_WAN if tiny else WAN_1_3B)).eval()
        vae = AutoencoderKLWan(**(TINY_WAN_VAE if tiny else WAN_VAE)).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
    )
    shape = (1, 16, (clip.frames - 1) // 4 + 1, clip.height // 8, clip.width // 8)
    noise = _noise(shape, device, 0)
    cond = _noise((1, clip.context_tokens, clip.context_dim), device, 1)
    uncond = _noise((1, clip.context_tokens, clip.context_dim), device, 2)
    pipe = WanPipeline(
        transformer=transformer, vae=vae, text_encoder=None, tokenizer=None, scheduler=scheduler
    )
    pipe.set_progress_bar_config(disable=True)

    def theirs(steps: int) -> torch.Tensor:
        return pipe(
            prompt_embeds=cond, negative_prompt_embeds=uncond, num_frames=clip.frames, height=clip.height,
            width=clip.width, num_inference_steps=steps, guidance_scale=clip.guidance_scale,
            latents=noise.clone(), output_type="latent",
        ).frames  # fmt: skip

    def velocity_of(model, dtype):
        def velocity(latents, timestep, context):
            out = model(
                latents.to(dtype), timestep, encoder_hidden_states=context.to(dtype), return_dict=False
            )
            return out[0].float()

        return velocity

    def ours(model, dtype, attention=contextlib.nullcontext, batched_cfg: bool = False):
        velocity = velocity_of(model, dtype)
        if batched_cfg:
            w = clip.guidance_scale

            def guided(latents, timestep, context):  # one call on (2B, ...) instead of two on (B, ...)
                both = velocity(
                    torch.cat([latents, latents]), timestep.repeat(2), torch.cat([uncond, context])
                )
                v_uncond, v_cond = both.chunk(2)
                return v_uncond + w * (v_cond - v_uncond)

            expert = Expert(guided, guidance_scale=1.0)  # guidance is inside
        else:
            expert = Expert(velocity, guidance_scale=clip.guidance_scale)

        def run(steps: int) -> torch.Tensor:
            with attention():
                return flow_sample((expert,), copy.deepcopy(scheduler), noise.clone(), cond, uncond, steps)

        return run

    rows, reference = _variants(
        args, device, theirs,
        lambda dtype: transformer if dtype == torch.float32 else copy.deepcopy(transformer).to(dtype),
        ours, batched_cfg=True,
    )  # fmt: skip
    vae_rows = _vae_rows(args, device, vae, reference, frames_as_batch=False)
    params = sum(p.numel() for p in transformer.parameters())
    what = (
        f"WanTransformer3DModel {params / 1e9:.2f}B parameters{' (tiny)' if tiny else ''}, {clip.frames} frames "
        f"of {clip.width}x{clip.height}, latents {tuple(shape)}, UniPC flow (shift 3), guidance {clip.guidance_scale}"
    )
    return rows, vae_rows, what


# ---------------------------------------------------------------------------------- shared


def _variants(args, device, theirs, weights_in, ours, batched_cfg) -> tuple[list[Row], torch.Tensor]:
    """Time diffusers' defaults, then our loop fp32, bf16, + flash, + batched CFG, + torch.compile."""
    steps, repeats = args.steps, args.repeats
    rows = []
    base_s, reference, peak, _ = timed(theirs, steps, device, repeats)
    rows.append(Row("diffusers pipeline, defaults (fp32)", base_s, peak, 0.0))

    def add(name: str, run, note: str = "") -> None:
        try:
            seconds, latents, peak, warmup = timed(run, steps, device, repeats)
        except Exception as error:  # one variant failing (no kernel for a head size) must not end the run
            rows.append(Row(name, float("nan"), None, None, f"failed: {type(error).__name__}: {error}"[:160]))
            return
        if "compile" in name:
            note = f"compile + warm-up {warmup:.0f} s"
        rows.append(Row(name, seconds, peak, (latents - reference).abs().max().item(), note))

    add("ours, fp32", ours(weights_in(torch.float32), torch.float32))
    low = weights_in(args.low_dtype)
    label = str(args.low_dtype).removeprefix("torch.")
    add(f"ours, {label}", ours(low, args.low_dtype))
    flash = lambda: _flash(device)  # noqa: E731
    note = "" if device.type == "cuda" else "flash kernel is CUDA-only: same as the row above"
    add(f"ours, {label}, flash attention", ours(low, args.low_dtype, flash), note)
    extra = {}
    name = f"ours, {label}, flash"
    if batched_cfg is not None:
        extra = {"batched_cfg": True}
        name += ", batched CFG"
        add(name, ours(low, args.low_dtype, flash, **extra))
    if args.compile != "off":
        compiled = torch.compile(low, backend=args.compile)
        add(name + f", torch.compile ({args.compile})", ours(compiled, args.low_dtype, flash, **extra))
    return rows, reference


def _vae_rows(args, device, vae, latents: torch.Tensor, frames_as_batch: bool) -> list[Row]:
    """Decode ``latents`` ``(B, C, F, h, w)`` with the VAE as is, then tiled; time, peak memory, difference."""
    latents = latents.to(device, vae.dtype)
    if frames_as_batch:  # the SD VAE decodes frames as a batch, as TextToVideoSDPipeline does
        b, c, f, h, w = latents.shape
        latents = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)

    def decode() -> torch.Tensor:
        return vae.decode(latents / getattr(vae.config, "scaling_factor", 1.0)).sample

    rows, reference = [], None
    for name in ("VAE decode, default", "VAE decode, tiled (enable_tiling)"):
        if "tiled" in name:
            vae.enable_tiling()
        seconds, video, peak, _ = timed(lambda _steps: decode(), 1, device, 1)  # a decode is long: one timed
        reference = video if reference is None else reference
        rows.append(Row(name, seconds, peak, (video - reference).abs().max().item()))
    vae.disable_tiling()
    return rows


def _table(rows: list[Row], unit: str) -> list[str]:
    base = rows[0].seconds_per_step
    lines = [
        f"| variant | {unit} | x faster than row 1 | peak GB | max abs diff vs row 1 | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        peak = "-" if row.peak_gb is None else f"{row.peak_gb:.2f}"
        diff = "-" if row.max_abs_diff is None else f"{row.max_abs_diff:.2e}"
        lines.append(
            f"| {row.name} | {row.seconds_per_step:.4f} | {base / row.seconds_per_step:.2f} | {peak} | {diff} "
            f"| {row.note} |"
        )
    return lines


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="modelscope,wan")
    ap.add_argument("--steps", type=int, default=8, help="timed denoising steps per run")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per variant (median)")
    ap.add_argument("--frames", type=int, default=None, help="clip frames (default: 16 ModelScope, 33 Wan)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--low-dtype", default="bfloat16", choices=["bfloat16", "float16"])
    ap.add_argument("--compile", default="inductor", help="torch.compile backend, or 'off'")
    ap.add_argument("--tiny", action="store_true", help="tiny configs (a CPU smoke run)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/gpu_speed.md"))
    args = ap.parse_args(argv)
    args.low_dtype = getattr(torch, args.low_dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    started = time.perf_counter()
    load = os.getloadavg()
    sections = []
    benches = {"modelscope": bench_modelscope, "wan": bench_wan}
    for name in args.models.split(","):
        rows, vae_rows, what = benches[name](args, device)
        sections += [
            f"## {name}: {what}",
            "",
            *_table(rows, "s / step"),
            "",
            *_table(vae_rows, "s / decode"),
            "",
        ]
        if device.type == "cuda":
            torch.cuda.empty_cache()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU (CPU run)"
    header = [
        "# GPU speed: our loops vs diffusers' pipelines (random weights, real sizes)",
        "",
        f"Command: `python -m bench.gpu_speed {' '.join(sys.argv[1:] if argv is None else argv)}`  ",
        f"Device: {gpu}; torch {torch.__version__}; {os.cpu_count()} CPU cores, load average {load[0]:.1f}; "
        f"{args.steps} timed steps x {args.repeats} runs per variant after a 2-step warm-up; "
        f"total {time.perf_counter() - started:.0f} s.",
        "",
        "Row 1 is diffusers' pipeline as it comes (fp32, its attention processor, its guidance); the others "
        "are our loop with what each row adds. Max abs diff: final latents (or decoded video) against row 1; "
        "low-precision rows differ by rounding, not by method.",
        "",
    ]
    from reelgraph.atomic import write_text

    text = "\n".join(header + sections)
    write_text(args.out, text)
    print(text)
    return args.out


if __name__ == "__main__":
    main()
