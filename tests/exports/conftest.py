"""A fixture world: sessions with every kind of behaviour, reviews with agreement and a
dispute, a rejected label and a held-out one, so exports can be checked row by row."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from feedback import labelling, services
from feedback.models import Label, RoutingPolicy
from review import gate
from review.claims import annotation_submit
from review.models import Item, Queue
from review.services import items_hold_out
from tests.factories import edit, event, generation

LONG = (
    "The quarterly report says revenue grew four percent, driven by the new subscription "
    "tier, while costs stayed flat and churn fell slightly across all regions."
)
CORRECTED = (
    "The quarterly report says revenue grew five percent, driven by the enterprise tier, "
    "while costs stayed flat and churn fell slightly in Europe."
)

ADDED = (
    "\n\nMarketing spend is the main open question for next year.",
    "\n\nSupport tickets also dropped compared with last quarter.",
    "\n\nThe board approved the plan without changes.",
)


@dataclass
class World:
    labels: dict[str, Label]


def _session(name: str, events: list[dict]) -> list[dict]:
    for e in events:
        e["session_id"] = name
    return events


@pytest.fixture
def world(world_at_default_policy, project) -> World:
    # These tests are about rows, files and access, not the policy gate (test_quality_gate.py
    # is): this small world's estimated precision (0.73 to 0.75) is below the default 0.95.
    RoutingPolicy.objects.filter(project=project).update(target_precision=0.5)
    return world_at_default_policy


@pytest.fixture
def world_at_default_policy(project, alice, bob, django_user_model) -> World:
    """The world under the project's default policy of exports (target precision 0.95,
    at least 10% human-verified)."""
    # Below the default threshold, so that the world holds auto-accepted labels of every
    # rule (a regenerate pair never reaches the default 0.9 on behaviour alone).
    RoutingPolicy.objects.filter(project=project).update(
        qa_sample_rate=0, confidence_threshold=0.56
    )
    events = [
        # s1: facts fixed with some rewording -> edit pair (0.6, auto-accepted here)
        *_session("s1", [generation("w1", output=LONG), edit("w1", CORRECTED, t=30)]),
        # s2: regenerate, then copy the second answer -> regenerate pair + copy positive
        *_session(
            "s2",
            [
                generation("w2a", output=LONG, t=0),
                event("regenerate", generation_id="w2a", t=5),
                generation("w2b", output=CORRECTED, replaces="w2a", t=6),
                event("view", generation_id="w2b", t=18, dwell_ms=30_000),
                event("copy", generation_id="w2b", t=20),
            ],
        ),
        # s3, s5, s6: a sentence added, no fact fixed -> low-confidence edit pairs, reviewed
        # (accepted, rejected, accepted + held out)
        *_session("s3", [generation("w3", output=LONG), edit("w3", LONG + ADDED[0], t=9)]),
        *_session(
            "s5", [generation("w5", output=CORRECTED), edit("w5", CORRECTED + ADDED[1], t=9)]
        ),
        *_session("s6", [generation("w6", output=LONG + " "), edit("w6", LONG + ADDED[2], t=9)]),
        # s4: a rewrite -> reviewed, disputed
        *_session("s4", [generation("w4", output=LONG), edit("w4", "Q3: +5%", t=9)]),
        # s7: three regenerations, nothing accepted -> high-retry flag
        *_session(
            "s7",
            [generation("w7a", output=LONG)]
            + [
                e
                for n, (old, new) in enumerate([("w7a", "w7b"), ("w7b", "w7c"), ("w7c", "w7d")])
                for e in (
                    event("regenerate", generation_id=old, t=10 * n + 5),
                    generation(new, output=f"{LONG} v{n}", replaces=old, t=10 * n + 6),
                )
            ],
        ),
        # s8: an explicit rating, kept apart
        *_session(
            "s8", [generation("w8", output=LONG), event("rating", generation_id="w8", value=1)]
        ),
    ]
    assert services.events_ingest(project=project, events=events).rejected == 0
    while labelling.sessions_derive_pending():
        pass

    def label(session: str, rule: str) -> Label:
        return Label.objects.get(session__external_id=session, rule=rule)

    labels = {
        "s1": label("s1", "edit_correction"),
        "s2": label("s2", "regenerate_then_action"),
        "s2_copy": label("s2", "copy_accept"),
        "s3": label("s3", "edit_correction"),
        "s4": label("s4", "edit_rewrite"),
        "s5": label("s5", "edit_correction"),
        "s6": label("s6", "edit_correction"),
        "s7": label("s7", "retry_chain"),
        "s8": label("s8", "explicit_rating"),
    }
    queue = Queue.objects.get(project=project, reason="low_confidence")
    # Thresholds a lead set for this small queue (its alpha is about 0.5 by construction).
    Queue.objects.filter(pk=queue.pk).update(annotations_per_item=2, min_alpha=0.3)
    queue.refresh_from_db()
    verdicts = {"s3": ("yes", "yes"), "s5": ("no", "no"), "s6": ("yes", "yes"), "s4": ("yes", "no")}
    for name, (first, second) in verdicts.items():
        item = Item.objects.get(queue=queue, label=labels[name])
        for user, verdict in ((alice, first), (bob, second)):
            quality = 5 if verdict == "yes" else 1
            annotation_submit(
                item=item, user=user, answers={"verdict": verdict, "quality": quality}
            )
    items_hold_out(queue=queue, item_ids=[Item.objects.get(label=labels["s6"]).pk])
    gate.queue_agreement_recompute(queue=queue)
    for value in labels.values():
        value.refresh_from_db()
    return World(labels=labels)


@pytest.fixture
def review_pairs(world, project, alice, bob):
    """Free content judged by people: one pair agreed (training), one agreed and held out
    (evaluation), one disputed (left out)."""
    from review.claims import item_claim_next
    from review.models import Question
    from review.services import items_add

    queue = Queue.objects.create(
        project=project, name="Which is better", annotations_per_item=2, min_alpha=0.0
    )
    Question.objects.create(
        queue=queue,
        key="better",
        type="choice",
        prompt="Which is better?",
        choices=["left", "right", "tie"],
    )
    queue.members.add(alice, bob)
    prompts = ["Name a prime.", "Name an even prime.", "Name a colour."]
    ids = items_add(
        queue=queue,
        items=[{"content": {"prompt": p, "responses": [f"{p} A", f"{p} B"]}} for p in prompts],
    )
    # Each annotator answers the side where the response they prefer was shown to them.
    wanted = {ids[0]: (0, 0), ids[1]: (1, 1), ids[2]: (0, None)}
    for user, position in ((alice, 0), (bob, 1)):
        for _ in ids:
            claim = item_claim_next(queue=queue, user=user)
            preferred = wanted[claim.item_id][position]
            if preferred is None:
                answer = "tie"
            else:
                answer = "left" if claim.presentation["order"][0] == preferred else "right"
            annotation_submit(item=claim.item, user=user, answers={"better": answer})
    items_hold_out(queue=queue, item_ids=[ids[1]])
    gate.queue_agreement_recompute(queue=queue)
    return {prompt: Item.objects.get(pk=pk) for prompt, pk in zip(prompts, ids, strict=True)}
