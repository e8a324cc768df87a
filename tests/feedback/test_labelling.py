from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from feedback import labelling, services
from feedback.models import Label, RoutingPolicy, Session
from review.models import Item, Queue
from tests.factories import BASE_TIME, CORRECTED, OUTPUT, edit, event, generation

pytestmark = pytest.mark.django_db


def ingest(project, events):
    result = services.events_ingest(project=project, events=events)
    assert result.rejected == 0, result.errors
    return result


def derive_all() -> int:
    total = 0
    while done := labelling.sessions_derive_pending():
        total += done
    return total


def labels(**filters):
    return list(Label.objects.filter(active=True, **filters).order_by("key"))


FIXED = OUTPUT.replace("four percent", "five percent")  # one fact fixed, nothing else


def test_edit_correction_becomes_an_auto_accepted_pair(project):
    ingest(project, [generation("g1", output=OUTPUT), edit("g1", FIXED, t=30)])
    assert derive_all() == 1
    (pair,) = labels(kind="preference_pair")
    assert (pair.source, pair.rule) == ("edit", "edit_correction")
    assert pair.chosen == FIXED and pair.rejected == OUTPUT
    assert pair.status in ("auto_accepted", "in_review")  # qa sample may pick it
    assert pair.confidence >= RoutingPolicy.objects.get(project=project).confidence_threshold
    assert pair.prompt == [{"role": "user", "content": "Summarise this report."}]


def test_edit_before_its_generation_is_derived_once_it_arrives(project):
    ingest(project, [edit("g1", CORRECTED, t=30)])
    derive_all()
    assert labels() == []
    ingest(project, [generation("g1", output=OUTPUT)])
    derive_all()
    assert [label.rule for label in labels()] == ["edit_correction"]


def test_cosmetic_edit_makes_no_label_and_no_review_item(project):
    ingest(project, [generation("g1", output=OUTPUT), edit("g1", OUTPUT + "!", t=30)])
    derive_all()
    assert labels(source="edit") == []
    assert not Item.objects.filter(label__generation__external_id="g1").exists()


def test_rewrite_is_routed_to_review_not_auto_accepted(project):
    rewrite = "Q3: +5%"
    ingest(project, [generation("g1", output=OUTPUT), edit("g1", rewrite, t=30)])
    derive_all()
    (label,) = labels(source="edit")
    assert label.rule == "edit_rewrite" and label.status == "in_review"
    assert Item.objects.filter(label=label).count() == 1


def test_regenerate_without_downstream_action_yields_no_pair(project):
    ingest(
        project,
        [
            generation("g1", output=OUTPUT),
            event("regenerate", generation_id="g1", t=5),
            generation("g2", output=CORRECTED, replaces="g1", t=6),
        ],
    )
    derive_all()
    assert labels(source="regenerate") == []
    g1 = project.generations.get(external_id="g1")
    assert g1.signals["regenerated"] is True and g1.signals["chain_length"] == 2


def test_regenerate_then_copy_prefers_the_later_generation(project):
    ingest(
        project,
        [
            generation("g1", output=OUTPUT),
            event("regenerate", generation_id="g1", t=5),
            generation("g2", output=CORRECTED, replaces="g1", t=6),
            event("copy", generation_id="g2", t=20),
        ],
    )
    derive_all()
    (pair,) = labels(source="regenerate")
    assert pair.chosen == CORRECTED and pair.rejected == OUTPUT
    assert pair.other_generation.external_id == "g1"


def test_three_regenerations_flag_the_chain_for_review(project):
    events = [generation("g0", output=OUTPUT)]
    for n in range(1, 4):
        events.append(event("regenerate", generation_id=f"g{n - 1}", t=n * 10))
        events.append(
            generation(f"g{n}", output=f"{OUTPUT} v{n}", replaces=f"g{n - 1}", t=n * 10 + 1)
        )
    ingest(project, events)
    derive_all()
    (flag,) = labels(kind="high_retry")
    assert flag.needs_review and flag.review_reason == "high_retry"
    assert Item.objects.get(label=flag).queue.reason == Queue.Reason.HIGH_RETRY
    assert Session.objects.get().retries == 3


def test_completed_session_labels_its_final_generation(project):
    ingest(
        project,
        [
            generation("g1", output=OUTPUT),
            event("session_outcome", outcome="completed", signal="tests_passed", t=60),
        ],
    )
    derive_all()
    (positive,) = labels(source="outcome")
    assert positive.kind == "completion" and positive.label is True
    session = Session.objects.get()
    assert (session.outcome, session.outcome_signal) == ("completed", "tests_passed")


