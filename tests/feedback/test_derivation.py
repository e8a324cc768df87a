"""Tests for feedback.derivation: pure functions, no Django, no database."""

import dataclasses
import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback.derivation import (
    DerivedLabel,
    EventRecord,
    GenerationRecord,
    Policy,
    SessionDerivation,
    derive_session,
    edit_changes_text,
    qa_sample_point,
    regenerate_pair_confidence,
)
from feedback.edits import classify_edit

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
PROMPT = [{"role": "user", "content": "Summarise the quarterly report."}]
OUTPUT = "The report says revenue grew in the third quarter, driven by new customers in Europe."
# No QA sampling unless a test is about it, so routing is only the rules'.
NO_QA = Policy(qa_sample_rate=0.0)

_ids = itertools.count(1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def gen(
    ref: str,
    seconds: float = 0,
    *,
    output: str = OUTPUT,
    replaces: str | None = None,
    prompt: list[dict[str, Any]] | None = None,
) -> GenerationRecord:
    return GenerationRecord(
        ref=ref,
        input=prompt if prompt is not None else PROMPT,
        output=output,
        model="acme-chat-2",
        replaces_ref=replaces,
        created_at=at(seconds),
    )


def event(kind: str, ref: str | None, seconds: float, **payload: Any) -> EventRecord:
    return EventRecord(
        client_id=f"evt_{next(_ids):05d}",
        type=kind,
        timestamp=at(seconds),
        generation_ref=ref,
        payload=payload,
    )


def outcome(kind: str, seconds: float = 100, **payload: Any) -> EventRecord:
    return event("session_outcome", None, seconds, outcome=kind, **payload)


def derive(
    generations: list[GenerationRecord],
    events: list[EventRecord],
    policy: Policy = NO_QA,
    **kwargs: Any,
) -> SessionDerivation:
    return derive_session(generations=generations, events=events, policy=policy, **kwargs)


def labels_by_key(result: SessionDerivation) -> dict[str, DerivedLabel]:
    return {label.key: label for label in result.labels}


def regenerated_chain(length: int) -> list[GenerationRecord]:
    """g1 <- g2 <- ... each replacing the one before, ten seconds apart."""
    return [
        gen(f"g{i}", i * 10, output=f"Answer number {i}: " + OUTPUT, replaces=f"g{i - 1}")
        if i > 1
        else gen("g1", 10, output="Answer number 1: " + OUTPUT)
        for i in range(1, length + 1)
    ]


# Edits


def test_a_targeted_fact_fix_is_an_auto_accepted_preference_pair() -> None:
    edited = OUTPUT.replace("third quarter", "fourth quarter")
    result = derive([gen("g1")], [event("edit", "g1", 5, text=edited)])

    label = labels_by_key(result)["edit:g1"]
    assert (label.kind, label.source, label.rule) == ("preference_pair", "edit", "edit_correction")
    assert (label.chosen, label.rejected) == (edited, OUTPUT)
    assert label.prompt == PROMPT
    assert label.weight == 1.0
    assert label.confidence >= NO_QA.confidence_threshold
    assert not label.needs_review and label.review_reason is None
    assert label.signals["edit_changes"] == ["number"]


def test_a_fact_fixed_inside_a_reworded_sentence_is_a_reviewed_pair() -> None:
    # A number added while the whole sentence is reworded: a fix and a restyle look alike.
    edited = "Revenue grew 12% in Q3, mostly from new customers in Europe, the report says."
    result = derive([gen("g1")], [event("edit", "g1", 5, text=edited)])

    label = labels_by_key(result)["edit:g1"]
    assert label.rule == "edit_correction"
    assert label.confidence < NO_QA.confidence_threshold
    assert label.review_reason == "low_confidence"
    assert 0.05 <= result.generations["g1"].edit_ratio <= 0.90


def test_a_one_token_fix_is_an_auto_accepted_pair_however_small_its_ratio() -> None:
    code = "```sql\nSELECT name FROM users WHERE age > 30;\n```"
    fixed = code.replace("age > 30", "age >= 30")
    result = derive([gen("g1", output=code)], [event("edit", "g1", 5, text=fixed)])

    label = labels_by_key(result)["edit:g1"]
    assert result.generations["g1"].edit_ratio < NO_QA.edit_ratio_min
    assert label.rule == "edit_correction" and not label.needs_review
    assert label.signals["edit_kind"] == "correction"
    assert "code_token" in label.signals["edit_changes"]


def test_a_wording_change_without_a_substantive_token_is_routed_for_review() -> None:
    edited = OUTPUT.replace("grew", "rose").replace("driven by", "thanks to")
    result = derive([gen("g1")], [event("edit", "g1", 5, text=edited)])

    label = labels_by_key(result)["edit:g1"]
    assert label.rule == "edit_correction"
    assert label.confidence < 0.7
    assert label.review_reason == "low_confidence"


def test_a_name_fixed_is_an_auto_accepted_pair() -> None:
    edited = OUTPUT.replace("Europe", "Asia")
    result = derive([gen("g1")], [event("edit", "g1", 5, text=edited)])

    label = labels_by_key(result)["edit:g1"]
    assert label.rule == "edit_correction" and not label.needs_review


@pytest.mark.parametrize(
    "touch",
    [
        lambda text: text + "!",  # punctuation
        lambda text: text.upper(),  # casing
        lambda text: text.replace(" ", "  "),  # whitespace
        lambda text: text.split(",")[0] + ".",  # trimmed at the end
        lambda text: text + "\n\nTODO: forward to the board",  # the user's own note
    ],
    ids=["punctuation", "casing", "whitespace", "trim", "note"],
)
def test_cosmetic_trim_and_note_edits_make_no_pair_and_are_no_action(touch: Any) -> None:
    policy = Policy(confidence_threshold=0.0, qa_sample_rate=0.0)
    chain = regenerated_chain(2)
    result = derive(chain, [event("edit", "g2", 30, text=touch(chain[1].output))], policy)

    assert labels_by_key(result) == {}  # no edit pair, and no regenerate pair from it
    assert not result.generations["g2"].downstream_action


def test_rewrite_edit_is_routed_not_auto_accepted() -> None:
    policy = Policy(confidence_threshold=0.0, qa_sample_rate=0.0)
    rewrite = "Q3 up."
    result = derive([gen("g1")], [event("edit", "g1", 5, text=rewrite)], policy)

    label = labels_by_key(result)["edit:g1"]
    assert result.generations["g1"].edit_ratio > 0.90
    assert label.rule == "edit_rewrite"
    assert (label.chosen, label.rejected) == (rewrite, OUTPUT)
    assert label.needs_review and label.review_reason == "low_confidence"
    assert label.confidence < 0.5


def test_latest_edit_is_final_text() -> None:
    first = OUTPUT.replace("grew", "rose")
    last = OUTPUT.replace("grew", "grew 12%")
    # Given out of order: the latest by timestamp wins, not the last in the list.
    events = [event("edit", "g1", 30, text=last), event("edit", "g1", 10, text=first)]
    result = derive([gen("g1")], events)

    signals = result.generations["g1"]
    assert signals.final_text == last
    assert signals.edits == 2
    assert labels_by_key(result)["edit:g1"].chosen == last


def test_edits_at_the_same_instant_are_ordered_by_client_id() -> None:
    a = EventRecord("evt_a", "edit", at(5), "g1", {"text": OUTPUT + " A."})
    b = EventRecord("evt_b", "edit", at(5), "g1", {"text": OUTPUT + " B."})
    assert derive([gen("g1")], [b, a]).generations["g1"].final_text == OUTPUT + " B."
    assert derive([gen("g1")], [a, b]).generations["g1"].final_text == OUTPUT + " B."


def test_edit_back_to_the_output_yields_no_pair() -> None:
    result = derive([gen("g1")], [event("edit", "g1", 5, text=OUTPUT)])

    assert result.generations["g1"].edit_ratio == 0.0
    assert result.generations["g1"].edits == 1
    assert result.labels == []


def test_edit_before_generation_arrives_is_ignored_until_then() -> None:
    edit = event("edit", "g2", 5, text="A much better answer about revenue growth.")

    early = derive([gen("g1")], [edit])
    assert "g2" not in early.generations
    assert early.labels == []

    later = derive([gen("g1"), gen("g2", 3)], [edit])
    assert later.generations["g2"].edits == 1
    assert "edit:g2" in labels_by_key(later)


# Regenerations


def test_regenerate_without_downstream_action_yields_no_pair() -> None:
    generations = regenerated_chain(2)
    result = derive(generations, [event("regenerate", "g1", 15), event("view", "g2", 25)])

    assert result.generations["g1"].regenerated
    assert not result.generations["g2"].downstream_action
    assert result.session.retries == 1
    assert [label for label in result.labels if label.source == "regenerate"] == []


def test_regenerate_then_copy_pairs_the_accepted_with_each_discarded_generation() -> None:
    generations = regenerated_chain(3)
    result = derive(generations, [event("copy", "g3", 40)])

    labels = labels_by_key(result)
    pairs = [label for label in result.labels if label.source == "regenerate"]
    assert {label.key for label in pairs} == {"regen:g2>g3", "regen:g1>g3"}
    pair = labels["regen:g1>g3"]
    assert pair.kind == "preference_pair" and pair.rule == "regenerate_then_action"
    assert (pair.generation_ref, pair.other_generation_ref) == ("g3", "g1")
    assert (pair.chosen, pair.rejected) == (generations[2].output, generations[0].output)
    assert pair.weight == 0.9
    assert pair.signals["action"] == "copy"


def test_discarded_generation_that_was_itself_copied_is_not_rejected() -> None:
    generations = regenerated_chain(2)
    result = derive(generations, [event("copy", "g1", 15), event("copy", "g2", 30)])

    assert [label.key for label in result.labels if label.source == "regenerate"] == []


@pytest.mark.parametrize(
    ("events", "expected_action"),
    [
        ([event("share", "g2", 30)], "share"),
        ([event("copy", "g2", 30)], "copy"),
        ([event("edit", "g2", 30, text="Answer number 2: revenue grew 12% in Q3.")], "edit"),
        ([outcome("completed")], "completed"),
    ],
)
def test_each_downstream_action_on_the_later_generation_makes_a_pair(
    events: list[EventRecord], expected_action: str
) -> None:
    result = derive(regenerated_chain(2), events)

    assert labels_by_key(result)["regen:g1>g2"].signals["action"] == expected_action


def test_regenerate_pair_confidence_rises_with_action_strength_and_dwell() -> None:
    by_strength = [
        regenerate_pair_confidence(action, 0)
        for action in ("edit_rewrite", "edit", "copy", "completed", "share")
    ]
    assert by_strength == sorted(by_strength) and len(set(by_strength)) == 4
    # People regenerate good answers for variety: no pair is sure enough to skip review.
    best = regenerate_pair_confidence("share", 10**9)
    assert best < Policy().confidence_threshold
    assert regenerate_pair_confidence("copy", 0, discarded_rated_down=True) > by_strength[2]
    by_dwell = [regenerate_pair_confidence("copy", ms) for ms in (0, 5_000, 15_000, 30_000)]
    assert by_dwell == sorted(by_dwell) and len(set(by_dwell)) == 4
    assert regenerate_pair_confidence("copy", 10**9) == regenerate_pair_confidence("copy", 30_000)

    views = [event("view", "g2", 20, dwell_ms=10_000), event("view", "g2", 25, dwell_ms=5_000)]
    result = derive(regenerated_chain(2), [event("copy", "g2", 30), *views])
    assert result.generations["g2"].dwell_ms == 15_000
    assert labels_by_key(result)["regen:g1>g2"].confidence == regenerate_pair_confidence(
        "copy", 15_000
    )


def test_rewritten_accepted_generation_makes_only_a_reviewed_pair() -> None:
    rewrite = "Q3 up."
    result = derive(regenerated_chain(2), [event("edit", "g2", 30, text=rewrite)])

    pair = labels_by_key(result)["regen:g1>g2"]
    assert pair.signals["action"] == "edit_rewrite"
    assert pair.needs_review and pair.review_reason == "low_confidence"


def test_regenerate_events_alone_link_the_chain() -> None:
    # The client sends regenerate events but no `replaces` on the new generations.
    generations = [
        gen("g1", 0, output="First try."),
        gen("g2", 20, output="Second try."),
        gen("g3", 40, output="An answer to another question.", prompt=[PROMPT[0] | {"x": 1}]),
    ]
    events = [event("regenerate", "g1", 15), event("copy", "g2", 30)]
    result = derive(generations, events)

    assert (result.generations["g2"].chain_position, result.generations["g2"].chain_length) == (
        2,
        2,
    )
    assert result.generations["g3"].chain_position == 1
    assert "regen:g1>g2" in labels_by_key(result)


def test_regenerate_of_a_replacement_whose_successor_has_not_arrived_is_kept_open() -> None:
    # g2 replaces g1, which has not arrived, and was regenerated itself; g3 is still in
    # flight. Found by the simulator's late deliveries: no generation with g2's input
    # lacks a `replaces`, so there is no candidate successor at all.
    result = derive([gen("g2", 20, replaces="g1")], [event("regenerate", "g2", 25)])

    assert result.generations["g2"].regenerated
    assert result.generations["g2"].chain_length == 1
    assert result.session.retries == 1


def test_regenerate_event_and_replaces_link_count_as_one_retry() -> None:
    result = derive(regenerated_chain(2), [event("regenerate", "g1", 15)])

    assert result.session.retries == 1
    assert result.generations["g1"].regenerated


def test_chain_positions_follow_replaces_links() -> None:
    result = derive([*regenerated_chain(3), gen("h1", 100, output="A new question's answer.")], [])

    positions = {
        ref: (signals.chain_position, signals.chain_length)
        for ref, signals in result.generations.items()
    }
    assert positions == {"g1": (1, 3), "g2": (2, 3), "g3": (3, 3), "h1": (1, 1)}
    assert [result.generations[ref].regenerated for ref in ("g1", "g2", "g3")] == [
        True,
        True,
        False,
    ]


def test_replaces_link_to_a_generation_not_yet_arrived_is_ignored() -> None:
    result = derive([gen("g2", 20, replaces="g1")], [])

    assert result.generations["g2"].chain_position == 1
    assert result.session.retries == 0


def test_three_regenerations_flag_the_chain() -> None:
    result = derive(regenerated_chain(4), [])

    label = labels_by_key(result)["retry:g1"]
    assert (label.kind, label.source, label.rule) == ("high_retry", "regenerate", "retry_chain")
    assert label.needs_review and label.review_reason == "high_retry"
    assert label.signals["regenerations"] == 3
    assert label.signals["chain"] == ["g1", "g2", "g3", "g4"]
    assert label.chosen is label.rejected is label.completion is None


def test_two_regenerations_do_not_flag_the_chain() -> None:
    result = derive(regenerated_chain(3), [])

    assert [label for label in result.labels if label.kind == "high_retry"] == []


def test_high_retry_confidence_grows_with_the_number_of_regenerations() -> None:
    confidences = [
        labels_by_key(derive(regenerated_chain(n), []))["retry:g1"].confidence for n in (4, 5, 6)
    ]
    assert confidences == sorted(confidences) and len(set(confidences)) == 3


def test_high_retry_label_is_never_auto_accepted_even_when_everything_else_is() -> None:
    policy = Policy(confidence_threshold=0.0, qa_sample_rate=0.0)
    result = derive(regenerated_chain(4), [event("copy", "g4", 60)], policy)

    retry_and_pairs = [label for label in result.labels if label.source == "regenerate"]
    assert len(retry_and_pairs) == 4  # the flag and three pairs
    assert all(label.review_reason == "high_retry" for label in retry_and_pairs)
    assert labels_by_key(result)["accept:g4"].review_reason is None


# Copies and shares


def test_copy_without_edit_is_a_positive_people_confirm() -> None:
    # Some copies are of bad answers (pasted into a bug report): a copy alone is reviewed.
    result = derive([gen("g1")], [event("copy", "g1", 5)])

    label = labels_by_key(result)["accept:g1"]
    assert (label.kind, label.source, label.rule) == ("completion", "copy", "copy_accept")
    assert (label.completion, label.label) == (OUTPUT, True)
    assert 0.75 <= label.confidence < Policy().confidence_threshold
    assert label.review_reason == "low_confidence"
    assert label.weight > Policy().weight_completed


def test_a_copied_answer_rated_down_is_no_positive() -> None:
    result = derive([gen("g1")], [event("copy", "g1", 5), event("rating", "g1", 9, value=-1)])

    assert "accept:g1" not in labels_by_key(result)
    assert labels_by_key(result)["rating:g1"].signals["value"] == -1


def test_a_completed_session_is_sure_only_when_its_answer_was_read() -> None:
    unread = derive([gen("g1")], [outcome("completed", signal="task_done")])
    read = derive(
        [gen("g1")],
        [event("view", "g1", 5, dwell_ms=12_000), outcome("completed", signal="task_done")],
    )

    assert labels_by_key(unread)["outcome:g1"].review_reason == "low_confidence"
    label = labels_by_key(read)["outcome:g1"]
    assert label.confidence >= Policy().confidence_threshold and not label.needs_review
    assert label.signals["dwell_ms"] == 12_000


def test_share_outranks_copy() -> None:
    shared = labels_by_key(derive([gen("g1")], [event("share", "g1", 5)]))["accept:g1"]
    copied = labels_by_key(derive([gen("g1")], [event("copy", "g1", 5)]))["accept:g1"]

    assert (shared.source, shared.rule) == ("share", "share_accept")
    assert shared.confidence > copied.confidence


def test_partial_copy_is_a_weaker_positive() -> None:
    partial = derive([gen("g1")], [event("copy", "g1", 5, text=OUTPUT[:10])])
    whole = derive([gen("g1")], [event("copy", "g1", 5, text=OUTPUT)])

    assert (
        labels_by_key(partial)["accept:g1"].confidence
        < labels_by_key(whole)["accept:g1"].confidence
    )


def test_copy_after_a_real_edit_gives_the_edit_pair_not_a_completion() -> None:
    edited = OUTPUT.replace("grew", "grew 12%").replace("Europe", "Germany and France")
    result = derive([gen("g1")], [event("edit", "g1", 5, text=edited), event("copy", "g1", 9)])

    assert [label.key for label in result.labels] == ["edit:g1"]


def test_copy_after_a_cosmetic_edit_still_accepts_the_output() -> None:
    result = derive(
        [gen("g1")], [event("edit", "g1", 5, text=OUTPUT + "!"), event("copy", "g1", 9)]
    )

    labels = labels_by_key(result)
    assert labels["accept:g1"].completion == OUTPUT
    assert "edit:g1" not in labels  # a cosmetic edit is no pair


def test_copied_then_regenerated_is_a_weaker_positive() -> None:
    plain = labels_by_key(derive([gen("g1")], [event("copy", "g1", 5)]))["accept:g1"]
    result = derive(regenerated_chain(2), [event("copy", "g1", 15)])

    assert labels_by_key(result)["accept:g1"].confidence < plain.confidence


# Session outcomes


def test_completed_session_labels_final_generations() -> None:
    # Two prompts: the first regenerated once (g1 -> g2), then a second prompt (h1).
    generations = [*regenerated_chain(2), gen("h1", 50, output="Answer to a follow-up.")]
    result = derive(generations, [outcome("completed", signal="tests_passed")])

    labels = labels_by_key(result)
    completions = [label for label in result.labels if label.rule == "session_completed"]
    assert [label.generation_ref for label in completions] == ["g2", "h1"]
    for label in completions:
        assert (label.kind, label.source, label.label) == ("completion", "outcome", True)
        assert label.weight == Policy().weight_completed
    # The session's last generation is the surest, and a verifying signal raises both.
    assert labels["outcome:h1"].confidence > labels["outcome:g2"].confidence
    without_signal = labels_by_key(derive(generations, [outcome("completed")]))
    assert labels["outcome:h1"].confidence > without_signal["outcome:h1"].confidence
    assert result.session.outcome == "completed"
    assert result.session.outcome_signal == "tests_passed"
    assert result.generations["h1"].downstream_action
    assert not result.generations["g1"].downstream_action


def test_completed_session_does_not_label_a_regenerated_last_generation() -> None:
    # g1 was regenerated but its replacement has not arrived: it is no final answer.
    result = derive([gen("g1")], [event("regenerate", "g1", 5), outcome("completed")])

    assert [label for label in result.labels if label.rule == "session_completed"] == []


def test_copied_generation_in_completed_session_gets_only_the_copy_label() -> None:
    result = derive([gen("g1")], [event("copy", "g1", 5), outcome("completed")])

    assert [label.key for label in result.labels] == ["accept:g1"]


def test_abandoned_session_is_always_reviewed() -> None:
    policy = Policy(confidence_threshold=0.0, qa_sample_rate=0.0)
    generations = [gen("g1", 0), gen("g2", 20, output="A second answer.")]
    result = derive(generations, [outcome("abandoned")], policy)

    (label,) = result.labels
    assert (label.key, label.rule, label.source) == ("outcome:g2", "session_abandoned", "outcome")
    assert (label.completion, label.label) == ("A second answer.", False)
    assert label.needs_review and label.review_reason == "abandoned"
    assert label.confidence < 0.5
    assert label.signals["by_timeout"] is False


def test_abandoned_after_copying_is_a_weaker_negative() -> None:
    bare = labels_by_key(derive([gen("g1")], [outcome("abandoned")]))["outcome:g1"]
    copied = derive([gen("g1")], [event("copy", "g1", 5), outcome("abandoned")])

    assert labels_by_key(copied)["outcome:g1"].confidence < bare.confidence


def test_abandoned_by_timeout() -> None:
    # Only a project that always sends outcome events reads a timeout as a failure.
    policy = Policy(qa_sample_rate=0.0, sends_outcome_events=True)
    result = derive([gen("g1")], [], policy, abandoned_by_timeout=True)

    assert result.session.outcome == "abandoned"
    label = labels_by_key(result)["outcome:g1"]
    assert label.label is False and label.review_reason == "abandoned"
    assert label.signals["by_timeout"] is True


def test_outcome_event_wins_over_the_timeout() -> None:
    result = derive([gen("g1")], [outcome("completed")], abandoned_by_timeout=True)

    assert result.session.outcome == "completed"


def test_latest_outcome_event_wins() -> None:
    events = [outcome("completed", 200), outcome("abandoned", 100)]

    assert derive([gen("g1")], events).session.outcome == "completed"


def test_session_without_outcome_is_open_and_has_no_outcome_labels() -> None:
    result = derive([gen("g1")], [])

    assert result.session.outcome == "open"
    assert result.labels == []


def test_session_without_generations_has_no_labels() -> None:
    result = derive([], [outcome("abandoned"), event("copy", "g1", 5)])

    assert result.session.generations == 0
    assert result.labels == []


# Ratings


def test_rating_is_kept_apart() -> None:
    events = [
        event("rating", "g1", 5, value=-1),
        event("rating", "g1", 9, value=1, comment="good now"),
        event("copy", "g1", 7),
    ]
    result = derive([gen("g1")], events)

    labels = labels_by_key(result)
    rating = labels["rating:g1"]
    assert (rating.kind, rating.source, rating.rule) == ("rating", "rating", "explicit_rating")
    assert rating.signals == {"value": 1, "comment": "good now"}
    assert rating.label is None  # the scale is the product's: exports read the value
    assert result.generations["g1"].rating == 1
    # The implicit label is unaffected by the rating.
    assert (
        labels["accept:g1"].confidence
        == labels_by_key(derive([gen("g1")], [event("copy", "g1", 7)]))["accept:g1"].confidence
    )


# Routing, determinism, bounds


def test_qa_sample_rate_zero_and_one() -> None:
    generations = [gen("g1"), gen("h1", 50, output="Another answer.")]
    events = [event("copy", "g1", 5), event("share", "h1", 55)]

    low = {"confidence_threshold": 0.7}  # the copy is auto-accepted only below 0.8
    none_sampled = derive(generations, events, Policy(qa_sample_rate=0.0, **low))
    all_sampled = derive(generations, events, Policy(qa_sample_rate=1.0, **low))

    assert [label.review_reason for label in none_sampled.labels] == [None, None]
    assert [label.review_reason for label in all_sampled.labels] == ["qa_sample", "qa_sample"]


def test_qa_sample_does_not_replace_a_stronger_review_reason() -> None:
    result = derive([gen("g1")], [outcome("abandoned")], Policy(qa_sample_rate=1.0))

    assert result.labels[0].review_reason == "abandoned"


def test_qa_sample_is_a_stable_hash_of_the_key_near_the_rate() -> None:
    assert qa_sample_point("edit:g1") == qa_sample_point("edit:g1")
    points = [qa_sample_point(f"accept:gen_{i}") for i in range(20_000)]
    assert all(0.0 <= point < 1.0 for point in points)
    share = sum(point < 0.02 for point in points) / len(points)
    assert 0.015 < share < 0.025


def rich_session() -> tuple[list[GenerationRecord], list[EventRecord]]:
    generations = [
        *regenerated_chain(4),
        gen("h1", 100, output="A follow-up answer about costs."),
        gen("h2", 120, output="Costs fell by a tenth.", replaces="h1"),
    ]
    events = [
        event("regenerate", "g1", 15),
        event("regenerate", "g2", 25),
        event("view", "g4", 45, dwell_ms=12_000),
        event("copy", "g4", 50),
        event("edit", "h2", 125, text="Costs fell by a tenth, mostly in logistics."),
        event("edit", "h2", 130, text="Costs fell by 10%, mostly in logistics."),
        event("edit", "zzz", 131, text="for a generation that never arrived"),
        event("share", "h1", 110),
        event("rating", "h2", 135, value=5),
        outcome("completed", 200, signal="tests_passed"),
    ]
    return generations, events


def test_rederivation_is_deterministic() -> None:
    generations, events = rich_session()
    policy = Policy(qa_sample_rate=0.5)
    expected = derive(generations, events, policy)

    rng = random.Random(7)
    for _ in range(20):
        shuffled_generations, shuffled_events = generations[:], events[:]
        rng.shuffle(shuffled_generations)
        rng.shuffle(shuffled_events)
        assert derive(shuffled_generations, shuffled_events, policy) == expected
    assert len({label.key for label in expected.labels}) == len(expected.labels)


def test_derivation_serialises_to_json() -> None:
    generations, events = rich_session()
    result = derive(generations, events)

    decoded = json.loads(json.dumps(dataclasses.asdict(result)))
    assert decoded["session"]["retries"] == 4
    assert {label["key"] for label in decoded["labels"]} >= {"retry:g1", "regen:g3>g4", "edit:h2"}


def test_confidence_is_always_within_the_unit_interval() -> None:
    rng = random.Random(11)
    kinds = ["edit", "regenerate", "copy", "share", "view", "rating"]
    for _ in range(300):
        policy = Policy(
            edit_ratio_min=rng.choice([0.0, 0.05, 0.3]),
            edit_ratio_max=rng.choice([0.3, 0.9, 1.0]),
            retry_threshold=rng.randint(1, 4),
            qa_sample_rate=rng.random(),
        )
        count = rng.randint(1, 8)
        generations = [
            gen(
                f"g{i}",
                i * 10,
                output=f"Answer {i} " * rng.randint(0, 5),
                replaces=f"g{i - 1}" if i > 1 and rng.random() < 0.6 else None,
            )
            for i in range(1, count + 1)
        ]
        events = []
        for _ in range(rng.randint(0, 20)):
            kind = rng.choice(kinds)
            payload = {
                "edit": {"text": "x" * rng.randint(0, 40)},
                "view": {"dwell_ms": rng.randint(0, 100_000)},
                "rating": {"value": rng.randint(-1, 5)},
            }.get(kind, {})
            events.append(
                event(kind, f"g{rng.randint(1, count + 1)}", rng.random() * 100, **payload)
            )
        if rng.random() < 0.7:
            events.append(outcome(rng.choice(["completed", "abandoned"])))

        result = derive(generations, events, policy, abandoned_by_timeout=rng.random() < 0.5)
        for label in result.labels:
            assert 0.0 <= label.confidence <= 1.0
            assert label.confidence == round(label.confidence, 4)
            assert label.needs_review == (label.review_reason is not None)
            if label.review_reason is None:
                assert label.confidence >= policy.confidence_threshold


@pytest.mark.parametrize(
    "changes",
    [
        {"edit_ratio_min": 0.5, "edit_ratio_max": 0.4},
        {"retry_threshold": 0},
        {"confidence_threshold": 1.5},
        {"qa_sample_rate": -0.1},
        {"weight_copy_share": -1.0},
    ],
)
def test_invalid_policy_is_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Policy(**changes)


# Edits that change nothing


NO_OP_EDITS = {
    "same text": lambda text: text,
    "trailing newline": lambda text: text + "\n",
    "surrounding spaces": lambda text: "  " + text + " \t",
    "trimmed": lambda text: text.strip(),
}


@pytest.mark.parametrize("no_op", NO_OP_EDITS.values(), ids=NO_OP_EDITS.keys())
def test_an_edit_that_changes_nothing_is_no_action_and_makes_no_pair(no_op: Any) -> None:
    chain = regenerated_chain(2)
    result = derive(chain, [event("edit", "g2", 30, text=no_op(chain[1].output))])

    assert labels_by_key(result) == {}  # no edit pair, no regenerate pair
    signals = result.generations["g2"]
    assert signals.edits == 1 and signals.edit_ratio == 0.0
    assert not signals.downstream_action


@pytest.mark.parametrize("no_op", NO_OP_EDITS.values(), ids=NO_OP_EDITS.keys())
def test_a_copy_with_a_no_op_edit_still_counts_as_the_copy(no_op: Any) -> None:
    chain = regenerated_chain(2)
    events = [event("edit", "g2", 30, text=no_op(chain[1].output)), event("copy", "g2", 40)]
    result = derive(chain, events)

    by_key = labels_by_key(result)
    assert sorted(by_key) == ["accept:g2", "regen:g1>g2"]
    assert by_key["regen:g1>g2"].signals["action"] == "copy"


def test_a_no_op_edit_on_an_earlier_generation_does_not_save_it_from_being_rejected() -> None:
    chain = regenerated_chain(2)
    events = [
        event("edit", "g1", 15, text=chain[0].output + "\n\n"),
        event("copy", "g2", 30),
    ]
    result = derive(chain, events)

    assert "regen:g1>g2" in labels_by_key(result)


def test_an_abandoned_answer_with_only_a_no_op_edit_gets_no_action_penalty() -> None:
    generations = [gen("g1")]
    policy = Policy(qa_sample_rate=0.0, sends_outcome_events=True)
    untouched = derive(generations, [], policy, abandoned_by_timeout=True)
    no_op = derive(
        generations,
        [event("edit", "g1", 20, text=OUTPUT + " ")],
        policy,
        abandoned_by_timeout=True,
    )

    assert (
        labels_by_key(no_op)["outcome:g1"].confidence
        == labels_by_key(untouched)["outcome:g1"].confidence
    )


def test_a_later_edit_back_to_the_output_undoes_the_action() -> None:
    chain = regenerated_chain(2)
    events = [
        event("edit", "g2", 30, text="Answer number 2: revenue grew 12% in Q3."),
        event("edit", "g2", 40, text=chain[1].output),
    ]
    result = derive(chain, events)

    assert labels_by_key(result) == {}


@given(
    text=st.text(min_size=1, max_size=80),
    before=st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=5),
    after=st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=5),
)
def test_whitespace_around_the_output_is_never_a_change(text: str, before: str, after: str) -> None:
    assert not edit_changes_text(text, before + text + after)
    assert not edit_changes_text(before + text + after, text)
    result = derive([gen("g1", output=text)], [event("edit", "g1", 20, text=before + text + after)])
    assert result.labels == []
    assert not result.generations["g1"].downstream_action


@given(text=st.text(min_size=1, max_size=80), extra=st.text(min_size=1, max_size=10))
def test_a_change_beyond_whitespace_is_an_edit_pair_when_it_corrects_or_rewrites(
    text: str, extra: str
) -> None:
    edited = text + extra
    if edited.strip() == text.strip():
        return  # only whitespace was appended: the case above
    assert edit_changes_text(text, edited)
    result = derive([gen("g1", output=text)], [event("edit", "g1", 20, text=edited)])
    substantive = classify_edit(text, edited).kind in ("correction", "rewrite")
    assert [label.key for label in result.labels] == (["edit:g1"] if substantive else [])
    assert result.generations["g1"].downstream_action == substantive
