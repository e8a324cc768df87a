from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feedback import labelling
from tenancy.models import Project


class Command(BaseCommand):
    help = (
        "Re-derive a project's signals and labels from its event log (after a routing policy "
        "change). Reviews already made are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument(
            "--now",
            action="store_true",
            help="Derive here and now instead of leaving it to the workers.",
        )

    def handle(self, *args: object, **options: object) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"--project: no project with slug {options['project']!r}.")
        count = labelling.project_rederive(projects=[project])
        self.stdout.write(f"{count} session(s) of {project.slug} marked for derivation.")
        if options["now"]:
            derived, more = 0, True
            while more:  # as the workers derive (two connections), with progress
                done, more = labelling.sessions_derive_backlog(project=project, seconds=2)
                derived += done
                self.stdout.write(f"  derived {derived}/{count}", ending="\r")
            self.stdout.write(self.style.SUCCESS(f"Derived {derived} session(s)."))
