"""Captions read back to the labels they state; distributions; prompt files."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from reelgraph.errors import ReelgraphError
from toyworld.captions import (
    BACKGROUND_PHRASES,
    COLOR_WORDS,
    SHAPE_NOUNS,
    SIZE_WORDS,
    TRAIN_ZIGZAG_SHARE,
    describe,
    motion_weights,
    prompt_set,
    read_prompt_file,
    sample_label,
    verbs_for,
    write_prompt_file,
)
from toyworld.spec import MOTIONS, SPIN_SHAPES, TWO_OBJECT_MOTIONS, Label

WORD_COLOR = {w: c for c, words in COLOR_WORDS.items() for w in words}
WORD_SHAPE = {w: s for s, words in SHAPE_NOUNS.items() for w in words}
WORD_SIZE = {w: s for s, words in SIZE_WORDS.items() for w in words}


def _read_objects(text: str) -> list[dict]:
    """Lexicon reading of a caption: each colour word starts an object, its noun ends it."""
    tokens = re.findall(r"[a-z]+", text.lower())
    objects, size = [], None
    for i, token in enumerate(tokens):
        if token in WORD_SIZE:
            size = WORD_SIZE[token]
        elif token in WORD_COLOR and i + 1 < len(tokens) and tokens[i + 1] in WORD_SHAPE:
            objects.append({"color": WORD_COLOR[token], "shape": WORD_SHAPE[tokens[i + 1]], "size": size})
            size = None
        elif token in ("a", "an", "the", "by"):
            size = None
    return objects


def _captions(n, seed, distribution="eval"):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        label = sample_label(rng, distribution)
        yield label, describe(label, rng)


def test_captions_state_colour_shape_size_and_background_consistently():
    for label, described in _captions(600, 0):
        text, stated = described.text, described.stated
        objects = {o["color"]: o for o in _read_objects(text)}
        for true, said in zip(label.objects, stated.objects, strict=True):
            found = objects.pop(true.color)
            assert found["shape"] == true.shape, text
            assert said.size in (None, true.size)
            assert found["size"] == said.size, text  # a size word appears exactly when the label states one
        assert not objects, text
        phrases = [p for b, ps in BACKGROUND_PHRASES.items() for p in ps if p in text.lower()]
        if label.background != "dark":
            assert any(p in BACKGROUND_PHRASES[label.background] for p in phrases), text
        assert all(p in BACKGROUND_PHRASES[stated.background] for p in phrases), text
        assert stated.motion == label.motion and stated.background == label.background


def test_captions_use_a_verb_of_their_motion_and_no_label_changing_words():
    forbidden = {"bigger", "smaller", "larger", "slowly", "quickly", "fast", "not"}
    for label, described in _captions(600, 1):
        text = described.text.lower()
        verbs = verbs_for(label.motion, label.actor.shape)
        assert any(v.present in text or v.progressive in text or (v.participle or "#") in text for v in verbs)
        assert not forbidden & set(re.findall(r"[a-z]+", text)), text


def test_two_object_captions_name_the_actor_as_subject_or_agent():
    seen_passive = False
    for label, described in _captions(800, 2):
        if label.recipient is None:
            continue
        text = described.text.lower()
        order = [o["color"] for o in _read_objects(text)]
        if " by " in text:
            seen_passive = True
            assert order == [label.recipient.color, label.actor.color], text
        else:
            assert order == [label.actor.color, label.recipient.color], text
    assert seen_passive


def test_captions_vary():
    texts = [d.text for _, d in _captions(400, 3)]
    assert len(set(texts)) > 390
    assert sum(t[0].isupper() for t in texts) > 50
    assert sum(" is " in t for t in texts) > 50
    assert sum(" that " in t for t in texts) > 30


def test_train_distribution_keeps_zigzag_rare():
    assert motion_weights("train")["zigzag"] == TRAIN_ZIGZAG_SHARE <= 0.01
    rng = np.random.default_rng(0)
    counts = Counter(sample_label(rng, "train").motion for _ in range(20000))
    assert counts["zigzag"] / 20000 <= 0.01
    assert counts["zigzag"] > 0
    assert min(counts[m] for m in MOTIONS if m != "zigzag") > 20000 * 0.065


def test_pool_distribution_is_uniform_and_well_formed():
    rng = np.random.default_rng(1)
    labels = [sample_label(rng, "pool") for _ in range(7000)]
    counts = Counter(label.motion for label in labels)
    assert set(counts) == set(MOTIONS)
    assert all(abs(c / 7000 - 1 / 14) < 0.02 for c in counts.values())
    for label in labels:
        if label.motion == "spin":
            assert label.actor.shape in SPIN_SHAPES
        if label.recipient is not None:
            assert label.recipient.color != label.actor.color
            assert (label.actor.size, label.recipient.size) != ("big", "big")


def test_unknown_distribution_or_motion_is_refused():
    with pytest.raises(ReelgraphError):
        sample_label(np.random.default_rng(0), "holdout")
    with pytest.raises(ReelgraphError):
        prompt_set(3, 0, motions=["teleport"])


def test_prompt_sets_are_deterministic_filtered_and_round_trip(tmp_path):
    rows = prompt_set(40, seed=7, motions=["zigzag", "push"])
    assert rows == prompt_set(40, seed=7, motions=["zigzag", "push"])
    assert rows != prompt_set(40, seed=8, motions=["zigzag", "push"])
    assert {r["label"]["motion"] for r in rows} == {"zigzag", "push"}
    assert any(r["label"]["actor"]["size"] is None for r in rows)
    path = write_prompt_file(tmp_path / "prompts.jsonl", rows)
    assert read_prompt_file(path) == rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.jsonl"]
    for row in rows:
        Label.from_dict(row["label"])
        assert row["label"]["motion"] in TWO_OBJECT_MOTIONS or row["label"]["recipient"] is None


def test_bad_prompt_file_is_a_reelgraph_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "a red ball", "label": {"actor": {"shape": "star", "color": "red"}, "motion": "stay"}}\n'
    )
    with pytest.raises(ReelgraphError):
        read_prompt_file(bad)
    with pytest.raises(ReelgraphError):
        read_prompt_file(tmp_path / "missing.jsonl")
