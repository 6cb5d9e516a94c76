"""POS on the generation side: hybrid semantics (eq. 8), ONA (eq. 3-5) with its cache, NPNet (§4.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generation import ona
from generation.hybrid import hybrid_conditioning, rewrite_steps
from generation.inversion_cache import InversionCache, InversionKey
from generation.npnet import NPNet, NPNetConfig, load_npnet, npnet_metadata, save_npnet, train_npnet
from generation.sampling import sample_ddim
from reelgraph.contracts.clips import ClipRequest, NoiseSpec

# -- hybrid semantics (POS eq. 8) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "gamma", "m"),
    [(10, 0.3, 3), (100, 0.29, 29), (25, 0.04, 1), (25, 0.1, 2), (25, 0.5, 12), (7, 1.0, 7), (7, 0.0, 0)],
)
def test_rewrite_steps_is_the_floor_of_t_gamma(steps, gamma, m):
    assert rewrite_steps(steps, gamma) == m


class MarkerDenoiser:
    """Records which context conditioned each UNet call: contexts are filled with a marker value."""

    def __init__(self):
        self.seen: list[list[float]] = []

    def predict_noise(self, latents, t, encoder_hidden_states):
        self.seen.append([float(c.flatten()[0]) for c in encoder_hidden_states])
        return torch.zeros_like(latents)


@pytest.mark.parametrize(("gamma", "m"), [(0.3, 3), (0.0, 0), (1.0, 10)])
def test_hybrid_semantics_switches_from_rewrite_to_original_at_step_m(gamma, m):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=1000)
    rewritten, original, negative = (torch.full((1, 4, 8), v) for v in (1.0, 2.0, -1.0))
    denoiser = MarkerDenoiser()
    sample_ddim(
        denoiser,
        scheduler,
        torch.zeros(1, 4, 2, 4, 4),
        hybrid_conditioning(rewritten, original, 10, gamma),
        negative,
        num_inference_steps=10,
        guidance_scale=5.0,
    )
    assert len(denoiser.seen) == 10
    # Guidance batches (negative, conditional): the conditional half carries the text of eq. 8.
    assert [call[1] for call in denoiser.seen] == [1.0] * m + [2.0] * (10 - m)
    assert all(call[0] == -1.0 for call in denoiser.seen)


# -- ONA: eq. 4, clip preparation, cache ---------------------------------------------------------------


def test_mix_noise_is_eq_4():
    g = torch.Generator().manual_seed(0)
    eps, inv = torch.randn(2, 4, 8, 8, 8, generator=g), torch.randn(2, 4, 8, 8, 8, generator=g)
    assert torch.equal(ona.mix_noise(eps, inv, 0.0), eps)
    eta = 0.5
    expected = eps / np.sqrt(1 + eta**2) + eta * inv / np.sqrt(1 + eta**2)
    assert torch.allclose(ona.mix_noise(eps, inv, eta), expected)
    assert abs(ona.mix_noise(eps, inv, 1.0).std().item() - 1.0) < 0.05  # unit variance kept
    assert torch.allclose(ona.mix_noise(eps, inv, 1e4), inv, atol=1e-3)  # η → ∞: ε_inv


def test_prepare_clip_takes_first_frames_covers_and_centre_crops():
    frames = np.zeros((5, 48, 64, 3), np.uint8)
    frames[:, :, 16:48] = 255  # a white band in the middle 32 of 64 columns
    frames[3] = 100
    clip = ona.prepare_clip(frames, num_frames=8, height=32, width=32)
    assert clip.shape == (1, 3, 8, 32, 32)
    # Resize to cover (48x64 -> 32x43), centre crop to 32x32: the band (~21 px wide) sits in the middle.
    row = clip[0, 0, 0, 16]
    assert row[16].item() == pytest.approx(1.0, abs=1e-3) and row[0].item() < -0.9 and row[-1].item() < -0.9
    assert torch.equal(clip[:, :, 5], clip[:, :, 4]) and torch.equal(clip[:, :, 7], clip[:, :, 4])  # padded
    same = ona.prepare_clip(frames[:, :32, :32], num_frames=4, height=32, width=32)
    assert torch.allclose(
        same[0, :, 0].permute(1, 2, 0), torch.from_numpy(frames[0, :32, :32]).float() / 127.5 - 1
    )


def test_inversion_keys_separate_models_videos_steps_and_sizes(tmp_path):
    cache = InversionCache(tmp_path)
    base = InversionKey("m1", "toy:000001", 25, 8, 32, 32)
    variants = [
        base,
        InversionKey("m2", "toy:000001", 25, 8, 32, 32),
        InversionKey("m1", "toy:000002", 25, 8, 32, 32),
        InversionKey("m1", "toy_000001", 25, 8, 32, 32),  # slugs alike, ids differ
        InversionKey("m1", "toy:000001", 50, 8, 32, 32),
        InversionKey("m1", "toy:000001", 25, 16, 32, 32),
        InversionKey("m1", "toy:000001", 25, 8, 64, 64),
    ]
    assert len({cache.path(k) for k in variants}) == len(variants)
    assert not cache.has(base) and cache.load(base) is None
    cache.save(base, torch.ones(1, 4, 8, 8, 8))
    assert cache.has(base) and torch.equal(cache.load(base), torch.ones(1, 4, 8, 8, 8))
    assert not any(cache.has(k) for k in variants[1:])


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    from generation.loaders import load_video_model

    torch.set_num_threads(1)
    return load_video_model(str(tiny_model_dir), device="cpu")


@pytest.fixture
def pool_video(tmp_path):
    from reelgraph.media import write_mp4

    rng = np.random.default_rng(0)
    frames = np.zeros((12, 32, 32, 3), np.uint8)
    for i in range(12):  # a square moving right
        frames[i, 10:20, 2 + i : 12 + i] = (220, 40, 40)
    frames += rng.integers(0, 8, frames.shape, dtype=np.uint8)
    return write_mp4(frames, tmp_path / "v.mp4", fps=8, lossless=True)


def test_cached_inversion_inverts_on_a_miss_and_never_on_a_hit(tiny_model, pool_video, tmp_path, monkeypatch):
    cache = InversionCache(tmp_path / "cache")
    eps_inv, hit = ona.cached_inversion(tiny_model, cache, "toy:v", pool_video, num_steps=4, num_frames=4)
    assert not hit and eps_inv.shape == tiny_model.latent_shape(1, 4)
    assert cache.has(ona.inversion_key(tiny_model, "toy:v", 4, 4))

    def no_inversion(*args, **kwargs):
        raise AssertionError("the request path inverted although the cache had the video")

    monkeypatch.setattr(ona, "invert_clips", no_inversion)
    again, hit = ona.cached_inversion(tiny_model, cache, "toy:v", pool_video, num_steps=4, num_frames=4)
    assert hit and torch.equal(again, eps_inv)
    with pytest.raises(AssertionError, match="inverted"):  # another step count is another key
        ona.cached_inversion(tiny_model, cache, "toy:v", pool_video, num_steps=5, num_frames=4)


def test_invert_many_resumes_and_counts_unreadable_videos(tiny_model, pool_video, tmp_path):
    cache = InversionCache(tmp_path / "cache")
    videos = [("a", str(pool_video)), ("b", str(pool_video)), ("bad", str(tmp_path / "missing.mp4"))]
    first = ona.invert_many(tiny_model, cache, videos, num_steps=3, num_frames=4, batch_size=2)
    assert first == {"inverted": 2, "cached": 0, "failed": 1}
    second = ona.invert_many(tiny_model, cache, videos, num_steps=3, num_frames=4, batch_size=2)
    assert second == {"inverted": 0, "cached": 2, "failed": 1}
    # Batched inversion equals inverting one video alone.
    alone, _ = ona.cached_inversion(tiny_model, InversionCache(tmp_path / "c2"), "a", pool_video, 3, 4)
    batched = cache.load(ona.inversion_key(tiny_model, "a", 3, 4))
    assert torch.allclose(alone, batched, atol=1e-4)


def test_sample_clip_uses_ona_noise_from_the_cache(tiny_model, tiny_model_dir, pool_video, tmp_path):
    from generation.service import GenerationService
    from reelgraph.settings import Settings

    service = GenerationService(Settings(home=tmp_path / "home", model=str(tiny_model_dir)))
    service.__dict__["model"] = tiny_model  # reuse the loaded model
    base = ClipRequest(
        prompt="a red box slides right", num_frames=4, num_inference_steps=3, guidance_scale=3.0, seed=3
    )
    plain = service.sample_clip(base, tmp_path / "plain.safetensors")
    spec = NoiseSpec(source="ona", eta=0.5, video_id="toy:v", video=str(pool_video))
    first = service.sample_clip(base.model_copy(update={"noise": spec}), tmp_path / "ona1.safetensors")
    second = service.sample_clip(base.model_copy(update={"noise": spec}), tmp_path / "ona2.safetensors")
    zero = service.sample_clip(
        base.model_copy(update={"noise": spec.model_copy(update={"eta": 0.0})}), tmp_path / "zero.safetensors"
    )
    assert plain.details["noise"] == {"source": "random"}
    assert first.details["noise"]["cache"] == "miss" and second.details["noise"]["cache"] == "hit"

    from safetensors.torch import load_file

    def latents(result):
        return load_file(result.latents_path)["latents"]

    assert torch.equal(latents(first), latents(second))
    assert not torch.allclose(latents(first), latents(plain))
    assert torch.equal(latents(zero), latents(plain))  # η = 0 is the plain sampler, same seed


def test_sample_clip_conditions_on_the_rewrite_for_m_steps(tiny_model, tiny_model_dir, tmp_path):
    from generation.service import GenerationService
    from reelgraph.settings import Settings

    service = GenerationService(Settings(home=tmp_path / "home", model=str(tiny_model_dir)))
    service.__dict__["model"] = tiny_model
    base = ClipRequest(prompt="a red box", num_frames=2, num_inference_steps=4, guidance_scale=3.0, seed=1)
    runs = {}
    for name, update in {
        "plain": {},
        "gamma0": {"rewritten_prompt": "a shiny red box", "gamma": 0.0},
        "gamma05": {"rewritten_prompt": "a shiny red box", "gamma": 0.5},
    }.items():
        runs[name] = service.sample_clip(base.model_copy(update=update), tmp_path / f"{name}.safetensors")
    assert runs["gamma05"].details["rewrite_steps"] == 2 and runs["gamma0"].details["rewrite_steps"] == 0
    from safetensors.torch import load_file

    out = {k: load_file(v.latents_path)["latents"] for k, v in runs.items()}
    assert torch.equal(out["gamma0"], out["plain"]) and not torch.equal(out["gamma05"], out["plain"])


# -- NPNet ---------------------------------------------------------------------------------------------


def test_npnet_learns_a_prompt_dependent_target_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)
    # Two kinds of prompt (a context prototype each, plus noise), each with its own inversion pattern.
    which = torch.arange(64) % 2
    prototypes, pattern = torch.randn(2, 6, 16, generator=g), torch.randn(2, 3, 2, 4, 4, generator=g)
    contexts = prototypes[which] + 0.3 * torch.randn(64, 6, 16, generator=g)
    targets = pattern[which] + 0.3 * torch.randn(64, 3, 2, 4, 4, generator=g)
    net, report = train_npnet(
        contexts, targets, minutes=1.0, max_steps=80, batch_size=16, lr=3e-3, dim=32, layers=1
    )
    assert report.steps == 80 and report.val_pairs == 6
    assert report.val_mse < 0.6 * report.val_mse_mean < report.val_mse_zero, report
    pred = net.predict(contexts[:4])
    assert pred.shape == (4, 3, 2, 4, 4)
    # A sample is the mean plus noise of the held-out residual's size, from the caller's generator.
    assert report.residual_std == pytest.approx(report.val_mse**0.5)
    sample = net.sample(contexts[:4], torch.Generator().manual_seed(1), num_frames=1)
    assert sample.shape == (4, 3, 1, 4, 4)
    assert torch.equal(sample, net.sample(contexts[:4], torch.Generator().manual_seed(1), num_frames=1))
    residual = sample - pred[:, :, :1]
    assert residual.std().item() == pytest.approx(report.residual_std, rel=0.3)
    many = torch.stack([net.sample(contexts[:1], torch.Generator().manual_seed(k)) for k in range(400)])
    assert torch.allclose(many.mean(dim=0), pred[:1], atol=4 * report.residual_std / 20)

    path = save_npnet(net, tmp_path / "np.safetensors", {"model_hash": "abc", "report": report.model_dump()})
    meta = npnet_metadata(path)
    assert meta["model_hash"] == "abc" and meta["config"]["dim"] == 32
    again = load_npnet(path)
    assert torch.allclose(again.predict(contexts[:4]), pred, atol=1e-6)


def test_npnet_noise_is_eq_4_with_a_sample_drawn_after_the_gaussian(tiny_model, tmp_path):
    """ε is the seed's first draw (shared with every noise source), ξ of ε̂_inv = μ + σ_r·ξ the second."""
    from generation.pos import initial_noise

    embeds = tiny_model.encode_prompt(["a red box slides right"]).embeds
    _, c, f, h, w = tiny_model.latent_shape(1, 4)
    config = NPNetConfig(
        context_dim=embeds.shape[-1], latent_channels=c, num_frames=f + 2, latent_height=h, latent_width=w
    )
    net = NPNet(config.model_copy(update={"residual_std": 0.8}))
    path = save_npnet(net, tmp_path / "np.safetensors", {"model_hash": "tiny"})
    request = ClipRequest(
        prompt="a red box slides right",
        num_frames=4,
        num_inference_steps=3,
        guidance_scale=3.0,
        seed=3,
        noise=NoiseSpec(source="npnet", eta=0.5, npnet=str(path)),
    )
    noise, details = initial_noise(
        tiny_model, request, torch.Generator().manual_seed(3), embeds, InversionCache(tmp_path), load_npnet
    )
    assert details["source"] == "npnet" and details["eta"] == 0.5
    g = torch.Generator().manual_seed(3)
    eps = torch.randn(tiny_model.latent_shape(1, 4), generator=g)
    eps_inv = net.predict(embeds.float())[:, :, :4] + 0.8 * torch.randn(eps.shape, generator=g)
    assert torch.allclose(noise.float(), ona.mix_noise(eps, eps_inv, 0.5), atol=1e-5)


