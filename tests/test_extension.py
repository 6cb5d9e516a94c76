"""VidRD's equations, index by index: FNR (eq. 6), PNS (eq. 7), DSG (eq. 8) through our DDIM loop.

An instrumented denoiser records the latents every frame received at every
step, so the tests check which frame of the previous clip was copied where,
and at which steps, against the equations written out independently here.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from diffusers import DDIMScheduler

from generation.clip_plan import ExtensionParams
from generation.extension import (
    ClipConditioning,
    PromptFrames,
    guidance_schedule,
    guided_frames,
    guided_step_count,
    past_dependent_noise,
    reverted_noise,
    rotated_noise,
    staged_guidance,
)
from generation.sampling import sample_ddim

N, M, S = 6, 3, 10
SHAPE = (1, 2, N, 3, 3)


def scheduler() -> DDIMScheduler:
    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


class RecordingDenoiser:
    """Predicts a fixed function of its input and remembers every input, per call."""

    def __init__(self):
        self.inputs: list[torch.Tensor] = []

    def predict_noise(self, latents, t, encoder_hidden_states, **kwargs):
        self.inputs.append(latents.clone())
        return 0.3 * latents + 0.01 * float(t) / 1000.0


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_fnr_reverses_the_frame_order():
    previous = torch.randn(SHAPE, generator=generator(0))
    z = reverted_noise(previous)
    for j in range(N):
        assert torch.equal(z[:, :, j], previous[:, :, N - j - 1])


@pytest.mark.parametrize("alpha", [0.0, 0.5, 4.0])
def test_pns_keeps_prompt_frames_and_mixes_the_rest(alpha):
    previous = torch.randn(SHAPE, generator=generator(1))
    fresh = torch.randn(SHAPE, generator=generator(2))
    z = past_dependent_noise(previous, fresh, M, alpha)
    for j in range(N):
        if j < M:
            assert torch.equal(z[:, :, j], previous[:, :, N - j - 1])
        else:
            expected = alpha / math.sqrt(1 + alpha**2) * previous[:, :, N - j - 1] + fresh[
                :, :, j
            ] / math.sqrt(1 + alpha**2)
            assert torch.allclose(z[:, :, j], expected, atol=1e-6)
    if alpha == 0.0:
        assert torch.allclose(z[:, :, M:], fresh[:, :, M:])


def test_pns_noise_stays_standard_normal():
    previous = torch.randn((1, 4, 8, 32, 32), generator=generator(3))
    fresh = torch.randn((1, 4, 8, 32, 32), generator=generator(4))
    z = past_dependent_noise(previous, fresh, 4, 4.0)[:, :, 4:]
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1.0) < 0.05


def _count_by_enumeration(j: int, m: int, beta: float, s: int) -> int:
    """Eq. 8 literally: the steps t in {S, ..., 1} with t > (1-β)S + βSj/M (exact rationals)."""
    if j >= m:
        return 0
    b = Fraction(beta).limit_denominator(10**6)
    return sum(1 for t in range(s, 0, -1) if t > (1 - b) * s + b * s * Fraction(j, m))


@pytest.mark.parametrize("beta", [0.0, 0.2, 0.4, 0.5, 0.7, 1.0])
@pytest.mark.parametrize(("m", "s"), [(3, 10), (4, 25), (8, 50), (1, 7)])
def test_guided_step_count_is_eq_8(beta, m, s):
    assert guidance_schedule(m, beta, s) == [_count_by_enumeration(j, m, beta, s) for j in range(m)]
    assert guided_step_count(m, m, beta, s) == 0


def test_guided_step_count_known_values():
    # β = 0.4, S = 50, M = 4 (the paper's ablation values, 50 DDIM steps): 20, 15, 10, 5 guided steps.
    assert guidance_schedule(4, 0.4, 50) == [20, 15, 10, 5]
    assert guidance_schedule(4, 0.0, 50) == [0, 0, 0, 0]
    assert guidance_schedule(4, 1.0, 50)[0] == 50  # β = 1 guides frame 0 through the last step


def _previous_clip(entries: int, seed: int = 5) -> PromptFrames:
    """A previous clip whose recorded tail has a distinct value per (entry, frame)."""
    initial = torch.randn(SHAPE, generator=generator(seed))
    tail = torch.zeros(entries, 1, 2, M, 3, 3)
    for k in range(entries):
        for f in range(M):
            tail[k, :, :, f] = 1000.0 + 10.0 * k + f  # frame N-M+f of the previous clip at entry k
    tail[0] = initial[:, :, N - M :]
    return PromptFrames(initial=initial, tail=tail)


@pytest.mark.parametrize("beta", [0.4, 1.0])
def test_dsg_replaces_exactly_the_frames_and_steps_of_eq_8(beta):
    params = ExtensionParams(mode="vidrd-literal", prompt_frames=M, beta=beta, alpha=4.0)
    schedule = guidance_schedule(M, beta, S)
    previous = _previous_clip(schedule[0] + 1)
    conditioning = ClipConditioning(params, S, previous=previous)
    fresh = torch.randn(SHAPE, generator=generator(6))
    denoiser = RecordingDenoiser()
    z0 = sample_ddim(
        denoiser,
        scheduler(),
        conditioning.initial_latents(fresh),
        torch.zeros(1, 4, 8),
        num_inference_steps=S,
        guidance_scale=1.0,
        latents_hook=conditioning.hook,
    )
    z0 = conditioning.finish(z0)
    assert len(denoiser.inputs) == S
    # Entry 0 (the UNet's first input) is z_T: eq. 7, so prompt frames hold the previous clip's reversed noise.
    for j in range(M):
        assert torch.equal(denoiser.inputs[0][:, :, j], previous.initial[:, :, N - j - 1])
    # Entry k >= 1 is the output of step t = S - k + 1: replaced by z^{i-1,N-j-1} iff t > (1-β)S + βSj/M.
    b = Fraction(beta).limit_denominator(10**6)
    for k in range(1, S + 1):
        latents = denoiser.inputs[k] if k < S else z0
        t = S - k + 1
        for j in range(N):
            replaced = j < M and t > (1 - b) * S + b * S * Fraction(j, M)
            source = 1000.0 + 10.0 * k + (N - j - 1 - (N - M))  # the previous clip's frame N-j-1
            copied = bool(torch.all(latents[:, :, j] == source))
            assert copied == replaced, (k, j)


def test_dsg_off_and_fnr_only_leave_sampling_alone():
    previous = _previous_clip(1)
    fresh = torch.randn(SHAPE, generator=generator(7))
    fnr = ClipConditioning(
        ExtensionParams(mode="vidrd-literal", prompt_frames=M, pns=False, dsg=False), S, previous=previous
    )
    z_t = fnr.initial_latents(fresh)
    assert torch.equal(z_t, previous.initial.flip(2))
    assert fnr.hook(3, 500, z_t) is z_t
    assert staged_guidance(z_t, previous.tail[0], 2, []) is z_t


def test_handoff_is_the_last_m_frames_after_replacement_at_the_guided_entries():
    params = ExtensionParams(prompt_frames=M, beta=0.4)
    schedule = guidance_schedule(M, 0.4, S)
    first = ClipConditioning(params, S)
    fresh = torch.randn(SHAPE, generator=generator(8))
    denoiser = RecordingDenoiser()
    z0 = first.finish(
        sample_ddim(
            denoiser,
            scheduler(),
            first.initial_latents(fresh),
            torch.zeros(1, 4, 8),
            num_inference_steps=S,
            guidance_scale=1.0,
            latents_hook=first.hook,
        )
    )
    handoff = first.handoff()
    assert torch.equal(handoff.initial, fresh)  # eq. 5: the first clip starts from its own noise
    assert handoff.tail.shape == (schedule[0] + 1, 1, 2, M, 3, 3)
    for k in range(schedule[0] + 1):
        assert torch.equal(handoff.tail[k], denoiser.inputs[k][:, :, N - M :])
    assert z0.shape == SHAPE


def test_prompt_frames_longer_than_half_a_clip_record_their_own_replacements():
    # M > N/2: the last M frames include prompt frames, whose recorded values are the replaced ones.
    m = 4
    params = ExtensionParams(mode="vidrd-literal", prompt_frames=m, beta=1.0)
    schedule = guidance_schedule(m, 1.0, S)
    initial = torch.randn(SHAPE, generator=generator(9))
    tail = torch.full((schedule[0] + 1, 1, 2, m, 3, 3), 7.0)
    tail[0] = initial[:, :, N - m :]
    conditioning = ClipConditioning(params, S, previous=PromptFrames(initial, tail))
    z = conditioning.initial_latents(torch.randn(SHAPE, generator=generator(10)))
    for k in range(S):
        z = conditioning.hook(k, 0, z)
    conditioning.finish(z)
    handoff = conditioning.handoff()
    # Frame 2 (= N-m of this clip) was guided for schedule[2] steps: its recorded entries are the copies.
    for k in range(1, schedule[2] + 1):
        assert torch.all(handoff.tail[k][:, :, 0] == 7.0)


def test_image_prompt_frames_follow_the_forward_process():
    sched = scheduler()
    sched.set_timesteps(S)
    timesteps = [int(t) for t in sched.timesteps]
    image = torch.randn(1, 2, 1, 3, 3, generator=generator(11))
    virtual = torch.randn(SHAPE, generator=generator(12))
    frames = PromptFrames.from_image(image, virtual, M, timesteps, sched.add_noise, entries=S + 1)
    assert frames.tail.shape == (S + 1, 1, 2, M, 3, 3)
    abar = sched.alphas_cumprod
    for k in (0, 3, S - 1):
        expected = (
            abar[timesteps[k]].sqrt() * image + (1 - abar[timesteps[k]]).sqrt() * virtual[:, :, N - M :]
        )
        assert torch.allclose(frames.tail[k], expected, atol=1e-6)
    assert torch.equal(frames.tail[S], image.expand(-1, -1, M, -1, -1))
    assert torch.equal(frames.initial[:, :, N - M :], frames.tail[0])


def test_image_held_to_the_end_comes_out_exactly():
    sched = scheduler()
    sched.set_timesteps(S)
    image = torch.randn(1, 2, 1, 3, 3, generator=generator(13))
    virtual = torch.randn(SHAPE, generator=generator(14))
    frames = PromptFrames.from_image(
        image, virtual, M, [int(t) for t in sched.timesteps], sched.add_noise, entries=S + 1
    )
    conditioning = ClipConditioning(
        ExtensionParams(mode="vidrd-literal", prompt_frames=M, beta=1.0), S, previous=frames
    )
    z0 = conditioning.finish(
        sample_ddim(
            RecordingDenoiser(),
            scheduler(),
            conditioning.initial_latents(torch.randn(SHAPE, generator=generator(15))),
            torch.zeros(1, 4, 8),
            num_inference_steps=S,
            guidance_scale=1.0,
            latents_hook=conditioning.hook,
        )
    )
    assert torch.equal(z0[:, :, 0], image[:, :, 0])


# --- VidRD keeping direction (issue 18): eq. 6'-8', frame j continues frame N-M+j -------------


def test_rotated_noise_continues_the_previous_clips_last_frames_in_order():
    previous = torch.randn(SHAPE, generator=generator(20))
    rotated = rotated_noise(previous, M)
    for j in range(N):
        assert torch.equal(rotated[:, :, j], previous[:, :, (j + N - M) % N])  # eq. 6'
    fresh = torch.randn(SHAPE, generator=generator(21))
    mixed = past_dependent_noise(previous, fresh, M, 4.0, forward=True)  # eq. 7'
    assert torch.equal(mixed[:, :, :M], previous[:, :, N - M :])
    norm = math.sqrt(1 + 16.0)
    assert torch.allclose(mixed[:, :, M:], (4.0 * previous[:, :, : N - M] + fresh[:, :, M:]) / norm)


@pytest.mark.parametrize("beta", [0.4, 1.0])
def test_forward_dsg_copies_frame_n_minus_m_plus_j_by_distance_from_the_join(beta):
    """The instrumented denoiser records what every frame received at every step: frame j < M holds the
    previous clip's frame N-M+j (forward time), for the steps eq. 8 gives the frame at distance
    M-1-j from the join, and nowhere else; no frame ever holds a reversed source."""
    params = ExtensionParams(mode="vidrd", prompt_frames=M, beta=beta, alpha=4.0)
    schedule = guidance_schedule(M, beta, S)
    previous = _previous_clip(schedule[0] + 1)
    conditioning = ClipConditioning(params, S, previous=previous)
    denoiser = RecordingDenoiser()
    z0 = conditioning.finish(
        sample_ddim(
            denoiser,
            scheduler(),
            conditioning.initial_latents(torch.randn(SHAPE, generator=generator(22))),
            torch.zeros(1, 4, 8),
            num_inference_steps=S,
            guidance_scale=1.0,
            latents_hook=conditioning.hook,
        )
    )
    for j in range(M):  # entry 0: eq. 7' gives frame j the noise of frame N-M+j
        assert torch.equal(denoiser.inputs[0][:, :, j], previous.initial[:, :, N - M + j])
    b = Fraction(beta).limit_denominator(10**6)
    guided_anywhere = set()
    for k in range(1, S + 1):
        latents = denoiser.inputs[k] if k < S else z0
        t = S - k + 1
        for j in range(N):
            d = M - 1 - j  # distance from the join
            replaced = j < M and t > (1 - b) * S + b * S * Fraction(d, M)
            forward_source = 1000.0 + 10.0 * k + j  # tail index j = the previous clip's frame N-M+j
            assert bool(torch.all(latents[:, :, j] == forward_source)) == replaced, (k, j)
            for f in range(M):
                if f != j:  # never another prompt frame's source (the reversal would put M-1-j here)
                    assert not torch.all(latents[:, :, j] == 1000.0 + 10.0 * k + f), (k, j, f)
            if replaced:
                guided_anywhere.add(j)
    assert guided_anywhere == set(range(M)) if beta == 1.0 else M - 1 in guided_anywhere
    # the frame next to the new ones (j = M-1, the previous clip's last frame) is held longest
    assert guided_frames(schedule[0], schedule, forward=True)[-1] == (M - 1, M - 1)


def test_two_forward_clips_join_in_order():
    """Clip 1 made after clip 0 with β = 1: its frame M-1 ends as clip 0's last frame exactly (held to the
    end), and its prompt frames received clip 0's frames N-M .. N-1 in order at the first step."""
    params = ExtensionParams(mode="vidrd", prompt_frames=M, beta=1.0)
    first = ClipConditioning(params, S)
    z0_first = first.finish(
        sample_ddim(
            RecordingDenoiser(),
            scheduler(),
            first.initial_latents(torch.randn(SHAPE, generator=generator(23))),
            torch.zeros(1, 4, 8),
            num_inference_steps=S,
            guidance_scale=1.0,
            latents_hook=first.hook,
        )
    )
    second = ClipConditioning(params, S, previous=first.handoff())
    denoiser = RecordingDenoiser()
    z0_second = second.finish(
        sample_ddim(
            denoiser,
            scheduler(),
            second.initial_latents(torch.randn(SHAPE, generator=generator(24))),
            torch.zeros(1, 4, 8),
            num_inference_steps=S,
            guidance_scale=1.0,
            latents_hook=second.hook,
        )
    )
    assert torch.equal(z0_second[:, :, M - 1], z0_first[:, :, N - 1])
    assert not torch.equal(z0_second[:, :, 0], z0_first[:, :, N - 1])  # the literal reading's frame 0


def test_literal_reading_is_the_old_reversed_order():
    """``vidrd-literal`` reproduces the reading before issue 18: eq. 6 reverses, eq. 8 copies N-1-j into j."""
    previous = _previous_clip(S + 1)
    literal = ClipConditioning(ExtensionParams(mode="vidrd-literal", prompt_frames=M, pns=False), S, previous)
    z_t = literal.initial_latents(torch.randn(SHAPE, generator=generator(25)))
    assert torch.equal(z_t, reverted_noise(previous.initial))
    schedule = guidance_schedule(M, 0.4, S)
    out = literal.hook(1, 0, z_t)
    for j in range(M):
        expected = 1000.0 + 10.0 + (M - 1 - j)  # entry 1 of the previous clip's frame N-1-j
        assert bool(torch.all(out[:, :, j] == expected)) == (schedule[j] >= 1)
    assert guided_frames(1, schedule) == [(j, M - 1 - j) for j in range(M) if schedule[j] >= 1]
