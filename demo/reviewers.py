"""Simulated annotators for the demo: answers from the traffic simulator's ground truth
(`metadata.sim.good` on each generation), each annotator right with their own accuracy,
sent through the same `annotation_submit` the pages use."""

from __future__ import annotations

import random
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from feedback.models import Generation, Label
from review.claims import annotation_submit, item_claim_next
from review.models import Item, Question, Queue


def _good(generation: Generation | None) -> bool | None:
    """Was the model's output good, by the simulator's ground truth (None: unknown)."""
    return generation.metadata.get("sim", {}).get("good") if generation else None


def _final_good(generation: Generation | None) -> bool | None:
    """Is the user's final (edited) text good: `sim.final_good` where the simulator records
    it (harder traffic), else as the easier traffic means it: a correction or a rewrite is
    good, any other edit leaves the output as good as it was."""
    if generation is None:
        return None
    sim = generation.metadata.get("sim", {})
    if "final_good" in sim and sim["final_good"] is not None:
        return sim["final_good"]
    if sim.get("behaviour") in ("edit_correction", "edit_rewrite"):
        return True
    return sim.get("good")


def pair_quality(label: Label) -> tuple[bool | None, bool | None]:
    """(is the chosen text good, is the rejected text good) of a preference pair, by the
    simulator's ground truth (None: unknown). An edit pair's chosen text is the user's
    final text, its rejected text the output; a regenerate pair's chosen is its
    generation's output, its rejected the other generation's."""
    if label.source == "edit":
        return _final_good(label.generation), _good(label.generation)
    return _good(label.generation), _good(label.other_generation)


def label_truth(label: Label) -> str | None:
    """Is a derived label "right", "wrong" or a "tie", by the traffic simulator's ground
    truth (`metadata.sim` on each generation)? None when the truth is unknown.

    A completion is right when its label matches the output's quality. A pair is right when
    its chosen text is good and its rejected text is not (`pair_quality`), a tie when both
    are equally good or equally bad (it teaches nothing), else wrong. A high-retry
    flag is right when the chain's first answer was not good. Used by the simulated
    annotators and by bench/fidelity.py."""
    subject = _good(label.generation)
    if label.kind == Label.Kind.COMPLETION:
        if subject is None or label.label is None:
            return None
        return "right" if label.label == subject else "wrong"
    if label.kind == Label.Kind.PREFERENCE_PAIR:
        chosen, rejected = pair_quality(label)
        if chosen is None or rejected is None:
            return None
        if chosen == rejected:
            return "tie"
        return "right" if chosen else "wrong"
    if label.kind == Label.Kind.HIGH_RETRY:
        return None if subject is None else ("wrong" if subject else "right")
    return None


def label_is_right(label: Label) -> bool | None:
    """`label_truth` as a yes/no: a tie is not right (None when the truth is unknown)."""
    truth = label_truth(label)
    return None if truth is None else truth == "right"


def _answer(
    question: Question,
    right: bool,
    truth: bool | None,
    rng: random.Random,
    better: str | None = None,
) -> Any:
    """One annotator's answer: the true one when `right`, else another at random.
    `better` is, for a free pair, the side ("left", "right") showing the better response,
    or "tie" when neither is."""
    if question.type == Question.Type.TEXT:
        return ""
    if better is not None and better in question.choices:
        return better if right else rng.choice([c for c in question.choices if c != better])
    if question.type == Question.Type.RATING:
        good = truth if right else not truth
        sure = rng.random() < 0.85
        return (5 if sure else 4) if good else (1 if sure else 2)
    choices = list(question.choices)
    if "yes" in choices and truth is not None:
        wanted = "yes" if truth else "no"
        return wanted if right else rng.choice([c for c in choices if c != wanted])
    if "model failed" in choices and truth is not None:
        wanted = "model failed" if truth else "user exploring"
        return wanted if right else rng.choice([c for c in choices if c != wanted])
    return choices[0] if right else rng.choice(choices)


def free_pair_truth(first: Generation, second: Generation) -> int | None:
    """Which of two responses to one prompt is better, by the simulator's ground truth:
    0 or 1, or None when both are as good (or the truth is unknown)."""
    good = (_good(first), _good(second))
    if None in good or good[0] == good[1]:
        return None
    return 0 if good[0] else 1


def _side(better: int | None, presentation: dict[str, Any]) -> str:
    """Where the annotator sees the better response ("left", "right"), or "tie"."""
    if better is None:
        return "tie"
    order = presentation.get("order") or [0, 1]
    return "left" if order[0] == better else "right"


def simulate_annotations(
    *,
    queue: Queue,
    annotators: dict[AbstractBaseUser, tuple[float, float]],
    seed: int = 0,
    pair_truths: dict[int, int | None] | None = None,
) -> int:
    """Let each annotator, in order, with (accuracy, share), answer `share` of the queue's
    items by claiming like a person would. Returns the number of annotations stored. One
    transaction, so agreement is recomputed once at the end. `pair_truths` gives, for free
    pairs (content with two responses), the item id's better response (`free_pair_truth`):
    the annotator picks the side it is shown on."""
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    questions = list(queue.questions.all())
    total = Item.objects.filter(queue=queue, status=Item.Status.OPEN).count()
    stored = 0
    with transaction.atomic():
        for user, (accuracy, share) in annotators.items():
            for _ in range(int(total * share)):
                claim = item_claim_next(queue=queue, user=user)
                if claim is None:
                    break
                item = Item.objects.select_related(
                    "label", "label__generation", "label__other_generation"
                ).get(pk=claim.item_id)
                truth = label_is_right(item.label) if item.label_id else None
                right = rng.random() < accuracy
                better = None
                if pair_truths is not None and item.pk in pair_truths:
                    better = _side(pair_truths[item.pk], claim.presentation)
                answers = {
                    q.key: value
                    for q in questions
                    if (value := _answer(q, right, True if truth is None else truth, rng, better))
                    != ""
                }
                annotation_submit(
                    item=item, user=user, answers=answers, seconds_spent=rng.uniform(4, 40)
                )
                stored += 1
    return stored
