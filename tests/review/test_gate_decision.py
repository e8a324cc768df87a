"""The gate's per-item decision (`review.gate.item_verdict`), tested without a database:
the rules of docs/review.md, one by one, and properties that hold over many values."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from review.agreement import share_of
from review.gate import (
    DEFAULT_ACCEPT,
    DEFAULT_REJECT,
    GateRules,
    ItemFacts,
    ItemVerdict,
    QueueVerdict,
    distinct_shares,
    item_verdict,
    positions,
    queue_verdict,
)
from review.models import Item

OPEN, COMPLETE, DISCARDED = Item.Status.OPEN, Item.Status.COMPLETE, Item.Status.DISCARDED
PENDING, AGREED, DISPUTED = (
    Item.AgreementState.PENDING,
    Item.AgreementState.AGREED,
    Item.AgreementState.DISPUTED,
)
ACCEPTED, REJECTED, EXCLUDED = (
    Item.Decision.ACCEPTED,
    Item.Decision.REJECTED,
    Item.Decision.EXCLUDED,
)
RULES = GateRules(
    annotations_per_item=3, min_item_agreement=0.66, gate_keys=("better",), decision_key="better"
)
OPEN_QUEUE = QueueVerdict(blocked=None)


def complete(share: float, answer: object, **facts: object) -> ItemFacts:
    """A fully answered item whose majority gave `answer` to the deciding question."""
    return ItemFacts(
        **{"status": COMPLETE, "annotation_count": 3, "answers": {"better": (share, answer)}}
        | facts
    )


def decide(
    item: ItemFacts, rules: GateRules = RULES, on_queue: QueueVerdict = OPEN_QUEUE
) -> ItemVerdict:
    return item_verdict(item, rules=rules, on_queue=on_queue)


def test_an_item_short_of_annotations_waits():
    verdict = decide(complete(1.0, "yes", annotation_count=2))
    assert verdict == ItemVerdict(1.0, PENDING, "", "needs more annotations")


def test_an_open_item_waits_even_with_enough_annotations():
    assert decide(complete(1.0, "yes", status=OPEN)).state == PENDING


def test_agreement_on_an_accepting_answer_accepts():
    assert decide(complete(1.0, "yes")) == ItemVerdict(
        1.0, AGREED, ACCEPTED, "reviewers agreed: yes"
    )


def test_agreement_on_a_rejecting_answer_rejects():
    verdict = decide(complete(0.7, "rejected"))
    assert (verdict.state, verdict.decision, verdict.reason) == (
        AGREED,
        REJECTED,
        "reviewers agreed: rejected",
    )


def test_agreement_on_any_other_answer_excludes():
    verdict = decide(complete(1.0, "both bad"))
    assert (verdict.decision, verdict.reason) == (EXCLUDED, "reviewers agreed on 'both bad'")


def test_a_queue_with_its_own_answers_decides_by_them():
    rules = GateRules(
        annotations_per_item=3,
        min_item_agreement=0.66,
        gate_keys=("better",),
        decision_key="better",
        accept_answers=("fine",),
        reject_answers=("yes",),
    )
    assert decide(complete(1.0, "fine"), rules).decision == ACCEPTED
    assert decide(complete(1.0, "yes"), rules).decision == REJECTED


def test_a_preferred_response_is_accepted_and_remembered():
    first = decide(complete(1.0, "response_1"))
    second = decide(complete(1.0, "response_2"))
    assert first == ItemVerdict(1.0, AGREED, ACCEPTED, "reviewers preferred response 1", 0)
    assert (second.decision, second.preferred) == (ACCEPTED, 1)


def test_agreement_below_the_item_minimum_is_disputed_for_a_lead():
    verdict = decide(complete(0.6599, "yes"))
    assert verdict == ItemVerdict(0.6599, DISPUTED, "", "disputed: for a lead")


def test_agreement_exactly_at_the_item_minimum_is_agreed():
    assert decide(complete(0.66, "yes")).state == AGREED


def test_a_blocked_queue_excludes_agreed_items_with_its_reason():
    on_queue = QueueVerdict(blocked="queue alpha below 0.667: better alpha 0.1")
    verdict = decide(complete(1.0, "response_1"), on_queue=on_queue)
    assert verdict == ItemVerdict(1.0, AGREED, EXCLUDED, on_queue.blocked, None)


def test_a_blocked_queue_leaves_disputed_items_to_a_lead():
    on_queue = QueueVerdict(blocked="queue alpha unknown")
    assert decide(complete(0.5, "yes"), on_queue=on_queue).decision == ""


def test_a_unanimous_or_skewed_queue_says_why_item_agreement_decided():
    unanimous = decide(complete(1.0, "yes"), on_queue=QueueVerdict(None, unanimous=("better",)))
    skewed = decide(complete(1.0, "yes"), on_queue=QueueVerdict(None, skewed=("better",)))
    assert unanimous.reason == (
        "reviewers agreed: yes (every answer to better in the queue is the same, so item "
        "agreement decides)"
    )
    assert skewed.reason.startswith("reviewers agreed: yes (answers to better are nearly all")
    assert "Gwet's AC1 meets the minimum" in skewed.reason


def test_agreement_is_the_lowest_share_over_the_gated_questions_only():
    rules = GateRules(
        annotations_per_item=3,
        min_item_agreement=0.66,
        gate_keys=("a", "b"),
        decision_key=None,
    )
    item = ItemFacts(
        status=COMPLETE,
        annotation_count=3,
        answers={"a": (0.912345, 4), "b": (0.71234, 3), "note": (0.1, "x")},
    )
    verdict = decide(item, rules)
    assert verdict.agreement == 0.7123
    assert (verdict.decision, verdict.reason) == (ACCEPTED, "reviewers agreed")


def test_a_ratings_only_queue_never_sets_a_preferred_response():
    rules = GateRules(
        annotations_per_item=3, min_item_agreement=0.5, gate_keys=("better",), decision_key=None
    )
    assert decide(complete(1.0, "response_1"), rules).preferred is None


def test_an_item_without_gated_answers_has_no_agreement_and_is_disputed():
    verdict = decide(ItemFacts(status=COMPLETE, annotation_count=3))
    assert (verdict.agreement, verdict.state) == (None, DISPUTED)


def test_a_leads_adjudication_decides_a_disputed_item():
    verdict = decide(complete(0.5, "yes", adjudication="accepted"))
    assert verdict == ItemVerdict(0.5, DISPUTED, ACCEPTED, "adjudicated: accepted")


def test_an_adjudication_to_discard_excludes():
    verdict = decide(complete(0.5, "yes", adjudication="discarded"))
    assert (verdict.decision, verdict.reason) == (EXCLUDED, "adjudicated: discarded")


def test_a_rejecting_adjudication_drops_the_preferred_response():
    verdict = decide(complete(1.0, "response_2", adjudication="rejected"))
    assert (verdict.decision, verdict.preferred) == (REJECTED, None)


def test_a_discarded_item_is_excluded_whatever_else_was_decided():
    verdict = decide(complete(1.0, "response_1", status=DISCARDED, adjudication="accepted"))
    assert verdict == ItemVerdict(1.0, AGREED, EXCLUDED, "item discarded", None)


def test_the_rules_of_a_queue_without_its_own_answers_use_the_defaults():
    assert RULES.accept_answers == DEFAULT_ACCEPT
    assert RULES.reject_answers == DEFAULT_REJECT


# Properties ---------------------------------------------------------------------------------

shares = st.floats(min_value=0, max_value=1)
answers = st.sampled_from(["yes", "no", "chosen", "rejected", "tie", "response_1", "response_2"])
statuses = st.sampled_from([OPEN, COMPLETE, DISCARDED])
adjudications = st.none() | st.sampled_from(["accepted", "rejected", "discarded"])
counts = st.integers(min_value=0, max_value=6)
alphas = st.floats(min_value=-1, max_value=1)


def on_alpha(alpha: float, min_alpha: float) -> QueueVerdict:
    return queue_verdict(
        [{"key": "better", "alpha": alpha, "undefined_reason": None, "complete_items": 50}],
        min_alpha=min_alpha,
    )


@given(share=shares, answer=answers, low=alphas, high=alphas, min_alpha=alphas)
def test_raising_alpha_never_turns_an_accepted_item_into_an_excluded_one(
    share, answer, low, high, min_alpha
):
    low, high = sorted((low, high))
    item = complete(share, answer)
    before = decide(item, on_queue=on_alpha(low, min_alpha))
    after = decide(item, on_queue=on_alpha(high, min_alpha))
    assert after.state == before.state  # alpha decides what passes, not what agrees
    if before.decision == ACCEPTED:
        assert after.decision == ACCEPTED


@given(alpha=alphas, min_alpha=alphas, share=shares, answer=answers)
def test_an_agreed_item_is_excluded_by_the_queue_exactly_when_alpha_is_below_the_minimum(
    alpha, min_alpha, share, answer
):
    verdict = decide(complete(share, answer), on_queue=on_alpha(alpha, min_alpha))
    if verdict.state == AGREED and alpha < min_alpha:
        assert (verdict.decision, verdict.reason) == (EXCLUDED, on_alpha(alpha, min_alpha).blocked)
    elif verdict.state == AGREED:
        assert verdict.reason.startswith("reviewers ")


@given(low=shares, high=shares, answer=answers, minimum=shares)
def test_raising_item_agreement_never_undoes_a_decision(low, high, answer, minimum):
    low, high = sorted((low, high))
    rules = GateRules(
        annotations_per_item=3,
        min_item_agreement=minimum,
        gate_keys=("better",),
        decision_key="better",
    )
    before, after = decide(complete(low, answer), rules), decide(complete(high, answer), rules)
    if before.decision:
        assert after.decision == before.decision
    # The item's agreement is stored (and compared) rounded to 4 places.
    assert (after.state == AGREED) == (round(high, 4) >= minimum)


@given(share=shares, answer=answers, count=counts, status=statuses, adjudication=adjudications)
def test_an_item_short_of_annotations_or_open_has_no_decision_unless_a_lead_gave_one(
    share, answer, count, status, adjudication
):
    item = complete(share, answer, annotation_count=count, status=status, adjudication=adjudication)
    verdict = decide(item)
    if count < RULES.annotations_per_item or status == OPEN:
        assert verdict.state == PENDING
        if adjudication is None and status != DISCARDED:
            assert verdict.decision == ""


@given(
    share=shares,
    answer=answers,
    count=counts,
    status=statuses,
    adjudication=adjudications,
    alpha=alphas,
)
def test_every_verdict_is_well_formed(share, answer, count, status, adjudication, alpha):
    item = complete(share, answer, annotation_count=count, status=status, adjudication=adjudication)
    verdict = decide(item, on_queue=on_alpha(alpha, 0.667))
    assert verdict.state in (PENDING, AGREED, DISPUTED)
    assert verdict.decision in ("", ACCEPTED, REJECTED, EXCLUDED)
    assert verdict.reason
    if status == DISCARDED:
        assert (verdict.decision, verdict.reason) == (EXCLUDED, "item discarded")
    if verdict.preferred is not None:
        assert verdict.decision == ACCEPTED
        assert verdict.preferred == {"response_1": 0, "response_2": 1}[answer]


@given(
    st.sets(st.integers(0, 5000), max_size=60),
    st.lists(st.integers(-5, 6000), max_size=60),
    st.sampled_from([1, 10**9]),  # ids spanning a few times their number, or far more
)
def test_positions_are_where_each_value_sits_or_minus_one(units, values, spread):
    units_array = np.asarray(sorted(u * spread for u in units), dtype=np.int64)
    values_array = np.asarray([v * spread for v in values], dtype=np.int64)
    expected = [
        units_array.tolist().index(v) if v in units_array.tolist() else -1
        for v in values_array.tolist()
    ]
    assert positions(units_array, values_array).tolist() == expected


@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=80))
def test_distinct_shares_are_numpys_unique_of_the_shares(pairs):
    agreeing = np.asarray([min(a, t) for a, t in pairs], dtype=np.int64)
    totals = np.asarray([t for _, t in pairs], dtype=np.int64)
    values, codes = distinct_shares(agreeing, totals)
    expected_values, expected_codes = np.unique(share_of(agreeing, totals), return_inverse=True)
    assert values.tolist() == expected_values.tolist()
    assert codes.tolist() == expected_codes.reshape(-1).tolist()
