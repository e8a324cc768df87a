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


def label_is_right(label: Label) -> bool | None:
    """Is a derived label right, by the traffic simulator's ground truth (`metadata.sim.good`
    on each generation)? None when the truth is unknown. A completion is right when its
    label matches; an edit pair when the output it rejects was not good; a regenerate pair
    when the generation it rejects was not good; a high-retry flag when the chain's answer
    was not good. Used by the simulated annotators and by bench/fidelity.py."""

    def good(generation: Generation | None) -> bool | None:
        return generation.metadata.get("sim", {}).get("good") if generation else None

    subject = good(label.generation)
    if label.kind == "completion":
        return None if subject is None else label.label == subject
    if label.kind == "preference_pair":
        rejected = subject if label.source == "edit" else good(label.other_generation)
        return None if rejected is None else not rejected
    if label.kind == "high_retry":
        return None if subject is None else not subject
    return None


def _answer(question: Question, right: bool, truth: bool | None, rng: random.Random) -> Any:
    if question.type == Question.Type.TEXT:
        return ""
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


def simulate_annotations(
    *,
    queue: Queue,
    annotators: dict[AbstractBaseUser, tuple[float, float]],
    seed: int = 0,
) -> int:
    """Let each annotator, in order, with (accuracy, share), answer `share` of the queue's
    items by claiming like a person would. Returns the number of annotations stored. One
    transaction, so agreement is recomputed once at the end."""
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
                answers = {
                    q.key: value
                    for q in questions
                    if (value := _answer(q, right, truth if truth is not None else True, rng)) != ""
                }
                annotation_submit(
                    item=item, user=user, answers=answers, seconds_spent=rng.uniform(4, 40)
                )
                stored += 1
    return stored
