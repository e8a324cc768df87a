from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback.models import SignalRollup
from feedback.signals import rebuild_rollups
from tenancy.models import Project


class Command(BaseCommand):
    help = (
        "Recompute a project's signal rollups (the Signals page) from its derived signals "
        "and labels: after an upgrade, a change of the feature key in admin, or to repair."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")

    def handle(self, *args: object, **options: object) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"--project: no project with slug {options['project']!r}.")
        rebuild_rollups(project)
        rows = SignalRollup.objects.filter(project=project, generations__gt=0).count()
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {rows} rollup row(s) of {project.slug}."))
