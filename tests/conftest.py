from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
