"""Signal rollups (feedback/signals.py): figures against a hand-computed fixture, kept right
by derivation through late events and re-derivation, and the same as a rebuild."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from feedback import labelling, services
from feedback.models import SIGNAL_COUNTS, Generation, Label, Session, SignalRollup
from feedback.signals import (
    BUCKETS,
    CONTRIBUTION_COLUMNS,
    DIMENSIONS,
    ROLLUP_VALUES,
    dwell_bin,
    median_dwell,
    name_pattern,
    pattern_of,
    rebuild_rollups,
    set_feature_key,
    signal_groups,
    signal_rows,
)
from tests.factories import BASE_TIME, CORRECTED, OUTPUT, edit, event, generation

pytestmark = pytest.mark.django_db
DAY1 = date(2026, 11, 20)  # BASE_TIME's day, a Friday
DAY2 = date(2026, 11, 21)
WEEK = date(2026, 11, 16)  # its Monday
CODE_PROMPT = [{"role": "user", "content": "Write a Python function that sorts names."}]
ONE_DAY = 86_400


def ingest(project, events) -> None:
    assert services.events_ingest(project=project, events=events).rejected == 0


def derive_all() -> int:
    total = 0
    while done := labelling.sessions_derive_pending():
        total += done
    return total


def fixture_traffic(project) -> None:
    """Three sessions, hand-counted in the tests below.

    s1 (day 1, m-old, code): g1 regenerated, g2 replaces it, copied, read 5.4 s, thumbs up;
       completed. s2 (day 2, m-new, code): g3 corrected, read 20 s; abandoned. s3 (day 2,
       m-new, email, template "email_reply"): g4 thumbs down (false); no outcome.
    """
    code = {"feature": "code"}
    ingest(
        project,
        [
            generation("g1", t=0, input=CODE_PROMPT, model="m-old", metadata=code),
            event("regenerate", generation_id="g1", t=20),
            generation("g2", t=21, input=CODE_PROMPT, model="m-old", metadata=code, replaces="g1"),
            event("copy", generation_id="g2", t=30),
            event("view", generation_id="g2", t=32, dwell_ms=5400),
            event("rating", generation_id="g2", t=33, value=1),
            event("session_outcome", t=40, outcome="completed"),
            generation("g3", session="s2", t=ONE_DAY, output=OUTPUT, model="m-new", metadata=code),
            edit("g3", CORRECTED, session="s2", t=ONE_DAY + 10),
            event("view", session="s2", generation_id="g3", t=ONE_DAY + 12, dwell_ms=20_000),
            event("session_outcome", session="s2", t=ONE_DAY + 20, outcome="abandoned"),
            generation(
                "g4",
                session="s3",
                t=ONE_DAY + 30,
                model="m-new",
                metadata={"feature": "email", "prompt_template": "email_reply"},
            ),
            event("rating", session="s3", generation_id="g4", t=ONE_DAY + 40, value=False),
        ],
    )
    assert derive_all() == 3


def only(rows):
    assert len(rows) == 1
    return rows[0]


def test_project_totals_against_the_hand_count_with_a_late_event_and_rederivation(project):
    fixture_traffic(project)
    # A late event: g4 is shared after its session was derived.
    ingest(project, [event("share", session="s3", generation_id="g4", t=ONE_DAY + 50)])
    assert derive_all() == 1
    # Re-deriving everything (a policy change) counts nothing twice.
    labelling.project_rederive(projects=[project])
    assert derive_all() == 3

    row = only(signal_rows(project, bucket="all"))
    assert row["bucket"] == DAY1 and row["group"] == "" and row["group_label"] == ""
    assert {name: row[name] for name in ("generations", *SIGNAL_COUNTS)} == {
        "generations": 4,
        "sessions": 3,
        "edited": 1,
        "edit_cosmetic": 0,
        "edit_correction": 1,
        "edit_rewrite": 0,
        "regenerated": 1,
        "high_retry": 0,
        "copied": 1,
        "shared": 1,
        "completed": 1,
        "abandoned": 1,
        "thumbs": 2,
        "thumbs_up": 1,
    }
    assert row["edit_rate"] == row["regenerate_rate"] == row["copy_rate"] == 0.25
    assert row["share_rate"] == 0.25 and row["thumbs_rate"] == 0.5
    assert row["completion_rate"] == row["abandon_rate"] == pytest.approx(1 / 3)
    assert row["thumbs_up_share"] == 0.5
    # 5.4 s and 20 s: the lower half ends at the top of 5.4 s's bin, [4 s, 8 s).
    assert row["median_dwell_ms"] == 8000
    assert row["labels"] == {
        "regenerate_then_action": 1,
        "copy_accept": 1,
        "explicit_rating": 2,
        "edit_correction": 1,
        "session_abandoned": 1,
        "share_accept": 1,
    }
    assert row["labels"] == dict(
        Counter(Label.objects.filter(project=project, active=True).values_list("rule", flat=True))
    )


def test_by_model_per_day_and_week(project):
    fixture_traffic(project)
    days = signal_rows(project, bucket="day", by="model")
    assert [(r["bucket"], r["group"], r["generations"], r["sessions"]) for r in days] == [
        (DAY1, "m-old", 2, 1),
        (DAY2, "m-new", 2, 2),
    ]
    old, new = days
    assert old["regenerate_rate"] == 0.5 and new["regenerate_rate"] == 0.0
    assert old["completion_rate"] == 1.0 and old["abandon_rate"] == 0.0
    assert new["completion_rate"] == 0.0 and new["abandon_rate"] == 0.5
    assert new["thumbs_up_share"] == 0.0 and new["median_dwell_ms"] == 22_627  # mid [16 s, 32 s)
    weeks = signal_rows(project, bucket="week")
    assert [(r["bucket"], r["generations"]) for r in weeks] == [(WEEK, 4)]
    assert signal_rows(project, bucket="day", date_from=DAY2)[0]["bucket"] == DAY2
    assert signal_rows(project, bucket="day", date_to=DAY1)[0]["generations"] == 2
    assert signal_rows(project, bucket="day", date_from=DAY2, date_to=DAY1) == []


def test_by_feature_and_pattern_with_names(project):
    fixture_traffic(project)
    features = signal_rows(project, bucket="all", by="feature")
    assert [(r["group"], r["group_label"], r["generations"]) for r in features] == [
        ("code", "code", 3),
        ("email", "email", 1),
    ]
    assert {r["bucket"] for r in features} == {DAY1}
    name_pattern(project, "tpl:email_reply", "Email reply")
    assert signal_groups(project, "pattern") == [
        ("txt:write a python", "write a python …", 2),
        ("tpl:email_reply", "Email reply", 1),
        ("txt:summarise this report", "summarise this report …", 1),
    ]
    picked = signal_rows(project, bucket="all", by="pattern", groups=["tpl:email_reply"])
    assert [(r["group_label"], r["thumbs"]) for r in picked] == [("Email reply", 1)]
    name_pattern(project, "tpl:email_reply", "  ")
    assert signal_groups(project, "pattern")[1][1] == "email_reply"


def test_groups_of_a_dimension_add_up_to_the_totals(project):
    fixture_traffic(project)
    total = only(signal_rows(project, bucket="all"))
    for by in DIMENSIONS:
        rows = signal_rows(project, bucket="all", by=by)
        for name in ("generations", *SIGNAL_COUNTS):
            assert sum(r[name] for r in rows) == total[name], (by, name)


def test_changing_the_feature_key_regroups(project):
    fixture_traffic(project)
    set_feature_key(project, "prompt_template")
    assert signal_groups(project, "feature") == [
        ("", "(none)", 3),
        ("email_reply", "email_reply", 1),
    ]
    with pytest.raises(ValueError, match="key"):
        set_feature_key(project, "bad key!")


def test_rebuild_gives_the_rollups_derivation_kept(project):
    fixture_traffic(project)
    ingest(project, [event("share", session="s3", generation_id="g4", t=ONE_DAY + 50)])
    derive_all()
    kept = _rollups(project)
    SignalRollup.objects.filter(project=project).update(generations=99)  # drifted
    rebuild_rollups(project)
    assert _rollups(project) == kept


def _rollups(project) -> list[tuple]:
    return sorted(
        (r.dimension, r.group_key, r.day, *(getattr(r, n) for n in ROLLUP_VALUES))
        for r in SignalRollup.objects.filter(project=project, generations__gt=0)
    )


def test_simulated_traffic_rollups_match_the_stored_signals(project):
    """Hard simulated traffic, derived in small chunks, then re-derived: the rollups are
    the counts of the stored signals, and a rebuild finds the same."""
    from demo.traffic import simulate_traffic

    traffic = simulate_traffic(sessions=40, seed=3, batch_size=300, hard=True)
    for batch in traffic.batches:
        ingest(project, batch)
    labelling.sessions_mark_abandoned(now=BASE_TIME + timedelta(days=400))
    while labelling.sessions_derive_pending(limit=7):
        pass
    labelling.project_rederive(projects=[project])
    derive_all()
    signals = list(Generation.objects.filter(project=project).values_list("signals", flat=True))
    total = only(signal_rows(project, bucket="all"))
    assert total["generations"] == len(signals)
    # Sessions with a generation (a "later" session holding only actions is not one).
    sessions = Session.objects.filter(project=project, generations__isnull=False).distinct()
    assert total["sessions"] == sessions.count() < Session.objects.count()
    assert total["regenerated"] == sum(s["regenerated"] for s in signals)
    assert total["copied"] == sum(s["copied"] for s in signals)
    assert total["edited"] == sum(s["edit_kind"] != "none" for s in signals)
    assert total["completed"] == sessions.filter(outcome="completed").count()
    kept = _rollups(project)
    rebuild_rollups(project)
    assert _rollups(project) == kept


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"bucket": "month"}, "bucket"),
        ({"by": "user"}, "by"),
        ({"date_from": "2026-01-01"}, "date_from"),
        ({"groups": ["x"]}, "groups"),
        ({"by": "model", "groups": "x"}, "groups"),
    ],
)
def test_bad_arguments_name_the_parameter(project, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        signal_rows(project, **kwargs)
    with pytest.raises(ValueError, match="^by:"):
        signal_groups(project, "nope")


def test_an_empty_project_has_no_rows_and_reads_in_two_queries(
    project, django_assert_max_num_queries
):
    for bucket in BUCKETS:
        with django_assert_max_num_queries(2):
            assert signal_rows(project, bucket=bucket, by="pattern") == []


def test_dwell_bins_and_median():
    assert dwell_bin(0) is None and dwell_bin(1) == 0 and dwell_bin(249) == 0
    assert dwell_bin(250) == 1 and dwell_bin(499) == 1 and dwell_bin(500) == 2
    assert dwell_bin(86_400_000) == 19
    assert median_dwell([0] * 20) is None
    histogram = [0] * 20
    histogram[3] = 2  # [1 s, 2 s)
    assert median_dwell(histogram) == 1414  # the geometric middle of the bin


def test_pattern_of():
    assert pattern_of(CODE_PROMPT) == "txt:write a python"
    assert pattern_of([{"role": "user", "content": "Write  a PYTHON, 3 times!"}]) == (
        "txt:write a python"
    )
    assert pattern_of([{"role": "user", "content": "42 ?"}]) == ""
    assert pattern_of(CODE_PROMPT, "code_fix") == "tpl:code_fix"
    assert pattern_of([{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}]) == (
        "txt:hi there"
    )


def test_contribution_columns_follow_the_model():
    from feedback import derive_io

    assert derive_io.CONTRIBUTION_FIELDS == CONTRIBUTION_COLUMNS
    assert derive_io.ROLLUP_VALUE_FIELDS == ROLLUP_VALUES


def test_rebuild_command(project):
    from io import StringIO

    from django.core.management import CommandError, call_command

    fixture_traffic(project)
    SignalRollup.objects.filter(project=project).delete()
    out = StringIO()
    call_command("rebuild_signal_rollups", project="acme", stdout=out)
    # Per day: models 1 + 1, features 1 + 2, patterns 1 + 2.
    assert "Rebuilt 8 rollup row(s) of acme" in out.getvalue()
    assert only(signal_rows(project, bucket="all"))["generations"] == 4
    for bad in ("nope", "ac\x00me", "cut \ud83d", "x" * 10_000):
        with pytest.raises(CommandError, match="--project"):
            call_command("rebuild_signal_rollups", project=bad)


def test_a_contribution_counts_each_signal_once():
    from datetime import UTC, datetime

    from feedback.signals import _vector, contribution

    def counts(**kwargs) -> dict[str, int]:
        row = contribution(
            generation_id=1,
            project_id=1,
            created_at=datetime(2026, 11, 20, 23, 59, tzinfo=UTC),
            model="m",
            feature="f",
            pattern="p",
            **kwargs,
        )
        assert row[2] == DAY1
        return {ROLLUP_VALUES[i]: v for i, v in _vector(row[6], row[7])}

    assert counts(
        signals={"edit_kind": "trim", "regenerated": True, "rating": 2, "dwell_ms": 300},
        rules=["explicit_rating"],
        last_in_session=True,
        outcome="completed",
    ) == {
        "generations": 1,
        "sessions": 1,
        "edited": 1,
        "edit_cosmetic": 1,
        "regenerated": 1,
        "completed": 1,
        "thumbs": 1,
        "thumbs_up": 1,
        "dwell_1": 1,
        "label_explicit_rating": 1,
    }
    # Signals stored before edit kinds were: the edit's label says which it was. The
    # outcome counts on the session's last generation only.
    assert counts(
        signals={"edit_ratio": 0.95, "rating": -1},
        rules=["edit_rewrite", "retry_chain"],
        last_in_session=False,
        outcome="abandoned",
    ) == {
        "generations": 1,
        "edited": 1,
        "edit_rewrite": 1,
        "high_retry": 1,
        "thumbs": 1,
        "label_edit_rewrite": 1,
        "label_retry_chain": 1,
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_rollup_write_is_added_to_not_lost(project):
    """Another derivation's uncommitted write to the same rollup row: derivation waits for
    it, then adds to what it committed (an increment, never an overwrite)."""
    import threading

    from django.db import connections

    from tests.pg import other_connection, waiting_on_locks

    ingest(project, [generation("g1", t=0)])
    assert derive_all() == 1
    ingest(project, [generation("g2", session="s2", t=60)])
    with other_connection() as other:
        other.execute(
            "UPDATE feedback_signalrollup SET generations = generations + 100 "
            "WHERE project_id = %s AND dimension = 'model'",
            [project.pk],
        )

        def derive() -> None:
            try:
                derive_all()
            finally:
                connections.close_all()

        thread = threading.Thread(target=derive)
        thread.start()
        for _ in range(200):  # polls until the derivation waits on the row
            if waiting_on_locks():
                break
            thread.join(0.05)
        assert waiting_on_locks() == 1
        other.commit()
        thread.join(10)
    assert not thread.is_alive()
    rows = signal_rows(project, bucket="all", by="model")
    assert [(r["group"], r["generations"], r["sessions"]) for r in rows] == [
        ("acme-chat-2", 102, 2)
    ]
