"""Content-addressed caches: retrievals and clips are reused only for the same inputs; stats and prune."""

from __future__ import annotations

import dataclasses
import json
import os
import time

from typer.testing import CliRunner

import cli
from agent.caches import CachedRetriever, CachingGenerator, cache_stats, prune
from generation.clip_plan import ClipStartSpec, ExtensionParams
from reelgraph.contracts.clips import ClipRequest
from tests.agent_fakes import FakeRetriever, Found
from tests.test_graph import FakeGenerator


class CountingRetriever(FakeRetriever):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def retrieve(self, prompt):
        self.calls += 1
        return super().retrieve(prompt)


def test_retrievals_are_cached_by_prompt_and_pool(tmp_path):
    inner = CountingRetriever()
    cached = CachedRetriever(inner, tmp_path, {"text_model": "minilm"}, result_type=Found)
    first = cached.retrieve("a red ball rolls")
    again = cached.retrieve("a red ball rolls")
    assert inner.calls == 1 and cached.hits == 1
    assert again.model_dump(mode="json") == first.model_dump(mode="json") and type(again) is Found
    cached.retrieve("a blue square falls")
    assert inner.calls == 2
    inner.pool_size = lambda: 501  # the pool changed: a new key
    cached.retrieve("a red ball rolls")
    assert inner.calls == 3
    other_model = CachedRetriever(inner, tmp_path, {"text_model": "another"}, result_type=Found)
    other_model.retrieve("a red ball rolls")
    assert inner.calls == 4


class WritingGenerator(FakeGenerator):
    """Writes latents that depend on the request, and a hand-off when asked."""

    def sample_clip(self, request, latents_path, label="sampling", extension=None):
        result = super().sample_clip(request, latents_path, label)
        latents_path.write_text(f"{request.prompt}|{request.seed}")
        if extension is not None and extension.handoff_path:
            with open(extension.handoff_path, "w") as handle:
                handle.write(f"handoff {request.seed}")
            result = result.model_copy(update={"handoff_path": extension.handoff_path})
        return result


def test_clips_are_reused_only_for_the_same_model_seed_and_request(tmp_path):
    inner = WritingGenerator()
    gen = CachingGenerator(inner, tmp_path / "cache")
    request = ClipRequest(
        prompt="a red ball", num_frames=8, num_inference_steps=5, guidance_scale=7.0, seed=3
    )
    gen.sample_clip(request, tmp_path / "a" / "clip.safetensors")
    hit = gen.sample_clip(request, tmp_path / "b" / "clip.safetensors")
    assert len(inner.sampled) == 1 and gen.hits == 1 and hit.details["clip_cache"] == "hit"
    assert (tmp_path / "b" / "clip.safetensors").read_text() == "a red ball|3"
    gen.sample_clip(request.model_copy(update={"seed": 4}), tmp_path / "c" / "clip.safetensors")
    gen.sample_clip(request.model_copy(update={"guidance_scale": 5.0}), tmp_path / "d" / "clip.safetensors")
    assert len(inner.sampled) == 3

    handoff = ClipStartSpec(params=ExtensionParams(), handoff_path=str(tmp_path / "e" / "h.safetensors"))
    (tmp_path / "e").mkdir()
    gen.sample_clip(request, tmp_path / "e" / "clip.safetensors", extension=handoff)
    assert len(inner.sampled) == 4  # the hand-off makes it another entry
    handoff_f = ClipStartSpec(params=ExtensionParams(), handoff_path=str(tmp_path / "f" / "h.safetensors"))
    (tmp_path / "f").mkdir()
    again = gen.sample_clip(request, tmp_path / "f" / "clip.safetensors", extension=handoff_f)
    assert len(inner.sampled) == 4 and again.handoff_path == handoff_f.handoff_path
    assert (tmp_path / "f" / "h.safetensors").read_text() == "handoff 3"

    inner.model_info = dataclasses.replace(inner.model_info, weights_hash="f" * 16)  # retrained model
    gen.sample_clip(request, tmp_path / "g" / "clip.safetensors")
    assert len(inner.sampled) == 5


def test_cache_stats_and_prune(tmp_path):
    cache = tmp_path / "home" / "cache"
    (cache / "llm").mkdir(parents=True)
    for i in range(3):
        (cache / "llm" / f"k{i}.json").write_text(json.dumps({"answer": "x" * 100}))
    (cache / "lora").mkdir()
    (cache / "lora" / "abc.safetensors").write_bytes(b"0" * 1000)
    (cache / "lora" / "abc.json").write_text("{}")
    CachedRetriever(FakeRetriever(), cache).retrieve("a red ball rolls")
    old = time.time() - 10 * 86400
    os.utime(cache / "llm" / "k0.json", (old, old))
    older = time.time() - 2 * 86400
    for name in ("abc.safetensors", "abc.json"):
        os.utime(cache / "lora" / name, (older, older))

    stats = {s.kind: s for s in cache_stats(cache)}
    assert {k: s.entries for k, s in stats.items()} == {
        "llm": 3,
        "retrievals": 1,
        "inversions": 0,
        "lora": 1,
        "clips": 0,
    }
    assert stats["lora"].bytes == 1002

    result = prune(cache, older_than_days=5)
    assert result.removed == 1 and not (cache / "llm" / "k0.json").exists()
    result = prune(cache, kinds=["lora", "llm"], max_bytes=300)
    assert result.removed == 1 and not (cache / "lora" / "abc.safetensors").exists()
    assert (cache / "llm" / "k1.json").exists()

    home = ["--home", str(tmp_path / "home")]
    shown = CliRunner().invoke(cli.app, [*home, "cache", "stats", "--json"])
    assert shown.exit_code == 0, shown.output
    assert {k["kind"]: k["entries"] for k in json.loads(shown.stdout)["kinds"]}["llm"] == 2
    pruned = CliRunner().invoke(cli.app, [*home, "cache", "prune", "--max-gb", "0"])
    assert pruned.exit_code == 0 and "Removed 3 entries" in pruned.stdout
    assert CliRunner().invoke(cli.app, [*home, "cache", "prune"]).exit_code == 1
    assert (
        "Unknown cache"
        in CliRunner().invoke(cli.app, [*home, "cache", "prune", "--kind", "x", "--max-gb", "1"]).stderr
    )
