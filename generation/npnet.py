"""The noise prediction network (POS §4.2): the prompt to ``ε̂_inv``, without a pool at request time.

What we build, and why it differs from the paper. POS initialises NPNet from
its video UNet (an SCVideo-sized UNet, trained 40K steps on two A100s) and
trains it with the noise-reconstruction loss on 600K (caption, inversion)
pairs. Its target is a deterministic function of the caption's video, so we
regress it directly with a small cross-attention decoder:

* the prompt context ``(B, L, D)`` comes from the video model's own text
  encoder (as in the paper: NPNet is conditioned like the UNet);
* one learned query per latent position ``(f, y, x)``, the sum of a frame, a
  row and a column embedding (so the same network shape fits any clip size);
* ``layers`` blocks of cross-attention to the prompt, a depthwise-separable
  3D convolution (neighbouring positions and frames agree, as inversions of
  real videos do) and an MLP;
* a linear head to the ``C`` latent channels: ``(B, C, F, h, w)``.

Trained with MSE to the cached inversions (``npnet train``), it predicts the
conditional mean ``μ = E[ε_inv | prompt]``. The paper's NPNet is itself a
diffusion model, so its output is a *sample* of an inversion; ours draws one
from the Gaussian approximation ``ε̂_inv = μ + σ_r·ξ`` (:meth:`NPNet.sample`),
where ``ξ`` comes from the request's generator and ``σ_r²`` is the held-out
MSE (the variance the prompt does not explain, ``residual_std``). So the part
of the inversion that the prompt predicts enters eq. 4 at its measured scale,
and every seed still gets its own noise. (Rescaling ``μ`` itself to an
inversion's spread, our first design, amplified a smooth mean field that is
the same for every seed: on the toy model it cost 15 points of colour
accuracy, ``bench/results/pos_ablation.md``.) About 0.15M parameters for the toy model: it
costs a fraction of one denoising step per request, trains in minutes on a
CPU, and is small enough to commit. A UNet-sized NPNet initialised from the
video model is what the paper does at scale; on this CPU it would cost as
much as a denoising step per request and hours to train.

Weights are one safetensors file whose metadata holds the config, the video
model's weights hash, the DDIM steps of its training inversions and its
validation figures.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from reelgraph.errors import ReelgraphError


class NPNetConfig(BaseModel):
    context_dim: int
    latent_channels: int
    num_frames: int
    latent_height: int
    latent_width: int
    dim: int = 64
    heads: int = 4
    layers: int = 2
    target_std: float = 1.0
    residual_std: float | None = None  # σ_r: sqrt of the held-out MSE; None: sqrt(target_std² − var(μ))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_conv = nn.LayerNorm(dim)
        self.depthwise = nn.Conv3d(dim, dim, 3, padding=1, groups=dim)
        self.pointwise = nn.Conv3d(dim, dim, 1)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        b, n, d = x.shape
        x = x + self.attn(self.norm_attn(x), context, context, need_weights=False)[0]
        y = self.norm_conv(x).transpose(1, 2).reshape(b, d, *grid)
        x = x + self.pointwise(nn.functional.gelu(self.depthwise(y))).reshape(b, d, n).transpose(1, 2)
        return x + self.mlp(self.norm_mlp(x))


class NPNet(nn.Module):
    """Prompt context ``(B, L, D)`` to a predicted inversion ``(B, C, F, h, w)``."""

    def __init__(self, config: NPNetConfig):
        super().__init__()
        self.config = config
        dim = config.dim
        self.context = nn.Sequential(nn.LayerNorm(config.context_dim), nn.Linear(config.context_dim, dim))
        self.frame = nn.Parameter(torch.randn(config.num_frames, dim) * 0.02)
        self.row = nn.Parameter(torch.randn(config.latent_height, dim) * 0.02)
        self.col = nn.Parameter(torch.randn(config.latent_width, dim) * 0.02)
        self.blocks = nn.ModuleList(_Block(dim, config.heads) for _ in range(config.layers))
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, config.latent_channels))

    @property
    def grid(self) -> tuple[int, int, int]:
        c = self.config
        return (c.num_frames, c.latent_height, c.latent_width)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        f, h, w = self.grid
        queries = self.frame[:, None, None] + self.row[None, :, None] + self.col[None, None, :]
        x = queries.reshape(1, f * h * w, -1).expand(context.shape[0], -1, -1)
        ctx = self.context(context)
        for block in self.blocks:
            x = block(x, ctx, self.grid)
        out = self.head(x)  # (B, F·h·w, C)
        return out.transpose(1, 2).reshape(context.shape[0], -1, f, h, w)

    @torch.no_grad()
    def predict(self, context: torch.Tensor) -> torch.Tensor:
        """The conditional mean ``μ = E[ε_inv | prompt]``: ``(B, C, F, h, w)``."""
        return self(context.float())

    @torch.no_grad()
    def sample(self, context: torch.Tensor, generator: torch.Generator, num_frames: int | None = None):
        """One ``ε̂_inv = μ + σ_r·ξ`` per prompt (module doc), ``ξ`` drawn on the CPU from ``generator``;
        the first ``num_frames`` frames. Returns a CPU tensor ``(B, C, F, h, w)``."""
        mean = self.predict(context)[:, :, :num_frames].float().cpu()
        sigma = self.config.residual_std
        if sigma is None:  # weights saved before residual_std was recorded
            spread = self.config.target_std**2 - mean.var().item()
            sigma = math.sqrt(max(spread, 0.0))
        return mean + sigma * torch.randn(mean.shape, generator=generator)


# -- files -----------------------------------------------------------------------------------------
def save_npnet(net: NPNet, path: str | Path, metadata: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    from reelgraph.atomic import atomic_path

    meta = {"config": net.config.model_dump_json(), **{k: json.dumps(v) for k, v in metadata.items()}}
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return Path(path)


def npnet_metadata(path: str | Path) -> dict[str, Any]:
    """The config and training record of an NPNet file, from its header (no weights read)."""
    from generation.inversion_cache import read_safetensors_metadata

    raw = read_safetensors_metadata(Path(path))
    meta: dict[str, Any] = {k: json.loads(v) for k, v in raw.items() if k != "config"}
    meta["config"] = json.loads(raw["config"])
    return meta


def load_npnet(path: str | Path, device: torch.device | str = "cpu") -> NPNet:
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ReelgraphError(f"NPNet weights {str(path)!r} do not exist.", fix="run `npnet train` first.")
    try:
        meta = npnet_metadata(path)
        net = NPNet(NPNetConfig(**meta["config"]))
    except (KeyError, TypeError, ValueError) as error:  # read_header already refused a damaged file
        raise ReelgraphError(
            f"NPNet weights {str(path)!r} have no usable config: {error}.", fix="run `npnet train` again."
        ) from error
    net.load_state_dict(load_file(str(path)))
    return net.to(device).eval()


# -- training --------------------------------------------------------------------------------------
class TrainReport(BaseModel):
    pairs: int
    train_pairs: int
    val_pairs: int
    steps: int
    seconds: float
    train_mse: float
    val_mse: float
    val_mse_zero: float
    val_mse_mean: float
    val_cosine: float
    target_std: float
    residual_std: float
    select_pairs: int = 0
    best_step: int = 0  # the update whose weights were kept (lowest MSE on the selection slice)


def train_npnet(
    contexts: torch.Tensor,
    targets: torch.Tensor,
    *,
    minutes: float = 5.0,
    max_steps: int | None = None,
    batch_size: int = 32,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    select_fraction: float = 0.1,
    eval_every: int = 25,
    seed: int = 0,
    dim: int = 64,
    layers: int = 2,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[NPNet, TrainReport]:
    """Fit an NPNet to ``(prompt context (N, L, D), inversion (N, C, F, h, w))`` pairs with MSE.

    A seeded ``val_fraction`` of the pairs is held out for the report, and a ``select_fraction``
    slice (of at least 4 pairs and 2 left to train on) picks the weights: every ``eval_every``
    updates its MSE is measured and the best weights are kept (early stopping). A few hundred pool
    inversions are easy to memorise (on the flow toy model's first 300, the training MSE fell to
    0.32 while the held-out MSE rose above that of predicting zero), so the last step is not the best. The report compares the
    held-out MSE with two trivial predictors: zero (the plain Gaussian's mean) and the mean
    training inversion; ``val_cosine`` is the mean cosine between predictions and held-out
    inversions.
    """
    n = contexts.shape[0]
    if n < 4:
        raise ReelgraphError(
            f"NPNet needs more (caption, inversion) pairs to train on; {n} found.",
            fix="invert more of the pool first: `index invert --limit N`.",
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    n_val = max(1, round(n * val_fraction))
    n_select = round(n * select_fraction)
    if n_select < 4 or n - n_val - n_select < 2:  # too few pairs to select on: keep the last step
        n_select = 0
    val_idx, select_idx = order[:n_val], order[n_val : n_val + n_select]
    train_idx = order[n_val + n_select :]
    _, c, f, h, w = targets.shape
    target_std = float(targets[train_idx].flatten(1).std(dim=1).mean())
    config = NPNetConfig(
        context_dim=contexts.shape[-1],
        latent_channels=c,
        num_frames=f,
        latent_height=h,
        latent_width=w,
        dim=dim,
        layers=layers,
        target_std=target_std,
    )
    torch.manual_seed(seed)  # nn.Module initialisers draw from the global generator
    net = NPNet(config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    deadline = time.perf_counter() + minutes * 60
    total = max_steps or 10**9
    started = time.perf_counter()
    step, train_loss = 0, float("nan")
    # (selection MSE, step, weights) of the best step so far; None without a selection slice
    best = (
        (_mse(net, contexts, targets, select_idx), 0, copy.deepcopy(net.state_dict())) if n_select else None
    )
    net.train()
    while step < total and time.perf_counter() < deadline:
        # Cosine decay over the step budget when one is given, else over the time budget.
        frac = step / total if max_steps else (time.perf_counter() - started) / (minutes * 60)
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))
        batch = train_idx[torch.randint(len(train_idx), (batch_size,), generator=generator)]
        loss = nn.functional.mse_loss(net(contexts[batch]), targets[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        train_loss = 0.98 * train_loss + 0.02 * loss.item() if step else loss.item()
        step += 1
        if progress is not None:
            progress(step, train_loss)
        if best is not None and step % eval_every == 0:
            mse = _mse(net, contexts, targets, select_idx)
            if mse < best[0]:
                best = (mse, step, copy.deepcopy(net.state_dict()))
            net.train()
    best_step = step
    if best is not None:
        _, best_step, weights = best
        net.load_state_dict(weights)
    net.eval()
    with torch.no_grad():
        val_targets = targets[val_idx]
        pred = _predict(net, contexts, val_idx)
        val_mse = float(nn.functional.mse_loss(pred, val_targets))
        net.config.residual_std = math.sqrt(val_mse)
        mean = targets[train_idx].mean(dim=0, keepdim=True)
        cosine = nn.functional.cosine_similarity(pred.flatten(1), val_targets.flatten(1), dim=1).mean()
        report = TrainReport(
            pairs=n,
            train_pairs=len(train_idx),
            val_pairs=n_val,
            steps=step,
            seconds=round(time.perf_counter() - started, 1),
            train_mse=float(train_loss),
            val_mse=val_mse,
            val_mse_zero=float(val_targets.pow(2).mean()),
            val_mse_mean=float(nn.functional.mse_loss(mean.expand_as(val_targets), val_targets)),
            val_cosine=float(cosine),
            target_std=target_std,
            residual_std=net.config.residual_std,
            select_pairs=n_select,
            best_step=best_step,
        )
    return net, report


def _predict(net: NPNet, contexts: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The NPNet's predictions for the pairs ``idx``, 64 at a time, without gradients."""
    with torch.no_grad():
        return torch.cat([net(contexts[idx[i : i + 64]]) for i in range(0, len(idx), 64)])


def _mse(net: NPNet, contexts: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor) -> float:
    """The NPNet's MSE on the pairs ``idx``, in eval mode."""
    net.eval()
    return float(nn.functional.mse_loss(_predict(net, contexts, idx), targets[idx]))
