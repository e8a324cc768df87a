from __future__ import annotations

import numpy as np
import pytest

from feedback import labelling, services
from feedback.models import Label
from review import gate
from review.agreement import NO_PAIRS, ONE_VALUE, Answers, canonical_values, domain_of
from review.claims import annotation_submit, item_claim_next
from review.models import Adjudication, Item, Question, Queue
from review.services import item_adjudicate, item_set_gold, items_add, items_hold_out
from tests.factories import edit, generation
from tests.review.conftest import make_items

pytestmark = pytest.mark.django_db

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four
# coders, twelve units, values 1..5, None where a coder gave no value.
WORKED_EXAMPLE = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}
PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


def rating_queue(project, levels, per_item: int) -> Queue:
    queue = Queue.objects.create(project=project, name="Ratings", annotations_per_item=per_item)
    for position, level in enumerate(levels):
        Question.objects.create(
            queue=queue,
            key=level,
            type="rating",
            prompt=level,
            min_value=1,
            max_value=5,
            level=level,
            position=position,
        )
    return queue


def coders(django_user_model, names):
    return {name: django_user_model.objects.create_user(username=f"coder{name}") for name in names}


def test_worked_example_is_reproduced_at_all_four_levels(project, django_user_model):
    queue = rating_queue(project, list(PUBLISHED), per_item=4)
    items = make_items(queue, 12)
    users = coders(django_user_model, WORKED_EXAMPLE)
    for name, values in WORKED_EXAMPLE.items():
        for item, value in zip(items, values, strict=True):
            if value is not None:
                annotation_submit(
                    item=item, user=users[name], answers=dict.fromkeys(PUBLISHED, value)
                )

    snapshot = gate.queue_agreement_recompute(queue=queue)

    alphas = {key: q["alpha"] for key, q in snapshot.results["questions"].items()}
    assert {key: round(alpha, 3) for key, alpha in alphas.items()} == PUBLISHED
    assert snapshot.results["questions"]["nominal"]["items"] == 11  # unit 12 has one value


def test_hand_computed_nominal_example(project, alice, bob):
    # Units (a,a) (a,b) (b,b) (b,b): o_ab = o_ba = 1, n_a = 3, n_b = 5, n = 8;
    # D_o = 2/8, D_e = 2*3*5/(8*7) = 30/56, alpha = 1 - (2/8)/(30/56) = 8/15.
    queue = Queue.objects.create(project=project, name="Nominal", annotations_per_item=2)
    Question.objects.create(queue=queue, key="v", type="choice", prompt="?", choices=["a", "b"])
    items = make_items(queue, 4)
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")]
    for item, (first, second) in zip(items, pairs, strict=True):
        annotation_submit(item=item, user=alice, answers={"v": first})
        annotation_submit(item=item, user=bob, answers={"v": second})
    alpha = gate.queue_agreement_recompute(queue=queue).results["questions"]["v"]["alpha"]
    assert alpha == pytest.approx(8 / 15, abs=1e-4)


def test_alpha_is_undefined_without_an_item_with_two_annotations(queue, alice):
    make_items(queue, 3)
    for _ in range(3):
        claim = item_claim_next(queue=queue, user=alice)
        assert claim is not None
        annotation_submit(item=claim.item, user=alice, answers={"better": "tie", "quality": 3})
    result = gate.queue_agreement_recompute(queue=queue).results["questions"]["better"]
    assert result["alpha"] is None and result["undefined_reason"] == NO_PAIRS


def test_alpha_is_undefined_when_everyone_gives_the_same_answer(queue, alice, bob):
    for item in make_items(queue, 3):
        for user in (alice, bob):
            annotation_submit(item=item, user=user, answers={"better": "tie", "quality": 3})
    result = gate.queue_agreement_recompute(queue=queue).results["questions"]["quality"]
    assert result["alpha"] is None and result["undefined_reason"] == ONE_VALUE
    # Three items are too few to judge a queue whose answers never vary.
    assert set(Item.objects.values_list("decision", "decision_reason")) == {
        (
            "excluded",
            f"{gate.TOO_FEW_ITEMS}: every better answer is the same, on 3 fully answered "
            f"items of the {gate.MIN_ITEMS_TO_JUDGE} needed",
        )
    }


