from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.ingestion import send_simulated_traffic
from tenancy.models import Project


class Command(BaseCommand):
    help = "Send realistic simulated sessions through the ingestion path (docs/ingestion.md)."

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
