"""Label fidelity: how often each derivation rule, the review gate and the default exports
agree with the simulator's ground truth, on the harder simulated traffic.

    DATABASE_URL=postgres://... .venv/bin/python bench/fidelity.py --sessions 1500
    .venv/bin/python bench/fidelity.py --sessions 1500 --easy   # the older, friendlier traffic
    .venv/bin/python bench/fidelity.py --threshold 0.8   # fewer reviews, less precision

Traffic from `demo.traffic.simulate_traffic(hard=True)` (its rates are printed) goes
through ingestion and derivation; simulated annotators (`demo.reviewers`) answer every
review queue and the gate decides, as seed_demo does; then the default DPO and KTO exports
are built with `exports.services` as the app builds them. Prints, per rule and overall,
precision before review (auto-accepted labels) and after review (labels the export takes),
then each export's precision, correct rows and their ratio to the rated generations of the
same traffic (what thumbs alone would give), beside the targets of issue 10.

Ties count as errors: a pair whose chosen and rejected texts are equally good or equally
bad teaches nothing (`demo.reviewers.label_truth`). A KTO row is correct when its own
label matches its text (a tie pair's chosen row of a good text is correct, its rejected
row is not).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Issue 10, "Done when": after simulated review.
TARGET_PRECISION = 0.95
TARGET_ROWS_PER_RATED = 10.0
TARGET_PAIRS_PER_RATED = 1.5
RATES = (
    "REGENERATE_GOOD_RATE",
    "COPY_BAD_RATE",
    "TOKEN_FIX_RATE",
    "TASTE_EDIT_RATE",
    "TRIM_EDIT_RATE",
    "NOTE_EDIT_RATE",
    "NOOP_EDIT_RATE",
    "LATER_EDIT_RATE",
    "ABANDONED_SENT_RATE",
    "RATE_GOOD_RATE",
    "RATE_BAD_RATE",
)
# (accuracy, share of each queue answered), as seed_demo's annotators, all answering fully.
ANNOTATORS = {"dave": (0.45, 0.08), "alice": (0.97, 1.0), "bob": (0.95, 1.0), "carol": (0.9, 1.0)}


class Tally:
    """right / tie / wrong counts; precision counts ties as errors."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, truth: str | None) -> None:
        self.counts[truth or "unknown"] += 1

    @property
    def known(self) -> int:
        return self.counts["right"] + self.counts["tie"] + self.counts["wrong"]

    def precision(self) -> float | None:
        return self.counts["right"] / self.known if self.known else None

    def row(self) -> str:
        p = self.precision()
        c = self.counts
        shown = "    -" if p is None else f"{p:5.3f}"
        return f"{self.known:6} {c['right']:6} {c['tie']:5} {c['wrong']:6} {shown}"


def _setup(args: argparse.Namespace) -> Any:
    """Ingest and derive the traffic; returns (project, traffic)."""
    from demo.traffic import simulate_traffic
    from feedback import labelling, services
    from feedback.models import RoutingPolicy

    project, _ = services.project_create(slug=f"bench-fidelity-{time.strftime('%Y%m%d%H%M%S')}")
    if args.threshold is not None:
        RoutingPolicy.objects.filter(project=project).update(confidence_threshold=args.threshold)
    traffic = simulate_traffic(
        sessions=args.sessions,
        seed=args.seed,
        batch_size=1000,
        hard=not args.easy,
        silent_outcome_rate=args.silent_outcome_rate,
    )
    for batch in traffic.batches:
        services.events_ingest(project=project, events=batch)
    labelling.sessions_mark_abandoned()
    while labelling.sessions_derive_pending(project=project):
        pass
    return project, traffic


