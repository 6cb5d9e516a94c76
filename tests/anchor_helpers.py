"""ART-V anchored conditioning on any DDIM service: one anchor-recording clip, then a second
clip with the anchor applied and one without, for tests to compare."""

from __future__ import annotations

from generation.clip_plan import ClipStartSpec, ExtensionParams


def anchored_second_clips(service, request, tmp_path) -> dict:
    """``{"apply": ClipResult, "none": ClipResult}``: clip 2 (seed 9) with and without the anchor
    that clip 1 (``request``) recorded."""
    anchor, params = str(tmp_path / "anchor.safetensors"), ExtensionParams(anchor=True)
    first = service.sample_clip(
        request,
        tmp_path / "c0.safetensors",
        extension=ClipStartSpec(
            params=params,
            handoff_path=str(tmp_path / "h0.safetensors"),
            anchor_path=anchor,
            anchor_role="record",
        ),
    )
    return {
        role: service.sample_clip(
            request.model_copy(update={"seed": 9}),
            tmp_path / f"c1-{role}.safetensors",
            extension=ClipStartSpec(
                params=params,
                start="previous_clip",
                previous_path=first.handoff_path,
                anchor_path=anchor,
                anchor_role=role,
            ),
        )
        for role in ("apply", "none")
    }
