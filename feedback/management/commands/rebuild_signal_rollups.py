from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.storable import printable, text_problem
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
        slug = str(options["project"])
        if problem := text_problem(slug):
            raise CommandError(f"--project: {problem}")
        project = Project.objects.filter(slug=slug).first()
        if project is None:
            raise CommandError(f"--project: no project with slug {printable(slug)!r}.")
        rebuild_rollups(project)
        rows = SignalRollup.objects.filter(project=project, generations__gt=0).count()
        self.stdout.write(self.style.SUCCESS(f"Rebuilt {rows} rollup row(s) of {project.slug}."))
