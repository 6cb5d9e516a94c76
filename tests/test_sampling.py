"""Our DDIM loop against diffusers' TextToVideoSDPipeline, and DDIM inversion round trips."""

from __future__ import annotations

import pytest
import torch

from generation.loaders import load_video_model
from generation.sampling import StepInfo, invert_ddim, sample_ddim


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_video_model(str(tiny_model_dir), device="cpu")


def _diffusers_pipeline(model):
    from diffusers import TextToVideoSDPipeline

    return TextToVideoSDPipeline(
        vae=model.vae,
        text_encoder=model.prompt_encoder.model,
        tokenizer=model.prompt_encoder.tokenizer,
        unet=model.unet,
        scheduler=model.make_scheduler(),
    )


@pytest.mark.parametrize(("guidance_scale", "eta"), [(7.5, 0.0), (1.0, 0.0), (4.0, 0.5)])
def test_sample_ddim_matches_diffusers_pipeline(model, guidance_scale, eta):
    prompt, steps, frames, seed = "a red ball rolls to the right", 6, 4, 1234
    pipe = _diffusers_pipeline(model)
    expected = pipe(
        prompt,
        num_frames=frames,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        eta=eta,
        generator=torch.Generator().manual_seed(seed),
        output_type="latent",
    ).frames

    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(model.latent_shape(1, frames), generator=generator)
    cond = model.encode_prompt([prompt]).embeds
    uncond = model.encode_prompt([""]).embeds
    ours = sample_ddim(
        model,
        model.make_scheduler(),
        latents,
        cond,
        uncond,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        eta=eta,
        generator=generator,
    )
    assert ours.shape == expected.shape
    assert (ours - expected).abs().max().item() <= 1e-5


def test_callback_sees_every_step_and_can_cancel(model):
    seen: list[StepInfo] = []
    latents = torch.randn(model.latent_shape(1, 2), generator=torch.Generator().manual_seed(0))
    cond = model.encode_prompt(["a ball"]).embeds

    def stop_at_three(info: StepInfo) -> None:
        seen.append(info)
        if info.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample_ddim(
            model, model.make_scheduler(), latents, cond, num_inference_steps=5, callback=stop_at_three
        )
    assert [info.step for info in seen] == [0, 1, 2]
    assert all(info.num_steps == 5 for info in seen)


def test_step_dependent_conditioning_and_latents_hook_are_called_per_step(model):
    latents = torch.randn(model.latent_shape(1, 2), generator=torch.Generator().manual_seed(0))
    cond = model.encode_prompt(["a ball"]).embeds
    asked: list[int] = []
    hooked: list[int] = []

    def conditioning(step: int) -> torch.Tensor:
        asked.append(step)
        return cond

    def hook(step: int, t: int, z: torch.Tensor) -> torch.Tensor:
        hooked.append(t)
        return z

    scheduler = model.make_scheduler()
    sample_ddim(model, scheduler, latents, conditioning, num_inference_steps=4, latents_hook=hook)
    assert asked == [0, 1, 2, 3]
    assert hooked == scheduler.timesteps.tolist()


def test_inversion_visits_the_denoising_noise_levels_in_reverse(model):
    for steps in (5, 25, 50):
        forward = model.make_scheduler()
        forward.set_timesteps(steps)
        inverse = model.make_inverse_scheduler()
        inverse.set_timesteps(steps)
        assert inverse.timesteps.tolist() == forward.timesteps.flip(0).tolist()
        assert inverse.config.set_alpha_to_one == forward.config.set_alpha_to_one


class GaussianDenoiser:
    """The exact ε-prediction for data ``z_0 ~ N(0, σ² I)``: ``ε*(z_t) = √(1-ᾱ_t) z_t / (ᾱ_t σ² + 1 - ᾱ_t)``.

    Its probability-flow ODE is exactly invertible, so any reconstruction
    error left is DDIM's discretisation error: a check of the schedulers'
    plumbing (noise levels, offsets, ``set_alpha_to_one``) free of a
    network's own non-smoothness.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, sigma: float):
        self.alphas_cumprod = alphas_cumprod
        self.sigma = sigma

    def predict_noise(self, latents, t, encoder_hidden_states):
        a = self.alphas_cumprod[int(t)]
        return (1 - a).sqrt() * latents / (a * self.sigma**2 + 1 - a)


def test_invert_then_denoise_reconstructs_latents(model):
    """Guidance 1, the same context both ways: the DDIM ODE round trip (POS eq. 2 then eq. 1).

    Documented tolerance: relative L2 error below 2% at 50 steps, and falling
    as steps grow (10 -> 50).
    """
    z0 = torch.randn(model.latent_shape(1, 4), generator=torch.Generator().manual_seed(7)) * 0.8
    denoiser = GaussianDenoiser(model.make_scheduler().alphas_cumprod, sigma=0.8)
    empty = model.encode_prompt([""]).embeds
    errors = {}
    for steps in (10, 50):
        noise = invert_ddim(denoiser, model.make_inverse_scheduler(), z0, empty, num_inference_steps=steps)
        assert noise.shape == z0.shape
        assert 0.5 < noise.std().item() < 1.5  # z_T is noise-like, not the data
        recon = sample_ddim(
            denoiser, model.make_scheduler(), noise, empty, num_inference_steps=steps, guidance_scale=1.0
        )
        errors[steps] = ((recon - z0).norm() / z0.norm()).item()
    assert errors[50] < 0.02, errors
    assert errors[50] < errors[10], errors
