from __future__ import annotations

import importlib
import json

import pytest
from django.urls import NoReverseMatch, clear_url_caches, reverse

from feedback import services
from feedback.models import Generation
from playground import canned
from playground.models import PlaygroundKey
from tenancy.keys import api_keys_revoke
from tenancy.models import ApiKey, Membership, hash_api_key
from tenancy.services import membership_set
from tests.conftest import make_user

ANSWER_URL = "/playground/answer"


@pytest.fixture
def demo(db):
    project, _ = services.project_create(slug="demo", name="Demo assistant")
    return project


@pytest.fixture
def dave(django_user_model, demo):
    return make_user(django_user_model, "dave", demo, Membership.Role.ANNOTATOR)


@pytest.fixture
def visitor(client, dave):
    client.force_login(dave)
    return client


def post(client, body, session_id: str | None = None) -> tuple[int, dict]:
    if session_id is not None:
        body = {"session_id": session_id, **body}
    response = client.post(ANSWER_URL, json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def test_page_needs_a_login(client, demo):
    response = client.get("/playground/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_page_is_404_for_someone_outside_the_demo_project(client, django_user_model, demo):
    client.force_login(django_user_model.objects.create_user(username="eve", password="x"))
    response = client.get("/playground/")
    assert response.status_code == 404
    assert b"seed_demo" in response.content
    assert not ApiKey.objects.exists()


def test_page_carries_a_publishable_key_for_its_origin_made_once(visitor, demo):
    first = visitor.get("/playground/", HTTP_HOST="localhost:8000")
    second = visitor.get("/playground/", HTTP_HOST="localhost:8000")
    assert first.status_code == second.status_code == 200
    (key,) = ApiKey.objects.filter(project=demo)
    assert key.is_publishable and key.allowed_origins == ["http://localhost:8000"]
    raw = PlaygroundKey.objects.get(project=demo).raw_key
    assert raw.startswith("glpub_") and hash_api_key(raw) == key.hashed_key
    assert f'data-key="{raw}"'.encode() in first.content
    assert first.context["session_id"] != second.context["session_id"]
    assert b"glk_" not in first.content


def test_a_revoked_playground_key_is_replaced(visitor, demo):
    visitor.get("/playground/")
    api_keys_revoke(keys=ApiKey.objects.all())
    visitor.get("/playground/")
    active = ApiKey.objects.filter(project=demo, revoked_at__isnull=True)
    assert active.count() == 1
    assert hash_api_key(PlaygroundKey.objects.get().raw_key) == active.get().hashed_key


def open_session(client) -> str:
    return client.get("/playground/").context["session_id"]


def test_asking_ingests_the_generation_server_side(visitor, demo):
    session_id = open_session(visitor)
    status, body = post(visitor, {"prompt": "What is the capital of France?"}, session_id)
    assert status == 200
    generation = Generation.objects.get(external_id=body["generation_id"])
    assert generation.project == demo
    assert generation.session.external_id == session_id
    assert generation.output == body["output"] == canned.answer("capital of France").text
    assert generation.input == [{"role": "user", "content": "What is the capital of France?"}]
    assert generation.model == canned.MODEL


def test_regenerating_gives_another_answer_linked_to_the_first(visitor, demo):
    session_id = open_session(visitor)
    _, first = post(visitor, {"prompt": "How do I sort a Python list?"}, session_id)
    status, second = post(visitor, {"replaces": first["generation_id"]}, session_id)
    assert status == 200
    assert second["output"] != first["output"]
    regenerated = Generation.objects.get(external_id=second["generation_id"])
    assert regenerated.replaces_ref == first["generation_id"]
    assert regenerated.input == Generation.objects.get(external_id=first["generation_id"]).input
    _, third = post(visitor, {"replaces": second["generation_id"]}, session_id)
    assert third["output"] not in (first["output"], second["output"])


def test_two_tabs_keep_their_own_sessions(visitor, demo):
    first_tab, second_tab = open_session(visitor), open_session(visitor)
    _, answer = post(visitor, {"prompt": "Tea?"}, first_tab)
    status, _ = post(visitor, {"replaces": answer["generation_id"]}, first_tab)
    assert status == 200
    status, errors = post(visitor, {"replaces": answer["generation_id"]}, second_tab)
    assert status == 400 and list(errors["errors"]) == ["replaces"]
    assert Generation.objects.get(external_id=answer["generation_id"]).session.external_id == (
        first_tab
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"replaces": "gen_not_mine"}, "replaces"),
    ],
)
def test_bad_requests_name_the_field(visitor, demo, body, field):
    status, answer = post(visitor, body, open_session(visitor))
    assert status == 400
    assert list(answer["errors"]) == [field]
    assert not Generation.objects.exists()


def test_a_body_that_is_not_an_object_is_400(visitor, demo):
    open_session(visitor)
    response = visitor.post(ANSWER_URL, "[1]", content_type="application/json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["body"]


def test_another_visitors_session_and_answers_are_not_theirs(
    client, visitor, demo, django_user_model
):
    session_id = open_session(visitor)
    _, mine = post(visitor, {"prompt": "Tea?"}, session_id)
    other = django_user_model.objects.create_user(username="bob", password="pw-bob")
    membership_set(project=demo, user=other, role=Membership.Role.ANNOTATOR)
    client.logout()
    client.force_login(other)
    own = open_session(client)
    status, answer = post(client, {"replaces": mine["generation_id"]}, own)
    assert status == 400 and list(answer["errors"]) == ["replaces"]
    status, answer = post(client, {"prompt": "Tea?"}, session_id)
    assert status == 404 and list(answer["errors"]) == ["session_id"]
    assert Generation.objects.count() == 1


def test_answer_without_a_playground_session_is_404(visitor, demo):
    status, answer = post(visitor, {"prompt": "Hello"}, "pg_0000000000000000")
    assert status == 404 and list(answer["errors"]) == ["session_id"]


def test_ended_page_links_to_the_session(visitor, demo):
    session_id = open_session(visitor)
    response = visitor.get("/playground/ended", {"session": session_id})
    assert response.status_code == 200
    html = response.content.decode()
    assert f"/api/v1/sessions/{session_id}?project=demo" in html
    assert f"/admin/feedback/label/?q={session_id}" in html
    bad = visitor.get("/playground/ended", {"session": "<script>"})
    assert bad.status_code == 400 and b"<script>" not in bad.content


def test_canned_answers_are_deterministic_and_regenerations_differ():
    assert canned.answer("Capital of France?") == canned.answer("capital of france")
    assert canned.answer("xyzzy").text == canned.answer("xyzzy").text
    texts = {canned.answer("brew green tea", n).text for n in range(3)}
    assert len(texts) == 3
    assert canned.answer("brew green tea", 3).text == canned.answer("brew green tea", 0).text


def test_playground_is_not_routed_when_the_setting_is_off(settings):
    import config.urls

    settings.GLEANER_PLAYGROUND = False
    try:
        clear_url_caches()
        importlib.reload(config.urls)
        with pytest.raises(NoReverseMatch):
            reverse("playground:chat")
    finally:
        settings.GLEANER_PLAYGROUND = True
        importlib.reload(config.urls)
        clear_url_caches()
    assert reverse("playground:chat") == "/playground/"
