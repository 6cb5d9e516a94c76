from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models are bound by per-op overhead; one thread avoids two threads stalling each other on a
    busy CPU. The module's previous thread count is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random text-to-video checkpoint in the ModelScope layout (32x32 pixels, 16-token prompts)."""
    from tests.tiny_models import save_modelscope_layout, tiny_components

    return save_modelscope_layout(tiny_components(), tmp_path_factory.mktemp("tiny-t2v"))


@pytest.fixture(scope="session")
def short_clip_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny checkpoint with a clip length of 4 frames, so long videos take many cheap clips."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("tiny-4") / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "reelgraph.json").write_text(json.dumps({"num_frames": 4, "fps": 8}))
    return folder


from tests.llm_server import llm_server  # noqa: E402, F401 - the scripted OpenAI-compatible server fixture


@pytest.fixture(scope="session")
def tiny_animatediff_dir(tmp_path_factory):
    """A tiny random AnimateDiff checkpoint as AnimateDiffPipeline.save_pretrained writes it (16x16 pixels)."""
    from tests.tiny_models import save_animatediff_layout, tiny_animatediff_components

    return save_animatediff_layout(tiny_animatediff_components(), tmp_path_factory.mktemp("tiny-animatediff"))
