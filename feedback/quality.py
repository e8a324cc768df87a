"""Measured precision: what people's verdicts say about each derivation rule.

Every verdict on a derived label (review accepted or rejected it, as the gate wrote onto
`Label.review_outcome`) is evidence about the label's rule and segment: its model, its
product feature (the generation's metadata key the policy names) and its confidence band
(of `Label.rule_confidence`, the rule's own heuristic, so calibration never moves a label
between bands). Verdicts on QA-sampled labels (`review_reason` "qa_sample") are an
unbiased sample of what was auto-accepted; verdicts on routed labels are not (they were
routed because they were doubtful), so the two are kept apart as `source`.

Precision per cell is right / verdicts with a 95% Wilson score interval. The rule x band
cells, over both sources, calibrate derivation (`calibration_for`): a label's confidence
becomes the Beta posterior mean with the rule's heuristic as the prior, and routing follows
the policy's target precision once a cell has `min_verdicts` verdicts. The collapse guard
(`warnings`) compares each rule's latest week of verdicts with the weeks before, and what
reaches training this week with the four weeks before; a warned rule is routed to review
until its verdicts recover. docs/quality.md explains all of it for the team.

Everything here reads `Label` only (feedback's own table), with aggregate queries that the
partial index `label_verdicts` serves; nothing loops over labels in Python.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from django.db import connection
from django.db.models import Avg, Count, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Floor, Length, TruncWeek
from django.utils import timezone

from feedback.models import FEATURE_KEY_PATTERN, Label, RoutingPolicy
from feedback.precision import band_of, calibrated, wilson
from tenancy.models import Project

WEEKLY_MIN_VERDICTS: Final = 10  # a week with fewer verdicts says nothing about drift
DRIFT_WEEKS: Final = 4  # the latest week is compared with this many weeks before it
DRIFT_MIN: Final = 50  # labels each window needs before a drift measure is read
CALIBRATION_TTL: Final = 30.0  # seconds a project's calibration is reused by derivation
TRAINABLE: Final = (Label.Kind.PREFERENCE_PAIR, Label.Kind.COMPLETION)
VERDICTS: Final = (Label.Outcome.ACCEPTED, Label.Outcome.REJECTED)
FEATURE_KEY: Final = re.compile(FEATURE_KEY_PATTERN)


@dataclass(frozen=True, slots=True)
class CellCounts:
    right: int
    n: int


@dataclass(frozen=True, slots=True)
class Calibration:
    """What derivation needs: verdict counts per (rule, band), and the guarded rules."""

    cells: Mapping[tuple[str, str], CellCounts] = field(default_factory=dict)
    guarded_rules: frozenset[str] = frozenset()
    # The warnings the guarded rules come from (None: the project has no policy to read).
    warnings: tuple[QualityWarning, ...] | None = None


@dataclass(frozen=True)
class Cell:
    rule: str
    segment: dict[
        str, str
    ]  # {} (the rule overall), {"model": ...}, {"feature": ...}, {"band": ...}
    source: str  # "qa_sample" or "routed"
    verdicts: int
    right: int
    precision: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QualityWarning:
    rule: str
    kind: str  # agreement_drop, rule_share, length_ratio, model_share
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QualityReport:
    target: float
    min_verdicts: int
    feature_key: str
    cells: list[Cell]
    weekly: list[dict[str, Any]]
    warnings: list[QualityWarning]

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "min_verdicts": self.min_verdicts,
            "feature_key": self.feature_key,
            "cells": [cell.as_dict() for cell in self.cells],
            "weekly": self.weekly,
            "warnings": [warning.as_dict() for warning in self.warnings],
        }


def _cell(rule: str, segment: dict[str, str], source: str, right: int, n: int) -> Cell:
    if n == 0:
        return Cell(rule, segment, source, 0, 0, None, None, None)
    low, high = wilson(right, n)
    return Cell(rule, segment, source, n, right, round(right / n, 4), round(low, 4), round(high, 4))


def _verdicts(project: Project | int) -> QuerySet[Label]:
    """Labels people gave a verdict on (active or not: the verdict was on what it said)."""
    return Label.objects.filter(project=project, review_outcome__in=VERDICTS, kind__in=TRAINABLE)


def _band10() -> Floor:
    """The band's lower edge x 10 of the rule's heuristic confidence (SQL)."""
    return Floor(Coalesce("rule_confidence", "confidence") * 10)


def _band_name(band10: float | None) -> str:
    """`_band10`'s value as a band name (1.0 falls in "0.9-1.0")."""
    return band_of(min(0.95, max(0.0, (band10 or 0) / 10 + 0.05)))