def _traffic_summary(traffic: Any, easy: bool, silent_rate: float) -> int:
    """Print what the traffic holds; returns the number of rated generations."""
    from demo import traffic as simulation

    events = {e["id"]: e for batch in traffic.batches for e in batch}.values()
    kinds = Counter(e["type"] for e in events)
    generations = [e for e in events if e["type"] == "generation"]
    rated = len({e["generation_id"] for e in events if e["type"] == "rating"})
    sims = [g["metadata"]["sim"] for g in generations]
    print(
        f"traffic: {'easy' if easy else 'hard'}, {traffic.sessions} sessions, {traffic.events} "
        f"events, {len(generations)} generations ({sum(s['good'] for s in sims)} good), "
        f"{kinds['edit']} edits, {kinds['rating']} ratings on {rated} rated generations"
    )
    if easy:
        return rated
    rates = ", ".join(f"{name}={getattr(simulation, name)}" for name in RATES)
    print(f"rates: {rates}, silent_outcome_rate={silent_rate}")
    behaviours = Counter(s["behaviour"] for s in sims)
    print(
        "harder behaviours: "
        + ", ".join(f"{b} {behaviours[b]}" for b in simulation.HARD_BEHAVIOURS)
    )
    regen_good = sum(1 for s in sims if s["good"] and s["behaviour"] == "regenerated")
    copy_bad = sum(1 for s in sims if s.get("copy_reason") == "bug_report")
    later = sum(1 for s in sims if s.get("edit_session") == "later")
    print(
        f"  good answers regenerated {regen_good}, bad answers copied {copy_bad}, "
        f"edits in a later session {later}"
    )
    first = {}
    for generation in generations:
        first.setdefault(generation["session_id"], generation["metadata"]["sim"])
    truth = Counter((s["session_outcome"], s["outcome_sent"]) for s in first.values())
    print(
        f"  sessions truly completed {truth['completed', True] + truth['completed', False]} "
        f"({truth['completed', False]} without an outcome event), truly abandoned "
        f"{truth['abandoned', True] + truth['abandoned', False]} "
        f"({truth['abandoned', True]} with an event)"
    )
    return rated


def _rule_tallies(project: Any) -> dict[str, Tally]:
    """Per rule: truth of the labels the default KTO export would take now (pairs and
    completions that passed the gate or were auto-accepted)."""
    from demo.reviewers import label_truth
    from exports import selectors
    from exports.filters import ExportFilters
    from feedback.models import RoutingPolicy

    policy = RoutingPolicy.objects.get(project=project)
    tallies: dict[str, Tally] = defaultdict(Tally)
    querysets = selectors.split_querysets(project, "kto", ExportFilters(), policy)
    for split in querysets.values():
        for label in split.select_related("generation", "other_generation"):
            tallies[label.rule].add(label_truth(label))
    return tallies


def _review_routed(project: Any) -> dict[str, Tally]:
    from demo.reviewers import label_truth
    from feedback.models import Label

    tallies: dict[str, Tally] = defaultdict(Tally)
    labels = Label.objects.filter(project=project, active=True, needs_review=True).exclude(
        kind__in=["rating", "high_retry"]
    )
    for label in labels.select_related("generation", "other_generation"):
        tallies[label.rule].add(label_truth(label))
    return tallies


def _edit_kinds(project: Any, accepted_only: bool) -> dict[str, Tally]:
    """Edit pairs by the simulated user's kind of edit."""
    from demo.reviewers import label_truth
    from exports import selectors
    from exports.filters import ExportFilters
    from feedback.models import Label, RoutingPolicy

    labels = Label.objects.filter(project=project, active=True, source="edit")
    if accepted_only:
        policy = RoutingPolicy.objects.get(project=project)
        labels = selectors.split_querysets(project, "dpo", ExportFilters(), policy)["train"].filter(
            source="edit"
        )
    tallies: dict[str, Tally] = defaultdict(Tally)
    for label in labels.select_related("generation"):
        sim = label.generation.metadata.get("sim", {})
        tallies[sim.get("edit_kind") or sim.get("behaviour", "?")].add(label_truth(label))
    return tallies


def _diagnostics(project: Any) -> None:
    """Two failure modes of issue 10 by ground truth: negatives on sessions that truly
    completed (but sent no outcome event), and edits sent in a later session."""
    from feedback.models import Generation, Label

    abandoned = Label.objects.filter(project=project, active=True, rule="session_abandoned")
    on_completed = sum(
        label.generation.metadata.get("sim", {}).get("session_outcome") == "completed"
        for label in abandoned.select_related("generation")
    )
    later = Generation.objects.filter(project=project, metadata__sim__edit_session="later")
    derived = Label.objects.filter(generation__in=later, active=True, source="edit").count()
    print(
        f"\nsession_abandoned labels: {abandoned.count()}, {on_completed} of them on sessions "
        f"that truly completed; edits in a later session: {derived} of {later.count()} "
        "became edit labels"
    )


