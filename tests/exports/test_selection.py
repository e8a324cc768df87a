from __future__ import annotations

import pytest

from exports import selectors
from exports.filters import ExportFilters, FiltersInvalid, parse_filters
from feedback.models import RoutingPolicy

pytestmark = pytest.mark.django_db


def ids(queryset) -> set[int]:
    return set(queryset.values_list("id", flat=True))


def test_world_is_what_the_fixture_says(world):
    status = {name: label.status for name, label in world.labels.items()}
    assert status == {
        "s1": "auto_accepted",
        "s2": "auto_accepted",
        "s2_copy": "auto_accepted",
        "s3": "accepted",
        "s4": "in_review",  # disputed, waiting for a lead
        "s5": "rejected",
        "s6": "accepted",  # but held out
        "s7": "in_review",
        "s8": "auto_accepted",
    }


def test_dpo_split_contains_exactly_the_gated_pairs(world, project):
    policy = RoutingPolicy.objects.get(project=project)
    splits = selectors.split_querysets(project, "dpo", ExportFilters(), policy)
    expected = {world.labels[n].pk for n in ("s1", "s2", "s3")}
    assert ids(splits["train"]) == expected
    assert ids(splits["eval"]) == {world.labels["s6"].pk}


def test_exclusions_are_counted_by_reason(world, project):
    policy = RoutingPolicy.objects.get(project=project)
    counts = selectors.exclusion_counts(project, "dpo", ExportFilters(), policy)
    assert counts == {
        "in_review": 1,  # s4 disputed
        "rejected_by_review": 1,  # s5
        "held_out": 1,  # s6, exported as the evaluation split instead
        "high_retry": 1,  # s7
        "rating": 1,  # s8
        "not_for_this_format": 1,  # s2's copy positive is a completion, not a pair
    }


def test_kto_takes_pairs_both_ways_and_completions(world, project):
    policy = RoutingPolicy.objects.get(project=project)
    splits = selectors.split_querysets(project, "kto", ExportFilters(), policy)
    assert ids(splits["train"]) == {world.labels[n].pk for n in ("s1", "s2", "s2_copy", "s3")}


def test_filters_narrow_the_training_split_and_count_what_they_removed(world, project):
    policy = RoutingPolicy.objects.get(project=project)
    filters = parse_filters({"sources": ["regenerate"]}, project=project)
    splits = selectors.split_querysets(project, "dpo", filters, policy)
    assert ids(splits["train"]) == {world.labels["s2"].pk}
    assert selectors.exclusion_counts(project, "dpo", filters, policy)["filtered_out"] == 2


def test_min_agreement_keeps_only_reviews_that_agreed_that_much(world, project):
    policy = RoutingPolicy.objects.get(project=project)
    filters = parse_filters({"min_agreement": 1.0}, project=project)
    train = ids(selectors.split_querysets(project, "dpo", filters, policy)["train"])
    assert world.labels["s3"].pk in train  # reviewed, agreement 1.0
    policy.confidence_threshold = 0.99  # auto-accepted pairs now fall below it
    train = ids(selectors.split_querysets(project, "dpo", filters, policy)["train"])
    assert train == {world.labels["s3"].pk}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"since": "last week"}, "since"),
        ({"until": 5}, "until"),
        ({"sources": ["telepathy"]}, "sources"),
        ({"sources": "edit"}, "sources"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"min_agreement": "high"}, "min_agreement"),
        ({"queues": [999999]}, "queues"),
        ({"models": [3]}, "models"),
        ({"since": "2026-11-20", "until": "2026-11-01"}, "since"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_filters_are_named(project, raw, field):
    with pytest.raises(FiltersInvalid) as error:
        parse_filters(raw, project=project)
    assert field in error.value.errors