def test_inactive_session_is_marked_abandoned_and_its_last_answer_reviewed(project):
    # A project that always sends outcome events (tests/feedback/test_outcomes.py: others).
    RoutingPolicy.objects.filter(project=project).update(sends_outcome_events=True)
    ingest(project, [generation("g1", output=OUTPUT)])
    derive_all()
    assert labels() == []
    later = BASE_TIME + timedelta(minutes=31)
    assert labelling.sessions_mark_abandoned(now=later) == 1
    assert labelling.sessions_mark_abandoned(now=later) == 0  # already marked
    derive_all()
    (negative,) = labels(source="outcome")
    assert negative.label is False and negative.review_reason == "abandoned"
    assert Item.objects.get(label=negative).queue.reason == Queue.Reason.ABANDONED
    assert Session.objects.get().outcome == "abandoned"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_abandon_sweep_skips_a_session_held_by_another_transaction_without_waiting(project):
    """The sweep never waits on a row lock (ingestion or derivation holding the session):
    it marks what is free and leaves the held session for the next sweep."""
    from django.db import connection

    from tests.pg import other_connection

    ingest(project, [generation("g1", output=OUTPUT)])
    ingest(project, [generation("g2", output=OUTPUT, session_id="s2")])
    held = Session.objects.get(external_id="s2")
    with other_connection() as other:
        other.execute("SELECT 1 FROM feedback_session WHERE id = %s FOR UPDATE", [held.pk])
        with connection.cursor() as cursor:  # would wait forever instead of failing
            cursor.execute("SET lock_timeout = '2s'")
        later = BASE_TIME + timedelta(minutes=31)
        assert labelling.sessions_mark_abandoned(now=later) == 1
        other.rollback()
    assert Session.objects.get(pk=held.pk).outcome == "open"
    assert labelling.sessions_mark_abandoned(now=later) == 1
    # The default policy: no outcome events, so a timed-out session is inactive.
    assert Session.objects.get(pk=held.pk).outcome == "inactive"


def test_rating_is_kept_apart(project):
    ingest(project, [generation("g1", output=OUTPUT), event("rating", generation_id="g1", value=1)])
    derive_all()
    (rating,) = labels(kind="rating")
    assert rating.source == "rating"


def test_rederivation_is_idempotent_and_keeps_reviews(project):
    added = OUTPUT + "\n\nShipping was faster than last year."  # reviewed: no fact fixed
    ingest(project, [generation("g1", output=OUTPUT), edit("g1", added, t=30)])
    derive_all()
    label = labels()[0]
    Label.objects.filter(pk=label.pk).update(review_outcome="accepted")
    before = list(Label.objects.values_list("id", "key", "confidence", "chosen"))
    labelling.project_rederive(projects=[project])
    assert derive_all() == 1
    assert list(Label.objects.values_list("id", "key", "confidence", "chosen")) == before
    assert Label.objects.get(pk=label.pk).review_outcome == "accepted"
    assert Item.objects.count() == 1


def test_a_label_the_log_no_longer_supports_is_deactivated(project):
    ingest(project, [generation("g1", output=OUTPUT), event("copy", generation_id="g1", t=9)])
    derive_all()
    (accept,) = labels()
    ingest(project, [edit("g1", CORRECTED, t=30)])  # a real edit replaces the copy positive
    derive_all()
    accept.refresh_from_db()
    assert not accept.active and accept.status == "excluded"
    assert [label.rule for label in labels()] == ["edit_correction"]


def test_ingestion_marks_sessions_pending_and_derivation_clears_them(project):
    ingest(project, [generation("g1", output=OUTPUT)])
    assert Session.objects.filter(derived_changes=0).count() == 1
    derive_all()
    session = Session.objects.get()
    assert session.derived_changes == session.changes
    ingest(project, [event("view", generation_id="g1", dwell_ms=100, t=3)])
    session.refresh_from_db()
    assert session.changes > session.derived_changes


def test_policy_validation_names_the_field(project):
    policy = RoutingPolicy.objects.get(project=project)
    policy.edit_ratio_min, policy.edit_ratio_max = 0.5, 0.4
    with pytest.raises(ValidationError) as error:
        policy.full_clean()
    assert "edit_ratio_min" in error.value.message_dict
    policy.edit_ratio_min, policy.qa_sample_rate = 0.05, 1.5
    with pytest.raises(ValidationError) as error:
        policy.full_clean()
    assert "qa_sample_rate" in error.value.message_dict