def _review(project: Any, seed: int) -> int:
    from django.contrib.auth import get_user_model

    from demo.reviewers import simulate_annotations
    from review.gate import queue_agreement_recompute
    from review.services import project_queues_ensure
    from tenancy.models import Membership
    from tenancy.services import membership_set

    queues = project_queues_ensure(project=project)
    User = get_user_model()
    annotators = {}
    for name, profile in ANNOTATORS.items():
        user, _ = User.objects.get_or_create(username=f"{project.slug}-{name}")
        membership_set(project=project, user=user, role=Membership.Role.ANNOTATOR)
        annotators[user] = profile
    stored = 0
    for offset, queue in enumerate(queues.values()):
        queue.members.add(*annotators)
        stored += simulate_annotations(queue=queue, annotators=annotators, seed=seed + offset)
    for queue in queues.values():
        queue_agreement_recompute(queue=queue)
    return stored


def _export(project: Any, fmt: str) -> dict[str, Any]:
    """Build the default export of `fmt` and judge each of its data rows."""
    from django.conf import settings

    from demo.reviewers import label_truth, pair_quality
    from exports import services
    from exports.models import ExportJob
    from feedback.models import Label

    # Built even below the project's policy, so the bench measures it either way; the
    # manifest says what the gate would have said (`below_policy`), printed by main().
    job = ExportJob.objects.create(
        project=project,
        format=fmt,
        file_format="jsonl",
        status="running",
        attempts=1,
        allow_below_policy=True,
    )
    job = services.export_build(job=job)
    rows: list[dict[str, Any]] = []
    for entry in job.manifest["files"]:
        if entry["role"] == "data":
            path = Path(settings.MEDIA_ROOT) / job.directory / entry["name"]
            rows += [json.loads(line) for line in path.read_text().splitlines() if line]
    ids = {int(row["id"].split("_")[1]) for row in rows if row["id"].startswith("lbl_")}
    labels = Label.objects.select_related("generation", "other_generation").in_bulk(ids)
    tally, pairs = Tally(), Tally()
    for row in rows:
        prefix, _, rest = row["id"].partition("_")
        label = labels.get(int(rest.split("_")[0])) if prefix == "lbl" else None
        if label is None:
            tally.add(None)
        elif fmt == "dpo":
            tally.add(label_truth(label))
        elif label.kind == "preference_pair":
            chosen, rejected = pair_quality(label)
            good = chosen if row["id"].endswith("_chosen") else rejected
            tally.add(None if good is None else ("right" if good == row["label"] else "wrong"))
            if row["id"].endswith("_chosen"):
                pairs.add(label_truth(label))
        else:
            tally.add(label_truth(label))
    return {"rows": len(rows), "tally": tally, "pairs": pairs, "quality": job.manifest["quality"]}


def _estimates(project: Any) -> None:
    """Measured precision (feedback/quality.py) beside the simulator's truth, per rule and
    source: the QA sample estimates the auto-accepted labels of its rule, the routed
    verdicts the routed ones. `covered`: the 95% interval holds the true precision."""
    from demo.reviewers import label_truth
    from feedback.models import Label
    from feedback.quality import project_quality

    report = project_quality(project)
    print("\nMeasured precision (people's verdicts) against the truth, per rule")
    print(
        f"  {'rule':24} {'source':9} {'verdicts':>8} {'estimate':>8} {'interval':>15} "
        f"{'true':>6} {'of':>5}  covered"
    )
    covered = checked = 0
    for cell in report.cells:
        if cell.segment:
            continue
        labels = Label.objects.filter(project=project, rule=cell.rule, active=True)
        if cell.source == "qa_sample":
            labels = labels.filter(review_reason__in=["", "qa_sample"])
        else:
            labels = labels.exclude(review_reason__in=["", "qa_sample"])
        tally = Tally()
        for label in labels.select_related("generation", "other_generation"):
            tally.add(label_truth(label))
        true = tally.precision()
        inside = true is not None and cell.low <= true <= cell.high
        enough = cell.verdicts >= report.min_verdicts
        if enough and true is not None:
            checked += 1
            covered += inside
        print(
            f"  {cell.rule:24} {cell.source:9} {cell.verdicts:8} {cell.precision:8.3f} "
            f"[{cell.low:.3f}, {cell.high:.3f}] {'-' if true is None else f'{true:.3f}':>6} "
            f"{tally.known:5}  {('yes' if inside else 'NO') if enough else '(few)'}"
        )
    print(
        f"  intervals covering the truth, cells with {report.min_verdicts}+ verdicts: "
        f"{covered} of {checked}"
    )
    for warning in report.warnings:
        print(f"  warning: {warning.message}")


