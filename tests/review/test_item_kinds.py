"""What kind of item a review item is (review.models.Item): a derived pair, a free pair,
or neither; read from the item's own fields, so no query loads the label."""

from __future__ import annotations

import pytest

from feedback.models import Generation, Label
from review.models import Item
from review.selectors import item_display


def label_item(kind: str) -> Item:
    return Item(label_id=7, reason_detail={"kind": kind, "rule": "edit_minor"})


def test_an_item_of_a_derived_pair_is_a_label_pair():
    item = label_item(Label.Kind.PREFERENCE_PAIR)
    assert (item.is_label_pair, item.is_free_pair) == (True, False)


@pytest.mark.parametrize("kind", [Label.Kind.COMPLETION, Label.Kind.HIGH_RETRY, "", None])
def test_an_item_of_any_other_label_is_no_pair(kind):
    item = label_item(kind)
    assert (item.is_label_pair, item.is_free_pair) == (False, False)


def test_a_withdrawn_item_is_no_label_pair_whatever_it_was_about():
    item = Item(label_id=None, reason_detail={"kind": Label.Kind.PREFERENCE_PAIR})
    assert item.is_label_pair is False


def test_free_content_with_two_responses_is_a_free_pair():
    item = Item(content={"prompt": "Which?", "responses": ["A", "B"]})
    assert (item.is_free_pair, item.is_label_pair) == (True, False)


@pytest.mark.parametrize(
    "content",
    [{"prompt": "Which?", "responses": ["A"]}, {"responses": "AB"}, {}, ["A", "B"]],
)
def test_other_free_content_is_no_pair(content):
    assert Item(content=content).is_free_pair is False


def test_a_label_item_is_no_free_pair_even_with_two_responses_in_its_content():
    item = Item(label_id=7, content={"responses": ["A", "B"]}, reason_detail={"kind": "completion"})
    assert item.is_free_pair is False


@pytest.mark.parametrize(
    ("kind", "says"),
    [(Label.Kind.HIGH_RETRY, "regenerated this answer again and again"), ("rating", "rated")],
)
def test_a_flag_items_claim_says_what_to_check(kind, says):
    """A high-retry flag tells the annotator what the user did, not the rule's name."""
    label = Label(pk=7, kind=kind, prompt="Fix my code", generation=Generation(output="Try this"))
    display = item_display(Item(label=label, reason_detail={"kind": kind}))
    assert says in display["claim"] and display["responses"][0]["text"] == "Try this"
    assert item_display(Item(label=label), blind=True)["claim"] is None