def test_npnet_output_shape_follows_its_config():
    net = NPNet(NPNetConfig(context_dim=8, latent_channels=4, num_frames=3, latent_height=5, latent_width=6))
    assert net(torch.zeros(2, 7, 8)).shape == (2, 4, 3, 5, 6)
    assert sum(p.numel() for p in net.parameters()) < 200_000


def test_noise_support_finds_the_npnet_of_this_model_only(tiny_model_dir, tmp_path, monkeypatch):
    from generation import noise_support
    from generation.model_info import read_model_info
    from generation.noise_support import NoiseSupportService, default_npnet_path
    from reelgraph.settings import Settings

    info = read_model_info(tiny_model_dir)
    net = NPNet(NPNetConfig(context_dim=8, latent_channels=4, num_frames=2, latent_height=2, latent_width=2))
    monkeypatch.setattr(noise_support, "SHIPPED_NPNETS", tmp_path / "shipped")
    home = tmp_path / "home"

    def support(**settings):
        return NoiseSupportService(Settings(home=home, model=str(tiny_model_dir), **settings), lambda: info)

    assert support().npnet() == (None, "no NPNet was trained for this model (run `npnet train`)")
    save_npnet(net, tmp_path / "shipped" / "other.safetensors", {"model_hash": "someone-else"})
    assert support().npnet()[0] is None
    mine = save_npnet(net, tmp_path / "shipped" / "mine.safetensors", {"model_hash": info.weights_hash})
    assert support().npnet() == (str(mine), "found")
    trained = save_npnet(net, default_npnet_path(home, info.weights_hash), {"model_hash": info.weights_hash})
    assert support().npnet()[0] == str(trained)  # `npnet train`'s output comes first
    path, reason = support(npnet=str(tmp_path / "shipped" / "other.safetensors")).npnet()
    assert path is None and "trained for model someone-else" in reason
    assert "does not exist" in support(npnet=str(tmp_path / "nope.safetensors")).npnet()[1]
    cache_key = support().inversion_key("toy:1", 25, 8)
    assert not support().inversion_cached("toy:1", 25, 8)
    InversionCache(home / "cache").save(cache_key, torch.zeros(1))
    assert support().inversion_cached("toy:1", 25, 8)