def test_a_ratings_queue_where_every_rating_agrees_accepts_on_item_agreement(
    project, django_user_model
):
    queue = rating_queue(project, ["ordinal", "interval"], per_item=2)
    items = make_items(queue, gate.MIN_ITEMS_TO_JUDGE)
    users = coders(django_user_model, "XY")
    for item in items:
        for user in users.values():
            annotation_submit(item=item, user=user, answers={"ordinal": 4, "interval": 4})
    gate.queue_agreement_recompute(queue=queue)
    assert set(Item.objects.values_list("decision", "decision_reason")) == {
        (
            "accepted",
            "reviewers agreed (every answer to ordinal, interval in the queue is the same, "
            "so item agreement decides)",
        )
    }


def test_a_queue_that_rejects_every_label_unanimously_rejects_them(routed_label, three):
    label, queue, item = routed_label
    make_items(queue, gate.MIN_ITEMS_TO_JUDGE)
    for each in Item.objects.filter(queue=queue):
        answer(queue, each, three, ["no"] * 3)
    gate.queue_agreement_recompute(queue=queue)
    label.refresh_from_db()
    assert label.review_outcome == "rejected"
    assert label.review_note.startswith("reviewers agreed: no (every answer to verdict")


def test_left_and_right_are_compared_as_the_responses_they_were():
    saw_chosen_left = canonical_values({"better": "left"}, {"order": [0, 1]}, is_label_pair=True)
    saw_chosen_right = canonical_values({"better": "right"}, {"order": [1, 0]}, is_label_pair=True)
    assert saw_chosen_left == saw_chosen_right == {"better": "chosen"}
    assert canonical_values({"better": "left"}, {"order": [1, 0]}, is_label_pair=False) == {
        "better": "response_2"
    }


@pytest.fixture
def routed_label(project):
    """An edit pair, derived and routed, and a three-annotator queue holding it."""
    services.events_ingest(
        project=project,
        events=[
            generation("g1", output="The report says revenue grew four percent this quarter."),
            edit(
                "g1",
                "The report says revenue grew four percent this quarter.\n\n"
                "Margins held up well in every region.",  # a sentence added: reviewed
                t=9,
            ),
        ],
    )
    labelling.sessions_derive_pending()
    label = Label.objects.get(rule="edit_correction")
    queue = Queue.objects.create(project=project, name="Check", annotations_per_item=3)
    Question.objects.create(
        queue=queue, key="verdict", type="choice", prompt="Right?", choices=["yes", "no", "unsure"]
    )
    (item_id,) = items_add(queue=queue, items=[{"label": label}])
    item = Item.objects.get(pk=item_id)
    make_items(queue, 6)  # answered unanimously by fill_agreed: a defined, high alpha
    return label, queue, item


def answer(queue, item, users, values):
    for user, value in zip(users, values, strict=True):
        annotation_submit(item=item, user=user, answers={"verdict": value})


@pytest.fixture
def three(django_user_model):
    return [django_user_model.objects.create_user(username=f"rater{i}") for i in range(3)]


def fill_agreed(queue, users):
    for n, other in enumerate(Item.objects.filter(queue=queue, label__isnull=True)):
        answer(queue, other, users, ["yes"] * 3 if n % 2 else ["no"] * 3)


@pytest.mark.parametrize(("threshold", "state"), [(0.66, "agreed"), (0.67, "disputed")])
def test_item_agreement_threshold_boundary(routed_label, three, threshold, state):
    label, queue, item = routed_label
    Queue.objects.filter(pk=queue.pk).update(min_item_agreement=threshold, min_alpha=0.0)
    queue.refresh_from_db()
    fill_agreed(queue, three)
    answer(queue, item, three, ["yes", "yes", "no"])  # 2 of 3: 0.6667
    gate.queue_agreement_recompute(queue=queue)
    item.refresh_from_db()
    label.refresh_from_db()
    assert item.agreement == pytest.approx(0.6667)
    assert item.agreement_state == state
    assert label.review_outcome == ("accepted" if state == "agreed" else "")


def test_alpha_exactly_at_the_minimum_passes_and_just_below_excludes(routed_label, three):
    label, queue, item = routed_label
    fill_agreed(queue, three)
    answer(queue, item, three, ["no", "no", "yes"])
    alpha = gate.queue_agreement_recompute(queue=queue).results["questions"]["verdict"]["alpha"]

    Queue.objects.filter(pk=queue.pk).update(min_alpha=alpha)
    queue.refresh_from_db()
    gate.queue_agreement_recompute(queue=queue)
    label.refresh_from_db()
    assert label.review_outcome == "rejected" and label.status == "rejected"

    Queue.objects.filter(pk=queue.pk).update(min_alpha=alpha + 0.0001)
    queue.refresh_from_db()
    gate.queue_agreement_recompute(queue=queue)
    label.refresh_from_db()
    assert label.review_outcome == "excluded"
    assert "alpha below" in label.review_note


