"""The gate's queue-level rule (review/gate.py, docs/review.md): a queue whose reviewers all
give the same answer is judged item by item once it has enough items, and one whose answers
are nearly all alike on Gwet's AC1; every default queue
can accept; a high-retry pair people confirm becomes training data."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from django.apps import apps
from hypothesis import given
from hypothesis import strategies as st

from exports import services as export_services
from exports.models import ExportJob
from feedback import labelling, services
from feedback.models import Label, RoutingPolicy
from review import gate
from review.agreement import NO_PAIRS, ONE_VALUE, SKEWED, deciding_question, gwet_ac1
from review.claims import annotation_submit
from review.models import Annotation, Item, Question, Queue
from review.services import project_queues_ensure
from tests.factories import event, generation

pytestmark = pytest.mark.django_db

ANSWER = "The report says revenue grew four percent this quarter."


@pytest.fixture
def three(django_user_model):
    return [django_user_model.objects.create_user(username=f"reviewer{i}") for i in range(3)]


def qa_sample(project, sessions: int) -> tuple[Queue, list[Label]]:
    """`sessions` shared answers, each auto-accepted and (at a sample rate of 1) routed to
    the project's QA-sample queue."""
    RoutingPolicy.objects.filter(project=project).update(qa_sample_rate=1.0)
    events = []
    for n in range(sessions):
        output = f"{ANSWER} ({n})"
        events += [
            generation(f"q{n}", session=f"qa{n}", output=output),
            event("share", session=f"qa{n}", generation_id=f"q{n}", t=20),
        ]
    assert services.events_ingest(project=project, events=events).rejected == 0
    while labelling.sessions_derive_pending():
        pass
    queue = Queue.objects.get(project=project, reason=Queue.Reason.QA_SAMPLE)
    labels = list(Label.objects.filter(review_items__queue=queue).order_by("id"))
    assert len(labels) == sessions
    return queue, labels


def answer_all(queue, users, verdicts: dict[int, list[str]] | None = None, default="yes"):
    """Each item answered by `users` in turn: `default`, or the item's own list of verdicts
    (a shorter list leaves the item short of answers)."""
    for item in Item.objects.filter(queue=queue).order_by("id"):
        wanted = (verdicts or {}).get(item.pk, [default] * len(users))
        for user, verdict in zip(users, wanted, strict=False):
            annotation_submit(item=item, user=user, answers={"verdict": verdict})


def test_unanimous_confirmation_with_enough_items_is_accepted(project, three):
    queue, labels = qa_sample(project, gate.MIN_ITEMS_TO_JUDGE)
    answer_all(queue, three)

    snapshot = gate.queue_agreement_recompute(queue=queue)

    verdict = snapshot.results["questions"]["verdict"]
    assert verdict["alpha"] is None and verdict["undefined_reason"] == ONE_VALUE
    assert verdict["complete_items"] == gate.MIN_ITEMS_TO_JUDGE
    for label in Label.objects.filter(pk__in=[label.pk for label in labels]):
        assert label.review_outcome == "accepted"
        assert label.review_note.startswith("reviewers agreed: yes")
        assert "item agreement decides" in label.review_note


def test_unanimous_confirmation_with_too_few_items_is_excluded_with_the_reason(project, three):
    queue, labels = qa_sample(project, gate.MIN_ITEMS_TO_JUDGE - 1)
    answer_all(queue, three)

    gate.queue_agreement_recompute(queue=queue)

    for label in Label.objects.filter(pk__in=[label.pk for label in labels]):
        assert label.review_outcome == "excluded"
        assert label.review_note == (
            f"{gate.TOO_FEW_ITEMS}: every verdict answer is the same, on "
            f"{gate.MIN_ITEMS_TO_JUDGE - 1} fully answered items of the "
            f"{gate.MIN_ITEMS_TO_JUDGE} needed"
        )
    assert set(Item.objects.filter(queue=queue).values_list("agreement_state", flat=True)) == {
        "agreed"
    }


