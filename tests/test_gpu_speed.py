"""bench/gpu_speed.py on tiny configs on the CPU: the GPU benchmark's code runs, so it is ready for a lent GPU."""

from __future__ import annotations

import math
import re

import pytest

from bench import gpu_speed


def rows(text: str, section: str) -> dict[str, list[str]]:
    """Variant name -> its cells, for the first table after the ``## section`` heading."""
    part = text.split(f"## {section}:", 1)[1]
    out = {}
    for line in part.splitlines()[4:]:  # heading, blank, header, rule
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = cells[1:]
    return out


@pytest.mark.slow
def test_modelscope_variants_run_and_fp32_matches_diffusers(tmp_path):
    out = gpu_speed.main(
        ["--tiny", "--device", "cpu", "--models", "modelscope", "--steps", "1", "--repeats", "1",
         "--compile", "off", "--threads", "1", "--out", str(tmp_path / "m.md")]
    )  # fmt: skip
    text = out.read_text()
    table = rows(text, "modelscope")
    assert list(table) == [
        "diffusers pipeline, defaults (fp32)",
        "ours, fp32",
        "ours, bfloat16",
        "ours, bfloat16, flash attention",
    ]
    # Our DDIM loop on the same weights is diffusers' pipeline, step for step.
    assert float(table["ours, fp32"][3]) < 1e-4
    assert all(math.isfinite(float(cells[0])) for cells in table.values())
    assert "VAE decode, tiled (enable_tiling)" in text and "failed" not in text


@pytest.mark.slow
def test_wan_variants_with_batched_cfg_and_compile(tmp_path):
    out = gpu_speed.main(
        ["--tiny", "--device", "cpu", "--models", "wan", "--steps", "2", "--repeats", "1",
         "--compile", "eager", "--threads", "1", "--out", str(tmp_path / "w.md")]
    )  # fmt: skip
    table = rows(out.read_text(), "wan")
    assert float(table["ours, fp32"][3]) < 1e-4
    # Batched guidance is the same arithmetic in one call: it matches the two-call bf16 row closely.
    batched = "ours, bfloat16, flash, batched CFG"
    assert abs(float(table[batched][3]) - float(table["ours, bfloat16"][3])) < 0.05
    compiled = next(name for name in table if "torch.compile (eager)" in name)
    assert re.match(r"compile \+ warm-up \d+ s", table[compiled][4])
    assert "failed" not in out.read_text()