def test_policy_change_changes_the_labels(project):
    ingest(project, [generation("g1", output=OUTPUT), edit("g1", FIXED, t=30)])
    derive_all()
    assert labels()[0].needs_review is False or labels()[0].review_reason == "qa_sample"
    RoutingPolicy.objects.filter(project=project).update(
        confidence_threshold=0.99, qa_sample_rate=0
    )
    labelling.project_rederive(projects=[project])
    derive_all()
    assert labels()[0].review_reason == "low_confidence"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_traffic_derives_cleanly_with_every_rule_represented(project, seed):
    from demo.traffic import simulate_traffic

    traffic = simulate_traffic(sessions=80, seed=seed, batch_size=150)
    for batch in traffic.batches:
        assert services.events_ingest(project=project, events=batch).rejected == 0
    labelling.sessions_mark_abandoned(now=BASE_TIME + timedelta(days=400))
    assert derive_all() == Session.objects.count()
    rules = set(Label.objects.values_list("rule", flat=True))
    assert {"edit_correction", "session_completed", "session_abandoned"} <= rules
    assert not Label.objects.filter(confidence__lt=0).exists()
    assert not Label.objects.filter(confidence__gt=1).exists()
    routed = Label.objects.filter(needs_review=True).count()
    assert Item.objects.count() == routed


def test_rederive_command_applies_a_policy_change(project, capsys):
    from django.core.management import CommandError, call_command

    ingest(project, [generation("g1", output=OUTPUT), edit("g1", CORRECTED, t=30)])
    derive_all()
    RoutingPolicy.objects.filter(project=project).update(
        confidence_threshold=0.99, qa_sample_rate=0
    )
    call_command("rederive_labels", "--project", project.slug, "--now")
    assert "Derived 1 session" in capsys.readouterr().out
    assert labels()[0].review_reason == "low_confidence"
    with pytest.raises(CommandError, match="--project"):
        call_command("rederive_labels", "--project", "nope")


def test_policy_change_rederives_a_failing_session_without_waiting_for_its_backoff(project):
    ingest(project, [generation("g1", output=OUTPUT), edit("g1", CORRECTED, t=30)])
    derive_all()
    far_away = BASE_TIME + timedelta(days=3650)
    Session.objects.update(derive_failures=3, derive_error="DataError: …", derive_retry_at=far_away)
    assert derive_all() == 0  # not due, and not pending either
    labelling.project_rederive(projects=[project])
    assert derive_all() == 1
    session = Session.objects.get()
    assert (session.derive_failures, session.derive_error, session.derive_retry_at) == (0, "", None)


def test_derive_all_terminates_while_sessions_keep_failing(project):
    ingest(project, [generation("g1", session="one"), generation("g1", session="two")])
    # A policy row the rules refuse (written past admin's validation): every session fails.
    RoutingPolicy.objects.filter(project=project).update(edit_ratio_min=0.95, edit_ratio_max=0.5)
    assert derive_all() == 2  # each taken once, marked, then left to its backoff
    assert Session.objects.filter(derive_failures=1).count() == 2
    assert "edit_ratio_min" in Session.objects.first().derive_error


@pytest.mark.parametrize("final", [CORRECTED, CORRECTED + "\n", "  " + CORRECTED + " "])
def test_an_edit_that_changes_nothing_is_not_an_action_after_a_regeneration(project, final):
    ingest(
        project,
        [
            generation("g1", output=OUTPUT),
            event("regenerate", generation_id="g1", t=5),
            generation("g2", output=CORRECTED, replaces="g1", t=6),
            edit("g2", final, t=20),
        ],
    )
    derive_all()
    assert labels() == []  # no regenerate pair, no edit pair
    g2 = project.generations.get(external_id="g2")
    assert g2.signals["edits"] == 1 and g2.signals["edit_ratio"] == 0.0
    assert g2.signals["downstream_action"] is False


def test_a_copy_after_a_no_op_edit_still_makes_the_regenerate_pair(project):
    ingest(
        project,
        [
            generation("g1", output=OUTPUT),
            event("regenerate", generation_id="g1", t=5),
            generation("g2", output=CORRECTED, replaces="g1", t=6),
            edit("g2", CORRECTED + "\n\n", t=20),
            event("copy", generation_id="g2", t=25),
        ],
    )
    derive_all()
    assert [(label.key, label.rule) for label in labels()] == [
        ("accept:g2", "copy_accept"),
        ("regen:g1>g2", "regenerate_then_action"),
    ]
    assert labels(source="regenerate")[0].evidence["action"] == "copy"