def test_items_still_waiting_for_answers_do_not_count_towards_the_minimum(project, three):
    queue, labels = qa_sample(project, gate.MIN_ITEMS_TO_JUDGE)
    last = Item.objects.filter(queue=queue).order_by("id").last()
    answer_all(queue, three, verdicts={last.pk: ["yes", "yes"]})  # two of three answers
    gate.queue_agreement_recompute(queue=queue)
    last.refresh_from_db()
    assert last.agreement_state == "pending"
    assert Label.objects.filter(review_outcome="excluded").count() == len(labels) - 1
    assert Label.objects.filter(review_note__startswith=gate.TOO_FEW_ITEMS).count() == 9


def test_a_disputed_item_in_an_otherwise_unanimous_queue_is_still_disputed(project, three):
    queue, labels = qa_sample(project, gate.MIN_ITEMS_TO_JUDGE + 2)
    disputed = Item.objects.filter(queue=queue).order_by("id").first()
    answer_all(queue, three, verdicts={disputed.pk: ["yes", "no", "unsure"]})

    snapshot = gate.queue_agreement_recompute(queue=queue)

    disputed.refresh_from_db()
    assert (disputed.agreement_state, disputed.decision) == ("disputed", "")
    assert disputed.decision_reason == "disputed: for a lead"
    assert Label.objects.get(pk=disputed.label_id).review_outcome == ""
    # One answer that differs gives alpha a value again: the unanimity rule is off.
    assert snapshot.results["questions"]["verdict"]["alpha"] is not None


def test_alpha_undefined_for_want_of_two_answers_still_excludes(project, three):
    queue, labels = qa_sample(project, gate.MIN_ITEMS_TO_JUDGE)
    Queue.objects.filter(pk=queue.pk).update(annotations_per_item=1)
    queue.refresh_from_db()
    for item in Item.objects.filter(queue=queue):
        annotation_submit(item=item, user=three[0], answers={"verdict": "yes"})

    gate.queue_agreement_recompute(queue=queue)

    notes = set(Label.objects.values_list("review_outcome", "review_note"))
    assert notes == {("excluded", f"queue alpha unknown: verdict alpha undefined ({NO_PAIRS})")}


def question(alpha, reason=None, complete=0, key="verdict"):
    return {"key": key, "alpha": alpha, "undefined_reason": reason, "complete_items": complete}


@given(
    complete=st.integers(min_value=0, max_value=10_000),
    min_items=st.integers(min_value=1, max_value=1000),
)
def test_a_unanimous_queue_is_judged_by_items_exactly_from_the_minimum(complete, min_items):
    verdict = gate.queue_verdict(
        [question(None, ONE_VALUE, complete)], min_alpha=0.667, min_items=min_items
    )
    if complete >= min_items:
        assert verdict == gate.QueueVerdict(None, ("verdict",))
    else:
        assert verdict.blocked.startswith(gate.TOO_FEW_ITEMS) and verdict.unanimous == ()


@given(alpha=st.floats(min_value=-1, max_value=1), min_alpha=st.floats(min_value=-1, max_value=1))
def test_a_defined_alpha_blocks_exactly_below_the_minimum(alpha, min_alpha):
    verdict = gate.queue_verdict([question(alpha)], min_alpha=min_alpha)
    assert (verdict.blocked is not None) == (alpha < min_alpha)
    assert verdict.unanimous == ()


def test_every_blocking_question_is_named_in_the_reason():
    verdict = gate.queue_verdict(
        [
            question(0.2, key="a"),
            question(None, NO_PAIRS, key="b"),
            question(None, ONE_VALUE, 3, key="c"),
            question(None, ONE_VALUE, 50, key="d"),
            question(0.9, key="e"),
        ],
        min_alpha=0.667,
    )
    assert verdict.blocked == (
        "queue alpha below 0.667: a alpha 0.2; "
        f"queue alpha unknown: b alpha undefined ({NO_PAIRS}); "
        f"{gate.TOO_FEW_ITEMS}: every c answer is the same, on 3 fully answered items "
        "of the 10 needed"
    )
    assert verdict.unanimous == ("d",)


