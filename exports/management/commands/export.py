from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import slug_re

from core.storable import text_problem
from exports import services
from exports.filters import FiltersInvalid, parse_filters
from exports.models import ExportJob
from tenancy.models import Project


class Command(BaseCommand):
    help = "Build an export now, in this process, with a progress bar (DESIGN.md, Exports)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--format", required=True, choices=ExportJob.Format.values)
        parser.add_argument("--out", required=True, help="Training file to write.")
        parser.add_argument(
            "--file-format",
            choices=ExportJob.FileFormat.values,
            default=None,
            help="jsonl or parquet (default: from --out's suffix).",
        )
        parser.add_argument("--style", choices=ExportJob.Style.values, default="standard")
        parser.add_argument("--since", help="Labels from this date (ISO 8601).")
        parser.add_argument("--until", help="Labels up to this date (ISO 8601).")
        parser.add_argument("--as-of", help="Recency is measured from this date.")
        parser.add_argument("--sources", help="Comma-separated: edit,regenerate,copy,...")
        parser.add_argument("--models", help="Comma-separated model names.")
        parser.add_argument("--queues", help="Comma-separated review queue ids.")
        parser.add_argument("--min-confidence", type=float)
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument(
            "--allow-below-policy",
            action="store_true",
            help="Build even if below the project's policy (human-verified share, estimated "
            "precision); the manifest says so.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for name, value in options.items():
            if isinstance(value, str) and (reason := text_problem(value)):
                raise CommandError(f"--{name.replace('_', '-')}: {reason}")
        slug = options["project"]
        project = Project.objects.filter(slug=slug).first() if slug_re.match(slug) else None
        if project is None:
            raise CommandError(f"--project: no project with slug {slug!a}.")
        out = Path(options["out"])
        if out.is_dir():
            raise CommandError(f"--out: {str(out)!a} is a folder; give a file name.")
        if not out.parent.is_dir():
            raise CommandError(f"--out: folder {str(out.parent)!a} does not exist.")
        file_format = options["file_format"] or ("parquet" if out.suffix == ".parquet" else "jsonl")
        raw = {
            "since": options["since"],
            "until": options["until"],
            "as_of": options["as_of"],
            "min_confidence": options["min_confidence"],
            "min_agreement": options["min_agreement"],
            "sources": _split(options["sources"]),
            "models": _split(options["models"]),
        }
        if options["queues"]:
            try:
                raw["queues"] = [int(q) for q in options["queues"].split(",")]
            except ValueError:
                raise CommandError("--queues: must be comma-separated queue ids.") from None
        try:
            filters = parse_filters(
                {k: v for k, v in raw.items() if v is not None}, project=project
            )
        except FiltersInvalid as invalid:
            problems = "; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in invalid.errors.items())
            raise CommandError(problems) from None

        job = services.export_job_create(
            project=project,
            created_by=None,
            fmt=options["format"],
            file_format=file_format,
            style=options["style"],
            filters=filters,
            allow_below_policy=options["allow_below_policy"],
            in_process=True,
        )
        try:
            job = services.export_build(job=job, on_progress=self._bar)
        except services.ExportTakenOver:
            raise CommandError(
                f"Export {job.pk} stalled past {services.stale_after()} and a worker took it "
                "over; follow it on the exports page."
            ) from None
        if job.status == ExportJob.Status.FAILED:
            sys.stderr.write("\n")
            raise CommandError(f"Export {job.pk}: {job.error}")
        self._bar(1.0, job.rows)
        sys.stderr.write("\n")
        directory = Path(settings.MEDIA_ROOT) / job.directory
        shutil.copyfile(directory / f"train.{file_format}", out)
        for extra in ("eval", "manifest", "card"):
            source = {
                "eval": directory / f"eval.{file_format}",
                "manifest": directory / "manifest.json",
                "card": directory / "README.md",
            }[extra]
            target = out.with_name(f"{out.stem}.{extra}{source.suffix}")
            shutil.copyfile(source, target)
        if below := job.manifest["quality"]["below_policy"]:
            self.stderr.write(f"Built below the project's policy: {'; '.join(below)}.")
        excluded = ", ".join(f"{k} {v}" for k, v in job.manifest["excluded"].items()) or "none"
        self.stdout.write(
            self.style.SUCCESS(
                f"Export {job.pk}: {job.manifest['rows']['train']} training rows to {out}, "
                f"{job.manifest['rows']['eval']} evaluation rows beside it. Excluded: {excluded}."
            )
        )

    def _bar(self, fraction: float, rows: int) -> None:
        width = 30
        filled = int(width * min(1.0, fraction))
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {rows} rows")
        sys.stderr.flush()


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None
