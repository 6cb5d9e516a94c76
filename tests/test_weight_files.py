"""Weights: safetensors only, and every header checked before loading (issue 19 items 6 and 7)."""

from __future__ import annotations

import re
import shutil
import struct

import pytest
import torch
from typer.testing import CliRunner

import cli
from generation.adapters import load_lora
from generation.inversion_cache import InversionCache
from generation.loaders import load_video_model
from generation.npnet import load_npnet
from reelgraph.errors import ReelgraphError


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


@pytest.fixture
def no_torch_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was reached")

    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt", ".pkl"])
def test_a_model_folder_with_pickle_weights_is_refused_before_loading(
    model_copy, tmp_path, no_torch_load, suffix
):
    from safetensors.torch import load_file

    unet = model_copy / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(unet)), unet.with_suffix(suffix))
    unet.unlink()
    out = tmp_path / "out"
    done = CliRunner().invoke(
        cli.app,
        ["--home", str(tmp_path / "h"), "generate", "a red ball", "--model", str(model_copy), "--out", str(out),
         "--steps", "1"],
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "safetensors only" in done.stderr and f"diffusion_pytorch_model{suffix}" in done.stderr
    assert "Traceback" not in done.output and not out.exists()


def _damage(path, kind):
    data = path.read_bytes()
    if kind == "random":
        path.write_bytes(bytes(range(7, 107)))
    elif kind == "huge_header":
        path.write_bytes(struct.pack("<Q", 2**62) + data[8:])
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "short":
        path.write_bytes(b"\x01\x02")
    elif kind == "header_not_json":
        path.write_bytes(struct.pack("<Q", 16) + b"{not json at all" + data[24:])
    elif kind == "offsets_past_the_end":
        (length,) = struct.unpack("<Q", data[:8])
        path.write_bytes(data[: 8 + length] + data[8 + length : 8 + length + 4])


KINDS = ["random", "huge_header", "truncated", "short", "header_not_json", "offsets_past_the_end"]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_model_weights_are_an_error_naming_the_file(model_copy, kind):
    path = model_copy / "vae" / "diffusion_pytorch_model.safetensors"
    _damage(path, kind)
    with pytest.raises(ReelgraphError, match=re.escape("diffusion_pytorch_model.safetensors")):
        load_video_model(str(model_copy), device="cpu")


def _lora(tmp_path):
    from generation.adapters import save_lora

    return save_lora(tmp_path / "motion.safetensors", {"w": torch.zeros(4, 4)}, {"rank": 4})


def _npnet(tmp_path):
    from generation.npnet import NPNet, NPNetConfig, save_npnet

    return save_npnet(
        NPNet(NPNetConfig(context_dim=8, latent_channels=4, num_frames=2, latent_height=4, latent_width=4)),
        tmp_path / "npnet.safetensors",
        {},
    )


def _inversion(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "inv.safetensors"
    save_file({"eps_inv": torch.zeros(1, 4, 2, 4, 4)}, str(path))
    return path


def _load_inversion(path):
    cache = InversionCache(path.parent)
    cache.path = lambda key: path
    return cache.load(None)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "make, load",
    [(_lora, load_lora), (_npnet, load_npnet), (_inversion, _load_inversion)],
    ids=["lora", "npnet", "inversion"],
)
def test_damaged_pool_and_cache_weights_are_an_error_naming_the_file(tmp_path, make, load, kind):
    path = make(tmp_path)
    load(path)  # the intact file loads
    _damage(path, kind)
    with pytest.raises(ReelgraphError, match=re.escape(path.name)):
        load(path)


def test_a_grounding_dino_folder_with_pickle_weights_is_refused(tmp_path, no_torch_load):
    from safetensors.torch import load_file

    from motion_prior.detectors import GroundingDinoDetector
    from tests.motion_helpers import tiny_grounding_dino

    folder = tiny_grounding_dino(tmp_path / "gd")
    weights = folder / "model.safetensors"
    torch.save(load_file(str(weights)), folder / "pytorch_model.bin")
    weights.unlink()
    with pytest.raises(ReelgraphError, match="cannot be loaded"):
        _ = GroundingDinoDetector(str(folder))._components