def feature_key_for(policy: RoutingPolicy) -> str:
    key = policy.quality_feature_key or "feature"
    return key if FEATURE_KEY.match(key) else "feature"


def project_quality(project: Project, *, now: datetime | None = None) -> QualityReport:
    """Every cell (rule overall and by model, feature and band; QA sample and routed apart),
    the weekly precision per rule, and the collapse guard's warnings. A few aggregate
    queries whatever the number of labels."""
    policy, _ = RoutingPolicy.objects.get_or_create(project=project)
    feature_key = feature_key_for(policy)
    verdicts = _verdicts(project).annotate(
        qa=Q(review_reason=Label.ReviewReason.QA_SAMPLE),
        band10=_band10(),
        feature=KeyTextTransform(feature_key, "generation__metadata"),
    )
    accepted = Count("pk", filter=Q(review_outcome=Label.Outcome.ACCEPTED))
    cells: list[Cell] = []
    for dimension, column in (
        ("", None),
        ("model", "model"),
        ("feature", "feature"),
        ("band", "band10"),
    ):
        columns = ["rule", "qa"] + ([column] if column else [])
        rows = verdicts.values(*columns).annotate(n=Count("pk"), right=accepted).order_by(*columns)
        for row in rows:
            segment: dict[str, str] = {}
            if column == "band10":
                segment["band"] = _band_name(row["band10"])
            elif column:
                segment[dimension] = "" if row[column] is None else str(row[column])
            source = "qa_sample" if row["qa"] else "routed"
            cells.append(_cell(row["rule"], segment, source, row["right"], row["n"]))
    weekly = _weekly(project)
    warnings = _warnings(project, policy, weekly, now=now or timezone.now())
    return QualityReport(
        target=policy.target_precision,
        min_verdicts=policy.min_verdicts,
        feature_key=feature_key,
        cells=cells,
        weekly=weekly,
        warnings=warnings,
    )


def _weekly(project: Project | int) -> list[dict[str, Any]]:
    """Per rule and week of the behaviour (Monday, ISO date): verdicts, right, precision
    with its interval. Both sources together: the question is whether the rule drifts."""
    rows = (
        _verdicts(project)
        .annotate(week=TruncWeek("occurred_at"))
        .values("rule", "week")
        .annotate(n=Count("pk"), right=Count("pk", filter=Q(review_outcome="accepted")))
        .order_by("rule", "week")
    )
    weekly = []
    for row in rows:
        low, high = wilson(row["right"], row["n"])
        week = row["week"]
        weekly.append(
            {
                "rule": row["rule"],
                "week": (week.date() if isinstance(week, datetime) else week).isoformat(),
                "verdicts": row["n"],
                "right": row["right"],
                "precision": round(row["right"] / row["n"], 4),
                "low": round(low, 4),
                "high": round(high, 4),
            }
        )
    return weekly


def _agreement_warnings(weekly: list[dict[str, Any]], tolerance: float) -> list[QualityWarning]:
    """A rule whose latest week with enough verdicts is more than `tolerance` below its
    precision over the DRIFT_WEEKS weeks before it."""
    by_rule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in weekly:
        if row["verdicts"] >= WEEKLY_MIN_VERDICTS:
            by_rule[row["rule"]].append(row)
    warnings = []
    for rule, weeks in sorted(by_rule.items()):
        if len(weeks) < 2:
            continue
        latest, before = weeks[-1], weeks[-1 - DRIFT_WEEKS : -1]
        right = sum(w["right"] for w in before)
        n = sum(w["verdicts"] for w in before)
        baseline = right / n
        if baseline - latest["precision"] > tolerance:
            warnings.append(
                QualityWarning(
                    rule,
                    "agreement_drop",
                    f"{rule}: people confirmed {latest['precision']:.0%} of its labels in the "
                    f"week of {latest['week']} ({latest['verdicts']} verdicts), against "
                    f"{baseline:.0%} in the weeks before; routed to review until it recovers",
                )
            )
    return warnings


def _training(project: Project | int) -> QuerySet[Label]:
    """What derivation offers for training: every active trainable label. Neither routing
    nor review progress changes it (people review older labels first), so the measure
    never feeds back on itself and never mistakes a review backlog for drift."""
    return Label.objects.filter(project=project, active=True, kind__in=TRAINABLE)