def test_disputed_item_waits_for_adjudication_then_takes_the_leads_decision(
    routed_label, three, carol
):
    label, queue, item = routed_label
    fill_agreed(queue, three)
    Queue.objects.filter(pk=queue.pk).update(min_item_agreement=0.9)
    queue.refresh_from_db()
    answer(queue, item, three, ["yes", "no", "unsure"])
    gate.queue_agreement_recompute(queue=queue)
    item.refresh_from_db()
    assert item.agreement_state == "disputed"
    assert Label.objects.get(pk=label.pk).status == "in_review"

    item_adjudicate(item=item, lead=carol, decision="rejected", note="The edit was a typo fix.")
    gate.queue_agreement_recompute(queue=queue)
    label.refresh_from_db()
    assert label.review_outcome == "rejected" and "adjudicated" in label.review_note
    assert Adjudication.objects.get().note == "The edit was a typo fix."
    assert item.annotations.count() == 3  # the decision is kept apart from annotations


def test_annotator_far_from_the_majority_and_gold_is_flagged(queue, alice, bob, carol):
    queue.annotations_per_item = 3
    queue.save()
    queue.members.add(carol)
    items = make_items(queue, 6)
    for item in items:
        item_set_gold(item=item, answers={"better": "tie"})
        for user in (alice, bob):
            annotation_submit(item=item, user=user, answers={"better": "tie", "quality": 3})
        annotation_submit(item=item, user=carol, answers={"better": "both bad", "quality": 1})
    report = gate.queue_agreement_recompute(queue=queue).results["annotators"]
    assert report["carol"]["flagged"] and report["carol"]["majority_agreement"] == 0
    assert not report["alice"]["flagged"]
    assert (report["alice"]["gold_items"], report["alice"]["gold_accuracy"]) == (6, 1.0)
    assert report["carol"]["gold_accuracy"] == 0


def test_gold_answers_are_validated_by_question(queue):
    from review.answers import AnswersInvalid

    (item,) = make_items(queue, 1)
    with pytest.raises(AnswersInvalid) as error:
        item_set_gold(item=item, answers={"better": "sideways"})
    assert "better" in error.value.errors


def test_held_out_share_is_random_but_reproducible(queue):
    make_items(queue, 20)
    assert items_hold_out(queue=queue, share=0.25, seed=7) == 5
    first = set(Item.objects.filter(held_out=True).values_list("id", flat=True))
    Item.objects.update(held_out=False)
    items_hold_out(queue=queue, share=0.25, seed=7)
    assert set(Item.objects.filter(held_out=True).values_list("id", flat=True)) == first
    with pytest.raises(ValueError, match="share"):
        items_hold_out(queue=queue, share=0)


def test_queue_api_shows_alpha_and_why_it_is_undefined(queue, alice, carol):
    from tests.conftest import token_client

    assert token_client(alice).get(f"/api/v1/queues/{queue.pk}").json()["agreement"] == {}
    (item,) = make_items(queue, 1)
    annotation_submit(item=item, user=alice, answers={"better": "tie", "quality": 3})
    gate.queue_agreement_recompute(queue=queue)
    body = token_client(alice).get(f"/api/v1/queues/{queue.pk}").json()
    assert body["agreement"]["better"] == {
        "alpha": None,
        "level": "nominal",
        "items": 0,
        "undefined_reason": NO_PAIRS,
    }
    assert "annotators" not in body  # annotator quality is for leads
    assert "annotators" in token_client(carol).get(f"/api/v1/queues/{queue.pk}").json()


def test_only_leads_adjudicate_mark_gold_and_hold_out(queue, alice, carol):
    from tests.conftest import token_client

    (item,) = make_items(queue, 1)
    base = f"/api/v1/queues/{queue.pk}"
    calls = [
        (f"{base}/items/{item.pk}/adjudication", {"decision": "accepted"}),
        (f"{base}/items/{item.pk}/gold", {"answers": {"better": "tie"}}),
        (f"{base}/held-out", {"item_ids": [item.pk]}),
    ]
    for url, body in calls:
        assert token_client(alice).post(url, body, format="json").status_code == 404
    assert not Adjudication.objects.exists()
    statuses = [
        token_client(carol).post(url, body, format="json").status_code for url, body in calls
    ]
    assert statuses == [201, 200, 200]
    item.refresh_from_db()
    assert item.held_out and item.gold_answers == {"better": "tie"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("adjudication", {"decision": "maybe"}, "decision"),
        ("gold", {"answers": {"better": "sideways"}}, "better"),
        ("gold", {"answers": "tie"}, "answers"),
    ],
)
def test_bad_lead_input_is_400_naming_the_field(queue, carol, path, body, field):
    from tests.conftest import token_client

    (item,) = make_items(queue, 1)
    response = token_client(carol).post(
        f"/api/v1/queues/{queue.pk}/items/{item.pk}/{path}", body, format="json"
    )
    assert response.status_code == 400
    assert field in str(response.json())


