from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from feedback import services
from review.services import project_queues_ensure
from tenancy.keys import api_key_create


class Command(BaseCommand):
    help = (
        "Create a project if missing (with its default review queues) and a new ingestion "
        "key, printed alone on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="Project slug: lowercase letters, digits, '-' or '_'.")
        parser.add_argument("--name", default="", help="Display name (default: the slug).")
        parser.add_argument("--key-name", default="created by create_project")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        if not slug or slugify(slug) != slug or len(slug) > 64:
            raise CommandError(
                f"slug: {slug!r} is not a valid slug (lowercase letters, digits, '-', '_')."
            )
        project, created = services.project_create(slug=slug, name=options["name"])
        queues = project_queues_ensure(project=project)
        _, raw = api_key_create(project=project, name=options["key_name"])
        self.stdout.write(
            f"{'Created' if created else 'Found'} project {project.slug} "
            f"with review queues: {', '.join(q.name for q in queues.values())}."
        )
        self.stdout.write("New ingestion key (stored hashed; it cannot be shown again):")
        self.stdout.write(raw)
