from __future__ import annotations

import pytest

from feedback import labelling, services
from feedback.models import Label
from review.models import Annotation, Item, Queue
from tests.conftest import token_client
from tests.factories import edit, generation
from tests.review.conftest import GOOD, make_items

pytestmark = pytest.mark.django_db

QUEUE_BODY = {
    "project": "acme",
    "name": "Edits to check",
    "annotations_per_item": 3,
    "guidelines": "Markdown ...",
    "min_item_agreement": 0.66,
    "min_alpha": 0.667,
    "members": ["alice", "bob"],
    "questions": [
        {
            "key": "better",
            "type": "choice",
            "prompt": "Which answer is better?",
            "choices": ["left", "right", "tie", "both bad"],
            "level": "nominal",
        },
        {
            "key": "quality",
            "type": "rating",
            "prompt": "Quality",
            "min": 1,
            "max": 5,
            "level": "ordinal",
        },
        {"key": "note", "type": "text", "prompt": "Why?", "required": False},
    ],
}


def test_lead_creates_a_queue_as_in_the_design(carol, alice, bob):
    response = token_client(carol).post("/api/v1/queues", QUEUE_BODY, format="json")
    assert response.status_code == 201, response.json()
    queue = Queue.objects.get(pk=response.json()["id"])
    assert [q.key for q in queue.questions.all()] == ["better", "quality", "note"]
    assert set(queue.members.values_list("username", flat=True)) == {"alice", "bob"}
    assert response.json()["questions"][1] == {
        "key": "quality",
        "type": "rating",
        "prompt": "Quality",
        "required": True,
        "level": "ordinal",
        "min": 1,
        "max": 5,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"annotations_per_item": 0}, "annotations_per_item"),
        ({"min_alpha": 2}, "min_alpha"),
        ({"members": ["zed"]}, "members"),
        ({"questions": []}, "questions"),
        (
            {"questions": [{"key": "q", "type": "choice", "prompt": "?", "choices": ["a"]}]},
            "questions",
        ),
        (
            {"questions": [{"key": "q", "type": "rating", "prompt": "?", "min": 5, "max": 1}]},
            "questions",
        ),
        ({"questions": [{"key": "q", "type": "dance", "prompt": "?"}]}, "questions"),
    ],
)
def test_bad_queue_is_400_naming_the_field(carol, alice, bob, change, field):
    response = token_client(carol).post("/api/v1/queues", {**QUEUE_BODY, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Queue.objects.count() == 0


def test_annotator_cannot_create_queues(alice, bob):
    response = token_client(alice).post("/api/v1/queues", QUEUE_BODY, format="json")
    assert response.status_code == 404


def test_annotator_sees_only_queues_they_belong_to(queue, alice, carol, owen, project):
    other = Queue.objects.create(project=project, name="Not alice's")
    listed = token_client(alice).get("/api/v1/queues").json()["queues"]
    assert [q["id"] for q in listed] == [queue.pk]
    assert token_client(alice).get(f"/api/v1/queues/{other.pk}").status_code == 404
    assert token_client(owen).get(f"/api/v1/queues/{queue.pk}").status_code == 404
    assert {q["id"] for q in token_client(carol).get("/api/v1/queues").json()["queues"]} == {
        queue.pk,
        other.pk,
    }


def test_add_items_of_every_kind_then_claim_answer_and_skip(queue, carol, alice, project):
    services.events_ingest(
        project=project,
        events=[
            generation("g1", output="Revenue grew 4% in the quarter, said the report."),
            edit("g1", "Revenue grew 5% in Q3, said the report.", t=10),
        ],
    )
    labelling.sessions_derive_pending()
    label = Label.objects.get(source="edit")
    response = token_client(carol).post(
        f"/api/v1/queues/{queue.pk}/items",
        {
            "items": [
                {"content": {"prompt": "Pick one", "responses": ["A ...", "B ..."]}, "priority": 0},
                {"generation_id": "g1"},
                {"label_id": label.pk, "priority": 9},
            ]
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    free, gen_item, label_item = response.json()["ids"]

    client = token_client(alice)
    claimed = client.post(f"/api/v1/queues/{queue.pk}/next").json()
    assert claimed["item"]["id"] == label_item  # highest priority first
    assert claimed["item"]["diff"]  # an edit pair shows the word diff
    answer = client.post(
        f"/api/v1/queues/{queue.pk}/items/{label_item}/annotations",
        {"answers": GOOD},
        format="json",
    )
    assert answer.status_code == 201
    again = client.post(
        f"/api/v1/queues/{queue.pk}/items/{label_item}/annotations",
        {"answers": GOOD},
        format="json",
    )
    assert again.status_code == 409

    nxt = client.post(f"/api/v1/queues/{queue.pk}/next").json()["item"]["id"]
    assert nxt == free
    assert client.post(f"/api/v1/queues/{queue.pk}/items/{free}/skip").status_code == 200
    assert client.post(f"/api/v1/queues/{queue.pk}/next").json()["item"]["id"] == gen_item
    client.post(f"/api/v1/queues/{queue.pk}/items/{gen_item}/skip")
    assert client.post(f"/api/v1/queues/{queue.pk}/next").status_code == 204


def test_bad_answer_is_400_naming_the_question(queue, alice):
    (item,) = make_items(queue, 1)
    response = token_client(alice).post(
        f"/api/v1/queues/{queue.pk}/items/{item.pk}/annotations",
        {"answers": {"better": "sideways", "quality": 3}},
        format="json",
    )
    assert response.status_code == 400
    assert "better" in response.json()["errors"]
    assert Annotation.objects.count() == 0


def test_answer_without_claim_imports_a_label(queue, alice):
    (item,) = make_items(queue, 1)
    response = token_client(alice).post(
        f"/api/v1/queues/{queue.pk}/items/{item.pk}/annotations", {"answers": GOOD}, format="json"
    )
    assert response.status_code == 201
    assert Item.objects.get(pk=item.pk).annotation_count == 1


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([{"generation_id": "nope"}], "generation_id"),
        ([{"label_id": 999999}], "label_id"),
        ([{"content": {"prompt": "x", "responses": ["a", "b", "c"]}}], "content"),
        ([{"content": {"prompt": "x"}, "label_id": 1}], "item"),
        ([], "items"),
    ],
)
def test_bad_items_are_400_and_nothing_is_added(queue, carol, items, field):
    response = token_client(carol).post(
        f"/api/v1/queues/{queue.pk}/items", {"items": items}, format="json"
    )
    assert response.status_code == 400
    assert field in str(response.json())
    assert Item.objects.count() == 0


def test_items_of_another_project_cannot_be_referenced(queue, carol, other_project):
    services.events_ingest(project=other_project, events=[generation("g-other")])
    response = token_client(carol).post(
        f"/api/v1/queues/{queue.pk}/items",
        {"items": [{"generation_id": "g-other"}]},
        format="json",
    )
    assert response.status_code == 400


def test_annotator_cannot_add_items(queue, alice):
    response = token_client(alice).post(
        f"/api/v1/queues/{queue.pk}/items", {"items": [{"generation_id": "g"}]}, format="json"
    )
    assert response.status_code == 404
