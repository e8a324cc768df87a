"""Label fidelity: how often each derivation rule agrees with the simulator's ground truth.

    .venv/bin/python bench/fidelity.py --sessions 2000

Simulated traffic records whether each output was good (`metadata.sim.good`); whether a
label is right by it is `review.simulation.label_is_right`. Prints precision per
rule, split into labels auto-accepted and labels routed to review: the number routing
should push up, by sending the doubtful ones to people.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    from feedback import labelling, services
    from feedback.models import Label
    from feedback.simulation import simulate_traffic
    from review.simulation import label_is_right

    call_command("migrate", verbosity=0)
    project, _ = services.project_create(slug=f"bench-fidelity-{time.strftime('%Y%m%d%H%M%S')}")
    for batch in simulate_traffic(sessions=args.sessions, seed=args.seed, batch_size=1000).batches:
        services.events_ingest(project=project, events=batch)
    labelling.sessions_mark_abandoned()
    while labelling.sessions_derive_pending(project=project):
        pass

    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    labels = Label.objects.filter(project=project, active=True).select_related(
        "generation", "other_generation"
    )
    for label in labels.exclude(kind__in=["rating", "high_retry"]):
        right = label_is_right(label)
        if right is None:
            continue
        bucket = (label.rule, "review" if label.needs_review else "auto")
        tally[bucket][0] += int(right)
        tally[bucket][1] += 1
    print(f"{args.sessions} simulated sessions, {labels.count()} labels")
    print(f"{'rule':28} {'routing':7} {'labels':>7} {'precision':>9}")
    for (rule, routing), (right, total) in sorted(tally.items()):
        print(f"{rule:28} {routing:7} {total:7} {right / total:9.2f}")
    for routing in ("auto", "review"):
        right = sum(r for (_, k), (r, _) in tally.items() if k == routing)
        total = sum(t for (_, k), (_, t) in tally.items() if k == routing)
        print(f"all rules, {routing}: {total} labels, precision {right / max(1, total):.2f}")


if __name__ == "__main__":
    main()
