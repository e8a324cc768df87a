"""The drift measure an export's quality section reads (feedback/quality.py) scans the
project's labels once on PostgreSQL; its counts, length ratios and warnings are those of
the six queries it replaced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from feedback import quality
from feedback.models import Generation, Label, Session
from tenancy.models import Project

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _drifting_labels(project: Project) -> None:
    """Two rules and two models over both windows (and before them): the recent week has
    more of one rule, one model's pairs and longer chosen answers; completions, inactive
    labels and labels of another project are there too, and must not count."""
    now = timezone.now()
    session = Session.objects.create(
        project=project, external_id="s", first_event_at=now, last_event_at=now
    )
    generation = Generation.objects.create(
        project=project, session=session, external_id="g", output="x", created_at=now
    )
    labels = []
    for n in range(900):
        recent = n % 3 == 0
        days = (n % 7) if recent else 8 + n % 26
        if n % 50 == 7:
            days = 40  # before both windows
        rule = "edit_correction" if n % 5 else "regenerate_then_action"
        if recent and n % 2:
            rule = "regenerate_then_action"
        pair = n % 9 != 4
        chosen = ("Réponse longue, é 日本. " * (3 + n % 11 + (8 if recent else 0)))[: 40 + n % 300]
        labels.append(
            Label(
                project=project,
                session=session,
                generation=generation,
                key=f"k{n}",
                kind=Label.Kind.PREFERENCE_PAIR if pair else Label.Kind.COMPLETION,
                source="edit",
                rule=rule,
                model=("gpt-a", "gpt-b", "")[(n // 3) % 3 if recent else n % 2],
                prompt=[{"role": "user", "content": "Why?"}],
                chosen=chosen if pair else "",
                rejected="A shorter answer. " * (1 + n % 4) if pair else "",
                completion="" if pair else chosen,
                label=None if pair else True,
                confidence=0.9,
                weight=1.0,
                active=n % 13 != 5,
                occurred_at=now - timedelta(days=days, seconds=n),
            )
        )
    Label.objects.bulk_create(labels)


def _normal(windows: quality._DriftWindows) -> tuple:
    def rows(found: list) -> list:
        return sorted(sorted(row.items()) for row in found)

    return (
        [rows(found) for found in windows.rules],
        [rows(found) for found in windows.models],
        windows.length_ratios,
    )


def test_one_scan_measures_what_the_six_queries_measured(project, django_user_model):
    other = Project.objects.create(slug="other", name="Other")
    _drifting_labels(project)
    _drifting_labels(other)
    now = timezone.now()
    recent_from = now - timedelta(days=7)
    before_from = recent_from - timedelta(days=7 * quality.DRIFT_WEEKS)
    six = quality._drift_windows(project, before_from, recent_from, now)
    one = quality._drift_windows_in_one_scan(project, before_from, recent_from, now)
    assert _normal(one) == _normal(six)
    assert all(six.rules) and all(six.models) and all(six.length_ratios)  # something measured
    assert len(six.models[0]) == 3 and set(six.length_ratios[0]) == {
        "edit_correction",
        "regenerate_then_action",
    }


def test_drift_warnings_are_those_of_the_six_queries(project, monkeypatch):
    _drifting_labels(project)
    now = timezone.now()
    warnings = quality._drift_warnings(project, 0.05, now)
    assert {w.kind for w in warnings} == {"rule_share", "model_share", "length_ratio"}
    monkeypatch.setattr(quality, "_drift_windows_in_one_scan", quality._drift_windows)
    assert quality._drift_warnings(project, 0.05, now) == warnings