def _shares(rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, float]:
    rows = list(rows)
    total = sum(row["n"] for row in rows) or 1
    return {str(row[key]): row["n"] / total for row in rows}


def _drift_warnings(
    project: Project | int, tolerance: float, now: datetime
) -> list[QualityWarning]:
    """What derivation offers for training in the last 7 days against the DRIFT_WEEKS weeks
    before (each window with DRIFT_MIN labels at least): each rule's share of labels, each
    model's share of chosen answers, and each pair rule's chosen / rejected length ratio.
    A move beyond `tolerance` (absolute for shares, twice it relative for the ratio) is a
    warning; the rule concerned is routed to review."""
    recent_from = now - timedelta(days=7)
    before_from = recent_from - timedelta(days=7 * DRIFT_WEEKS)
    warnings: list[QualityWarning] = []
    if connection.vendor == "postgresql":
        windows = _drift_windows_in_one_scan(project, before_from, recent_from, now)
    else:
        windows = _drift_windows(project, before_from, recent_from, now)
    recent_rules, before_rules = windows.rules
    if min(sum(r["n"] for r in recent_rules), sum(r["n"] for r in before_rules)) < DRIFT_MIN:
        return warnings  # too few labels in a window to tell drift from noise
    now_share, old_share = _shares(recent_rules, "rule"), _shares(before_rules, "rule")
    for rule in sorted(set(now_share) | set(old_share)):
        move = now_share.get(rule, 0.0) - old_share.get(rule, 0.0)
        if abs(move) > tolerance:
            warnings.append(
                QualityWarning(
                    rule,
                    "rule_share",
                    f"{rule}: {now_share.get(rule, 0.0):.0%} of what reaches training in the "
                    f"last 7 days, against {old_share.get(rule, 0.0):.0%} before",
                )
            )
    recent_models, before_models = windows.models
    now_models, old_models = _shares(recent_models, "model"), _shares(before_models, "model")
    if min(sum(r["n"] for r in recent_models), sum(r["n"] for r in before_models)) >= DRIFT_MIN:
        for model in sorted(set(now_models) | set(old_models)):
            move = now_models.get(model, 0.0) - old_models.get(model, 0.0)
            if abs(move) > tolerance:
                warnings.append(
                    QualityWarning(
                        "",
                        "model_share",
                        f"model {model or '(none)'}: {now_models.get(model, 0.0):.0%} of chosen "
                        f"answers in the last 7 days, against {old_models.get(model, 0.0):.0%}",
                    )
                )
    now_ratio, old_ratio = windows.length_ratios
    for rule in sorted(set(now_ratio) & set(old_ratio)):
        old, new = old_ratio[rule], now_ratio[rule]
        if old and abs(new - old) / old > tolerance * 2:
            warnings.append(
                QualityWarning(
                    rule,
                    "length_ratio",
                    f"{rule}: chosen answers are {new:.2f}x as long as rejected ones in the last "
                    f"7 days, against {old:.2f}x before (models learn length from this)",
                )
            )
    return warnings


@dataclass(frozen=True)
class _DriftWindows:
    """What the drift measure reads of the last 7 days and of the weeks before, each a
    pair (recent, before): labels by rule and pairs by model (rows of "rule" or "model"
    and "n"), and each pair rule's mean length ratio (see `_length_ratios`)."""

    rules: tuple[list[Any], list[Any]]
    models: tuple[list[Any], list[Any]]
    length_ratios: tuple[dict[str, float], dict[str, float]]


def _drift_windows(
    project: Project | int, before_from: datetime, recent_from: datetime, now: datetime
) -> _DriftWindows:
    """`_DriftWindows` in six aggregate queries (two windows x three measures)."""
    recent = _training(project).filter(occurred_at__gte=recent_from, occurred_at__lte=now)
    before = _training(project).filter(occurred_at__gte=before_from, occurred_at__lt=recent_from)
    pairs = Q(kind=Label.Kind.PREFERENCE_PAIR)
    return _DriftWindows(
        rules=(
            list(recent.values("rule").annotate(n=Count("pk"))),
            list(before.values("rule").annotate(n=Count("pk"))),
        ),
        models=(
            list(recent.filter(pairs).values("model").annotate(n=Count("pk"))),
            list(before.filter(pairs).values("model").annotate(n=Count("pk"))),
        ),
        length_ratios=(
            _length_ratios(recent.filter(pairs)),
            _length_ratios(before.filter(pairs)),
        ),
    )