def test_npnet_training_keeps_the_weights_that_did_best_on_its_selection_slice():
    """Early stopping: on targets the text cannot predict, memorising the training pairs raises the
    held-out MSE; the selection slice stops it early, so the report's MSE stays lower."""
    from generation.npnet import train_npnet

    g = torch.Generator().manual_seed(3)
    contexts, targets = torch.randn(80, 6, 16, generator=g), torch.randn(80, 3, 2, 4, 4, generator=g)
    kwargs = dict(minutes=1.0, max_steps=300, batch_size=16, lr=3e-3, dim=32, layers=1)
    _, plain = train_npnet(contexts, targets, select_fraction=0.0, **kwargs)
    _, early = train_npnet(contexts, targets, select_fraction=0.1, eval_every=10, **kwargs)
    assert plain.select_pairs == 0 and plain.best_step == plain.steps == 300
    assert early.select_pairs == 8 and early.train_pairs == 64 and early.best_step < 300
    assert early.val_mse < plain.val_mse, (early, plain)


def test_the_embedded_toy_model_ships_its_npnet(tmp_path):
    """`toyworld/npnet/` holds an NPNet trained for the committed toy model: retraining the model
    without retraining its NPNet (or shipping one of the wrong shape) fails here."""
    from generation.model_info import locate_model, read_model_info
    from generation.noise_support import NoiseSupportService
    from reelgraph.settings import Settings

    info = read_model_info(locate_model("toy")[0])
    support = NoiseSupportService(Settings(home=tmp_path, model="toy"), lambda: info)
    path, reason = support.npnet()
    assert reason == "found" and path is not None
    net = load_npnet(path)
    meta = npnet_metadata(path)
    report = meta["report"]
    assert support.npnet_skill(path) == pytest.approx(1 - report["val_mse"] / report["val_mse_zero"])
    assert support.npnet_skill(str(tmp_path / "missing.safetensors")) is None
    assert meta["model_hash"] == info.weights_hash and meta["num_steps"] == 25
    f = info.vae_scale_factor
    assert net.grid == (info.num_frames, info.height // f, info.width // f)
    assert net.config.latent_channels == info.latent_channels
    assert meta["report"]["val_mse"] < meta["report"]["val_mse_zero"]  # it learnt something
