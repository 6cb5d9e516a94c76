"""Would data parallelism on the CPU's cores buy the toy trainer more UNet steps?

    python bench/train_step_parallel.py [--repeats 12]

Times one UNet training step (forward, ε-MSE backward, AdamW) of the embedded architecture on random
latents ``(B, 4, 8, 8, 8)`` and context ``(B, 32, 384)``, side by side in one run:

1. one process, two threads, batch 16 (what ``toy train`` does);
2. one process, one thread, batch 16 and batch 8;
3. two processes at once, one thread each, batch 8 each: 16 clips a step between them, the compute of
   two-rank data parallelism without its gradient all-reduce (so a bound on its gain).

Writes ``bench/results/train_step_parallel.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result

ROOT = Path(__file__).resolve().parents[1]


def time_steps(threads: int, batch: int, repeats: int) -> float:
    """Median seconds of one training step after two warm-up steps."""
    import torch

    from toyworld import architecture

    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    unet = architecture.build_unet()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    latents = torch.randn(batch, 4, 8, 8, 8, generator=generator)
    context = torch.randn(batch, architecture.TEXT_TOKENS, architecture.TEXT_DIM, generator=generator)
    timesteps = torch.randint(0, 1000, (batch,), generator=generator)
    times = []
    for _ in range(repeats + 2):
        started = time.perf_counter()
        noise_pred = unet(latents, timesteps, encoder_hidden_states=context).sample
        noise_pred.sub(latents).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def _worker(threads: int, batch: int, repeats: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", str(threads), str(batch), "--repeats", str(repeats)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def _run(*workers: tuple[int, int], repeats: int) -> list[float]:
    """Start the workers together; their medians, in order."""
    procs = [_worker(threads, batch, repeats) for threads, batch in workers]
    return [float(proc.communicate()[0].strip()) for proc in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--worker", nargs=2, type=int, metavar=("THREADS", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(time_steps(*args.worker, args.repeats))
        return

    (two_threads,) = _run((2, 16), repeats=args.repeats)
    (one_thread_16,) = _run((1, 16), repeats=args.repeats)
    (one_thread_8,) = _run((1, 8), repeats=args.repeats)
    pair = _run((1, 8), (1, 8), repeats=args.repeats)
    parallel = max(pair)  # a data-parallel step waits for its slower rank
    rows = [
        ("1 process, 2 threads, batch 16 (`toy train`)", f"{two_threads:.3f}", "16"),
        ("1 process, 1 thread, batch 16", f"{one_thread_16:.3f}", "16"),
        ("1 process, 1 thread, batch 8, alone", f"{one_thread_8:.3f}", "8"),
        (
            "2 processes at once, 1 thread, batch 8 each",
            f"{pair[0]:.3f} / {pair[1]:.3f}",
            "16",
        ),
    ]
    table = "\n".join(f"| {name} | {seconds} | {clips} |" for name, seconds, clips in rows)
    body = (
        f"Median seconds of one UNet training step (forward, ε-MSE backward, AdamW) of the toy "
        f"architecture on random latents, {args.repeats} steps after 2 warm-up steps, each setting in a "
        "fresh process with `OMP_NUM_THREADS` set to its thread count.\n\n"
        "| setting | s / step | clips / step |\n|---|---|---|\n"
        f"{table}\n\n"
        f"Two one-thread ranks take {parallel:.3f} s for 16 clips (the slower of the pair, before any "
        f"gradient all-reduce) against {two_threads:.3f} s for one two-thread process: "
        f"{(two_threads / parallel - 1) * 100:+.1f} % more steps at best, so the trainer stays one process."
    )
    write_result("train_step_parallel", "Toy trainer: one two-thread process or two one-thread ranks", body)


if __name__ == "__main__":
    main()
