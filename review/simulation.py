"""Simulated annotators for the demo: answers from the traffic simulator's ground truth
(`metadata.sim.good` on each generation), each annotator right with their own accuracy,
sent through the same `annotation_submit` the pages use."""

from __future__ import annotations

import random
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from review.claims import annotation_submit, item_claim_next
from review.models import Item, Question, Queue


def _truth(item: Item) -> bool | None:
    """Is the derived label right, by the simulator's ground truth? None when unknown."""
    label = item.label
    if label is None:
        return None
    subject = label.generation.metadata.get("sim", {}).get("good")
    if subject is None:
        return None
    if label.kind == "completion":
        return subject if label.label else not subject
    if label.kind == "preference_pair":
        if label.source == "edit":
            return not subject  # an edit pair is right when the model's output needed it
        rejected = label.other_generation
        rejected_good = rejected.metadata.get("sim", {}).get("good") if rejected else None
        return rejected_good is False or subject
    return not subject  # high retry: the chain's answers were poor


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
                truth = _truth(item)
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
