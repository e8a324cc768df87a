from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from demo.ingestion import send_simulated_traffic
from demo.reviewers import free_pair_truth, simulate_annotations
from exports import services as export_services
from exports.filters import parse_filters
from exports.models import ExportJob
from feedback import labelling, services
from feedback.models import Generation, Label
from review.gate import queue_agreement_recompute
from review.models import Annotation, Item, Question, Queue
from review.services import items_add, items_hold_out, project_queues_ensure
from tenancy.keys import api_key_create
from tenancy.models import Membership, Project
from tenancy.services import membership_set

DEMO_USERS = [
    # username, role in the demo project (None: site superuser)
    ("admin", None),
    ("alice", Membership.Role.ANNOTATOR),
    ("bob", Membership.Role.ANNOTATOR),
    ("carol", Membership.Role.ANNOTATOR),
    ("dave", Membership.Role.ANNOTATOR),
    ("lena", Membership.Role.LEAD),
    ("mel", Membership.Role.ML),
]


class Command(BaseCommand):
    help = (
        "A demo project with an admin, annotators, a lead and an ML user (passwords printed) "
        "and realistic simulated traffic sent through the real ingestion path. Re-running "
        "resets the passwords and replays the same traffic, which is stored once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", default="demo")
        parser.add_argument("--sessions", type=int, default=300)
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args: object, **options: object) -> None:
        if options["sessions"] < 0:
            raise CommandError("--sessions: must be 0 or more.")
        project, _ = services.project_create(slug=options["project"], name="Demo assistant")
        queues = project_queues_ensure(project=project)
        User = get_user_model()
        logins = []
        for username, role in DEMO_USERS:
            user, _ = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.com"}
            )
            password = secrets.token_urlsafe(9)
            user.set_password(password)
            user.is_staff = role in (None, Membership.Role.LEAD)
            user.is_superuser = role is None
            user.save()
            if role is not None:
                membership_set(project=project, user=user, role=role)
            logins.append((username, password, role or "superuser"))

        annotators = User.objects.filter(
            gleaner_memberships__project=project,
            gleaner_memberships__role=Membership.Role.ANNOTATOR,
        )
        comparison = _comparison_queue(project)
        for queue in [*queues.values(), comparison]:
            queue.members.add(*annotators)

        _, raw_key = api_key_create(project=project, name="seed_demo")
        token, _ = Token.objects.get_or_create(user=User.objects.get(username="mel"))

        self.stdout.write(f"Sending {options['sessions']} simulated sessions ...")
        totals = send_simulated_traffic(
            project, sessions=options["sessions"], seed=options["seed"], stdout=self.stdout
        )
        self.stdout.write(
            f"Events: {totals.accepted} new, {totals.duplicates} duplicates "
            f"(replays are stored once), {totals.rejected} rejected."
        )
        # No beat runs in the demo: apply the inactivity timeout and derive now.
        labelling.sessions_mark_abandoned()
        while labelling.sessions_derive_pending():
            pass
        labels = Label.objects.filter(project=project, active=True)
        self.stdout.write(
            f"Labels: {labels.count()} ({labels.filter(needs_review=True).count()} in review); "
            f"review items: {Item.objects.filter(queue__project=project).count()}."
        )
        annotated = self._simulate_reviews(project, queues, comparison, options["seed"])
        self.stdout.write(
            f"Simulated reviews: {annotated} answers by alice, bob, carol and dave (careless); "
            f"part of every queue is left for you."
        )
        self._export(project, User.objects.get(username="mel"))
        self.stdout.write(self.style.SUCCESS(f"\nDemo project '{project.slug}' is ready."))
        self.stdout.write("Logins (username / password / role):")
        for username, password, role in logins:
            self.stdout.write(f"  {username:<6} {password:<14} {role}")
        self.stdout.write(f"Ingestion key for '{project.slug}': {raw_key}")
        self.stdout.write(f"API token for mel: {token.key}")

    def _export(self, project, user) -> None:  # noqa: ANN001
        """One DPO export, as the ML user would ask for it, so the exports page shows a
        manifest with its measured quality (built now: in-process tasks; on a worker, once
        it runs). Skipped when the demo already has one."""
        if ExportJob.objects.filter(project=project).exists():
            return
        with transaction.atomic():
            job = export_services.export_job_create(
                project=project,
                created_by=user,
                fmt="dpo",
                file_format="jsonl",
                filters=parse_filters({}, project=project),
            )
        job.refresh_from_db()
        quality = (job.manifest or {}).get("quality")
        if job.status == ExportJob.Status.DONE and quality and quality["rows"]:
            precision = quality["precision"]
            self.stdout.write(
                f"Export #{job.pk} (DPO): {job.rows} rows, human-verified "
                f"{quality['human_share']:.0%}, estimated precision {precision['estimate']} "
                f"[{precision['low']}, {precision['high']}]."
            )
        else:
            self.stdout.write(f"Export #{job.pk} (DPO): {job.status}. {job.error}".rstrip())

    def _simulate_reviews(self, project, queues, comparison: Queue, seed: int) -> int:  # noqa: ANN001
        """Answers from simulated annotators, a held-out share and a few gold items, then
        agreement. Skipped when the demo already has answers (re-runs change nothing).

        Most reviewers are careful (alice, bob, carol: right 93-97% of the time, which
        puts a queue's alpha well above its 0.667 minimum); dave answers first, rarely and
        carelessly, and is flagged. The model comparison is answered in full (three
        answers an item), so its items are judged and become pairs of source "review"."""
        if Annotation.objects.filter(item__queue__project=project).exists():
            return 0
        User = get_user_model()
        # (accuracy, share of the queue answered); dave answers first and carelessly.
        profile = {
            "dave": (0.45, 0.05),
            "alice": (0.97, 0.6),
            "bob": (0.96, 0.6),
            "carol": (0.94, 0.6),
        }
        annotators = {User.objects.get(username=name): p for name, p in profile.items()}
        stored = 0
        for offset, queue in enumerate(queues.values()):
            stored += simulate_annotations(queue=queue, annotators=annotators, seed=seed + offset)
        truths = _comparison_items(project, comparison)
        everyone = {user: (accuracy, 1.0) for user, (accuracy, _) in annotators.items()}
        everyone[User.objects.get(username="dave")] = (profile["dave"][0], 0.1)
        stored += simulate_annotations(
            queue=comparison, annotators=everyone, seed=seed + len(queues), pair_truths=truths
        )
        items_hold_out(queue=queues[Queue.Reason.LOW_CONFIDENCE], share=0.1, seed=seed)
        items_hold_out(queue=comparison, share=0.2, seed=seed)
        for queue in [*queues.values(), comparison]:
            queue_agreement_recompute(queue=queue)
        return stored