def test_held_out_needs_ids_or_a_share(queue, carol):
    from tests.conftest import token_client

    response = token_client(carol).post(f"/api/v1/queues/{queue.pk}/held-out", {}, format="json")
    assert response.status_code == 400 and "item_ids" in response.json()


def test_queue_counts_follow_the_items_and_recomputation_heals_drift(queue, alice, bob, carol):
    items = make_items(queue, 4)
    for user in (alice, bob):
        annotation_submit(item=items[0], user=user, answers={"better": "tie", "quality": 3})
    item_adjudicate(item=items[1], lead=carol, decision="discarded")
    queue.refresh_from_db()
    assert (queue.items_open, queue.items_complete, queue.items_discarded) == (2, 1, 1)

    Queue.objects.filter(pk=queue.pk).update(items_open=99)  # e.g. an edit in the database
    gate.queue_agreement_recompute(queue=queue)
    queue.refresh_from_db()
    assert (queue.items_open, queue.items_complete, queue.items_discarded) == (2, 1, 1)


@pytest.mark.parametrize(("tolerance", "expected"), [(0.0, 0.6667), (1.0, 1.0)])
def test_ordinal_answers_within_the_tolerance_agree(
    project, django_user_model, tolerance, expected
):
    queue = rating_queue(project, ["ordinal"], per_item=3)
    Queue.objects.filter(pk=queue.pk).update(agreement_tolerance=tolerance)
    queue.refresh_from_db()
    (item,) = make_items(queue, 1)
    users = coders(django_user_model, "XYZ")
    for user, value in zip(users.values(), [4, 5, 5], strict=True):
        annotation_submit(item=item, user=user, answers={"ordinal": value})
    gate.queue_agreement_recompute(queue=queue)
    item.refresh_from_db()
    assert item.agreement == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("width", "per_item"), [(5, 3), (12, 5)])  # counts numbered / not
def test_alphas_through_cuts_are_the_alphas_of_the_answers_up_to_each(width, per_item):
    rng = np.random.default_rng(width)
    question = Question(key="q", type="rating", min_value=1, max_value=width, level="ordinal")
    units = np.arange(400, dtype=np.int64) * 3
    rows = np.repeat(np.arange(len(units)), per_item)
    times = rng.integers(0, 50, len(rows)).astype(np.float64) / 7
    codes = np.minimum(rows % width + rng.integers(0, 2, len(rows)), width - 1)
    answers = Answers(
        question, domain_of(question), units, rows, rows * 0 + 1, codes.astype(np.int64), times
    )
    cuts = [float(times.min()) - 1, 1.5, float(np.median(times)), 5.0, float(times.max())]

    assert answers._keyed is (width == 5)
    assert answers.alphas_through(cuts) == [answers.alpha(times <= cut) for cut in cuts]
    assert answers.alphas_through(cuts)[0] == (None, 0)
    assert answers.alphas_through(cuts)[-1][0] is not None


@pytest.mark.parametrize("twice", [False, True])  # each annotator once per item, or not
@pytest.mark.parametrize(("width", "per_item"), [(5, 3), (12, 5)])  # counts numbered / not
def test_alpha_without_an_annotator_is_the_alpha_of_the_others(width, per_item, twice):
    rng = np.random.default_rng(width + per_item)
    question = Question(key="q", type="rating", min_value=1, max_value=width, level="ordinal")
    units = np.arange(300, dtype=np.int64) * 2
    rows = np.repeat(np.arange(len(units)), per_item)
    users = np.tile(np.arange(per_item), len(units))
    if twice:
        users = rng.integers(0, per_item, len(rows))  # someone answers an item twice
    codes = np.minimum(rows % width + rng.integers(0, 2, len(rows)), width - 1)
    answers = Answers(
        question, domain_of(question), units, rows, users, codes.astype(np.int64), rows * 0.0
    )
    for user in range(per_item):
        mine = np.flatnonzero(users == user)
        assert answers.alpha_without(mine) == answers.where(users != user).alpha(), user
