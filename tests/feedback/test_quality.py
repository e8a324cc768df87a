"""Measured precision (feedback/precision.py, feedback/quality.py, docs/quality.md): the
arithmetic, calibrated routing by the target, QA allocation, and the collapse guard."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback import labelling, services
from feedback.derivation import EventRecord, GenerationRecord, Policy, derive_session
from feedback.models import Label, RoutingPolicy
from feedback.precision import NEW_CELL_QA_RATE, band_of, calibrated, qa_rate, wilson
from feedback.quality import calibration_for, calibration_forget, project_quality
from tests.factories import BASE_TIME, at, event, generation

# Published 95% Wilson intervals (Newcombe 1998, table I, method 3): 81/263 and 15/148.
NEWCOMBE = [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605)]


@pytest.mark.parametrize(("right", "n", "low", "high"), NEWCOMBE)
def test_wilson_matches_published_intervals(right, n, low, high):
    assert wilson(right, n) == pytest.approx((low, high), abs=1e-4)


@given(n=st.integers(min_value=1, max_value=10_000), data=st.data())
def test_wilson_brackets_the_observed_share_inside_0_1(n, data):
    right = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson(right, n)
    assert 0.0 <= low <= right / n <= high <= 1.0


@pytest.mark.parametrize(
    ("confidence", "band"),
    [(0.0, "0.0-0.1"), (0.8, "0.8-0.9"), (0.8999, "0.8-0.9"), (0.9, "0.9-1.0"), (1.0, "0.9-1.0")],
)
def test_bands_are_tenths_and_one_belongs_to_the_last(confidence, band):
    assert band_of(confidence) == band


def test_qa_rate_is_high_for_new_cells_floored_and_off_at_zero():
    assert qa_rate(0.0, 0, 0, 30) == 0.0
    assert qa_rate(0.02, 0, 0, 30) == NEW_CELL_QA_RATE
    well_known = qa_rate(0.02, 9_900, 10_000, 30)
    assert well_known == 0.02  # narrow interval: the floor, never less
    wide = qa_rate(0.02, 25, 40, 30)
    assert 0.02 < wide <= 0.25


PROMPT = [{"role": "user", "content": "Summarise the report."}]


def _copied(policy: Policy) -> Label:
    generation = GenerationRecord("g1", PROMPT, "Revenue grew 4%.", "m", None, BASE_TIME)
    copy = EventRecord("e1", "copy", BASE_TIME + timedelta(seconds=5), "g1", {})
    (label,) = derive_session(generations=[generation], events=[copy], policy=policy).labels
    return label


def test_a_band_that_proved_the_target_is_auto_accepted_and_calibrated():
    cell = ("copy_accept", "0.8-0.9")
    routed = _copied(Policy(qa_sample_rate=0))
    assert routed.review_reason == "low_confidence"  # 0.8 < 0.9, no verdicts yet
    proven = _copied(Policy(qa_sample_rate=0, verdicts={cell: (300, 300)}))
    assert not proven.needs_review
    assert proven.rule_confidence == 0.8
    assert proven.confidence == pytest.approx(calibrated(0.8, 300, 300), abs=1e-4)


def test_a_band_below_the_target_is_reviewed_whatever_its_heuristic():
    cell = ("copy_accept", "0.8-0.9")
    label = _copied(Policy(qa_sample_rate=0, confidence_threshold=0.5, verdicts={cell: (90, 100)}))
    assert label.review_reason == "low_confidence"  # 0.90 measured, lower bound < 0.95
    few = _copied(Policy(qa_sample_rate=0, confidence_threshold=0.5, verdicts={cell: (5, 10)}))
    assert not few.needs_review  # 10 verdicts < min_verdicts: the threshold still decides
    assert few.confidence == pytest.approx(calibrated(0.8, 5, 10), abs=1e-4)


def test_a_guarded_rule_is_reviewed():
    label = _copied(
        Policy(qa_sample_rate=0, confidence_threshold=0.5, guarded_rules=frozenset({"copy_accept"}))
    )
    assert label.review_reason == "low_confidence"


# --- against the database ----------------------------------------------------------------


def _shared_week(project, week: int, n: int) -> list[int]:
    """`n` shared answers in one session `week` weeks before BASE_TIME; their label ids."""
    start = -7 * 86_400 * week
    events = []
    for i in range(n):
        gid = f"w{week}g{i}"
        events += [
            generation(gid, session=f"w{week}", t=start + 2 * i, model=f"m{i % 2}"),
            event("share", session=f"w{week}", generation_id=gid, t=start + 2 * i + 1),
        ]
    assert services.events_ingest(project=project, events=events).rejected == 0
    while labelling.sessions_derive_pending():
        pass
    return list(
        Label.objects.filter(session__external_id=f"w{week}", rule="share_accept").values_list(
            "pk", flat=True
        )
    )


def _verdicts(ids: list[int], right: int, reason: str = "low_confidence") -> None:
    """People's verdicts as the gate writes them: the first `right` accepted."""
    Label.objects.filter(pk__in=ids[:right]).update(review_outcome="accepted", review_reason=reason)
    Label.objects.filter(pk__in=ids[right:]).update(review_outcome="rejected", review_reason=reason)
    calibration_forget()


