"""A Wan 2.1 / 2.2 checkpoint loaded for our flow-matching loop.

Loaded with diffusers' and transformers' own ``from_pretrained`` classes
(``WanTransformer3DModel``, ``AutoencoderKLWan``, ``UMT5EncoderModel``), so a
real checkpoint and our tiny test folders take the same path. The prompt is
encoded as ``WanPipeline`` does: padded to ``max_sequence_length`` with an
attention mask, the encoder's states past each prompt's length zeroed.
Latents are normalised with the VAE's ``latents_mean`` / ``latents_std``.
The embedded toy flow model (family ``reelgraph toy flow``) takes the same
loop with its own components (:mod:`generation.toy_flow`): MiniLM text states
and a per-frame VAE behind the same prompt-encoder / codec interface
(:mod:`generation.flow_codecs`).

ONA (POS eq. 2-4) on this path: :meth:`WanModel.invert_clips` encodes a pool
clip (posterior mean, normalised) and runs the flow ODE forwards from σ = 0 to
σ = 1 (:func:`generation.flow_inversion.flow_invert`) with the empty prompt
and no guidance, as DDIM inversion does on the UNet path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from generation.families import TOY_FLOW, WAN22, Family, family_of
from generation.flow_codecs import FrameVideoCodec, MiniLMPrompts, T5Prompts, WanVideoCodec
from generation.flow_inversion import flow_invert
from generation.flow_sampling import Expert, LatentsHook, flow_sample
from generation.model_info import ModelInfo
from generation.sampling import Conditioning, StepCallback
from generation.toy_transformer import GivenFrames


def _transformer_velocity(transformer: torch.nn.Module, given: GivenFrames | None = None):
    """The velocity of a Wan transformer; ``given`` frames (and anchor) go through the conditioning
    channels of a network that has them (:class:`~generation.toy_transformer.ToyWanTransformer`,
    ART-V's masked diffusion), the same for the conditional and the unconditional call."""
    extra = {} if given is None else given.kwargs()

    def velocity(latents: torch.Tensor, timestep: torch.Tensor, prompt_embeds: torch.Tensor) -> torch.Tensor:
        return transformer(
            hidden_states=latents.to(transformer.dtype),
            timestep=timestep,
            encoder_hidden_states=prompt_embeds,
            return_dict=False,
            **extra,
        )[0]

    return velocity


@dataclass
class WanModel:
    """A Wan-layout transformer (one or two experts), its prompt encoder and video codec
    (:mod:`generation.flow_codecs`), and the settings our loop needs."""

    family: Family
    transformer: torch.nn.Module
    transformer_2: torch.nn.Module | None
    prompts: T5Prompts | MiniLMPrompts
    codec: WanVideoCodec | FrameVideoCodec
    scheduler_class: str
    scheduler_config: dict
    boundary_ratio: float | None
    device: torch.device
    dtype: torch.dtype
    info: ModelInfo | None = (
        None  # set by generation.flow_loaders: the folder's hash keys the inversion cache
    )

    @property
    def vae(self) -> torch.nn.Module:
        return self.codec.vae

    @property
    def flow_shift(self) -> float | None:
        shift = self.scheduler_config.get("flow_shift", self.scheduler_config.get("shift"))
        return None if shift is None else float(shift)

    def make_scheduler(self):
        import diffusers

        return getattr(diffusers, self.scheduler_class).from_config(self.scheduler_config)

    def latent_shape(self, batch_size: int, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        s = self.family.spatial_compression
        channels = self.transformer.config.out_channels  # in_channels also counts conditioning channels
        return (batch_size, channels, self.family.latent_frames(num_frames), height // s, width // s)

    def encode_prompt(self, prompts: list[str], max_sequence_length: int) -> torch.Tensor:
        """``(B, L, D)`` text states in the transformer's dtype, zero past each prompt's tokens."""
        return self.prompts.encode(prompts, max_sequence_length).to(self.transformer.dtype)

    def boundary_timestep(self, scheduler) -> float | None:
        if self.boundary_ratio is None or self.transformer_2 is None:
            return None
        return self.boundary_ratio * scheduler.config.num_train_timesteps

    def _experts(
        self, guidance_scale: float, guidance_scale_2: float | None = None, given: GivenFrames | None = None
    ) -> tuple[Expert, ...]:
        experts = [Expert(_transformer_velocity(self.transformer, given), guidance_scale)]
        if self.transformer_2 is not None:
            scale_2 = guidance_scale if guidance_scale_2 is None else guidance_scale_2
            experts.append(Expert(_transformer_velocity(self.transformer_2), scale_2))
        return tuple(experts)

    @torch.no_grad()
    def sample(
        self,
        prompt_embeds: Conditioning,
        negative_prompt_embeds: torch.Tensor | None,
        latents: torch.Tensor,
        num_inference_steps: int,
        guidance_scale: float,
        guidance_scale_2: float | None = None,
        callback: StepCallback | None = None,
        latents_hook: LatentsHook | None = None,
        given: GivenFrames | None = None,
    ) -> torch.Tensor:
        scheduler = self.make_scheduler()
        return flow_sample(
            self._experts(guidance_scale, guidance_scale_2, given),
            scheduler,
            latents,
            prompt_embeds,
            negative_prompt_embeds,
            num_inference_steps,
            boundary_timestep=self.boundary_timestep(scheduler),
            callback=callback,
            latents_hook=latents_hook,
        )

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, F, H, W)`` video in [-1, 1] to normalised latents ``(B, C, f, h, w)``: the posterior
        mean (so one video always gives one inversion), the inverse of :meth:`decode_latents`."""
        return self.codec.encode(video).to(self.dtype)

    @torch.no_grad()
    def invert_clips(self, clips: torch.Tensor, num_steps: int) -> torch.Tensor:
        """ONA's ``ε_inv`` (POS §4.1) of clips ``(B, 3, F, H, W)``: encode, then flow-ODE inversion with ``∅``.

        Guidance off (one velocity call per step), on the sampler's own shifted
        σ grid of ``num_steps`` steps, so our sampler walks the same σ back.
        Returns ``(B, C, f, h, w)`` float32 on the CPU: the state at σ = 1,
        the flow's pure-noise end, which the sampler starts from.
        """
        latents = self.encode_video(clips)
        max_tokens = self.info.max_prompt_tokens if self.info is not None else 512
        empty = self.encode_prompt([""] * clips.shape[0], max_tokens)
        scheduler = self.make_scheduler()
        eps_inv = flow_invert(
            self._experts(1.0),
            scheduler,
            latents,
            empty,
            None,
            num_steps,
            boundary_timestep=self.boundary_timestep(scheduler),
        )
        return eps_inv.float().cpu()

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """``(B, C, f, h, w)`` latents to ``(B, 3, F, H, W)`` video in [-1, 1]."""
        return self.codec.decode(latents)


def _frozen(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return module.to(device).eval().requires_grad_(False)


def load_wan_model(folder: Path, device: torch.device, dtype: torch.dtype) -> WanModel:
    """Load a Wan folder (diffusers layout), or the toy flow model's, onto ``device`` in ``dtype``."""
    import diffusers

    folder = Path(folder)
    family = family_of(folder)
    index = json.loads((folder / "model_index.json").read_text())
    if family is TOY_FLOW:
        from generation.toy_flow import toy_flow_components

        transformer, prompts, codec = toy_flow_components(folder, device, dtype)
        transformer_2 = None
    else:
        transformer, transformer_2, prompts, codec = _wan_components(folder, family, device, dtype)
    scheduler_class = index["scheduler"][1]
    scheduler_config = dict(getattr(diffusers, scheduler_class).load_config(folder, subfolder="scheduler"))
    return WanModel(
        family=family,
        transformer=transformer,
        transformer_2=transformer_2,
        prompts=prompts,
        codec=codec,
        scheduler_class=scheduler_class,
        scheduler_config=scheduler_config,
        boundary_ratio=index.get("boundary_ratio"),
        device=device,
        dtype=dtype,
    )


def _wan_components(folder: Path, family: Family, device: torch.device, dtype: torch.dtype):
    """Wan 2.x's transformer(s), UMT5 prompts and causal VAE, with their own ``from_pretrained``."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    transformer = _frozen(
        WanTransformer3DModel.from_pretrained(folder, subfolder="transformer", torch_dtype=dtype), device
    )
    transformer_2 = None
    if family is WAN22:
        transformer_2 = _frozen(
            WanTransformer3DModel.from_pretrained(folder, subfolder="transformer_2", torch_dtype=dtype),
            device,
        )
    # Wan's VAE decodes in fp32 in diffusers' examples: its causal convolutions overflow in fp16.
    vae = _frozen(
        AutoencoderKLWan.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32), device
    )
    text_encoder = _frozen(
        UMT5EncoderModel.from_pretrained(folder, subfolder="text_encoder", torch_dtype=dtype), device
    )
    tokenizer = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
    return transformer, transformer_2, T5Prompts(tokenizer, text_encoder, device), WanVideoCodec(vae)
