"""Real peers on 127.0.0.1, started by the tests: ``transformers serve`` and ``chroma run``.

``real_llm`` (session): a tiny random ``LlamaForCausalLM`` with a byte-level BPE tokenizer trained
here with ``tokenizers``, saved to a tmp folder and served by ``transformers serve`` (an
OpenAI-compatible server that ignores ``response_format``). The model's generation config asks for
4,000 new tokens, so without ``max_tokens`` every answer rambles for tens of seconds.

``chroma_server`` (function): a ``chroma run`` server over a tmp folder, with ``kill()`` (SIGKILL)
and ``start()`` so a test can take it down mid-ingest and bring it back on the same port.

Both are started as subprocesses from the venv's own console scripts; nothing downloads.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent
START_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_tiny_llm(folder: Path) -> Path:
    """A tiny random Llama and its locally trained tokenizer, saved as safetensors in ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = (
        "a red ball rolls to the right blue cube jumps over the scene camera pans slowly "
        '{ } [ ] : , " json scenes tuning true false why prompt rewrite'
    )
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([words] * 50, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    fast.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=1, eos_token_id=2, max_new_tokens=4000, do_sample=False
    )
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def _wait(url: str, process: subprocess.Popen, log: Path, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < START_SECONDS:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    process.kill()
    raise RuntimeError(f"{what} did not answer {url} within {START_SECONDS:g} s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "ANONYMIZED_TELEMETRY": "False",
    }


@dataclass
class RealLLM:
    url: str  # the OpenAI-style base URL, http://127.0.0.1:PORT/v1
    model: str  # the served model's name (its folder)
    started_in: float  # seconds from launch to a healthy server


@pytest.fixture(scope="session")
def real_llm(tmp_path_factory):
    """``transformers serve`` with the tiny rambling model, on a free 127.0.0.1 port, for the session."""
    folder = build_tiny_llm(tmp_path_factory.mktemp("tiny-llm") / "model")
    port = free_port()
    log = folder.parent / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(BIN / "transformers"), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu", "--log-level", "warning"],
            stdout=sink, stderr=subprocess.STDOUT, env=_env(),
        )  # fmt: skip
    try:
        took = _wait(f"http://127.0.0.1:{port}/health", process, log, "transformers serve")
        yield RealLLM(url=f"http://127.0.0.1:{port}/v1", model=str(folder), started_in=took)
    finally:
        _stop(process)


@dataclass
class ChromaServer:
    path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    started_in: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChromaServer:
        log = self.path.parent / "chroma.log"
        with log.open("a") as sink:
            self.process = subprocess.Popen(
                [str(BIN / "chroma"), "run", "--path", str(self.path), "--host", "127.0.0.1",
                 "--port", str(self.port)],
                stdout=sink, stderr=subprocess.STDOUT, env=_env(),
            )  # fmt: skip
        self.started_in.append(_wait(f"{self.url}/api/v2/heartbeat", self.process, log, "chroma run"))
        return self

    def kill(self) -> None:
        """SIGKILL: the server goes away mid-request, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        _stop(self.process)


@pytest.fixture
def chroma_server(tmp_path):
    """A real ``chroma run`` server over a tmp folder, on a free 127.0.0.1 port."""
    server = ChromaServer(tmp_path / "chroma-data").start()
    try:
        yield server
    finally:
        server.stop()
