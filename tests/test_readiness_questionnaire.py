"""Every questionnaire item offers its own answer scale: an anchored item its own statements
(the specification's words where it gives them), a share or frequency item its scale's
brackets; never its dimension's generic levels."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dashboard.lean_readiness import option_label
from readiness.answers import Special
from readiness.catalogue import CURRENT
from readiness.questionnaire import (
    FREQUENCY_OPTIONS,
    SHARE_OPTIONS,
    Item,
    Scale,
)

# The anchors specification B2 spells out in the item (Q11 elides its levels 1 and 2).
SPEC_ANCHORS = {
    "Q10": "none|paper|typed into spreadsheet|terminal entry|automatic"
    "|automatic + order/product context",
    "Q11": "none|||central historian/db|linked to erp/mes|unified contextual model",
    "Q15": "none|walk round|shift report|live screens|pushed alerts|forecasts",
    "Q16": "none|totals|by category|pareto|root cause with process data|predictive",
    "Q18": "breakdown|some pm|pm plan|tpm incl. autonomous|condition-based|predictive",
    "Q20": "none|informal|defined escalation|andon|digital andon with timestamps"
    "|auto-detect + dispatch",
}
# Scales of specification B2's item table, Q1-Q28.
SPEC_SCALES = "AFAAAPPAPAAAPFAAPAFAPAAAPPFA"


def test_every_item_has_the_scale_of_the_specification() -> None:
    assert "".join(item.scale.value for item in CURRENT.items) == SPEC_SCALES


@pytest.mark.parametrize("item_id", sorted(SPEC_ANCHORS))
def test_anchored_items_offer_the_specifications_anchors(item_id: str) -> None:
    item = CURRENT.item(item_id)
    assert item is not None
    for given, expected in zip(item.options, SPEC_ANCHORS[item_id].split("|"), strict=True):
        assert not expected or given.lower() == expected
    assert ":" not in item.text  # the anchors are options, no longer spelled into the text


def test_q10s_level_4_is_automatic() -> None:
    """The reviewer's example: Q10 used to offer D3's "Data integrated with ERP/MES"."""
    item = CURRENT.item("Q10")
    assert item is not None and item.options[4] == "Automatic"
    assert option_label(item, 4) == "4: Automatic"


@pytest.mark.parametrize("item", CURRENT.items, ids=lambda item: item.id)
def test_every_item_offers_its_own_options(item: Item) -> None:
    levels = next(d.levels for d in CURRENT.dimensions if d.id == item.dimension)
    expected = {Scale.SHARE: SHARE_OPTIONS, Scale.FREQUENCY: FREQUENCY_OPTIONS}
    if item.scale is Scale.ANCHORED:
        # its own statements, six different ones, not its dimension's levels wholesale (Q1,
        # asking for the roadmap itself, shares some of D1's)
        assert item.options == item.anchors != levels and len(set(item.options)) == 6
    else:
        assert item.anchors is None and item.options == expected[item.scale]
    labels = [option_label(item, level) for level in range(6)]
    assert labels == [f"{level}: {text}" for level, text in enumerate(item.options)]


def test_the_reviewers_contradicting_options_are_gone() -> None:
    offered = {item.id: set(item.options) for item in CURRENT.items}
    assert "Written lean or digital goals" not in offered["Q4"]
    assert "Data integrated with ERP/MES, contextualised" not in offered["Q10"]
    assert "Joint lean+digital roadmap, KPIs reviewed monthly" not in offered["Q3"]


def test_special_answers_keep_their_words() -> None:
    item = CURRENT.items[0]
    assert option_label(item, Special.DONT_KNOW) == "don't know"
    assert option_label(item, Special.NOT_APPLICABLE) == "not applicable"


def test_anchors_go_with_anchored_items_only() -> None:
    anchors = ("a", "b", "c", "d", "e", "f")
    with pytest.raises(ValidationError, match="anchors are given for anchored items"):
        Item(id="Q1", dimension="D1", text="t", scale=Scale.ANCHORED)
    with pytest.raises(ValidationError, match="anchors are given for anchored items"):
        Item(id="Q1", dimension="D1", text="t", scale=Scale.SHARE, anchors=anchors)
    assert Item(id="Q1", dimension="D1", text="t", scale=Scale.ANCHORED, anchors=anchors)
