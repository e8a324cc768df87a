"""Simulated traffic sent through the real ingestion path (`events_ingest`), as a product
would send it. Shared by the `seed_demo` and `simulate_traffic` commands."""

from __future__ import annotations

from django.core.management.base import OutputWrapper

from demo.traffic import simulate_traffic
from feedback import services
from tenancy.models import Project


def send_simulated_traffic(
    project: Project,
    *,
    sessions: int,
    seed: int,
    batch_size: int = 200,
    stdout: OutputWrapper | None = None,
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
