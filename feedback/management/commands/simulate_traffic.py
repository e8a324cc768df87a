from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback import services
from feedback.models import Project
from feedback.simulation import simulate_traffic


class Command(BaseCommand):
    help = "Send realistic simulated sessions through the ingestion path (DESIGN.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--sessions", type=int, default=100, help="How many sessions.")
        parser.add_argument("--seed", type=int, default=None, help="Random seed (default: time).")
        parser.add_argument("--batch-size", type=int, default=200, help="Events per batch.")

    def handle(self, *args: object, **options: object) -> None:
        sessions, batch_size = options["sessions"], options["batch_size"]
        if sessions < 1:
            raise CommandError("--sessions: must be 1 or more.")
        if not 1 <= batch_size <= 1000:
            raise CommandError("--batch-size: must be between 1 and 1000.")
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"--project: no project with slug {options['project']!r}.")
        seed = options["seed"] if options["seed"] is not None else time.time_ns() % 2**31
        totals = send_simulated_traffic(
            project, sessions=sessions, seed=seed, batch_size=batch_size, stdout=self.stdout
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"{sessions} sessions (seed {seed}): {totals.accepted} events accepted, "
                f"{totals.duplicates} duplicates, {totals.rejected} rejected."
            )
        )


def send_simulated_traffic(
    project: Project, *, sessions: int, seed: int, batch_size: int = 200, stdout=None
) -> services.IngestResult:
    """Simulate `sessions` and send them batch by batch through `events_ingest`."""
    traffic = simulate_traffic(sessions=sessions, seed=seed, batch_size=batch_size)
    totals = services.IngestResult()
    for number, batch in enumerate(traffic.batches, start=1):
        result = services.events_ingest(project=project, events=batch)
        totals.accepted += result.accepted
        totals.duplicates += result.duplicates
        totals.rejected += result.rejected
        totals.errors.extend(result.errors[:5])
        if stdout is not None and (number % 10 == 0 or number == len(traffic.batches)):
            stdout.write(f"  batch {number}/{len(traffic.batches)}", ending="\r")
    if stdout is not None:
        stdout.write("")
    return totals