# `_drift_windows` in one scan of the project's labels of both windows (PostgreSQL's
# GROUPING SETS: one group a window and rule, a window and model of pairs, a window and
# pair rule). The same counts, and the same means: `_length_ratios`'s ratio is numeric
# (the literal 1.0), whose sums are exact in any order, and AVG is the numeric division of
# that sum by the count that SUM(s) / SUM(n) does.
#
# The labels are summed once, into groups by window, kind, rule and model (a few dozen),
# and the grouping sets add up those groups: summed by each set straight from the labels,
# every label's numeric ratio went into three sums, which took 2.0 s of the scan's 2.5 s
# at 600k labels (1.0 s this way; same results, tests/exports/test_quality_scan.py).
_DRIFT_ONE_SCAN = """
SELECT recent, pair, rule, model, GROUPING(pair, rule, model) AS grouped_out,
       SUM(n)::bigint AS n, SUM(s) / SUM(n) AS r
FROM (
    SELECT occurred_at >= %(recent_from)s AS recent, kind = %(pair)s AS pair, rule, model,
           COUNT(id) AS n, SUM((LENGTH(chosen) * 1.0) / (LENGTH(rejected) + 1)) AS s
    FROM feedback_label
    WHERE project_id = %(project)s AND active AND kind = ANY(%(trainable)s)
      AND occurred_at >= %(before_from)s AND occurred_at <= %(now)s
    GROUP BY 1, 2, 3, 4
) AS fine
GROUP BY GROUPING SETS ((1, 3), (1, 2, 4), (1, 2, 3))
"""
_BY_RULE, _PAIRS_BY_MODEL, _PAIRS_BY_RULE = 0b101, 0b010, 0b001  # GROUPING() of each set


def _drift_windows_in_one_scan(
    project: Project | int, before_from: datetime, recent_from: datetime, now: datetime
) -> _DriftWindows:
    """`_drift_windows` in one query (PostgreSQL): the drift measure scanned the project's
    recent labels six times, which took seconds at a million labels."""
    params: dict[str, Any] = {
        "recent_from": recent_from,
        "before_from": before_from,
        "now": now,
        "pair": Label.Kind.PREFERENCE_PAIR.value,
        "project": project if isinstance(project, int) else project.pk,
        "trainable": [kind.value for kind in TRAINABLE],
    }
    rules: tuple[list[Any], list[Any]] = ([], [])
    models: tuple[list[Any], list[Any]] = ([], [])
    ratios: tuple[dict[str, float], dict[str, float]] = ({}, {})
    with connection.cursor() as cursor:
        cursor.execute(_DRIFT_ONE_SCAN, params)
        for recent, pair, rule, model, grouped_out, n, ratio in cursor.fetchall():
            window = 0 if recent else 1
            if grouped_out == _BY_RULE:
                rules[window].append({"rule": rule, "n": n})
            elif grouped_out == _PAIRS_BY_MODEL and pair:
                models[window].append({"model": model, "n": n})
            elif grouped_out == _PAIRS_BY_RULE and pair and n >= DRIFT_MIN:
                ratios[window][rule] = float(ratio)
    return _DriftWindows(rules=rules, models=models, length_ratios=ratios)


def _length_ratios(pairs: QuerySet[Label]) -> dict[str, float]:
    """Per pair rule with DRIFT_MIN labels at least: mean chosen / rejected length."""
    ratio = Avg(Length("chosen") * 1.0 / (Length("rejected") + 1))
    rows = pairs.values("rule").annotate(r=ratio, n=Count("pk")).filter(n__gte=DRIFT_MIN)
    return dict(rows.values_list("rule", "r"))


def _warnings(
    project: Project | int, policy: RoutingPolicy, weekly: list[dict[str, Any]], *, now: datetime
) -> list[QualityWarning]:
    return _agreement_warnings(weekly, policy.drift_tolerance) + _drift_warnings(
        project, policy.drift_tolerance, now
    )


def guarded_rules(warnings: Iterable[QualityWarning]) -> frozenset[str]:
    """Rules the guard routes to review: those a warning names (a model-share warning
    names no rule and only informs)."""
    return frozenset(w.rule for w in warnings if w.rule)


_cache: dict[int, tuple[float, Calibration]] = {}