@pytest.mark.django_db
def test_cells_count_verdicts_by_segment_and_keep_qa_and_routed_apart(project):
    ids = _shared_week(project, 1, 12)
    _verdicts(ids[:6], 5, reason="qa_sample")
    _verdicts(ids[6:], 3)

    report = project_quality(project)

    cells = {(c.source, tuple(sorted(c.segment.items()))): c for c in report.cells}
    qa, routed = cells[("qa_sample", ())], cells[("routed", ())]
    assert (qa.rule, qa.verdicts, qa.right, qa.precision) == ("share_accept", 6, 5, 0.8333)
    assert (routed.verdicts, routed.right) == (6, 3)
    assert (qa.low, qa.high) == pytest.approx(wilson(5, 6), abs=1e-4)
    assert cells[("qa_sample", (("band", "0.9-1.0"),))].verdicts == 6
    by_model = [c for c in report.cells if "model" in c.segment]
    assert sum(c.verdicts for c in by_model) == 12
    assert {c.segment["model"] for c in by_model} == {"m0", "m1"}
    assert {c.segment.get("feature") for c in report.cells if "feature" in c.segment} == {
        "summarise"
    }
    assert report.target == 0.95 and report.warnings == []


@pytest.mark.django_db
def test_drift_raises_the_guard_which_routes_the_rule_and_marks_the_export(
    project, settings, tmp_path
):
    """Simulated drift: a rule people confirmed for weeks turns bad; the guard warns and
    routes it to review; new labels of the rule stop auto-accepting; an export made then
    carries the warning in its manifest."""
    from exports import services as export_services
    from exports.models import ExportJob

    settings.MEDIA_ROOT = tmp_path / "media"
    RoutingPolicy.objects.filter(project=project).update(qa_sample_rate=0)
    for week in (5, 4, 3, 2):
        _verdicts(_shared_week(project, week, 30), 30)
    fresh = {"share_accept"} & calibration_for([project.pk])[project.pk].guarded_rules
    assert not fresh

    def new_share(name: str) -> Label:
        events = [
            generation(f"{name}g", session=name, t=86_400),
            event("share", session=name, generation_id=f"{name}g", t=86_401),
        ]
        assert services.events_ingest(project=project, events=events).rejected == 0
        while labelling.sessions_derive_pending():
            pass
        return Label.objects.get(session__external_id=name, rule="share_accept")

    assert not new_share("before").needs_review  # 120 of 120 confirmed: trusted
    _verdicts(_shared_week(project, 1, 20), 11)  # the latest week: 55% confirmed

    report = project_quality(project)
    (warning,) = [w for w in report.warnings if w.kind == "agreement_drop"]
    assert warning.rule == "share_accept" and "55%" in warning.message
    assert "share_accept" in calibration_for([project.pk])[project.pk].guarded_rules
    after = new_share("after")
    assert after.needs_review and after.review_reason == "low_confidence"

    job = ExportJob.objects.create(project=project, format="kto", status="running", attempts=1)
    job = export_services.export_build(job=job)
    quality = job.manifest["quality"]
    assert job.status == ExportJob.Status.DONE  # what trains was verified, so it builds ...
    assert quality["human_rows"] == 131 and quality["rule_mix"] == {"share_accept": 132}
    drop = [w for w in quality["warnings"] if w["kind"] == "agreement_drop"]
    assert [w["rule"] for w in drop] == ["share_accept"]  # ... and says the rule drifted


def test_occurred_at_of_the_fixtures_is_in_the_past():
    # The guard's weeks are weeks of the behaviour; the fixtures sit before "now".
    assert at(0) < at(86_401)


@pytest.mark.django_db
def test_a_rule_whose_share_of_training_moves_is_warned_about(project):
    def actions(kind: str, day: int, n: int) -> None:
        events = []
        for i in range(n):
            gid = f"{kind}{day}g{i}"
            t = day * 86_400 + 2 * i
            events += [
                generation(gid, session=f"{kind}{day}", t=t),
                event(kind, session=f"{kind}{day}", generation_id=gid, t=t + 1),
            ]
        assert services.events_ingest(project=project, events=events).rejected == 0

    actions("share", 0, 60)  # before: shares only
    actions("share", 10, 10)  # the last 7 days: mostly copies
    actions("copy", 10, 50)
    while labelling.sessions_derive_pending():
        pass

    report = project_quality(project, now=BASE_TIME + timedelta(days=11))

    shares = {w.rule: w.message for w in report.warnings if w.kind == "rule_share"}
    assert set(shares) == {"share_accept", "copy_accept"}
    assert "83%" in shares["copy_accept"] and "0%" in shares["copy_accept"]
    quiet = project_quality(project, now=BASE_TIME + timedelta(days=40))
    assert not [w for w in quiet.warnings if w.kind == "rule_share"]  # windows too thin