COMPARISON = "Model comparison"
# At most this many pairs in the comparison queue: enough for its alpha to mean something.
COMPARISON_PAIRS = 60


def _comparison_queue(project: Project) -> Queue:
    """A custom queue of free pairs: two answers to one prompt, shown left and right in a
    random order; reviewers say which is better. (Get or create: re-runs add nothing.)"""
    queue, created = Queue.objects.get_or_create(
        project=project,
        name=COMPARISON,
        defaults={
            "guidelines": (
                "Two answers to the same prompt. Pick the one you would rather the user had "
                "received; **tie** when they are equally good or equally bad."
            ),
            "annotations_per_item": 3,
        },
    )
    if created:
        Question.objects.create(
            queue=queue,
            key="better",
            type=Question.Type.CHOICE,
            prompt="Which answer is better?",
            choices=["left", "right", "tie"],
            position=0,
        )
    return queue


def _comparison_items(project: Project, queue: Queue) -> dict[int, int | None]:
    """Fill the comparison queue (when empty) with regenerated answers and the answer they
    replaced; each new item's better response by the simulator's truth. Mostly pairs where
    one answer is better, with a few ties (a tie teaches nothing and is left out)."""
    if queue.items.exists():
        return {}
    candidates = [
        (replaced, answer)
        for answer in Generation.objects.filter(project=project, replaces__isnull=False)
        .select_related("replaces")
        .order_by("id")
        if (replaced := answer.replaces) is not None and replaced.output != answer.output
    ]
    decisive = [p for p in candidates if free_pair_truth(*p) is not None]
    ties = [p for p in candidates if free_pair_truth(*p) is None]
    pairs = decisive[:COMPARISON_PAIRS] + ties[: COMPARISON_PAIRS // 5]
    specs = [
        {"content": {"prompt": _prompt(first), "responses": [first.output, second.output]}}
        for first, second in pairs
    ]
    ids = items_add(queue=queue, items=specs)
    return {
        item_id: free_pair_truth(first, second)
        for item_id, (first, second) in zip(ids, pairs, strict=True)
    }


def _prompt(generation: Generation) -> str:
    """The last user message the generation answered."""
    messages = generation.input if isinstance(generation.input, list) else []
    users = [
        m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"
    ]
    return str(users[-1]) if users else ""
