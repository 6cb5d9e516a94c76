"""Train the embedded toy model: VAE first, then the text-conditioned video denoiser.

``train_toy_model(out_dir, minutes)`` writes a diffusers text-to-video folder
(``model_index.json``, ``reelgraph.json``, ``unet/``, ``vae/``, ``scheduler/``,
``MODEL_CARD.md``, ``loss_curve.png``) that :func:`generation.loaders.load_video_model`
reads like any checkpoint. Resume state lives in ``out_dir/.checkpoint/``
(safetensors for tensors, JSON for everything else); calling again with the
same folder continues where the last call stopped, and a larger budget extends
a finished run.

Phases (one loop, :func:`toyworld.training.phase.run_phase`, runs both optimisation phases)
    vae: ``AutoencoderKL`` on single frames of freshly rendered clips; loss is
        a per-pixel MSE that weighs object pixels ``1 + object_weight`` (objects
        cover ~3 % of a frame, yet their colour and outline are all the probe
        reads) plus a small KL term.
    calibrate: the latent std over ``latent_stat_clips`` clips sets
        ``vae.config.scaling_factor`` so that scaled latents have unit variance.
    unet: the denoiser (:mod:`toyworld.training.network`, the one module that
        knows which network it is) on VAE latents of freshly rendered 8-frame
        clips (every clip is new, so nothing is memorised), conditioned on a bank
        of pre-encoded captions. Epsilon prediction on the cosine schedule
        (:data:`toyworld.architecture.SCHEDULER_CONFIG`), min-SNR-γ loss
        weighting (Hang et al. 2023: ``min(SNR, γ) / SNR`` for ε targets),
        ``caption_dropout`` of captions replaced by "" for classifier-free
        guidance, AdamW with linear warmup, gradient clipping, and an EMA of the
        weights.

Modules: ``config`` (TrainConfig), ``state`` (TrainingProgress, clock), ``data``, ``losses``,
``schedules``, ``calibration``, ``phase``, ``checkpoints``, ``session`` (TrainingRun),
``model_folder``, ``report``, ``network``, ``run`` (train_toy_model).

Randomness: the data come from ``numpy.random.Generator`` objects and the noise,
timesteps, dropout and batch picks from ``torch.Generator`` objects, all derived
from ``seed`` and saved in checkpoints, so a resumed run equals an uninterrupted
one. Weight initialisation seeds torch's global generator inside
``torch.random.fork_rng`` (module constructors accept no generator), leaving the
caller's global state untouched. Dropout layers are switched off.
"""

from toyworld.training.calibration import standardize_latent_channels
from toyworld.training.config import CHECKPOINT_DIR, TrainConfig
from toyworld.training.losses import diffusion_loss, min_snr_weights, vae_loss
from toyworld.training.model_folder import MODEL_INDEX, save_model_folder
from toyworld.training.report import plot_losses
from toyworld.training.run import export_checkpoint, train_toy_model
from toyworld.training.state import TrainingProgress

__all__ = [
    "CHECKPOINT_DIR",
    "MODEL_INDEX",
    "TrainConfig",
    "TrainingProgress",
    "diffusion_loss",
    "export_checkpoint",
    "min_snr_weights",
    "plot_losses",
    "save_model_folder",
    "standardize_latent_channels",
    "train_toy_model",
    "vae_loss",
]