def test_every_default_queue_can_accept(project):
    for reason, queue in project_queues_ensure(project=project).items():
        decides = deciding_question(queue.questions.all())
        accepting = set(queue.accept_answers or gate.DEFAULT_ACCEPT)
        assert decides is not None, reason
        assert accepting & set(decides.choices), reason
        assert set(queue.reject_answers or gate.DEFAULT_REJECT) & set(decides.choices), reason
    high_retry = Queue.objects.get(project=project, reason="high_retry")
    assert deciding_question(high_retry.questions.all()).key == "verdict"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_a_confirmed_high_retry_pair_is_accepted_and_exported_for_dpo(project, three, media):
    # Four answers in a row; the first three read and left, the last one copied whole.
    chain = [generation("r0", session="retry", output=f"{ANSWER} Draft 0.", t=0)]
    for n in range(1, 4):
        chain += [
            event("view", session="retry", generation_id=f"r{n - 1}", t=10 * n, dwell_ms=6000),
            event("regenerate", session="retry", generation_id=f"r{n - 1}", t=10 * n + 1),
            generation(
                f"r{n}",
                session="retry",
                output=f"{ANSWER} Draft {n}.",
                replaces=f"r{n - 1}",
                t=10 * n + 2,
            ),
        ]
    final = f"{ANSWER} Draft 3."
    chain += [
        event("copy", session="retry", generation_id="r3", t=50, text=final),
        event("session_outcome", session="retry", t=60, outcome="completed"),
    ]
    assert services.events_ingest(project=project, events=chain).rejected == 0
    while labelling.sessions_derive_pending():
        pass
    queue = Queue.objects.get(project=project, reason=Queue.Reason.HIGH_RETRY)
    items = Item.objects.filter(queue=queue).select_related("label")
    pairs = [i.label for i in items if i.label.kind == "preference_pair"]
    flags = [i.label for i in items if i.label.kind == "high_retry"]
    assert pairs and len(flags) == 1
    # Reviewers confirm the pairs; the flag's first answer did not fail the user.
    for item in items:
        verdict = "yes" if item.label.kind == "preference_pair" else "no"
        for user in three:
            annotation_submit(
                item=item, user=user, answers={"verdict": verdict, "cause": "user exploring"}
            )

    gate.queue_agreement_recompute(queue=queue)

    for pair in pairs:
        pair.refresh_from_db()
        assert (pair.review_outcome, pair.review_note) == ("accepted", "reviewers agreed: yes")
    assert Label.objects.get(pk=flags[0].pk).review_outcome == "rejected"
    job = ExportJob.objects.create(
        project=project, format="dpo", file_format="jsonl", status="running", attempts=1
    )
    job = export_services.export_build(job=job)
    lines = (Path(media) / job.directory / "train.jsonl").read_text().splitlines()
    rows = {row["id"]: row for row in map(json.loads, lines)}
    for pair in pairs:
        row = rows[f"lbl_{pair.pk}"]
        assert (row["chosen"], row["rejected"]) == (pair.chosen, pair.rejected)
        assert row["chosen"] == final


MIGRATION = "review.migrations.0009_high_retry_verdict_decides"
OLD_QUESTIONS = [
    (
        "cause",
        "choice",
        "Why did the user retry?",
        ["model failed", "user exploring", "prompt unclear", "other"],
        True,
    ),
    ("verdict", "choice", "Is the last answer usable?", ["yes", "no", "unsure"], True),
    ("note", "text", "Notes (optional)", [], False),
]


def old_default_high_retry_queue(project) -> Queue:
    """A high-retry queue as projects created before the fix have it."""
    queue = project_queues_ensure(project=project)[Queue.Reason.HIGH_RETRY]
    queue.questions.all().delete()
    for position, (key, type_, prompt, choices, required) in enumerate(OLD_QUESTIONS):
        Question.objects.create(
            queue=queue,
            key=key,
            type=type_,
            prompt=prompt,
            choices=choices,
            required=required,
            position=position,
        )
    queue.guidelines = importlib.import_module(MIGRATION).OLD_GUIDELINES
    queue.save()
    return queue


