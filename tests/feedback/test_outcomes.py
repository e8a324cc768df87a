"""Outcome inference (docs/labels.md, "Outcomes"): a project says whether it sends outcome
events; without them a timed-out session is inactive, not abandoned, and only a user who
regenerated and then left without acting on the last answer gets a (weak, reviewed)
negative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback import labelling, services
from feedback.derivation import EventRecord, GenerationRecord, Policy, derive_session
from feedback.models import Label, RoutingPolicy, Session
from review.models import Item, Queue
from tests.factories import BASE_TIME, event, generation

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PROMPT = [{"role": "user", "content": "Summarise this report."}]
DEFAULT = Policy(qa_sample_rate=0.0)
ALWAYS = Policy(qa_sample_rate=0.0, sends_outcome_events=True)


def gen(ref: str, seconds: float, replaces: str | None = None) -> GenerationRecord:
    output = f"Answer {ref}: revenue grew in the third quarter."
    return GenerationRecord(ref, PROMPT, output, "m", replaces, T0 + timedelta(seconds=seconds))


def ev(kind: str, ref: str | None, seconds: float, **payload: Any) -> EventRecord:
    return EventRecord(
        f"e{seconds}{kind}{ref}", kind, T0 + timedelta(seconds=seconds), ref, payload
    )


def timed_out(gens: list[GenerationRecord], events: list[EventRecord], policy: Policy):
    return derive_session(generations=gens, events=events, policy=policy, abandoned_by_timeout=True)


def test_policy_default_sends_no_outcome_events() -> None:
    assert Policy().sends_outcome_events is False
    assert RoutingPolicy._meta.get_field("sends_outcome_events").default is False


def test_silent_session_without_outcome_events_is_inactive_with_no_label() -> None:
    result = timed_out([gen("g1", 0)], [ev("view", "g1", 5, dwell_ms=4000)], DEFAULT)

    assert result.session.outcome == "inactive"
    assert result.labels == []


def test_silent_session_with_outcome_events_is_abandoned_as_before() -> None:
    result = timed_out([gen("g1", 0)], [], ALWAYS)

    assert result.session.outcome == "abandoned"
    (label,) = result.labels
    assert (label.rule, label.label, label.review_reason) == (
        "session_abandoned",
        False,
        "abandoned",
    )
    assert label.signals["inactive"] is False


def test_regenerated_then_left_without_outcome_events_is_a_weak_reviewed_negative() -> None:
    gens = [gen("g1", 0), gen("g2", 10, replaces="g1")]
    weak = timed_out(gens, [], DEFAULT)
    strong = timed_out(gens, [], ALWAYS)

    (label,) = weak.labels
    assert (label.key, label.rule, label.label) == ("outcome:g2", "session_abandoned", False)
    assert label.needs_review and label.review_reason == "abandoned"
    assert label.signals["inactive"] is True and label.signals["by_timeout"] is True
    (abandoned,) = strong.labels
    assert label.confidence < abandoned.confidence
    assert weak.session.outcome == "inactive"


@pytest.mark.parametrize(
    "action",
    [
        ev("copy", "g2", 20),
        ev("share", "g2", 20),
        ev("edit", "g2", 20, text="Revenue fell, in fact."),
    ],
    ids=["copy", "share", "edit"],
)
def test_regenerated_then_acted_on_without_outcome_events_gets_no_negative(action) -> None:
    gens = [gen("g1", 0), gen("g2", 10, replaces="g1")]
    result = timed_out(gens, [action], DEFAULT)

    assert not [label for label in result.labels if label.source == "outcome"]


def test_an_outcome_event_wins_over_inactivity() -> None:
    result = timed_out(
        [gen("g1", 0)], [ev("session_outcome", None, 50, outcome="completed")], DEFAULT
    )

    assert result.session.outcome == "completed"
    assert [label.rule for label in result.labels] == ["session_completed"]


@settings(max_examples=60, deadline=None)
@given(
    chains=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4),
    actions=st.lists(
        st.tuples(st.sampled_from(["copy", "share", "view", "regenerate"]), st.integers(0, 15)),
        max_size=6,
    ),
)
def test_without_outcome_events_a_negative_needs_a_regeneration_and_no_action(
    chains: list[int], actions: list[tuple[str, int]]
) -> None:
    gens: list[GenerationRecord] = []
    for c, length in enumerate(chains):
        for i in range(length):
            ref = f"c{c}g{i}"
            gens.append(gen(ref, len(gens) * 10, replaces=f"c{c}g{i - 1}" if i else None))
    events = [
        ev(kind, gens[n % len(gens)].ref, 500 + k, dwell_ms=10)
        for k, (kind, n) in enumerate(actions)
    ]
    result = timed_out(gens, events, DEFAULT)

    assert result.session.outcome == "inactive"
    negatives = [label for label in result.labels if label.label is False]
    for label in negatives:
        sig = result.generations[label.generation_ref]
        assert label.generation_ref == gens[-1].ref
        assert sig.regenerated or sig.chain_position > 1
        assert not (sig.copied or sig.shared)
        assert label.needs_review and label.signals["inactive"] is True


# Through ingestion, the sweep and derivation.

OUTPUT = "The quarterly report says revenue grew four percent, driven by the new tier."


def ingest(project, events) -> None:
    assert services.events_ingest(project=project, events=events).rejected == 0


def sweep_and_derive() -> None:
    labelling.sessions_mark_abandoned(now=BASE_TIME + timedelta(minutes=31))
    while labelling.sessions_derive_pending():
        pass


@pytest.mark.django_db
def test_silent_session_of_a_project_without_outcome_events_gets_no_negative(project):
    ingest(project, [generation("g1", output=OUTPUT)])
    sweep_and_derive()

    session = Session.objects.get()
    assert session.outcome == Session.Outcome.INACTIVE and session.timed_out_at is not None
    assert not Label.objects.exists()
    assert not Item.objects.exists()


@pytest.mark.django_db
def test_silent_session_of_a_project_with_outcome_events_is_abandoned(project):
    RoutingPolicy.objects.filter(project=project).update(sends_outcome_events=True)
    ingest(project, [generation("g1", output=OUTPUT)])
    sweep_and_derive()

    assert Session.objects.get().outcome == Session.Outcome.ABANDONED
    (label,) = Label.objects.all()
    assert (label.rule, label.label) == ("session_abandoned", False)
    assert Item.objects.get(label=label).queue.reason == Queue.Reason.ABANDONED


@pytest.mark.django_db
def test_regenerated_then_left_is_routed_to_the_abandoned_queue(project):
    ingest(
        project,
        [
            generation("g1", output=OUTPUT, t=0),
            event("regenerate", generation_id="g1", t=5),
            generation("g2", output="Revenue grew 4%.", replaces="g1", t=6),
        ],
    )
    sweep_and_derive()

    assert Session.objects.get().outcome == Session.Outcome.INACTIVE
    (label,) = Label.objects.filter(source="outcome")
    assert label.label is False and label.evidence["inactive"] is True
    assert label.generation.external_id == "g2"
    assert Item.objects.get(label=label).queue.reason == Queue.Reason.ABANDONED


@pytest.mark.django_db
def test_turning_outcome_events_on_and_rederiving_makes_inactive_sessions_abandoned(project):
    ingest(project, [generation("g1", output=OUTPUT)])
    sweep_and_derive()
    assert not Label.objects.exists()

    RoutingPolicy.objects.filter(project=project).update(sends_outcome_events=True)
    labelling.project_rederive(projects=[project])
    sweep_and_derive()

    assert Session.objects.get().outcome == Session.Outcome.ABANDONED
    assert list(Label.objects.values_list("rule", flat=True)) == ["session_abandoned"]