def _print_rules(title: str, tallies: dict[str, Tally], by: str = "rule") -> None:
    print(f"\n{title}")
    print(f"  {by:26} {'labels':>6} {'right':>6} {'ties':>5} {'wrong':>6} {'prec.':>5}")
    total = Tally()
    for rule, tally in sorted(tallies.items()):
        print(f"  {rule:26} {tally.row()}")
        total.counts.update(tally.counts)
    print(f"  {'all':26} {total.row()}")


def _target(value: float | None, target: float) -> str:
    if value is None:
        return f"    -   (target >= {target})"
    return f"{value:7.3f} (target >= {target}: {'met' if value >= target else 'NOT met'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--easy", action="store_true", help="the older, friendlier traffic")
    parser.add_argument(
        "--silent-outcome-rate",
        type=float,
        default=None,
        help="share of truly completed sessions without an outcome event (1: never sent)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="the policy's confidence threshold (default: the product's); lower means fewer "
        "labels to review and less precise exports",
    )
    args = parser.parse_args()
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        parser.error("--threshold: must be between 0 and 1")
    if args.sessions < 1:
        parser.error("--sessions: must be 1 or more")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from demo.traffic import SILENT_OUTCOME_RATE

    if args.silent_outcome_rate is None:
        args.silent_outcome_rate = SILENT_OUTCOME_RATE
    if not 0 <= args.silent_outcome_rate <= 1:
        parser.error("--silent-outcome-rate: must be between 0 and 1")

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    project, traffic = _setup(args)
    from feedback.models import RoutingPolicy

    threshold = RoutingPolicy.objects.get(project=project).confidence_threshold
    print(
        f"database: {connection.vendor}; project {project.slug}; seed {args.seed}; "
        f"confidence threshold {threshold}"
    )
    rated = _traffic_summary(traffic, args.easy, args.silent_outcome_rate)

    _print_rules(
        "BEFORE review: auto-accepted labels (what trains without people)", _rule_tallies(project)
    )
    routed = _review_routed(project)
    _print_rules("Routed to review (all of them, before review)", routed)
    load = sum(tally.known + tally.counts["unknown"] for tally in routed.values())
    print(
        f"  review load: {load} labels for {traffic.sessions} sessions "
        f"({1000 * load / max(1, traffic.sessions):.0f} per 1,000 sessions)"
    )
    if not args.easy:
        _diagnostics(project)
        _print_rules(
            "Edit pairs by the user's kind of edit (all derived)",
            _edit_kinds(project, False),
            "kind of edit",
        )
    answers = _review(project, args.seed)
    print(f"\nsimulated review: {answers} answers ({', '.join(ANNOTATORS)}), then the gate")
    _print_rules("AFTER review: labels the default exports take", _rule_tallies(project))
    if not args.easy:
        _print_rules(
            "Edit pairs in the DPO export by kind of edit",
            _edit_kinds(project, True),
            "kind of edit",
        )

    _estimates(project)
    dpo, kto = _export(project, "dpo"), _export(project, "kto")
    correct_pairs = dpo["tally"].counts["right"]
    correct_rows = correct_pairs + kto["tally"].counts["right"]
    print("\nDefault exports after review (ties count as errors)")
    print(f"  {'export':18} {'rows':>6} {'right':>6} {'ties':>5} {'wrong':>6} {'prec.':>5}")
    print(f"  {'DPO pairs':18} {dpo['tally'].row()}")
    print(f"  {'KTO rows':18} {kto['tally'].row()}")
    print(f"  {'  their pairs':18} {kto['pairs'].row()}   (the pairs behind them, as pairs)")
    for name, built in (("DPO", dpo), ("KTO", kto)):
        q = built["quality"]
        p = q["precision"]
        verdict = "; ".join(q["below_policy"]) or "meets the policy"
        print(
            f"  {name} manifest: human-verified {q['human_share']:.0%}, estimated precision "
            f"{p['estimate']} [{p['low']}, {p['high']}]: {verdict}"
        )
    print(f"\nrated generations (thumbs alone): {rated}")
    per = max(1, rated)
    print(f"  DPO precision                 {_target(dpo['tally'].precision(), TARGET_PRECISION)}")
    print(f"  KTO precision                 {_target(kto['tally'].precision(), TARGET_PRECISION)}")
    print(
        f"  correct rows (DPO+KTO) {correct_rows:6} = "
        f"{_target(correct_rows / per, TARGET_ROWS_PER_RATED)} x rated"
    )
    print(
        f"  correct DPO pairs      {correct_pairs:6} = "
        f"{_target(correct_pairs / per, TARGET_PAIRS_PER_RATED)} x rated"
    )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