def migrate(queue: Queue) -> list[tuple[str, str, int]]:
    importlib.import_module(MIGRATION).verdict_first(apps, None)
    return list(queue.questions.order_by("position").values_list("key", "prompt", "position"))


def test_migration_puts_the_verdict_first_in_unanswered_old_default_queues(project):
    queue = old_default_high_retry_queue(project)

    assert migrate(queue) == [
        ("verdict", "Is the derived label right?", 0),
        ("cause", "Why did the user retry?", 1),
        ("note", "Notes (optional)", 2),
    ]
    queue.refresh_from_db()
    assert deciding_question(queue.questions.all()).key == "verdict"
    assert queue.guidelines.startswith("The user regenerated three or more times in a row.\n\n")


def test_migration_never_rewrites_answered_or_edited_questions(project, alice):
    queue = old_default_high_retry_queue(project)
    item = Item.objects.create(queue=queue, content={"prompt": "p", "responses": ["a"]})
    annotation_submit(item=item, user=alice, answers={"cause": "other", "verdict": "yes"})
    before = migrate(queue)
    assert [key for key, _, _ in before] == ["cause", "verdict", "note"]
    assert Annotation.objects.count() == 1

    Annotation.objects.all().delete()
    Question.objects.filter(queue=queue, key="cause").update(prompt="Why, in your words?")
    assert [key for key, _, _ in migrate(queue)] == ["cause", "verdict", "note"]


def test_a_nearly_unanimous_queue_passes_on_ac1_where_alpha_collapses(project, three):
    # 20 confirmed labels; two reviewers each slip once: agreement is high, alpha is not.
    queue, labels = qa_sample(project, 20)
    items = list(Item.objects.filter(queue=queue).order_by("id"))
    slips = {items[3].pk: ["yes", "no", "yes"], items[11].pk: ["yes", "yes", "no"]}
    answer_all(queue, three, verdicts=slips)

    snapshot = gate.queue_agreement_recompute(queue=queue)

    verdict = snapshot.results["questions"]["verdict"]
    assert verdict["alpha"] < queue.min_alpha  # the paradox: alpha about 0
    assert verdict["top_share"] >= SKEWED and verdict["ac1"] >= queue.min_alpha
    accepted = Label.objects.filter(
        pk__in=[label.pk for label in labels], review_outcome="accepted"
    )
    assert accepted.count() == 20
    assert all("Gwet's AC1" in label.review_note for label in accepted)


def test_a_skewed_queue_with_too_few_items_is_still_blocked():
    skewed = {**question(0.1, complete=5), "ac1": 0.95, "top_share": 0.95}
    verdict = gate.queue_verdict([skewed], min_alpha=0.667, min_items=10)
    assert verdict.blocked == "queue alpha below 0.667: verdict alpha 0.1"


@given(
    alpha=st.floats(min_value=-1, max_value=1),
    ac1=st.floats(min_value=-1, max_value=1),
    top=st.floats(min_value=0, max_value=1),
)
def test_ac1_only_rescues_a_low_alpha_when_answers_are_skewed(alpha, ac1, top):
    q = {**question(alpha, complete=50), "ac1": ac1, "top_share": top}
    verdict = gate.queue_verdict([q], min_alpha=0.667)
    passes = alpha >= 0.667 or (top >= SKEWED and ac1 >= 0.667)
    assert (verdict.blocked is None) == passes
    assert verdict.skewed == (("verdict",) if alpha < 0.667 and passes else ())


def test_gwet_ac1_matches_a_hand_computation():
    # 20 items, 3 answers each; 18 all "yes", 2 with two "yes" and one "no".
    counts = np.array([[3, 0]] * 18 + [[2, 1]] * 2)
    observed = (18 + 2 * (2 / 6)) / 20
    yes = (18 + 2 * (2 / 3)) / 20
    chance = 2 * yes * (1 - yes) / 1
    assert gwet_ac1(counts) == pytest.approx((observed - chance) / (1 - chance))
    # Balanced answers: AC1 and the observed agreement's usual correction agree.
    balanced = np.array([[3, 0], [0, 3]] * 5)
    assert gwet_ac1(balanced) == pytest.approx(1.0)
