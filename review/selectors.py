"""Reads of the review app. `access_*` functions check permission or raise Http404."""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from feedback.models import Membership, Project
from review.models import AgreementSnapshot, Annotation, Assignment, Item, Queue

LEAD_ROLES = (Membership.Role.ADMIN, Membership.Role.LEAD)
REASON_TEXT = {
    "low_confidence": "Low confidence",
    "high_retry": "High retry",
    "abandoned": "Abandoned session",
    "qa_sample": "QA sample",
    "api": "Added over the API",
}


def is_project_lead(user: AbstractBaseUser | AnonymousUser, project_id: int) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, project_id=project_id, role__in=LEAD_ROLES).exists()


def queues_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Queue]:
    """Queues the user works in (member) or leads (project admin or lead)."""
    if not user.is_authenticated:
        return Queue.objects.none()
    queues = Queue.objects.select_related("project")
    if user.is_superuser:
        return queues
    led = Membership.objects.filter(user=user, role__in=LEAD_ROLES).values("project_id")
    return queues.filter(Q(members=user) | Q(project_id__in=led)).distinct()


def queues_with_progress(user: AbstractBaseUser) -> list[Queue]:
    """The user's active queues, each annotated with item counts and the user's own count
    (one query)."""
    return list(
        queues_for_user(user)
        .filter(is_active=True)
        .annotate(
            items_total=Count(
                "items", filter=~Q(items__status=Item.Status.DISCARDED), distinct=True
            ),
            items_complete=Count(
                "items", filter=Q(items__status=Item.Status.COMPLETE), distinct=True
            ),
            mine_done=Count(
                "items__assignments",
                filter=Q(
                    items__assignments__user=user,
                    items__assignments__status=Assignment.Status.SUBMITTED,
                ),
                distinct=True,
            ),
        )
        .order_by("project__slug", "name")
    )


def access_queue(
    user: AbstractBaseUser | AnonymousUser, queue_id: int, *, lead: bool = False
) -> Queue:
    """The queue if the user may work in it (or, with `lead`, manage it); else Http404."""
    queue = queues_for_user(user).filter(pk=queue_id).first()
    if queue is None or (lead and not is_project_lead(user, queue.project_id)):
        raise Http404("No such queue.")
    return queue


def access_item(queue: Queue, item_id: int) -> Item:
    item = Item.objects.filter(queue=queue, pk=item_id).first()
    if item is None:
        raise Http404("No such item.")
    return item


def access_project_as_lead(user: AbstractBaseUser | AnonymousUser, slug: str) -> Project:
    project = Project.objects.filter(slug=slug).first()
    if project is None or not is_project_lead(user, project.pk):
        raise Http404("No such project.")
    return project


def queue_progress(queue: Queue) -> dict[str, int]:
    counts = dict(
        queue.items.order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {
        "open": counts.get(Item.Status.OPEN, 0),
        "complete": counts.get(Item.Status.COMPLETE, 0),
        "discarded": counts.get(Item.Status.DISCARDED, 0),
        "annotations_per_item": queue.annotations_per_item,
    }


def _messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list):
        return [m for m in prompt if isinstance(m, dict)]
    return []


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """Word-level diff as (op, text) runs, op in equal / del / ins. Whitespace is kept with
    the words so the runs concatenate back to `before` (equal + del) and `after` (equal +
    ins)."""
    a, b = re.findall(r"\S+\s*", before), re.findall(r"\S+\s*", after)
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            runs.append(("ins", "".join(b[j1:j2])))
    return runs


def item_display(item: Item, presentation: dict | None = None) -> dict[str, Any]:
    """What an annotator sees of an item: prompt, responses in the recorded order, the
    edit as a diff, and the claim under review. Never other annotators' answers.

    Expects `label` and `generation` (with `label__generation`) to be select_related.
    """
    presentation = presentation or {}
    responses: list[str] = []
    diff = None
    claim = None
    if item.label_id is not None:
        label = item.label
        prompt = label.prompt
        if label.kind == "preference_pair":
            responses = [label.chosen, label.rejected]
            if label.source == "edit":
                diff = word_diff(label.rejected, label.chosen)
            claim = "preferred"
        elif label.kind == "completion":
            responses = [label.completion]
            claim = "good answer" if label.label else "bad answer"
        else:
            responses = [label.generation.output]
            claim = "high retry" if label.kind == "high_retry" else "rated"
    elif item.generation_id is not None:
        prompt = item.generation.input
        responses = [item.generation.output]
    else:
        prompt = item.content.get("prompt", "")
        responses = [str(r) for r in item.content.get("responses", [])]

    order = presentation.get("order")
    shown = [responses[i] for i in order] if order and len(order) == len(responses) else responses
    sides = ["left", "right"] if len(shown) == 2 else ["response"] * len(shown)
    display_responses = [
        {"side": side, "text": text} for side, text in zip(sides, shown, strict=True)
    ]
    if claim == "preferred":
        chosen_side = sides[order.index(0)] if order else sides[0]
        claim = f"the {chosen_side} answer is better (the user preferred it)"
    return {
        "id": item.pk,
        "reason": item.reason,
        "reason_text": REASON_TEXT.get(item.reason, item.reason),
        "prompt": _messages(prompt),
        "responses": display_responses,
        "diff": diff,
        "claim": claim,
        "detail": item.reason_detail,
    }


def assignment_for_display(assignment: Assignment) -> Assignment:
    """Reload the claimed item with what `item_display` reads, in one query."""
    assignment.item = Item.objects.select_related("label", "label__generation", "generation").get(
        pk=assignment.item_id
    )
    return assignment


def latest_agreement(queue: Queue) -> AgreementSnapshot | None:
    return queue.snapshots.order_by("-computed_at").first()


def agreement_summary(snapshot: AgreementSnapshot | None) -> dict[str, Any]:
    """The queue's agreement as the API shows it: per question alpha (or why it is
    undefined) and the gate's tally; empty until the first recomputation."""
    if snapshot is None:
        return {}
    return {
        key: {
            "alpha": q["alpha"],
            "level": q["level"],
            "items": q["items"],
            "undefined_reason": q["undefined_reason"],
        }
        for key, q in snapshot.results.get("questions", {}).items()
    }


def disputed_items(queue: Queue, limit: int = 100) -> list[Item]:
    """Disputed items without a decision yet, each with all its annotations (two queries)."""
    return list(
        queue.items.filter(agreement_state=Item.AgreementState.DISPUTED, adjudication__isnull=True)
        .exclude(status=Item.Status.DISCARDED)
        .select_related("label", "label__generation", "generation")
        .prefetch_related(
            Prefetch(
                "annotations", queryset=Annotation.objects.select_related("user").order_by("id")
            )
        )
        .order_by("-priority", "id")[:limit]
    )
