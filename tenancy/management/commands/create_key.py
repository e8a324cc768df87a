from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenancy import keys
from tenancy.models import Project


class Command(BaseCommand):
    help = (
        "Create an ingestion key for a project: a secret key (glk_..., for servers) or, with "
        "--publishable and one --origin per site, a publishable key (glpub_..., for web "
        "pages). The key is printed alone on the last line; only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="Project slug.")
        parser.add_argument("--name", default="", help="A name to recognise the key by.")
        parser.add_argument(
            "--publishable",
            action="store_true",
            help="A browser key: only browser events, only from the --origin(s) given.",
        )
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            dest="origins",
            help="An origin whose pages may use a publishable key, like "
            "https://app.example.com (repeat for several).",
        )
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=None,
            help="Requests per minute for this key (default: the site default for its kind).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"project: no project with slug {options['project']!r}.")
        publishable: bool = options["publishable"]
        origins: list[str] = options["origins"]
        if origins and not publishable:
            raise CommandError("--origin: only a publishable key has origins; add --publishable.")
        if publishable and not origins:
            raise CommandError(
                "--origin: a publishable key needs at least one --origin "
                "(e.g. --origin https://app.example.com)."
            )
        rate_limit: int | None = options["rate_limit"]
        if rate_limit is not None and rate_limit < 1:
            raise CommandError("--rate-limit: give a number of requests per minute above 0.")
        try:
            key, raw = keys.api_key_create(
                project=project,
                name=options["name"],
                publishable=publishable,
                origins=origins,
                rate_limit_per_minute=rate_limit,
            )
        except ValidationError as error:
            messages = "; ".join(error.message_dict.get("origins", error.messages))
            raise CommandError(f"--origin: {messages}") from None
        if key.is_publishable:
            self.stdout.write(
                f"New publishable key for {project.slug}, allowed from "
                f"{', '.join(key.allowed_origins)} (stored hashed; it cannot be shown again):"
            )
        else:
            self.stdout.write(
                f"New secret key for {project.slug} (stored hashed; it cannot be shown again):"
            )
        self.stdout.write(raw)
