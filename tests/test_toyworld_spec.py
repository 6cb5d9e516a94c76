"""The toy label: schema, JSON round trip, validation."""

from __future__ import annotations

import json

import pytest

from reelgraph.errors import ReelgraphError
from toyworld.spec import COLORS, MOTIONS, TWO_OBJECT_MOTIONS, Label, ObjectSpec


def _label(**changes):
    data = {
        "actor": {"shape": "circle", "color": "red", "size": "small"},
        "motion": "push",
        "recipient": {"shape": "square", "color": "blue", "size": None},
        "background": "grass",
    }
    data.update(changes)
    return data


def test_round_trip_keeps_the_issue_schema():
    label = Label.from_dict(_label())
    data = label.to_dict()
    assert list(data) == ["actor", "motion", "recipient", "background"]
    assert list(data["actor"]) == ["shape", "color", "size"]
    assert data == _label()
    assert Label.from_json(label.to_json()) == label
    assert json.loads(label.to_json()) == data


def test_single_object_label_has_null_recipient_and_dark_default():
    label = Label(actor=ObjectSpec(shape="square", color="white"), motion="spin")
    assert label.to_dict()["recipient"] is None
    assert label.background == "dark"
    assert label.actor.size is None
    assert label.objects == [label.actor]


@pytest.mark.parametrize("alias", ["at night", "in the dark", "Dark"])
def test_background_aliases_mean_dark(alias):
    assert Label.from_dict(_label(background=alias)).background == "dark"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"motion": "fly"}, "unknown motion 'fly'"),
        ({"background": "space"}, "unknown background 'space'"),
        ({"actor": {"shape": "star", "color": "red", "size": None}}, "unknown shape 'star'"),
        ({"actor": {"shape": "circle", "color": "pink", "size": None}}, "unknown colour 'pink'"),
        ({"actor": {"shape": "circle", "color": "red", "size": "medium"}}, "unknown size 'medium'"),
        ({"recipient": None}, "needs a recipient"),
        ({"motion": "stay"}, "takes no recipient"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_labels_raise_readable_errors(changes, message):
    with pytest.raises(ReelgraphError) as info:
        Label.from_dict(_label(**changes))
    assert message.lower() in info.value.message.lower()
    assert info.value.fix


def test_only_squares_and_triangles_spin():
    with pytest.raises(ValueError, match="can spin"):
        Label(actor=ObjectSpec(shape="circle", color="red"), motion="spin")
    Label(actor=ObjectSpec(shape="triangle", color="red"), motion="spin")


def test_bad_json_is_a_reelgraph_error():
    with pytest.raises(ReelgraphError):
        Label.from_json("{not json")


def test_vocabulary_is_the_issues():
    assert COLORS["blue"] == (50, 90, 230)
    assert len(MOTIONS) == 14
    assert TWO_OBJECT_MOTIONS == ("push", "chase", "jump_over")