def calibration_for(
    project_ids: Iterable[int], *, now: datetime | None = None
) -> dict[int, Calibration]:
    """Verdict counts per (rule, band) over both sources, and the guarded rules, per
    project; reused for CALIBRATION_TTL seconds (`calibration_forget` drops it, which the
    gate does when it writes verdicts)."""
    result: dict[int, Calibration] = {}
    missing = []
    clock = time.monotonic()
    for project_id in set(project_ids):
        cached = _cache.get(project_id)
        if cached and cached[0] > clock:
            result[project_id] = cached[1]
        else:
            missing.append(project_id)
    if not missing:
        return result
    counts: dict[int, dict[tuple[str, str], CellCounts]] = defaultdict(dict)
    rows = (
        Label.objects.filter(
            project_id__in=missing, review_outcome__in=VERDICTS, kind__in=TRAINABLE
        )
        .annotate(band10=_band10())
        .values("project_id", "rule", "band10")
        .annotate(n=Count("pk"), right=Count("pk", filter=Q(review_outcome="accepted")))
    )
    for row in rows:
        band = _band_name(row["band10"])
        counts[row["project_id"]][(row["rule"], band)] = CellCounts(row["right"], row["n"])
    policies = {p.project_id: p for p in RoutingPolicy.objects.filter(project_id__in=missing)}
    for project_id in missing:
        policy = policies.get(project_id)
        warnings: tuple[QualityWarning, ...] | None = None
        if policy is not None:
            weekly = _weekly(project_id)
            warnings = tuple(_warnings(project_id, policy, weekly, now=now or timezone.now()))
        calibration = Calibration(
            cells=dict(counts[project_id]),
            guarded_rules=guarded_rules(list(warnings or ())),
            warnings=warnings,
        )
        _cache[project_id] = (clock + CALIBRATION_TTL, calibration)
        result[project_id] = calibration
    return result


def calibration_forget(project_id: int | None = None) -> None:
    """Drop the cached calibration of a project (or of all): new verdicts apply at once."""
    if project_id is None:
        _cache.clear()
    else:
        _cache.pop(project_id, None)


def export_quality(
    project: Project, train: QuerySet[Label], policy: RoutingPolicy, *, extra_human_rows: int = 0
) -> dict[str, Any]:
    """The manifest's `quality` object for a training split: the share of human-verified
    labels (accepted by review, plus `extra_human_rows` pairs judged directly), the
    estimated precision with its interval, the rule mix, and the guard's warnings.

    Estimate: each auto-accepted label counts at its cell's (rule x band) precision,
    with its Wilson interval once the cell has verdicts and the rule's heuristic otherwise
    (interval 0..1: unknown); a human-verified label counts as right (the gate already
    required agreement; reviewers' own error is not modelled). Weighted by labels per cell.
    """
    rows = list(
        train.annotate(band10=_band10())
        .values("rule", "band10")
        .annotate(
            n=Count("pk"),
            human=Count("pk", filter=Q(review_outcome=Label.Outcome.ACCEPTED)),
            prior=Avg(Coalesce("rule_confidence", "confidence")),
        )
    )
    calibration = calibration_for([project.pk]).get(project.pk, Calibration())
    total = sum(row["n"] for row in rows) + extra_human_rows
    human = sum(row["human"] for row in rows) + extra_human_rows
    estimate = low = high = float(extra_human_rows)
    mix: dict[str, int] = defaultdict(int)
    for row in rows:
        mix[row["rule"]] += row["n"]
        auto = row["n"] - row["human"]
        estimate += row["human"]
        low += row["human"]
        high += row["human"]
        if not auto:
            continue
        band = _band_name(row["band10"])
        counts = calibration.cells.get((row["rule"], band))
        if counts and counts.n:
            cell_low, cell_high = wilson(counts.right, counts.n)
            point = calibrated(row["prior"], counts.right, counts.n)
        else:
            cell_low, cell_high, point = 0.0, 1.0, row["prior"]
        estimate += auto * point
        low += auto * cell_low
        high += auto * cell_high
    # The warnings routing reads now (computed with the calibration, at most CALIBRATION_TTL
    # old): the same that decide what is guarded, and not computed a second time.
    warnings = (
        list(calibration.warnings)
        if calibration.warnings is not None
        else _warnings(project, policy, _weekly(project), now=timezone.now())
    )
    if not total:
        precision = {"estimate": None, "low": None, "high": None}
    else:
        precision = {
            "estimate": round(estimate / total, 4),
            "low": round(low / total, 4),
            "high": round(high / total, 4),
        }
    return {
        "rows": total,
        "human_rows": human,
        "human_share": round(human / total, 4) if total else None,
        "precision": precision,
        "target": policy.target_precision,
        "min_human_share": policy.min_human_share,
        "rule_mix": dict(sorted(mix.items())),
        "warnings": [w.as_dict() for w in warnings],
    }
